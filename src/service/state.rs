//! State shared by every call: the models behind a swappable snapshot
//! ([`Catalog`]), the limits, the metrics, the health status and the drain
//! flag; and hot reload.
//!
//! A call resolves its model version once and keeps the `Arc` to the end,
//! so a reload never changes the model under a running call. A reload
//! loads and checks new files off the request path (see `catalog`) and
//! only then swaps the snapshot; a refused file leaves what is loaded
//! serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Mutex, Semaphore};
use tonic::Status;
use tonic_health::pb::health_check_response::ServingStatus;

use super::access::AccessLogger;
use super::budget::Budget;
use super::callers::Callers;
use super::catalog::{self, catalog_stamp, source_stamp, Catalog, Loaded, ModelSource};
use super::config::{Limits, ServerConfig};
use super::error::ServiceError;
use super::metrics::Metrics;
use super::transport::ConnectionStats;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    catalog: RwLock<Arc<Catalog>>,
    pub source: ModelSource,
    keep_versions: usize,
    pub limits: Limits,
    pub metrics: Metrics,
    /// Responses built and not yet sent (`max-buffered-bytes`).
    pub budget: Arc<Budget>,
    /// The main listener's connection counters.
    pub connections: Arc<ConnectionStats>,
    /// Caps the blocking threads scoring big requests at once.
    pub blocking: Arc<Semaphore>,
    /// API keys and concurrency slots.
    pub callers: Callers,
    /// The access log's writer.
    pub access: AccessLogger,
    /// SERVING while a model is loaded and the server is not draining.
    health: watch::Sender<ServingStatus>,
    /// A load that takes longer is abandoned.
    reload_timeout: Duration,
    /// How long a call's request data may pause (see `observe`).
    pub receive_timeout: Duration,
    draining: AtomicBool,
    reload_lock: Mutex<()>,
}

impl Shared {
    /// Loads what `config` names. A model file that does not load stops
    /// the start; a model directory may start empty (health says
    /// NOT_SERVING until a model loads), but every refused file is logged.
    pub(crate) async fn load(config: &ServerConfig) -> Result<Self, ServiceError> {
        let reloaded = catalog::reload(
            &config.models,
            &Catalog::default(),
            config.keep_versions,
            config.reload_timeout,
        )
        .await?;
        if let (ModelSource::File(_), Some(e)) = (&config.models, reloaded.refused.first()) {
            return Err(ServiceError::Loader {
                path: config.models.path().to_path_buf(),
                reason: e.to_string(),
            });
        }
        for e in &reloaded.refused {
            tracing::error!(error = %e, "model file refused");
        }
        if reloaded.catalog.is_empty() {
            tracing::warn!(dir = %config.models.path().display(), "no model loaded; health says NOT_SERVING until one is");
        }
        let callers = Callers::new(config.callers.clone())?;
        let access = AccessLogger::start(&config.access_log)?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let budget = Budget::new(config.limits.max_buffered_bytes);
        let connections = Arc::new(ConnectionStats::default());
        let metrics = Metrics::new(&connections, budget.gauge(), &access.dropped);
        metrics.models_loaded(&reloaded.catalog);
        let (health, _) = watch::channel(if reloaded.catalog.is_empty() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        });
        Ok(Self {
            catalog: RwLock::new(Arc::new(reloaded.catalog)),
            source: config.models.clone(),
            keep_versions: config.keep_versions,
            budget,
            limits: config.limits.clone(),
            metrics,
            connections,
            blocking: Arc::new(Semaphore::new(threads)),
            callers,
            access,
            health,
            reload_timeout: config.reload_timeout,
            receive_timeout: config.connections.receive_timeout,
            draining: AtomicBool::new(false),
            reload_lock: Mutex::new(()),
        })
    }

    /// The models serving new calls.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The model version a request names (see [`Catalog::resolve`]).
    pub(crate) fn resolve(&self, name: &str, version: &str) -> Result<Arc<Loaded>, Status> {
        self.catalog().resolve(name, version)
    }

    fn swap(&self, catalog: Arc<Catalog>) -> Arc<Catalog> {
        let mut guard = match self.catalog.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *guard, catalog)
    }

    /// A receiver of the health status (for the health service).
    pub(crate) fn health(&self) -> watch::Receiver<ServingStatus> {
        self.health.subscribe()
    }

    fn update_health(&self) {
        let serving = !self.draining() && !self.catalog().is_empty();
        self.health.send_replace(if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        });
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.update_health();
    }

    /// Reads the API keys again, reopens the access log, then loads the
    /// model source again, checks new files off the request path and
    /// swaps them in. Returns the id of the default model's newest version
    /// when every file loaded; else the first refusal (what did load is
    /// swapped in all the same, and what was loaded keeps serving). A load
    /// that passes the reload timeout is abandoned, so a stuck file never
    /// blocks later reloads or shutdown.
    pub(crate) async fn reload(&self) -> Result<String, ServiceError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        match self.callers.reload() {
            Ok(Some(n)) => tracing::info!(keys = n, "API keys reloaded"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "API keys refused; the loaded keys stay"),
        }
        self.access.reopen();
        let old = self.catalog();
        let started = std::time::Instant::now();
        let result =
            catalog::reload(&self.source, &old, self.keep_versions, self.reload_timeout).await;
        let reloaded = match result {
            Ok(r) => r,
            Err(e) => {
                self.metrics.reloaded(false);
                tracing::error!(error = %e, "model reload refused; the loaded models keep serving");
                return Err(e);
            }
        };
        for e in &reloaded.refused {
            self.metrics.reloaded(false);
            tracing::error!(error = %e, "model file refused; the loaded models keep serving");
        }
        for (name, version, id) in &reloaded.loaded {
            self.metrics.reloaded(true);
            tracing::info!(model = %name, version, model_id = %id, elapsed = ?started.elapsed(), "model reloaded");
        }
        if reloaded.loaded.is_empty() && reloaded.refused.is_empty() {
            tracing::info!(path = %self.source.path().display(), "model reload: nothing changed");
        }
        let catalog = Arc::new(reloaded.catalog);
        self.metrics.models_loaded(&catalog);
        self.swap(catalog.clone());
        drop(old);
        self.update_health();
        release_freed_memory();
        match reloaded.refused.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(catalog
                .default_model()
                .map(|l| l.model.id().to_string())
                .unwrap_or_default()),
        }
    }
}

/// Hands memory freed by an unloaded model back to the system (glibc keeps
/// freed heap pages otherwise; see also `tune_allocator`). A no-op for
/// memory from another global allocator (the `slant` binary's jemalloc
/// purges on its own).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes every large allocation its own mapping, returned to the system
/// when freed. glibc's default raises its mmap threshold each time such a
/// mapping is freed, so after a model reload the next model's tables came
/// from the heap and the old ones' pages stayed resident: measured here,
/// resident memory went 68 → 110 → 130 → 146 → 155 → 167 MB over five
/// SIGHUP reloads; with a fixed 256 KiB threshold it stays at 70–72 MB.
/// For programs that serve with this library on glibc's allocator, once
/// before the first model loads; the `slant` binary allocates with
/// jemalloc, which needs none of this.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Triggers reloads of a running server without signals.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ReloadHandle {
    /// Reloads the models (see [`Server`](super::Server)); returns the id
    /// of the default model's newest version, or why a file was refused.
    pub async fn reload(&self) -> Result<String, ServiceError> {
        self.shared.reload().await
    }

    /// The id of the default model's newest version (empty with none).
    pub fn model_id(&self) -> String {
        self.shared
            .catalog()
            .default_model()
            .map(|l| l.model.id().to_string())
            .unwrap_or_default()
    }

    /// The metrics page as `/metrics` would serve it.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render()
    }
}

/// Polls the model source every `interval` and reloads when a file's
/// length, modification time or inode changes (or a file comes or goes),
/// and the API key file when it changes, until `stop` turns true.
pub(crate) async fn watch_source(
    shared: Arc<Shared>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // Compare with the files as they were when the serving models were
    // read, so a change made since then is not missed.
    let mut last = Some(catalog_stamp(&shared.catalog()));
    let mut last_keys = shared.callers.key_file_stamp();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped(&mut stop) => break,
        }
        // The API key file (a Kubernetes Secret is updated in place).
        let keys = shared.callers.key_file_stamp();
        if keys != last_keys {
            last_keys = keys;
            match shared.callers.reload() {
                Ok(Some(n)) => tracing::info!(keys = n, "the API key file changed; keys reloaded"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "API keys refused; the loaded keys stay"),
            }
        }
        let mut now = source_stamp(&shared.source).await;
        if let Some(v) = now.as_mut() {
            v.sort();
        }
        if now == last {
            continue;
        }
        last = now;
        if last.is_none() {
            tracing::warn!(path = %shared.source.path().display(), "the watched model source is gone; keeping the loaded models");
            continue;
        }
        tracing::info!(path = %shared.source.path().display(), "the model source changed; reloading");
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
