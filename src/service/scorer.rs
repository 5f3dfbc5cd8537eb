//! The `slant.v1.Scorer` handlers: request checks against the limits,
//! scoring (inline for small requests, in chunks on a bounded set of
//! blocking threads for big ones) and conversion to the wire types.
//!
//! Each worker thread keeps one [`Workspace`] in a thread-local, so the
//! hot path takes no lock and allocates only the response. A call scores
//! with the model it cloned at its start. A big request is scored chunk by
//! chunk; between chunks the call's deadline is checked, and a call whose
//! client went away (its future dropped by the transport) schedules no
//! further chunk.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};

use super::metrics::Method;
use super::state::{rfc3339, Loaded, Shared};
use crate::model::Workspace;
use crate::model::{Head, HeadScore, Model};
use crate::proto::{self, scorer_server::Scorer};
use crate::text::split::split_article;

/// Requests with at most this many bytes of text are scored on the async
/// worker thread: a few microseconds per passage, cheaper than a hop to
/// another thread.
const INLINE_BYTES: usize = 32 * 1024;
/// Bigger requests are scored in chunks of about this many bytes...
const CHUNK_BYTES: usize = 64 * 1024;
/// ...and at most this many passages.
const CHUNK_PASSAGES: usize = 256;

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

/// Runs `f` with this thread's workspace (a fresh one if it is in use).
fn with_workspace<R>(f: impl FnOnce(&mut Workspace) -> R) -> R {
    let taken = WORKSPACE
        .try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut ws| std::mem::take(&mut *ws))
        })
        .ok()
        .flatten();
    let mut ws = taken.unwrap_or_default();
    let out = f(&mut ws);
    let _ = WORKSPACE.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = ws;
        }
    });
    out
}

/// The texts of one request.
#[derive(Debug)]
enum Texts {
    List(Vec<String>),
    /// Passages as byte ranges into one article.
    Slices {
        text: String,
        ranges: Vec<Range<usize>>,
    },
}

impl Texts {
    fn len(&self) -> usize {
        match self {
            Self::List(v) => v.len(),
            Self::Slices { ranges, .. } => ranges.len(),
        }
    }

    fn get(&self, i: usize) -> &str {
        match self {
            Self::List(v) => v.get(i).map_or("", String::as_str),
            Self::Slices { text, ranges } => ranges
                .get(i)
                .and_then(|r| text.get(r.clone()))
                .unwrap_or(""),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::List(v) => v.iter().map(String::len).sum(),
            Self::Slices { ranges, .. } => ranges.iter().map(|r| r.len()).sum(),
        }
    }
}

/// What to compute for each passage of a call.
#[derive(Debug, Clone)]
struct Job {
    loaded: Arc<Loaded>,
    /// Head indices, in the order the caller asked for.
    heads: Arc<[usize]>,
    explain: usize,
}

impl Job {
    fn score(&self, passage: &str, ws: &mut Workspace) -> proto::PassageScore {
        let model = &self.loaded.model;
        if self.explain == 0 {
            // The common case: read the workspace directly, no intermediate
            // per-head vectors.
            model.classify(passage, ws);
            let heads = self
                .heads
                .iter()
                .filter_map(|&h| {
                    let head = model.heads().get(h)?;
                    let probs = ws
                        .probabilities
                        .get(head.offset..head.offset + head.labels.len())?;
                    let label = *ws.labels.get(h)?;
                    Some(head_proto(head, label, probs, Vec::new()))
                })
                .collect();
            return proto::PassageScore { heads };
        }
        let scores = model.score(passage, &self.heads, self.explain, ws);
        proto::PassageScore {
            heads: scores
                .into_iter()
                .filter_map(|s| head_score(model, s))
                .collect(),
        }
    }
}

/// A head's answer: its name, the decided label and every label's
/// probability, in the head's label order.
fn head_proto(
    head: &Head,
    label: usize,
    probabilities: &[f64],
    contributions: Vec<proto::Contribution>,
) -> proto::HeadScore {
    proto::HeadScore {
        head: head.name.clone(),
        label: head.labels.get(label).cloned().unwrap_or_default(),
        probabilities: head
            .labels
            .iter()
            .zip(probabilities)
            .map(|(label, &probability)| proto::LabelProbability {
                label: label.clone(),
                probability,
            })
            .collect(),
        contributions,
    }
}

fn head_score(model: &Model, s: HeadScore) -> Option<proto::HeadScore> {
    let head = model.heads().get(s.head)?;
    let terms = &model.featurizer().vocabulary().terms;
    let contributions = s
        .contributions
        .into_iter()
        .map(|c| proto::Contribution {
            feature: terms.get(c.feature as usize).cloned().unwrap_or_default(),
            weight: c.weight,
            spans: c
                .spans
                .into_iter()
                .map(|(start, end)| proto::Span { start, end })
                .collect(),
        })
        .collect();
    Some(head_proto(head, s.label, &s.probabilities, contributions))
}

/// Scores every text, inline when small, else chunk by chunk on blocking
/// threads (at most one per core across all calls).
async fn score_texts(
    shared: &Shared,
    job: &Job,
    texts: Arc<Texts>,
    deadline: Option<Instant>,
) -> Result<Vec<proto::PassageScore>, Status> {
    let n = texts.len();
    if texts.bytes() <= INLINE_BYTES {
        let out: Vec<_> =
            with_workspace(|ws| (0..n).map(|i| job.score(texts.get(i), ws)).collect());
        shared.metrics.passages.fetch_add(n as u64, Relaxed);
        return Ok(out);
    }
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Status::deadline_exceeded(format!(
                "the deadline passed after {i} of {n} passages were scored"
            )));
        }
        let (mut j, mut bytes) = (i, 0);
        while j < n
            && j - i < CHUNK_PASSAGES
            && (j == i || bytes + texts.get(j).len() <= CHUNK_BYTES)
        {
            bytes += texts.get(j).len();
            j += 1;
        }
        let permit = shared
            .blocking
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is shutting down"))?;
        let (texts, job) = (texts.clone(), job.clone());
        let chunk = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            with_workspace(|ws| {
                (i..j)
                    .map(|k| job.score(texts.get(k), ws))
                    .collect::<Vec<_>>()
            })
        })
        .await
        .map_err(|e| Status::internal(format!("scoring failed: {e}")))?;
        shared.metrics.passages.fetch_add((j - i) as u64, Relaxed);
        out.extend(chunk);
        i = j;
    }
    Ok(out)
}

/// Head names to indices (all heads, in model order, when empty).
fn resolve_heads(model: &Model, names: &[String]) -> Result<Arc<[usize]>, Status> {
    if names.is_empty() {
        return Ok((0..model.heads().len()).collect());
    }
    names
        .iter()
        .map(|name| {
            model.head_index(name).ok_or_else(|| {
                let known: Vec<&str> = model.heads().iter().map(|h| h.name.as_str()).collect();
                Status::invalid_argument(format!(
                    "unknown head {name:?}: model {} has heads {}",
                    model.id(),
                    known.join(", ")
                ))
            })
        })
        .collect()
}

fn check_explain(explain: u32, max: u32) -> Result<usize, Status> {
    if explain > max {
        return Err(Status::invalid_argument(format!(
            "explain = {explain} is over the max-explain limit of {max} contributions per head"
        )));
    }
    Ok(explain as usize)
}

/// The call's deadline from its `grpc-timeout` header.
fn deadline_of(metadata: &MetadataMap) -> Option<Instant> {
    let timeout = metadata.get("grpc-timeout")?.to_str().ok()?;
    Instant::now().checked_add(parse_grpc_timeout(timeout)?)
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

/// tonic reports a request message over `max_decoding_message_size` as
/// OUT_OF_RANGE; gRPC clients expect RESOURCE_EXHAUSTED.
pub(crate) fn oversize_status(status: &Status, limit: usize) -> Option<Status> {
    (status.code() == Code::OutOfRange
        && status
            .message()
            .contains("decoded message length too large"))
    .then(|| {
        Status::resource_exhausted(format!(
            "the request message is over the max-message-bytes limit of {limit} bytes ({})",
            status.message()
        ))
    })
}

/// Checks and scores one ScoreRequest with `loaded`.
async fn score_request(
    shared: &Shared,
    loaded: Arc<Loaded>,
    req: proto::ScoreRequest,
    deadline: Option<Instant>,
) -> Result<proto::ScoreResponse, Status> {
    let limits = &shared.limits;
    if req.passages.is_empty() {
        return Err(Status::invalid_argument(
            "empty request: `passages` must hold at least one passage",
        ));
    }
    if req.passages.len() > limits.max_batch {
        return Err(Status::resource_exhausted(format!(
            "{} passages is over the max-batch limit of {} passages per request",
            req.passages.len(),
            limits.max_batch
        )));
    }
    let heads = resolve_heads(&loaded.model, &req.heads)?;
    let explain = check_explain(req.explain, limits.max_explain)?;
    if let Some((i, p)) = req
        .passages
        .iter()
        .enumerate()
        .find(|(_, p)| p.len() > limits.max_passage_bytes)
    {
        return Err(Status::invalid_argument(format!(
            "passage {i} is {} bytes, over the max-passage-bytes limit of {} bytes",
            p.len(),
            limits.max_passage_bytes
        )));
    }
    let model_id = loaded.model.id().to_string();
    let job = Job {
        loaded,
        heads,
        explain,
    };
    let results = score_texts(shared, &job, Arc::new(Texts::List(req.passages)), deadline).await?;
    Ok(proto::ScoreResponse {
        results,
        model_id,
        request_id: req.request_id,
    })
}

/// The trimmed byte range of `s`, if it has any non-whitespace.
fn trimmed(s: &str) -> Option<Range<usize>> {
    let start = s.len() - s.trim_start().len();
    let end = s.trim_end().len();
    (start < end).then_some(start..end)
}

fn offset(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Per-head summary: length-weighted mean probabilities and the decision
/// on them (see the proto).
fn summarize(
    model: &Model,
    heads: &[usize],
    passages: &[proto::ScoredPassage],
) -> Vec<proto::HeadScore> {
    heads
        .iter()
        .enumerate()
        .filter_map(|(k, &h)| {
            let head = model.heads().get(h)?;
            let mut mean = vec![0.0f64; head.labels.len()];
            let mut total = 0.0f64;
            for p in passages {
                let Some(scored) = p.score.as_ref().and_then(|s| s.heads.get(k)) else {
                    continue;
                };
                let w = f64::from(p.end.saturating_sub(p.start));
                for (m, lp) in mean.iter_mut().zip(&scored.probabilities) {
                    *m += w * lp.probability;
                }
                total += w;
            }
            if total > 0.0 {
                mean.iter_mut().for_each(|m| *m /= total);
            }
            let label = head.decide(&mean);
            Some(head_proto(head, label, &mean, Vec::new()))
        })
        .collect()
}

/// The Scorer service.
#[derive(Debug, Clone)]
pub(crate) struct ScorerService {
    pub(crate) shared: Arc<Shared>,
}

#[tonic::async_trait]
impl Scorer for ScorerService {
    async fn score(
        &self,
        request: Request<proto::ScoreRequest>,
    ) -> Result<Response<proto::ScoreResponse>, Status> {
        let deadline = deadline_of(request.metadata());
        let loaded = self.shared.current();
        let response = score_request(&self.shared, loaded, request.into_inner(), deadline).await?;
        Ok(Response::new(response))
    }

    type ScoreStreamStream = ReceiverStream<Result<proto::ScoreResponse, Status>>;

    async fn score_stream(
        &self,
        request: Request<Streaming<proto::ScoreRequest>>,
    ) -> Result<Response<Self::ScoreStreamStream>, Status> {
        let deadline = deadline_of(request.metadata());
        let loaded = self.shared.current();
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let expired = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(expired);
            let deadline_status = || Status::deadline_exceeded("the stream's deadline passed");
            let mut outcome: Result<(), Status> = Ok(());
            loop {
                let next = tokio::select! {
                    biased;
                    _ = tx.closed() => { outcome = Err(Status::cancelled("the client went away")); break }
                    _ = &mut expired => { outcome = Err(deadline_status()); break }
                    next = inbound.message() => next,
                };
                let req = match next {
                    Ok(Some(req)) => req,
                    Ok(None) => break,
                    Err(status) => {
                        outcome = Err(oversize_status(&status, shared.limits.max_message_bytes)
                            .unwrap_or(status));
                        break;
                    }
                };
                let scored = tokio::select! {
                    biased;
                    _ = tx.closed() => { outcome = Err(Status::cancelled("the client went away")); break }
                    _ = &mut expired => { outcome = Err(deadline_status()); break }
                    scored = score_request(&shared, loaded.clone(), req, deadline) => scored,
                };
                match scored {
                    Ok(response) => {
                        if tx.send(Ok(response)).await.is_err() {
                            outcome = Err(Status::cancelled("the client went away"));
                            break;
                        }
                    }
                    Err(status) => {
                        outcome = Err(status);
                        break;
                    }
                }
            }
            let code = match outcome {
                Ok(()) => Code::Ok,
                Err(status) => {
                    let code = status.code();
                    let _ = tx.send(Err(status)).await;
                    code
                }
            };
            shared
                .metrics
                .record(Method::ScoreStream, code, start.elapsed());
            shared.metrics.in_flight.fetch_sub(1, Relaxed);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn score_article(
        &self,
        request: Request<proto::ArticleRequest>,
    ) -> Result<Response<proto::ArticleResponse>, Status> {
        let deadline = deadline_of(request.metadata());
        let loaded = self.shared.current();
        let req = request.into_inner();
        let limits = &self.shared.limits;
        let heads = resolve_heads(&loaded.model, &req.heads)?;
        let explain = check_explain(req.explain, limits.max_explain)?;
        let size = req.text.len() + req.title.len();
        if size > limits.max_article_bytes {
            return Err(Status::invalid_argument(format!(
                "the article is {size} bytes (text and title), over the max-article-bytes limit of {} bytes",
                limits.max_article_bytes
            )));
        }
        if req.title.len() > limits.max_passage_bytes {
            return Err(Status::invalid_argument(format!(
                "the title is {} bytes, over the max-passage-bytes limit of {} bytes",
                req.title.len(),
                limits.max_passage_bytes
            )));
        }
        let max = limits.max_passage_bytes;
        let text = req.text;
        let (text, ranges) = if text.len() <= INLINE_BYTES {
            let ranges = split_article(&text, max);
            (text, ranges)
        } else {
            tokio::task::spawn_blocking(move || {
                let ranges = split_article(&text, max);
                (text, ranges)
            })
            .await
            .map_err(|e| Status::internal(format!("splitting failed: {e}")))?
        };
        let title = trimmed(&req.title);
        if ranges.is_empty() && title.is_none() {
            return Err(Status::invalid_argument(
                "empty request: the article's text and title hold nothing but whitespace",
            ));
        }
        let model_id = loaded.model.id().to_string();
        let job = Job {
            loaded,
            heads,
            explain,
        };
        let mut passages = Vec::with_capacity(ranges.len() + 1);
        if let Some(r) = title {
            let score = with_workspace(|ws| job.score(&req.title[r.clone()], ws));
            self.shared.metrics.passages.fetch_add(1, Relaxed);
            passages.push(proto::ScoredPassage {
                start: offset(r.start),
                end: offset(r.end),
                score: Some(score),
                in_title: true,
            });
        }
        let texts = Arc::new(Texts::Slices { text, ranges });
        let scores = score_texts(&self.shared, &job, texts.clone(), deadline).await?;
        if let Texts::Slices { ranges, .. } = &*texts {
            passages.extend(
                ranges
                    .iter()
                    .zip(scores)
                    .map(|(r, score)| proto::ScoredPassage {
                        start: offset(r.start),
                        end: offset(r.end),
                        score: Some(score),
                        in_title: false,
                    }),
            );
        }
        let summary = summarize(&job.loaded.model, &job.heads, &passages);
        Ok(Response::new(proto::ArticleResponse {
            passages,
            summary,
            model_id,
            request_id: req.request_id,
        }))
    }

    async fn get_model_info(
        &self,
        _request: Request<proto::ModelInfoRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        let loaded = self.shared.current();
        let model = &loaded.model;
        let heads = model
            .heads()
            .iter()
            .map(|h| {
                let stored = model.data().heads.iter().find(|d| d.name == h.name);
                proto::HeadInfo {
                    name: h.name.clone(),
                    labels: h.labels.clone(),
                    positive_label: if h.labels.len() == 2 {
                        h.labels[1].clone()
                    } else {
                        String::new()
                    },
                    threshold: h.threshold.unwrap_or(0.0),
                    dev_metrics: stored
                        .map(|d| d.dev_metrics.iter().map(|(k, v)| (k.clone(), *v)).collect())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Response::new(proto::ModelInfo {
            model_id: model.id().to_string(),
            heads,
            slant_version: model.data().slant_version.clone(),
            loaded_at: rfc3339(loaded.loaded_at),
            path: loaded.path.display().to_string(),
            num_features: model.featurizer().len() as u64,
        }))
    }
}

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
    fn oversize_is_resource_exhausted() {
        let s = Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        );
        let mapped = oversize_status(&s, 4_194_304).unwrap();
        assert_eq!(mapped.code(), Code::ResourceExhausted);
        assert!(mapped.message().contains("max-message-bytes"));
        assert!(oversize_status(&Status::out_of_range("other"), 1).is_none());
    }

    #[test]
    fn trimmed_ranges() {
        assert_eq!(trimmed("  Hi there \n"), Some(2..10));
        assert_eq!(trimmed(" \t"), None);
        assert_eq!(trimmed(""), None);
    }

    #[test]
    fn texts_and_workspace() {
        let t = Texts::Slices {
            text: "ab cd".into(),
            ranges: vec![0..2, 3..5, 9..12],
        };
        assert_eq!(
            (t.get(0), t.get(1), t.get(2), t.get(7)),
            ("ab", "cd", "", "")
        );
        assert_eq!(t.len(), 3);
        // Nested use falls back to a fresh workspace instead of panicking.
        let n = with_workspace(|a| {
            a.labels.push(1);
            with_workspace(|b| b.labels.len())
        });
        assert_eq!(n, 0);
    }
}
