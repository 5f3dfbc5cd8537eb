//! The checks every request passes before any scoring, against the
//! server's [`Limits`]: passages and bytes, heads (known, each at most
//! once), `explain`, and passages × heads × explain (`max-contributions`).
//! Each refusal is a gRPC status naming what was wrong and, for a limit,
//! its flag; a limit's refusal also carries which [`Limit`] it was (the
//! `slant-limit` metadata), so that the JSON API answers it with the HTTP
//! status of the same meaning without reading messages. Also: reading
//! `grpc-timeout`, and the statuses a caller should see for what tonic
//! reports about a request message.
//!
//! Public so that the request fuzz target runs the very checks the server
//! runs.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::config::Limits;
use crate::model::Model;
use crate::proto::{ArticleRequest, ScoreRequest};

/// What a checked request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Head indices, distinct, in the order asked for (all heads, in model
    /// order, when none were named).
    pub heads: Vec<usize>,
    /// Contributions per head.
    pub explain: usize,
    /// Contributions are raw features, not the passage's words.
    pub raw_features: bool,
    /// The request's decision threshold per model head (`None`: the
    /// model's own); only two-class heads have one. Empty when the request
    /// sets none.
    pub thresholds: Vec<Option<f64>>,
}

/// Checks a ScoreRequest: at least one passage, at most `max-batch`, heads,
/// `explain`, contributions and every passage's size.
pub fn check_score(model: &Model, limits: &Limits, req: &ScoreRequest) -> Result<Checked, Status> {
    if req.passages.is_empty() {
        return Err(Status::invalid_argument(
            "empty request: `passages` must hold at least one passage",
        ));
    }
    if req.passages.len() > limits.max_batch {
        return Err(Limit::MaxBatch.refuse(Status::resource_exhausted(format!(
            "{} passages is over the max-batch limit of {} passages per request",
            req.passages.len(),
            limits.max_batch
        ))));
    }
    let heads = resolve_heads(model, &req.heads)?;
    let explain = check_explain(req.explain, limits.max_explain)?;
    let thresholds = check_thresholds(model, &req.thresholds)?;
    check_contributions(
        req.passages.len(),
        heads.len(),
        explain,
        limits.max_contributions,
    )?;
    if let Some((i, p)) = req
        .passages
        .iter()
        .enumerate()
        .find(|(_, p)| p.len() > limits.max_passage_bytes)
    {
        return Err(
            Limit::MaxPassageBytes.refuse(Status::invalid_argument(format!(
                "passage {i} is {} bytes, over the max-passage-bytes limit of {} bytes",
                p.len(),
                limits.max_passage_bytes
            ))),
        );
    }
    Ok(Checked {
        heads,
        explain,
        raw_features: req.raw_features,
        thresholds,
    })
}

/// Checks an ArticleRequest's heads, `explain` and sizes. Its passages are
/// known once it is split: [`check_contributions`] then.
pub fn check_article(
    model: &Model,
    limits: &Limits,
    req: &ArticleRequest,
) -> Result<Checked, Status> {
    let heads = resolve_heads(model, &req.heads)?;
    let explain = check_explain(req.explain, limits.max_explain)?;
    let thresholds = check_thresholds(model, &req.thresholds)?;
    let size = req.text.len() + req.title.len();
    if size > limits.max_article_bytes {
        return Err(Limit::MaxArticleBytes.refuse(Status::invalid_argument(format!(
            "the article is {size} bytes (text and title), over the max-article-bytes limit of {} bytes",
            limits.max_article_bytes
        ))));
    }
    if req.title.len() > limits.max_passage_bytes {
        return Err(
            Limit::MaxPassageBytes.refuse(Status::invalid_argument(format!(
                "the title is {} bytes, over the max-passage-bytes limit of {} bytes",
                req.title.len(),
                limits.max_passage_bytes
            ))),
        );
    }
    Ok(Checked {
        heads,
        explain,
        raw_features: req.raw_features,
        thresholds,
    })
}

/// Head names to indices (all heads, in model order, when empty). An
/// unknown or repeated name is INVALID_ARGUMENT: each head is scored once.
fn resolve_heads(model: &Model, names: &[String]) -> Result<Vec<usize>, Status> {
    if names.is_empty() {
        return Ok(model.every_head());
    }
    let mut seen = vec![false; model.heads().len()];
    let mut heads = Vec::with_capacity(names.len().min(seen.len()));
    for name in names {
        // Names in messages are cut short: a name can be 4 MiB long.
        let shown: String = name.chars().take(64).collect();
        let Some(h) = model.head_index(name) else {
            let known: Vec<&str> = model.heads().iter().map(|h| h.name.as_str()).collect();
            return Err(Status::invalid_argument(format!(
                "unknown head {shown:?}: model {} has heads {}",
                model.id(),
                known.join(", ")
            )));
        };
        if std::mem::replace(&mut seen[h], true) {
            return Err(Status::invalid_argument(format!(
                "head {shown:?} is listed more than once in `heads`; list each head once"
            )));
        }
        heads.push(h);
    }
    Ok(heads)
}

/// Decision thresholds by head name → by model head. Each must name a
/// two-class head of the model and lie strictly between 0 and 1.
fn check_thresholds(
    model: &Model,
    thresholds: &std::collections::HashMap<String, f64>,
) -> Result<Vec<Option<f64>>, Status> {
    if thresholds.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = vec![None; model.heads().len()];
    for (name, &t) in thresholds {
        let shown: String = name.chars().take(64).collect();
        let Some(h) = model.head_index(name) else {
            return Err(Status::invalid_argument(format!(
                "thresholds: unknown head {shown:?}"
            )));
        };
        if model.heads()[h].labels.len() != 2 {
            return Err(Status::invalid_argument(format!(
                "thresholds: head {shown:?} has more than two labels and decides by argmax"
            )));
        }
        if !(t > 0.0 && t < 1.0) {
            return Err(Status::invalid_argument(format!(
                "thresholds: {t} for head {shown:?} is not between 0 and 1"
            )));
        }
        out[h] = Some(t);
    }
    Ok(out)
}

fn check_explain(explain: u32, max: u32) -> Result<usize, Status> {
    if explain > max {
        return Err(Limit::MaxExplain.refuse(Status::invalid_argument(format!(
            "explain = {explain} is over the max-explain limit of {max} contributions per head"
        ))));
    }
    Ok(explain as usize)
}

/// Refuses a request whose explanations would exceed `max-contributions`.
pub fn check_contributions(
    passages: usize,
    heads: usize,
    explain: usize,
    max: usize,
) -> Result<(), Status> {
    let asked = passages.saturating_mul(heads).saturating_mul(explain);
    if asked > max {
        return Err(
            Limit::MaxContributions.refuse(Status::resource_exhausted(format!(
                "{passages} passages × {heads} heads × explain {explain} = {asked} contributions is over the max-contributions limit of {max} per request"
            ))),
        );
    }
    Ok(())
}

/// The limits a request can pass, each named by its flag. A refusal by a
/// limit carries it in the status's `slant-limit` metadata (sent to gRPC
/// callers as a trailer too), so that each protocol answers with its own
/// status of the same meaning: over RESOURCE_EXHAUSTED, a *size* (the
/// request or its answer is too big: HTTP 413) is told apart from *shed
/// load* (the server is busy: HTTP 429, retry later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    MaxBatch,
    MaxPassageBytes,
    MaxArticleBytes,
    MaxMessageBytes,
    MaxExplain,
    MaxContributions,
    MaxResponseBytes,
    MaxBufferedBytes,
    MaxBufferedBytesPerConnection,
    MaxConcurrentRequests,
    MaxConcurrentPerKey,
}

/// The metadata key that names the limit behind a refusal.
pub const LIMIT_METADATA: &str = "slant-limit";

impl Limit {
    pub const ALL: [Limit; 11] = [
        Limit::MaxBatch,
        Limit::MaxPassageBytes,
        Limit::MaxArticleBytes,
        Limit::MaxMessageBytes,
        Limit::MaxExplain,
        Limit::MaxContributions,
        Limit::MaxResponseBytes,
        Limit::MaxBufferedBytes,
        Limit::MaxBufferedBytesPerConnection,
        Limit::MaxConcurrentRequests,
        Limit::MaxConcurrentPerKey,
    ];

    /// The flag that sets it, without the dashes in front.
    pub fn flag(self) -> &'static str {
        match self {
            Limit::MaxBatch => "max-batch",
            Limit::MaxPassageBytes => "max-passage-bytes",
            Limit::MaxArticleBytes => "max-article-bytes",
            Limit::MaxMessageBytes => "max-message-bytes",
            Limit::MaxExplain => "max-explain",
            Limit::MaxContributions => "max-contributions",
            Limit::MaxResponseBytes => "max-response-bytes",
            Limit::MaxBufferedBytes => "max-buffered-bytes",
            Limit::MaxBufferedBytesPerConnection => "max-buffered-bytes-per-connection",
            Limit::MaxConcurrentRequests => "max-concurrent-requests",
            Limit::MaxConcurrentPerKey => "max-concurrent-per-key",
        }
    }

    /// Whether it sheds load (the same request may pass later) rather
    /// than refusing a request or answer too big to ever pass.
    pub fn sheds_load(self) -> bool {
        matches!(
            self,
            Limit::MaxBufferedBytes
                | Limit::MaxBufferedBytesPerConnection
                | Limit::MaxConcurrentRequests
                | Limit::MaxConcurrentPerKey
        )
    }

    /// `status`, marked as this limit's refusal.
    pub fn refuse(self, mut status: Status) -> Status {
        status
            .metadata_mut()
            .insert(LIMIT_METADATA, MetadataValue::from_static(self.flag()));
        status
    }

    /// The limit that refused with `status`, if one did.
    pub fn of(status: &Status) -> Option<Limit> {
        let flag = status.metadata().get(LIMIT_METADATA)?.to_str().ok()?;
        Limit::ALL.into_iter().find(|l| l.flag() == flag)
    }
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H M S m u n).
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..split)?, value.get(split..)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The status a caller should see for what tonic reports about its
/// request message, when that differs from tonic's:
/// - a message over `max_decoding_message_size` is OUT_OF_RANGE in tonic;
///   gRPC clients expect RESOURCE_EXHAUSTED;
/// - a message that does not decode (bad protobuf, invalid UTF-8 in a
///   string) is INTERNAL in tonic-prost; it is the caller's fault:
///   INVALID_ARGUMENT.
pub(crate) fn caller_status(status: &Status, limit: usize) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::OutOfRange if message.contains("decoded message length too large") => {
            Some(Limit::MaxMessageBytes.refuse(Status::resource_exhausted(format!(
                "the request message is over the max-message-bytes limit of {limit} bytes ({message})"
            ))))
        }
        Code::Internal if message.starts_with(DECODE_ERROR) => Some(Status::invalid_argument(
            format!("the request message is not a valid protobuf message: {message}"),
        )),
        _ => None,
    }
}

/// How prost's `DecodeError` starts its message (tonic-prost passes it on
/// as INTERNAL); a unit test holds prost to it.
const DECODE_ERROR: &str = "failed to decode Protobuf message";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("1x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("1é"), None);
    }

    #[test]
    fn caller_faults_get_the_caller_codes() {
        let s = Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        );
        let mapped = caller_status(&s, 4_194_304).unwrap();
        assert_eq!(mapped.code(), Code::ResourceExhausted);
        assert!(mapped.message().contains("max-message-bytes"));
        assert!(caller_status(&Status::out_of_range("other"), 1).is_none());
        // prost's own message for bytes that are not a ScoreRequest.
        use prost::Message as _;
        let err = ScoreRequest::decode(&[0x0a, 0x03, b'a', 0xff, 0xfe][..]).unwrap_err();
        let mapped = caller_status(&Status::internal(err.to_string()), 1).unwrap();
        assert_eq!(mapped.code(), Code::InvalidArgument, "{mapped:?}");
        assert!(caller_status(&Status::internal("scoring failed"), 1).is_none());
    }

    /// Two heads, "a" (two classes) and "b" (three), over a tiny vocabulary.
    fn tiny_model() -> Model {
        use linfa::ParamGuard;
        let settings = crate::features::FeatureParams(Default::default())
            .check()
            .unwrap();
        let f =
            crate::features::Featurizer::fit(&settings, ["good news", "bad news"], || {}).unwrap();
        let n = f.len();
        let head = |name: &str, labels: &[&str], threshold| {
            let k = if labels.len() == 2 { 1 } else { labels.len() };
            crate::model::HeadData {
                name: name.into(),
                scope: crate::model::Scope::Passage,
                labels: labels.iter().map(|s| s.to_string()).collect(),
                threshold,
                weights: vec![0.0; n * k],
                intercept: vec![0.0; k],
                hyperparameters: Default::default(),
                dev_metrics: Default::default(),
                data: vec![],
                mixture: None,
            }
        };
        let data = crate::model::ModelData {
            slant_version: "t".into(),
            config_sha256: String::new(),
            vocabulary: f.vocabulary().clone(),
            heads: vec![
                head("a", &["no", "yes"], Some(0.5)),
                head("b", &["x", "y", "z"], None),
            ],
        };
        Model::from_data(data, "t".into(), std::path::Path::new("t")).unwrap()
    }

    #[test]
    fn heads_are_resolved_once_each() {
        let model = tiny_model();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(resolve_heads(&model, &[]).unwrap(), [0, 1]);
        assert_eq!(resolve_heads(&model, &names(&["b", "a"])).unwrap(), [1, 0]);
        let twice = resolve_heads(&model, &names(&["a", "b", "a"])).unwrap_err();
        assert_eq!(twice.code(), Code::InvalidArgument);
        assert!(twice.message().contains("more than once"), "{twice:?}");
        let long = "x".repeat(100_000);
        let unknown = resolve_heads(&model, &[long]).unwrap_err();
        assert!(unknown.message().len() < 300, "the name is shortened");
    }

    #[test]
    fn requests_are_checked_against_every_limit() {
        let model = tiny_model();
        let limits = Limits {
            max_batch: 4,
            max_passage_bytes: 10,
            max_explain: 8,
            max_contributions: 16,
            ..Limits::default()
        };
        let req = |passages: &[&str], heads: &[&str], explain| ScoreRequest {
            passages: passages.iter().map(|s| s.to_string()).collect(),
            heads: heads.iter().map(|s| s.to_string()).collect(),
            explain,
            ..Default::default()
        };
        let code = |r: ScoreRequest| check_score(&model, &limits, &r).unwrap_err().code();
        assert_eq!(
            check_score(&model, &limits, &req(&["good"], &["b"], 8)).unwrap(),
            Checked {
                heads: vec![1],
                explain: 8,
                raw_features: false,
                thresholds: vec![],
            }
        );
        let with = |pairs: &[(&str, f64)]| ScoreRequest {
            thresholds: pairs.iter().map(|(h, t)| (h.to_string(), *t)).collect(),
            ..req(&["good"], &[], 0)
        };
        assert_eq!(
            check_score(&model, &limits, &with(&[("a", 0.7)]))
                .unwrap()
                .thresholds,
            [Some(0.7), None]
        );
        for bad in [
            with(&[("b", 0.5)]),
            with(&[("c", 0.5)]),
            with(&[("a", 0.0)]),
            with(&[("a", 1.0)]),
            with(&[("a", f64::NAN)]),
        ] {
            assert_eq!(code(bad), Code::InvalidArgument);
        }
        assert_eq!(code(req(&[], &[], 0)), Code::InvalidArgument);
        assert_eq!(code(req(&["x"; 5], &[], 0)), Code::ResourceExhausted);
        assert_eq!(code(req(&["x"], &["c"], 0)), Code::InvalidArgument);
        assert_eq!(code(req(&["x"], &["a", "a"], 0)), Code::InvalidArgument);
        assert_eq!(code(req(&["x"], &[], 9)), Code::InvalidArgument);
        // 2 passages × 2 heads × 5 = 20 > 16.
        assert_eq!(code(req(&["x", "y"], &[], 5)), Code::ResourceExhausted);
        assert_eq!(code(req(&["much too long"], &[], 0)), Code::InvalidArgument);
        let e = check_contributions(1024, 4, 64, 16_384).unwrap_err();
        assert!(e.message().contains("max-contributions"), "{e:?}");
        // Each limit's refusal says which limit it was.
        let limit = |r: ScoreRequest| Limit::of(&check_score(&model, &limits, &r).unwrap_err());
        assert_eq!(limit(req(&["x"; 5], &[], 0)), Some(Limit::MaxBatch));
        assert_eq!(
            limit(req(&["x", "y"], &[], 5)),
            Some(Limit::MaxContributions)
        );
        assert_eq!(limit(req(&["x"], &[], 9)), Some(Limit::MaxExplain));
        assert_eq!(
            limit(req(&["much too long"], &[], 0)),
            Some(Limit::MaxPassageBytes)
        );
        assert_eq!(limit(req(&["x"], &["c"], 0)), None);
        assert_eq!(Limit::of(&e), Some(Limit::MaxContributions));
        for l in Limit::ALL {
            assert_eq!(Limit::of(&l.refuse(Status::internal("x"))), Some(l));
        }
        assert!(check_contributions(usize::MAX, usize::MAX, 64, 16_384).is_err());
        assert!(check_contributions(1024, 4, 4, 16_384).is_ok());
    }

    proptest::proptest! {
        /// Any list of names: refused with INVALID_ARGUMENT when one is
        /// unknown or repeated, else the named heads, in order, once each.
        #[test]
        fn any_head_list_is_refused_or_resolved_once_each(
            names in proptest::collection::vec(
                proptest::sample::select(vec!["a", "b", "c", "", "A"]),
                0..6,
            ),
        ) {
            let model = tiny_model();
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let mut seen = std::collections::BTreeSet::new();
            let bad = names
                .iter()
                .any(|n| model.head_index(n).is_none() || !seen.insert(n.clone()));
            match resolve_heads(&model, &names) {
                Ok(heads) => {
                    proptest::prop_assert!(!bad);
                    let expected: Vec<usize> = if names.is_empty() {
                        vec![0, 1]
                    } else {
                        names.iter().filter_map(|n| model.head_index(n)).collect()
                    };
                    proptest::prop_assert_eq!(heads, expected);
                }
                Err(status) => {
                    proptest::prop_assert!(bad);
                    proptest::prop_assert_eq!(status.code(), Code::InvalidArgument);
                }
            }
        }
    }
}
