//! State shared by every call: the loaded model behind a swappable
//! pointer, the limits, the metrics and the drain flag; and hot reload.
//!
//! A call clones the `Arc` of the model loaded when it starts and keeps it
//! to the end, so a reload never changes the model under a running call.
//! A reload reads and fully checks the new file on a blocking thread (the
//! file checks in [`Model::load`], then a trial scoring of every head), and
//! only then swaps the pointer; a refused file leaves the old model serving.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Mutex, Semaphore};

use super::config::Limits;
use super::error::ServiceError;
use super::metrics::Metrics;
use crate::model::Workspace;
use crate::model::{Model, ModelError};

/// A model as loaded by the server.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub model: Model,
    pub path: PathBuf,
    pub loaded_at: SystemTime,
    /// The file's stamp just before it was read.
    stamp: Option<FileStamp>,
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    model: RwLock<Arc<Loaded>>,
    pub path: PathBuf,
    pub limits: Limits,
    pub metrics: Metrics,
    /// Caps the blocking threads scoring big requests at once.
    pub blocking: Arc<Semaphore>,
    draining: AtomicBool,
    reload_lock: Mutex<()>,
}

impl Shared {
    pub(crate) fn new(loaded: Loaded, limits: Limits) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            path: loaded.path.clone(),
            model: RwLock::new(Arc::new(loaded)),
            limits,
            metrics: Metrics::new(),
            blocking: Arc::new(Semaphore::new(threads)),
            draining: AtomicBool::new(false),
            reload_lock: Mutex::new(()),
        }
    }

    /// The model serving new calls.
    pub(crate) fn current(&self) -> Arc<Loaded> {
        match self.model.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, loaded: Arc<Loaded>) -> Arc<Loaded> {
        let mut guard = match self.model.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *guard, loaded)
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Loads the model file again, checks it off the request path and
    /// swaps it in. Returns the new model id; on failure the old model
    /// keeps serving and the error says why the file was refused.
    pub(crate) async fn reload(&self) -> Result<String, ServiceError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let result = load_off_thread(self.path.clone()).await;
        match result {
            Ok(loaded) => {
                let id = loaded.model.id().to_string();
                let old = self.swap(Arc::new(loaded));
                self.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    path = %self.path.display(),
                    old_model_id = old.model.id(),
                    model_id = %id,
                    "model reloaded"
                );
                Ok(id)
            }
            Err(e) => {
                self.metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    error = %e,
                    model_id = self.current().model.id(),
                    "model reload refused; the loaded model keeps serving"
                );
                Err(e)
            }
        }
    }
}

/// Loads and checks `path` on a blocking thread.
pub(crate) async fn load_off_thread(path: PathBuf) -> Result<Loaded, ServiceError> {
    let p = path.clone();
    match tokio::task::spawn_blocking(move || load_checked(&p)).await {
        Ok(result) => result.map_err(ServiceError::Model),
        Err(e) => Err(ServiceError::Loader {
            path,
            reason: e.to_string(),
        }),
    }
}

/// [`Model::load`] plus a trial run: every head scores a passage with
/// explanations, and must give finite probabilities that sum to 1.
pub(crate) fn load_checked(path: &Path) -> Result<Loaded, ModelError> {
    let stamp = std::fs::metadata(path).ok().map(|m| file_stamp(&m));
    let model = Model::load(path)?;
    let trial = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut ws = Workspace::default();
        let scores = model.score(
            "Trial run: the NEW model scores this passage!! Does it?",
            &[],
            3,
            &mut ws,
        );
        scores.len() == model.heads().len()
            && scores.iter().all(|s| {
                let sum: f64 = s.probabilities.iter().sum();
                s.probabilities.iter().all(|p| p.is_finite()) && (sum - 1.0).abs() < 1e-6
            })
    }));
    if !matches!(trial, Ok(true)) {
        return Err(ModelError::Invalid {
            path: path.to_path_buf(),
            reason:
                "the trial scoring failed (non-finite or unnormalised probabilities, or a crash)"
                    .into(),
        });
    }
    Ok(Loaded {
        model,
        path: path.to_path_buf(),
        loaded_at: SystemTime::now(),
        stamp,
    })
}

/// Triggers reloads of a running server without signals.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ReloadHandle {
    /// Reloads the model file (see [`Server`](super::Server)); returns the
    /// id of the model now serving, or why the file was refused.
    pub async fn reload(&self) -> Result<String, ServiceError> {
        self.shared.reload().await
    }

    /// The id of the model serving new calls.
    pub fn model_id(&self) -> String {
        self.shared.current().model.id().to_string()
    }

    /// The metrics page as `/metrics` would serve it.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render(&self.shared)
    }
}

/// What identifies a version of the model file.
type FileStamp = (u64, Option<SystemTime>, u64);

fn file_stamp(meta: &std::fs::Metadata) -> FileStamp {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    (meta.len(), meta.modified().ok(), inode)
}

async fn stamp(path: &Path) -> Option<FileStamp> {
    tokio::fs::metadata(path).await.ok().map(|m| file_stamp(&m))
}

/// Polls the model file every `interval` and reloads when its length,
/// modification time or inode changes, until `stop` turns true.
pub(crate) async fn watch_file(
    shared: Arc<Shared>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Compare with the file as it was when the serving model was read, so
    // a change made since then is not missed.
    let mut last = shared.current().stamp;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped(&mut stop) => break,
        }
        let now = stamp(&shared.path).await;
        if now == last {
            continue;
        }
        last = now;
        if now.is_none() {
            tracing::warn!(path = %shared.path.display(), "the watched model file is gone; keeping the loaded model");
            continue;
        }
        tracing::info!(path = %shared.path.display(), "the model file changed; reloading");
        // Errors are logged and counted by reload().
        let _ = shared.reload().await;
    }
}

/// Resolves once `stop` holds true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// RFC 3339 UTC with second precision, e.g. `2024-05-01T12:00:00Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
