//! The `slant.v1.Scorer` handlers: request checks against the limits,
//! scoring (inline for small requests, in chunks on a bounded set of
//! blocking threads for big ones) into [`Scores`], answered as a
//! [`ScoreReply`] (Score) or converted to the wire types (ScoreArticle).
//!
//! Each worker thread keeps one [`Workspace`] in a thread-local, so the
//! hot path takes no lock and allocates only the response. A call scores
//! with the model it cloned at its start.
//!
//! What a request may cost is checked before any scoring: passages,
//! bytes, heads (each at most once) and passages × heads × explain
//! (`max-contributions`). Work is measured in [`work`] units that follow
//! the cost of scoring (explanations cost far more than plain scores); a
//! request of more than [`INLINE_WORK`] units is scored chunk by chunk of
//! about a millisecond on a bounded set of blocking threads. At the
//! call's deadline it answers DEADLINE_EXCEEDED at once, and a call whose
//! client went away (its future dropped by the transport) schedules no
//! further chunk. The encoded response must fit
//! `max-response-bytes` and the server-wide `max-buffered-bytes` budget,
//! which it holds until the transport has sent it.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};

use super::access::CallFacts;
use super::budget::{self, Budget, ConnectionBudget, Held, Refused};
use super::callers::Caller;
use super::catalog::Loaded;
use super::metrics::Method;
use super::observe::{starved_status, Deadline, Starved};
use super::reply::server::scorer_server::Scorer;
use super::reply::{names, ScoreReply, Scores};
use super::request::{
    caller_status, check_article, check_contributions, check_score, parse_grpc_timeout, Checked,
    Limit,
};
use super::state::{rfc3339, Shared};
use crate::model::Workspace;
use crate::model::{Explain, Head, HeadScore};
use crate::proto;
use crate::text::split::split_article;

/// Requests of at most this much [`work`] are scored on the async worker
/// thread: a few microseconds per passage, cheaper than a hop to another
/// thread. (Also the article size split inline.)
const INLINE_WORK: usize = 32 * 1024;
/// Bigger requests are scored in chunks: the first of this much work
/// (about 1–2 ms on one core, measured with the default model), the next
/// sized from how long the last took, to take about [`CHUNK_TIME`]...
const CHUNK_WORK: usize = 64 * 1024;
const CHUNK_TIME: Duration = Duration::from_millis(1);
/// ...and at most this many passages.
const CHUNK_PASSAGES: usize = 256;
/// Work units per passage beyond its bytes (tokenizer and per-head set-up).
const PASSAGE_WORK: usize = 64;
/// With explanations, a passage costs this many times more, plus one per
/// head × contribution asked (measured: a 150-byte news sentence scores in
/// ~1.5 µs, and takes ~200 µs with one contribution per head of four and
/// ~1 ms with 64).
const EXPLAIN_FACTOR: usize = 20;

/// The work units of scoring a passage of `bytes` (see [`CHUNK_WORK`]).
fn work(bytes: usize, heads: usize, explain: usize) -> usize {
    let factor = if explain == 0 {
        1
    } else {
        EXPLAIN_FACTOR.saturating_add(heads.saturating_mul(explain))
    };
    bytes.saturating_add(PASSAGE_WORK).saturating_mul(factor)
}

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
}

/// What to compute for each passage of a call.
#[derive(Debug, Clone)]
struct Job {
    loaded: Arc<Loaded>,
    /// Head indices, in the order the caller asked for (empty: none, as
    /// for an article's body when only headline heads were asked for).
    heads: Arc<[usize]>,
    explain: usize,
    /// Contributions are raw features, not the passage's words.
    raw_features: bool,
    /// Spans listed per contribution (the first ones).
    max_spans: usize,
    /// The request's decision thresholds, by model head (`None`: the
    /// model's own).
    thresholds: Arc<[Option<f64>]>,
}

impl Job {
    fn work(&self, bytes: usize) -> usize {
        work(bytes, self.heads.len(), self.explain)
    }

    /// Scores `passage` into `out`, as one passage.
    fn score(&self, passage: &str, ws: &mut Workspace, out: &mut Scores) {
        let model = &self.loaded.model;
        if self.heads.is_empty() {
            // Nothing to compute: not even the passage's features.
        } else if self.explain == 0 {
            // The common case: read the workspace directly, no intermediate
            // per-head vectors.
            model.classify(passage, ws);
            for &h in self.heads.iter() {
                let Some(head) = model.heads().get(h) else {
                    continue;
                };
                let (Some(probs), Some(&label)) = (
                    ws.probabilities
                        .get(head.offset..head.offset + head.labels.len()),
                    ws.labels.get(h),
                ) else {
                    continue;
                };
                let (label, threshold) = self.decide(h, head, label, probs);
                out.push(h, label, threshold, probs, None, Vec::new());
            }
        } else {
            let explain = if self.raw_features {
                Explain::Features(self.explain)
            } else {
                Explain::Words(self.explain)
            };
            for s in model.score(passage, &self.heads, explain, ws) {
                self.push_explained(passage, s, out);
            }
        }
        out.end_passage();
    }

    /// Room for `passages` of this job's answers.
    fn scores(&self, passages: usize) -> Scores {
        let model = &self.loaded.model;
        let labels = self
            .heads
            .iter()
            .filter_map(|&h| model.heads().get(h))
            .map(|head| head.labels.len())
            .sum();
        Scores::with_capacity(passages, self.heads.len(), labels)
    }

    /// This job for an article's body: without the heads whose scope is
    /// headlines (they read the title only).
    fn for_body(&self) -> Self {
        Self {
            heads: proto::body_heads(&self.loaded.model, &self.heads).into(),
            ..self.clone()
        }
    }

    /// The label and the threshold that decided it: the request's
    /// threshold for head `h` if it set one, else the model's decision.
    fn decide(&self, h: usize, head: &Head, label: usize, probs: &[f64]) -> (usize, f64) {
        match (self.thresholds.get(h).copied().flatten(), probs) {
            (Some(t), [_, positive]) => (usize::from(*positive >= t), t),
            _ => (label, head.threshold.unwrap_or(0.0)),
        }
    }

    fn push_explained(&self, passage: &str, s: HeadScore, out: &mut Scores) {
        let model = &self.loaded.model;
        let Some(head) = model.heads().get(s.head) else {
            return;
        };
        let (label, threshold) = self.decide(s.head, head, s.label, &s.probabilities);
        // Raw features of a two-class head are signed towards the decided
        // label (the positive label's weight, negated for the other), so a
        // request threshold that flips the label flips their signs and
        // the label they explain; the order (by size) stays. Words are
        // signed towards the positive label whatever is decided.
        let (flip, explained) = if self.raw_features && label != s.label {
            (-1.0, label)
        } else {
            (1.0, s.explained)
        };
        let contributions = s
            .contributions
            .iter()
            .map(|c| proto::Contribution {
                weight: flip * c.weight,
                ..proto::contribution(model, passage, c, self.max_spans)
            })
            .collect();
        out.push(
            s.head,
            label,
            threshold,
            &s.probabilities,
            Some(explained),
            contributions,
        );
    }
}

/// Scores every text, inline when small, else chunk by chunk on blocking
/// threads (at most one per core across all calls).
async fn score_texts(
    shared: &Shared,
    job: &Job,
    texts: Arc<Texts>,
    deadline: Option<Instant>,
) -> Result<Scores, Status> {
    let n = texts.len();
    let total = (0..n).fold(0usize, |sum, i| {
        sum.saturating_add(job.work(texts.get(i).len()))
    });
    if total <= INLINE_WORK {
        let mut out = job.scores(n);
        with_workspace(|ws| (0..n).for_each(|i| job.score(texts.get(i), ws, &mut out)));
        shared.metrics.passages_scored(n);
        return Ok(out);
    }
    let mut out = job.scores(n);
    let expired = |i: usize| {
        Status::deadline_exceeded(format!(
            "the deadline passed after {i} of {n} passages were scored"
        ))
    };
    let until_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until_deadline);
    let mut chunk_work = CHUNK_WORK;
    let mut i = 0;
    while i < n {
        let (mut j, mut units) = (i, 0usize);
        while j < n && j - i < CHUNK_PASSAGES {
            let w = job.work(texts.get(j).len());
            if j > i && units.saturating_add(w) > chunk_work {
                break;
            }
            units = units.saturating_add(w);
            j += 1;
        }
        let permit = tokio::select! {
            biased;
            permit = shared.blocking.clone().acquire_owned() => permit
                .map_err(|_| Status::unavailable("the server is shutting down"))?,
            _ = &mut until_deadline => return Err(expired(i)),
        };
        let (texts, job) = (texts.clone(), job.clone());
        let started = Instant::now();
        let chunk = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut chunk = job.scores(j - i);
            with_workspace(|ws| (i..j).for_each(|k| job.score(texts.get(k), ws, &mut chunk)));
            chunk
        });
        // At the deadline the call answers at once; a chunk under way
        // finishes on its own (a millisecond or two) and is dropped.
        let chunk = tokio::select! {
            biased;
            chunk = chunk => chunk.map_err(|e| Status::internal(format!("scoring failed: {e}")))?,
            _ = &mut until_deadline => return Err(expired(i)),
        };
        // Aim the next chunk at CHUNK_TIME whatever this machine and build
        // do per work unit.
        let took = started.elapsed().as_secs_f64().max(1e-6);
        chunk_work = ((units as f64 * CHUNK_TIME.as_secs_f64() / took) as usize)
            .clamp(CHUNK_WORK / 64, CHUNK_WORK * 16);
        shared.metrics.passages_scored(j - i);
        out.append(chunk);
        i = j;
    }
    Ok(out)
}

/// Checks an encoded response against `max-response-bytes` and reserves
/// its size in the buffered-response budget, which the response holds
/// until it has been sent (the transport's body keeps it).
/// `facts` go to the access log (worked out only when there is one).
fn answer<T: prost::Message>(
    shared: &Shared,
    connection: Option<&Arc<Budget>>,
    message: T,
    facts: impl FnOnce(&T) -> CallFacts,
) -> Result<Response<T>, Status> {
    let held = reserve(shared, connection, &message)?;
    let facts = shared.access.enabled().then(|| facts(&message));
    let mut response = Response::new(message);
    response.extensions_mut().insert(held);
    if let Some(facts) = facts {
        response.extensions_mut().insert(facts);
    }
    Ok(response)
}

/// Responses a ScoreStream call may have queued for its client.
const STREAM_QUEUE: usize = 2;

/// [`answer`]'s checks and reservation, for one message.
fn reserve(
    shared: &Shared,
    connection: Option<&Arc<Budget>>,
    message: &impl prost::Message,
) -> Result<Held, Status> {
    let bytes = message.encoded_len();
    let limits = &shared.limits;
    if bytes > limits.max_response_bytes {
        return Err(Limit::MaxResponseBytes.refuse(Status::resource_exhausted(format!(
            "the response would be {bytes} bytes, over the max-response-bytes limit of {} bytes; ask for fewer passages, heads or contributions",
            limits.max_response_bytes
        ))));
    }
    budget::reserve(&shared.budget, connection, bytes).map_err(|refused| match refused {
        Refused::Server => Limit::MaxBufferedBytes.refuse(Status::resource_exhausted(format!(
            "the server holds {} bytes of responses its clients have not read yet; a {bytes}-byte response would pass the max-buffered-bytes limit of {} bytes; retry later",
            shared.budget.used(),
            shared.budget.max()
        ))),
        Refused::Connection => Limit::MaxBufferedBytesPerConnection.refuse(Status::resource_exhausted(format!(
            "this connection holds {} bytes of responses it has not read yet; a {bytes}-byte response would pass the max-buffered-bytes-per-connection limit of {} bytes; read the responses first",
            connection.map_or(0, |c| c.used()),
            connection.map_or(0, |c| c.max())
        ))),
    })
}

/// The connection's response budget (from the transport).
fn connection_budget<T>(request: &Request<T>) -> Option<Arc<Budget>> {
    request
        .extensions()
        .get::<ConnectionBudget>()
        .map(|c| c.0.clone())
}

/// ScoreStream's responses, each with its budget reservation. tonic takes
/// the next message only once the transport has room for it, so a
/// message's reservation is given back when the next one is taken (or the
/// stream ends).
#[derive(Debug)]
pub(crate) struct HeldStream {
    rx: ReceiverStream<(Result<ScoreReply, Status>, Option<Held>)>,
    sending: Option<Held>,
}

impl tokio_stream::Stream for HeldStream {
    type Item = Result<ScoreReply, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.sending = None;
        match std::pin::Pin::new(&mut self.rx).poll_next(cx) {
            std::task::Poll::Ready(Some((item, held))) => {
                self.sending = held;
                std::task::Poll::Ready(Some(item))
            }
            std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

/// The call's deadline: from when it arrived (see `observe`), or else
/// from its `grpc-timeout` header now.
fn deadline_of<T>(request: &Request<T>) -> Option<Instant> {
    if let Some(Deadline(d)) = request.extensions().get::<Deadline>() {
        return Some(*d);
    }
    let timeout = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    Instant::now().checked_add(parse_grpc_timeout(timeout)?)
}

/// Checks and scores one ScoreRequest with `loaded`.
async fn score_request(
    shared: &Shared,
    loaded: Arc<Loaded>,
    req: proto::ScoreRequest,
    deadline: Option<Instant>,
) -> Result<ScoreReply, Status> {
    let limits = &shared.limits;
    let checked = check_score(&loaded.model, limits, &req)?;
    let job = Job::new(loaded, checked, limits);
    let scores = score_texts(shared, &job, Arc::new(Texts::List(req.passages)), deadline).await?;
    Ok(ScoreReply::new(job.loaded, scores, req.request_id))
}

impl Job {
    fn new(loaded: Arc<Loaded>, checked: Checked, limits: &super::config::Limits) -> Self {
        Self {
            loaded,
            heads: checked.heads.into(),
            explain: checked.explain,
            raw_features: checked.raw_features,
            max_spans: limits.max_spans,
            thresholds: checked.thresholds.into(),
        }
    }
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
    ) -> Result<Response<ScoreReply>, Status> {
        let deadline = deadline_of(&request);
        let connection = connection_budget(&request);
        let req = request.into_inner();
        let loaded = self.shared.resolve(&req.model, &req.model_version)?;
        let response = score_request(&self.shared, loaded, req, deadline).await?;
        answer(&self.shared, connection.as_ref(), response, |r| CallFacts {
            model: r.model_name().to_string(),
            version: r.version().to_string(),
            passages: r.passages(),
        })
    }

    type ScoreStreamStream = HeldStream;

    async fn score_stream(
        &self,
        request: Request<Streaming<proto::ScoreRequest>>,
    ) -> Result<Response<Self::ScoreStreamStream>, Status> {
        let deadline = deadline_of(&request);
        let connection = connection_budget(&request);
        let key = request.extensions().get::<Caller>().map(|c| c.0.clone());
        let starved = request.extensions().get::<Starved>().cloned();
        let receive_timeout = self.shared.receive_timeout;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let shared = self.shared.clone();
        // Every message is answered by the models loaded when the stream
        // started, whatever reloads happen meanwhile.
        let catalog = shared.catalog();
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
                    // tonic ends a stream whose body was cut off as if the
                    // client had finished it.
                    Ok(None) if starved.as_ref().is_some_and(Starved::happened) => {
                        outcome = Err(starved_status(receive_timeout));
                        break;
                    }
                    Ok(None) => break,
                    Err(status) => {
                        outcome = Err(caller_status(&status, shared.limits.max_message_bytes)
                            .unwrap_or(status));
                        break;
                    }
                };
                let loaded = match catalog.resolve(&req.model, &req.model_version) {
                    Ok(loaded) => loaded,
                    Err(status) => {
                        outcome = Err(status);
                        break;
                    }
                };
                let scored = tokio::select! {
                    biased;
                    _ = tx.closed() => { outcome = Err(Status::cancelled("the client went away")); break }
                    _ = &mut expired => { outcome = Err(deadline_status()); break }
                    scored = score_request(&shared, loaded, req, deadline) => scored,
                };
                let scored = scored.and_then(|response| {
                    let held = reserve(&shared, connection.as_ref(), &response)?;
                    Ok((response, held))
                });
                match scored {
                    Ok((response, held)) => {
                        if tx.send((Ok(response), Some(held))).await.is_err() {
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
                    let _ = tx.send((Err(status), None)).await;
                    code
                }
            };
            shared.metrics.call_finished(
                Method::ScoreStream,
                code,
                start.elapsed(),
                key.as_deref(),
            );
        });
        Ok(Response::new(HeldStream {
            rx: ReceiverStream::new(rx),
            sending: None,
        }))
    }

    async fn score_article(
        &self,
        request: Request<proto::ArticleRequest>,
    ) -> Result<Response<proto::ArticleResponse>, Status> {
        let deadline = deadline_of(&request);
        let connection = connection_budget(&request);
        let req = request.into_inner();
        let loaded = self.shared.resolve(&req.model, &req.model_version)?;
        let limits = &self.shared.limits;
        let checked = check_article(&loaded.model, limits, &req)?;
        let max = limits.max_passage_bytes;
        let text = req.text;
        let (text, ranges) = if text.len() <= INLINE_WORK {
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
        check_contributions(
            ranges.len() + usize::from(title.is_some()),
            checked.heads.len(),
            checked.explain,
            limits.max_contributions,
        )?;
        let (model_id, model, model_version) = names(&loaded);
        let job = Job::new(loaded, checked, limits);
        let mut passages = Vec::with_capacity(ranges.len() + 1);
        if let Some(r) = title {
            let one = Arc::new(Texts::List(vec![req.title[r.clone()].to_string()]));
            let scored = score_texts(&self.shared, &job, one, deadline).await?;
            let score = scored
                .into_passages(&job.loaded.model)
                .pop()
                .unwrap_or_default();
            passages.push(proto::ScoredPassage {
                start: offset(r.start),
                end: offset(r.end),
                score: Some(score),
                in_title: true,
            });
        }
        let texts = Arc::new(Texts::Slices { text, ranges });
        let scores = score_texts(&self.shared, &job.for_body(), texts.clone(), deadline).await?;
        if let Texts::Slices { ranges, .. } = &*texts {
            passages.extend(
                ranges
                    .iter()
                    .zip(scores.into_passages(&job.loaded.model))
                    .map(|(r, score)| proto::ScoredPassage {
                        start: offset(r.start),
                        end: offset(r.end),
                        score: Some(score),
                        in_title: false,
                    }),
            );
        }
        let summary = proto::article_summary(
            &job.loaded.model,
            &job.heads,
            &passages,
            |h, head, probs| job.decide(h, head, head.decide(probs), probs),
        );
        let facts = |r: &proto::ArticleResponse| CallFacts {
            model: r.model.clone(),
            version: r.model_version.clone(),
            passages: r.passages.len(),
        };
        answer(
            &self.shared,
            connection.as_ref(),
            proto::ArticleResponse {
                passages,
                summary,
                model_id,
                model,
                model_version,
                request_id: req.request_id,
            },
            facts,
        )
    }

    async fn get_model_info(
        &self,
        request: Request<proto::ModelInfoRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        let req = request.into_inner();
        let loaded = self.shared.resolve(&req.model, &req.model_version)?;
        Ok(Response::new(model_info(&loaded)))
    }

    async fn list_models(
        &self,
        _request: Request<proto::ListModelsRequest>,
    ) -> Result<Response<proto::ListModelsResponse>, Status> {
        let catalog = self.shared.catalog();
        let models = catalog
            .iter()
            .map(|(name, versions)| proto::ModelVersions {
                name: name.to_string(),
                versions: versions.iter().map(|l| model_info(l)).collect(),
            })
            .collect();
        Ok(Response::new(proto::ListModelsResponse { models }))
    }
}

/// What GetModelInfo and ListModels say of a loaded version.
fn model_info(loaded: &Loaded) -> proto::ModelInfo {
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
                scope: h.scope.as_str().to_string(),
                dev_metrics: stored
                    .map(|d| d.dev_metrics.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    proto::ModelInfo {
        model_id: model.id().to_string(),
        heads,
        slant_version: model.data().slant_version.clone(),
        loaded_at: rfc3339(loaded.loaded_at),
        path: loaded.path.display().to_string(),
        num_features: model.featurizer().len() as u64,
        name: loaded.name.clone(),
        version: loaded.version.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_cost_more_work() {
        assert!(work(100, 4, 0) < work(100, 4, 1));
        assert!(work(100, 4, 1) < work(100, 4, 64));
        assert!(work(100, 1, 64) < work(100, 4, 64));
        assert_eq!(work(usize::MAX, 4, 64), usize::MAX);
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
