//! What the Scorer handlers compute, and Score's answer on the wire.
//!
//! [`Scores`] holds every passage's answer per head as indices into the
//! model's head and label names, its probabilities in one flat vector. A
//! [`ScoreReply`] (Score and ScoreStream over gRPC) encodes those straight
//! into the bytes of a `ScoreResponse`: the server side of the service is
//! generated with `ScoreResponse` mapped to it (see `build.rs`), and
//! clients decode the usual message. Every other answer, and the JSON one,
//! is made by [`Scores::into_passages`] with [`proto::head_score`]: one
//! conversion, whose encoding the unit tests compare byte for byte with
//! this one's.
//!
//! Why not build the prost structs and let prost encode them: a passage
//! scored by the four heads of the default model then takes ~25 small
//! `String`s (every head and label name) and ~1.2 µs to build, size three
//! times over (budget check, encoder, nested lengths) and drop, against
//! ~0.7 µs to score it. Under `slant bench grpc --batch 64 --concurrency 8`
//! on 2 cores, this reply (its size worked out once) took the server from
//! 4.46 to 3.39 µs of CPU per passage, and the run from 1.52M to 1.88M
//! passages in 4 s (means of 2 alternating runs each).

use std::sync::Arc;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{
    encode_key, encode_varint, encoded_len_varint, key_len, skip_field, DecodeContext, WireType,
};
use prost::{DecodeError, Message};

use super::catalog::Loaded;
use crate::model::Model;
use crate::proto;

/// The `slant.v1.Scorer` server, generated with Score's and ScoreStream's
/// responses as [`ScoreReply`].
#[allow(clippy::all, missing_docs, unused_qualifications)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/server/slant.v1.rs"));
}

/// One head's answer for one passage.
#[derive(Debug, Clone, PartialEq)]
struct HeadAnswer {
    /// The model's head index.
    head: usize,
    /// The decided label's index.
    label: usize,
    /// The threshold that decided it (0 for argmax).
    threshold: f64,
    /// Where its probabilities are in [`Scores`]' flat vector: one per
    /// label, in the head's label order.
    probabilities: (usize, usize),
    /// The label the contributions are signed towards (with
    /// explanations).
    explained: Option<usize>,
    contributions: Vec<proto::Contribution>,
    /// Its `HeadScore` body's size, once a [`ScoreReply`] has sized it.
    size: usize,
}

/// Every passage's answers, in passage order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    heads: Vec<HeadAnswer>,
    /// Passage `i`'s heads are `heads[ends[i - 1]..ends[i]]`.
    ends: Vec<usize>,
    probabilities: Vec<f64>,
}

impl Scores {
    /// Room for `passages` passages of `heads` answers and `probabilities`
    /// probabilities each.
    pub fn with_capacity(passages: usize, heads: usize, probabilities: usize) -> Self {
        Self {
            heads: Vec::with_capacity(passages.saturating_mul(heads)),
            ends: Vec::with_capacity(passages),
            probabilities: Vec::with_capacity(passages.saturating_mul(probabilities)),
        }
    }

    /// Adds a head's answer to the passage under way.
    pub fn push(
        &mut self,
        head: usize,
        label: usize,
        threshold: f64,
        probabilities: &[f64],
        explained: Option<usize>,
        contributions: Vec<proto::Contribution>,
    ) {
        let start = self.probabilities.len();
        self.probabilities.extend_from_slice(probabilities);
        self.heads.push(HeadAnswer {
            head,
            label,
            threshold,
            probabilities: (start, probabilities.len()),
            explained,
            contributions,
            size: 0,
        });
    }

    /// Ends the passage under way (its heads are those pushed since the
    /// last end).
    pub fn end_passage(&mut self) {
        self.ends.push(self.heads.len());
    }

    /// Number of passages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Appends `other`'s passages after these.
    pub fn append(&mut self, other: Scores) {
        let (heads, probs) = (self.heads.len(), self.probabilities.len());
        self.heads.extend(other.heads.into_iter().map(|mut a| {
            a.probabilities.0 += probs;
            a
        }));
        self.ends.extend(other.ends.into_iter().map(|e| e + heads));
        self.probabilities.extend(other.probabilities);
    }

    /// Passage `i`'s answers.
    fn passage(&self, i: usize) -> &[HeadAnswer] {
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0)
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.heads.get(start..end).unwrap_or(&[])
    }

    /// The passages as wire types, made by [`proto::head_score`].
    pub fn into_passages(self, model: &Model) -> Vec<proto::PassageScore> {
        let mut heads = self.heads.into_iter();
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let n = end - start;
                start = end;
                proto::PassageScore {
                    heads: heads
                        .by_ref()
                        .take(n)
                        .filter_map(|a| {
                            let (s, k) = a.probabilities;
                            let probs = self.probabilities.get(s..s + k).unwrap_or(&[]);
                            let explained_label = explained_label(model, &a).to_string();
                            let score = proto::head_score(
                                model,
                                a.head,
                                a.label,
                                a.threshold,
                                probs,
                                a.contributions,
                            )?;
                            Some(proto::HeadScore {
                                explained_label,
                                ..score
                            })
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

fn explained_label<'a>(model: &'a Model, a: &HeadAnswer) -> &'a str {
    a.explained
        .and_then(|l| model.heads().get(a.head)?.labels.get(l))
        .map_or("", String::as_str)
}

/// Score's answer: a `ScoreResponse` on the wire (see the module's
/// documentation). Encode only: decoding one skips every field.
#[derive(Debug, Clone)]
pub struct ScoreReply {
    loaded: Arc<Loaded>,
    scores: Scores,
    request_id: String,
    /// The encoded size, worked out once: the budget check and the encoder
    /// both ask.
    size: usize,
}

impl ScoreReply {
    /// The answer with `scores`, made by `loaded`, to request `request_id`.
    pub(crate) fn new(loaded: Arc<Loaded>, scores: Scores, request_id: String) -> Self {
        let mut reply = Self {
            loaded,
            scores,
            request_id,
            size: 0,
        };
        reply.measure();
        reply
    }

    /// The name of the model that answered.
    pub(crate) fn model_name(&self) -> &str {
        &self.loaded.name
    }

    /// Its version.
    pub(crate) fn version(&self) -> u64 {
        self.loaded.version
    }

    /// Number of passages answered.
    pub(crate) fn passages(&self) -> usize {
        self.scores.len()
    }

    fn model(&self) -> &Model {
        &self.loaded.model
    }

    /// Sizes every answer, then the whole.
    fn measure(&mut self) {
        let model = &self.loaded.model;
        let Scores {
            heads,
            probabilities,
            ..
        } = &mut self.scores;
        for a in heads.iter_mut() {
            a.size = head_len(model, probabilities, a);
        }
        let results: usize = (0..self.scores.len())
            .map(|i| message_len(RESULTS, self.passage_len(i)))
            .sum();
        self.size = results
            + string_len(MODEL_ID, model.id())
            + string_len(REQUEST_ID, &self.request_id)
            + string_len(MODEL, &self.loaded.name)
            + string_len(
                MODEL_VERSION,
                itoa::Buffer::new().format(self.loaded.version),
            );
    }
}

impl From<ScoreReply> for proto::ScoreResponse {
    fn from(r: ScoreReply) -> Self {
        let (model_id, model, model_version) = names(&r.loaded);
        Self {
            results: r.scores.into_passages(&r.loaded.model),
            model_id,
            model,
            model_version,
            request_id: r.request_id,
        }
    }
}

/// A loaded version's id, name and version, as responses carry them.
pub(crate) fn names(loaded: &Loaded) -> (String, String, String) {
    (
        loaded.model.id().to_string(),
        loaded.name.clone(),
        loaded.version.to_string(),
    )
}

// Field numbers of the messages encoded here (see the proto).
const RESULTS: u32 = 1;
const MODEL_ID: u32 = 2;
const REQUEST_ID: u32 = 3;
const MODEL: u32 = 4;
const MODEL_VERSION: u32 = 5;
const PASSAGE_HEADS: u32 = 1;
const HEAD: u32 = 1;
const LABEL: u32 = 2;
const PROBABILITIES: u32 = 3;
const CONTRIBUTIONS: u32 = 4;
const THRESHOLD: u32 = 5;
const EXPLAINED_LABEL: u32 = 6;
const PROBABILITY_LABEL: u32 = 1;
const PROBABILITY: u32 = 2;

/// A proto3 string field's size: nothing when empty.
fn string_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn put_string(tag: u32, s: &str, buf: &mut impl BufMut) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(s.len() as u64, buf);
        buf.put_slice(s.as_bytes());
    }
}

/// A proto3 double field's size: nothing when it is 0.
fn double_len(tag: u32, x: f64) -> usize {
    if x == 0.0 {
        0
    } else {
        key_len(tag) + 8
    }
}

fn put_double(tag: u32, x: f64, buf: &mut impl BufMut) {
    if x != 0.0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.put_f64_le(x);
    }
}

/// An embedded message field's size, from its body's.
fn message_len(tag: u32, body: usize) -> usize {
    key_len(tag) + encoded_len_varint(body as u64) + body
}

fn put_message_header(tag: u32, body: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body as u64, buf);
}

fn label_probability_len(label: &str, p: f64) -> usize {
    string_len(PROBABILITY_LABEL, label) + double_len(PROBABILITY, p)
}

/// The labels and probabilities of answer `a`, paired (`probabilities`:
/// the flat vector of its [`Scores`]).
fn labelled<'a>(
    model: &'a Model,
    probabilities: &'a [f64],
    a: &HeadAnswer,
) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    let labels = model.heads().get(a.head).map_or(&[][..], |h| &h.labels[..]);
    let (start, n) = a.probabilities;
    labels.iter().map(String::as_str).zip(
        probabilities
            .get(start..start + n)
            .unwrap_or(&[])
            .iter()
            .copied(),
    )
}

/// The names of answer `a`: its head and decided label.
fn answer_names<'a>(model: &'a Model, a: &HeadAnswer) -> (&'a str, &'a str) {
    let head = model.heads().get(a.head);
    (
        head.map_or("", |h| h.name.as_str()),
        head.and_then(|h| h.labels.get(a.label))
            .map_or("", String::as_str),
    )
}

/// Answer `a`'s `HeadScore` body size.
fn head_len(model: &Model, probabilities: &[f64], a: &HeadAnswer) -> usize {
    let (head, label) = answer_names(model, a);
    let labelled: usize = labelled(model, probabilities, a)
        .map(|(l, p)| message_len(PROBABILITIES, label_probability_len(l, p)))
        .sum();
    let contributions: usize = a
        .contributions
        .iter()
        .map(|c| message_len(CONTRIBUTIONS, c.encoded_len()))
        .sum();
    string_len(HEAD, head)
        + string_len(LABEL, label)
        + labelled
        + contributions
        + double_len(THRESHOLD, a.threshold)
        + string_len(EXPLAINED_LABEL, explained_label(model, a))
}

impl ScoreReply {
    /// Passage `i`'s answers for heads the model has (as
    /// [`Scores::into_passages`] keeps them).
    fn answers(&self, i: usize) -> impl Iterator<Item = &HeadAnswer> {
        let heads = self.model().heads().len();
        self.scores
            .passage(i)
            .iter()
            .filter(move |a| a.head < heads)
    }

    /// Passage `i`'s `PassageScore` body size (its answers sized).
    fn passage_len(&self, i: usize) -> usize {
        self.answers(i)
            .map(|a| message_len(PASSAGE_HEADS, a.size))
            .sum()
    }

    fn put_head(&self, a: &HeadAnswer, buf: &mut impl BufMut) {
        let model = self.model();
        let (head, label) = answer_names(model, a);
        put_string(HEAD, head, buf);
        put_string(LABEL, label, buf);
        for (l, p) in labelled(model, &self.scores.probabilities, a) {
            put_message_header(PROBABILITIES, label_probability_len(l, p), buf);
            put_string(PROBABILITY_LABEL, l, buf);
            put_double(PROBABILITY, p, buf);
        }
        for c in &a.contributions {
            prost::encoding::message::encode(CONTRIBUTIONS, c, buf);
        }
        put_double(THRESHOLD, a.threshold, buf);
        put_string(EXPLAINED_LABEL, explained_label(model, a), buf);
    }
}

impl Message for ScoreReply {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for i in 0..self.scores.len() {
            put_message_header(RESULTS, self.passage_len(i), buf);
            for a in self.answers(i) {
                put_message_header(PASSAGE_HEADS, a.size, buf);
                self.put_head(a, buf);
            }
        }
        put_string(MODEL_ID, self.model().id(), buf);
        put_string(REQUEST_ID, &self.request_id, buf);
        put_string(MODEL, &self.loaded.name, buf);
        put_string(
            MODEL_VERSION,
            itoa::Buffer::new().format(self.loaded.version),
            buf,
        );
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.size
    }

    fn clear(&mut self) {
        self.scores = Scores::default();
        self.request_id.clear();
        self.measure();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A pushed answer: head, label, threshold, probabilities, explained
    /// label, contributions.
    type Answer = (
        usize,
        usize,
        f64,
        Vec<f64>,
        Option<usize>,
        Vec<proto::Contribution>,
    );

    fn loaded(version: u64) -> Arc<Loaded> {
        let model = Model::from_data(crate::model::tiny(), "0123abcd".into(), "t".as_ref());
        Arc::new(Loaded::for_test(model.unwrap(), "news", version))
    }

    fn contribution() -> impl Strategy<Value = proto::Contribution> {
        (
            "[a-z ]{0,12}",
            prop_oneof![Just(0.0), -3.0..3.0f64],
            prop::collection::vec((0u32..50, 0u32..50), 0..3),
        )
            .prop_map(|(feature, weight, spans)| proto::Contribution {
                feature,
                weight,
                spans: spans
                    .into_iter()
                    .map(|(start, end)| proto::Span { start, end })
                    .collect(),
            })
    }

    /// One answer: a head of the tiny model (or one it lacks), any label
    /// index, thresholds and probabilities with zeros among them.
    fn answer() -> impl Strategy<Value = Answer> {
        (
            0usize..3,
            0usize..4,
            prop_oneof![Just(0.0), Just(-0.0), 0.0..1.0f64],
            prop::collection::vec(prop_oneof![Just(0.0), 0.0..1.0f64], 0..4),
            prop::option::of(0usize..4),
            prop::collection::vec(contribution(), 0..3),
        )
    }

    fn scores(passages: &[Vec<Answer>]) -> Scores {
        let mut s = Scores::default();
        for p in passages {
            for (head, label, threshold, probs, explained, contributions) in p.iter().cloned() {
                s.push(head, label, threshold, &probs, explained, contributions);
            }
            s.end_passage();
        }
        s
    }

    proptest! {
        /// The reply's bytes are those prost writes for the response that
        /// `into_passages` makes, and its size is what it writes.
        #[test]
        fn encodes_as_the_response_does(
            passages in prop::collection::vec(prop::collection::vec(answer(), 0..4), 0..4),
            request_id in "[a-z0-9-]{0,10}",
            version in prop_oneof![Just(0u64), Just(1), Just(10), Just(u64::MAX), any::<u64>()],
        ) {
            let reply = ScoreReply::new(loaded(version), scores(&passages), request_id);
            let bytes = reply.encode_to_vec();
            prop_assert_eq!(bytes.len(), reply.encoded_len());
            let response = proto::ScoreResponse::from(reply);
            prop_assert_eq!(&bytes, &response.encode_to_vec());
            prop_assert_eq!(proto::ScoreResponse::decode(&bytes[..]).unwrap(), response);
        }

        /// Chunks appended one after another are the passages scored at once.
        #[test]
        fn appended_chunks_are_the_whole(
            passages in prop::collection::vec(prop::collection::vec(answer(), 0..3), 0..6),
            cut in 0usize..7,
        ) {
            let cut = cut.min(passages.len());
            let mut joined = scores(&passages[..cut]);
            joined.append(scores(&passages[cut..]));
            prop_assert_eq!(joined.len(), passages.len());
            prop_assert_eq!(joined, scores(&passages));
        }
    }

    #[test]
    fn a_reply_is_not_decoded_and_clears_to_its_names() {
        let answered = |version| {
            ScoreReply::new(
                loaded(version),
                scores(&[vec![(0, 2, 0.0, vec![0.1, 0.2, 0.7], None, vec![])]]),
                "r".into(),
            )
        };
        // Merging bytes into a reply skips every field.
        let mut r = answered(1);
        r.merge(&answered(3).encode_to_vec()[..]).unwrap();
        assert_eq!(r.encode_to_vec(), answered(1).encode_to_vec());
        r.clear();
        assert_eq!(
            (r.passages(), r.encoded_len()),
            (0, r.encode_to_vec().len())
        );
        let names = proto::ScoreResponse::decode(&r.encode_to_vec()[..]).unwrap();
        assert_eq!(
            (names.model.as_str(), names.model_version.as_str()),
            ("news", "1")
        );
    }
}
