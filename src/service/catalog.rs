//! The models a server holds, by name and version, and how they are
//! (re)loaded from their source.
//!
//! Sources:
//! - one file (`--model FILE`): one model named `default`; its version is 1
//!   at start, and each reload that finds different content (another model
//!   id) adds the next version;
//! - a directory (`--model-dir DIR`): `DIR/<name>/<version>.slant`, versions
//!   being whole numbers; every name is a model.
//!
//! A version policy keeps the latest `keep_versions` versions of each name
//! loaded, so a caller pinned to the previous version keeps its answers
//! while a new one rolls out. A file that fails to load is refused with a
//! log line and the versions already loaded keep serving; it is not tried
//! again until it changes.
//!
//! A [`Catalog`] is an immutable snapshot: a call resolves its model once,
//! keeps the `Arc` to the end, and a reload swaps in a new snapshot.
//! Loading reads and fully checks each file on a blocking thread (the file
//! checks of [`Model::load`], then a trial scoring of every head), for at
//! most the reload timeout.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tonic::Status;

use super::error::ServiceError;
use crate::model::Workspace;
use crate::model::{Model, ModelError};

/// The name a single model file is served under, and what an empty
/// `model` in a request means.
pub const DEFAULT_MODEL: &str = "default";

/// Where a server's models come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// One model file, served as the model named `default`.
    File(PathBuf),
    /// `DIR/<name>/<version>.slant`.
    Dir(PathBuf),
}

impl ModelSource {
    pub fn path(&self) -> &Path {
        match self {
            Self::File(p) | Self::Dir(p) => p,
        }
    }
}

/// One loaded model version.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub model: Model,
    pub name: String,
    pub version: u64,
    pub path: PathBuf,
    pub loaded_at: SystemTime,
    /// The file's stamp just before it was read.
    stamp: Option<FileStamp>,
}

#[cfg(test)]
impl Loaded {
    /// A version of `model` as if loaded from file "t".
    pub(crate) fn for_test(model: Model, name: &str, version: u64) -> Self {
        Self {
            model,
            name: name.into(),
            version,
            path: PathBuf::from("t"),
            loaded_at: SystemTime::UNIX_EPOCH,
            stamp: None,
        }
    }
}

/// Every loaded model: name → versions, newest first.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    models: BTreeMap<String, Vec<Arc<Loaded>>>,
    /// Files of a model directory that were refused, as they were then:
    /// not tried again (nor logged again) until they change.
    refused: BTreeMap<PathBuf, Option<FileStamp>>,
}

impl Catalog {
    /// The model version a request asks for: `name` (empty: `default`, or
    /// the only model) and `version` (a version number or a model id;
    /// empty: the newest). NOT_FOUND names what is loaded.
    pub(crate) fn resolve(&self, name: &str, version: &str) -> Result<Arc<Loaded>, Status> {
        let versions = if name.is_empty() {
            match self.models.get(DEFAULT_MODEL) {
                Some(v) => v,
                None if self.models.len() == 1 => self
                    .models
                    .values()
                    .next()
                    .ok_or_else(|| self.not_found(name))?,
                None => return Err(self.not_found(name)),
            }
        } else {
            self.models.get(name).ok_or_else(|| self.not_found(name))?
        };
        let found = if version.is_empty() {
            versions.first()
        } else {
            let number = version.parse::<u64>().ok();
            versions
                .iter()
                .find(|l| Some(l.version) == number)
                .or_else(|| versions.iter().find(|l| l.model.id() == version))
        };
        found.cloned().ok_or_else(|| {
            let shown: String = version.chars().take(64).collect();
            let name = versions.first().map_or(name, |l| l.name.as_str());
            let loaded: Vec<String> = versions
                .iter()
                .map(|l| format!("{} (id {})", l.version, l.model.id()))
                .collect();
            Status::not_found(format!(
                "model {name:?} has no version {shown:?} loaded; loaded versions: {}",
                loaded.join(", ")
            ))
        })
    }

    fn not_found(&self, name: &str) -> Status {
        let shown: String = name.chars().take(64).collect();
        let names: Vec<&str> = self.models.keys().map(String::as_str).collect();
        let what = if shown.is_empty() {
            format!("no model named {DEFAULT_MODEL:?}; name one")
        } else {
            format!("no model named {shown:?}")
        };
        if names.is_empty() {
            Status::not_found(format!("{what}: no model is loaded"))
        } else {
            Status::not_found(format!("{what}; loaded models: {}", names.join(", ")))
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Every loaded version, by name, newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[Arc<Loaded>])> {
        self.models.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The newest version of the default (or only) model, if any.
    pub(crate) fn default_model(&self) -> Option<Arc<Loaded>> {
        self.resolve("", "").ok()
    }
}

/// What a reload did.
#[derive(Debug, Default)]
pub(crate) struct Reloaded {
    /// The new snapshot.
    pub catalog: Catalog,
    /// Versions loaded now (not kept from before): (name, version, id).
    pub loaded: Vec<(String, u64, String)>,
    /// Files refused, with why.
    pub refused: Vec<ServiceError>,
}

/// Loads what `source` holds, reusing what `old` already has loaded from
/// the same file unchanged.
pub(crate) async fn reload(
    source: &ModelSource,
    old: &Catalog,
    keep_versions: usize,
    timeout: Duration,
) -> Result<Reloaded, ServiceError> {
    let keep = keep_versions.max(1);
    match source {
        ModelSource::File(path) => reload_file(path, old, keep, timeout).await,
        ModelSource::Dir(dir) => reload_dir(dir, old, keep, timeout).await,
    }
}

async fn reload_file(
    path: &Path,
    old: &Catalog,
    keep: usize,
    timeout: Duration,
) -> Result<Reloaded, ServiceError> {
    let previous: Vec<Arc<Loaded>> = old.models.get(DEFAULT_MODEL).cloned().unwrap_or_default();
    let newest = previous.first();
    let version = newest.map_or(1, |l| l.version + 1);
    let mut out = Reloaded::default();
    let unless = newest.map(|n| n.model.id().to_string());
    let loaded = blocking_with_timeout(path.to_path_buf(), timeout, {
        let path = path.to_path_buf();
        move || load_checked_unless(&path, DEFAULT_MODEL.to_string(), version, unless.as_deref())
    })
    .await?;
    let versions = match loaded {
        // The same content again (same id, seen from the checksum before
        // decoding): nothing changes, and nothing was compiled.
        None => previous,
        Some(loaded) => {
            out.loaded.push((
                DEFAULT_MODEL.to_string(),
                version,
                loaded.model.id().to_string(),
            ));
            let mut v = vec![Arc::new(loaded)];
            v.extend(previous.into_iter().take(keep - 1));
            v
        }
    };
    out.catalog
        .models
        .insert(DEFAULT_MODEL.to_string(), versions);
    Ok(out)
}

async fn reload_dir(
    dir: &Path,
    old: &Catalog,
    keep: usize,
    timeout: Duration,
) -> Result<Reloaded, ServiceError> {
    let mut out = Reloaded::default();
    let on_disk = scan_dir(dir.to_path_buf(), timeout).await?;
    for (name, files) in on_disk {
        let previous = old.models.get(&name);
        let mut versions = Vec::new();
        // Newest first, until `keep` versions load.
        for (version, path, stamp) in files {
            if versions.len() == keep {
                break;
            }
            let kept = previous.and_then(|p| {
                p.iter()
                    .find(|l| l.version == version && l.path == path && l.stamp == stamp)
            });
            if let Some(l) = kept {
                versions.push(l.clone());
                continue;
            }
            if old.refused.get(&path) == Some(&stamp) {
                out.catalog.refused.insert(path, stamp);
                continue;
            }
            match load_off_thread(path.clone(), &name, version, timeout).await {
                Ok(l) => {
                    out.loaded
                        .push((name.clone(), version, l.model.id().to_string()));
                    versions.push(Arc::new(l));
                }
                Err(e) => {
                    out.catalog.refused.insert(path, stamp);
                    out.refused.push(e);
                }
            }
        }
        if !versions.is_empty() {
            out.catalog.models.insert(name, versions);
        }
    }
    Ok(out)
}

/// Files of a model directory: name → (version, path, stamp), newest first.
/// A file whose stem is not a whole number is skipped with a warning.
type DirListing = BTreeMap<String, Vec<(u64, PathBuf, Option<FileStamp>)>>;

async fn scan_dir(dir: PathBuf, timeout: Duration) -> Result<DirListing, ServiceError> {
    let d = dir.clone();
    let listing = tokio::task::spawn_blocking(move || list_dir(&d));
    match tokio::time::timeout(timeout, listing).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(ServiceError::Loader {
            path: dir,
            reason: e.to_string(),
        }),
        Err(_) => Err(ServiceError::LoadTimeout { path: dir, timeout }),
    }
}

fn list_dir(dir: &Path) -> Result<DirListing, ServiceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServiceError::ModelDir { path, source }
    };
    let mut out = DirListing::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if !entry.file_type().map_err(io(dir))?.is_dir() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(path = %entry.path().display(), "skipping a model folder whose name is not UTF-8");
            continue;
        };
        // fsck's folder at the root of an ext4 volume (root-only, so
        // reading it would refuse the whole directory): never a model.
        if name == "lost+found" {
            continue;
        }
        let mut files = Vec::new();
        for file in std::fs::read_dir(entry.path()).map_err(io(&entry.path()))? {
            let file = file.map_err(io(&entry.path()))?;
            let path = file.path();
            if path.extension().is_none_or(|e| e != "slant") {
                continue;
            }
            let version = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            let Some(version) = version else {
                tracing::warn!(path = %path.display(), "skipping a model file whose name is not <version>.slant (a whole number)");
                continue;
            };
            let stamp = std::fs::metadata(&path).ok().map(|m| file_stamp(&m));
            files.push((version, path, stamp));
        }
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        if !files.is_empty() {
            out.insert(name, files);
        }
    }
    Ok(out)
}

/// Loads and checks `path` as `name` version `version` on a blocking
/// thread, for at most `timeout`. (The file is opened without blocking and
/// read with a cap, so a load cannot hang on a FIFO or an endless file;
/// the timeout covers what is left, e.g. a stalled network filesystem. An
/// abandoned load's thread finishes on its own and its result is dropped.)
pub(crate) async fn load_off_thread(
    path: PathBuf,
    name: &str,
    version: u64,
    timeout: Duration,
) -> Result<Loaded, ServiceError> {
    let (p, n) = (path.clone(), name.to_string());
    blocking_with_timeout(path, timeout, move || load_checked(&p, n, version)).await
}

/// Runs `load` on a blocking thread for at most `timeout`.
async fn blocking_with_timeout<T: Send + 'static>(
    path: PathBuf,
    timeout: Duration,
    load: impl FnOnce() -> Result<T, ModelError> + Send + 'static,
) -> Result<T, ServiceError> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(load)).await {
        Ok(Ok(result)) => result.map_err(ServiceError::Model),
        Ok(Err(e)) => Err(ServiceError::Loader {
            path,
            reason: e.to_string(),
        }),
        Err(_) => Err(ServiceError::LoadTimeout { path, timeout }),
    }
}

/// [`Model::load`] plus a trial run (see [`tried`]).
fn load_checked(path: &Path, name: String, version: u64) -> Result<Loaded, ModelError> {
    let started = Instant::now();
    let stamp = std::fs::metadata(path).ok().map(|m| file_stamp(&m));
    tried(Model::load(path)?, path, name, version, stamp, started)
}

/// [`load_checked`], or `None` when the file's model id is `unless` (see
/// [`Model::load_unless`]).
fn load_checked_unless(
    path: &Path,
    name: String,
    version: u64,
    unless: Option<&str>,
) -> Result<Option<Loaded>, ModelError> {
    let started = Instant::now();
    let stamp = std::fs::metadata(path).ok().map(|m| file_stamp(&m));
    match Model::load_unless(path, unless)? {
        Some(model) => tried(model, path, name, version, stamp, started).map(Some),
        None => Ok(None),
    }
}

/// A loaded model after a trial run: every head scores a passage with
/// explanations, and must give finite probabilities that sum to 1.
fn tried(
    model: Model,
    path: &Path,
    name: String,
    version: u64,
    stamp: Option<FileStamp>,
    started: Instant,
) -> Result<Loaded, ModelError> {
    let trial = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut ws = Workspace::default();
        let scores = model.score(
            "Trial run: the NEW model scores this passage!! Does it?",
            &model.every_head(),
            crate::model::Explain::Words(3),
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
    tracing::debug!(path = %path.display(), model_id = model.id(), elapsed = ?started.elapsed(), "model file loaded and checked");
    Ok(Loaded {
        model,
        name,
        version,
        path: path.to_path_buf(),
        loaded_at: SystemTime::now(),
        stamp,
    })
}

/// What identifies a version of a file: length, modification time, inode.
pub(crate) type FileStamp = (u64, Option<SystemTime>, u64);

fn file_stamp(meta: &std::fs::Metadata) -> FileStamp {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    (meta.len(), meta.modified().ok(), inode)
}

/// The stamps of everything `source` would load from: the file, or every
/// `*.slant` under the directory's model folders. A change means a reload.
pub(crate) async fn source_stamp(source: &ModelSource) -> Option<Vec<(PathBuf, FileStamp)>> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || match &source {
        ModelSource::File(path) => std::fs::metadata(path)
            .ok()
            .map(|m| vec![(path.clone(), file_stamp(&m))]),
        ModelSource::Dir(dir) => list_dir(dir).ok().map(|listing| {
            listing
                .into_values()
                .flatten()
                .filter_map(|(_, path, stamp)| Some((path, stamp?)))
                .collect()
        }),
    })
    .await
    .ok()
    .flatten()
}

/// The stamps a snapshot was loaded from (to compare with
/// [`source_stamp`] at the first poll).
pub(crate) fn catalog_stamp(catalog: &Catalog) -> Vec<(PathBuf, FileStamp)> {
    let mut out: Vec<(PathBuf, FileStamp)> = catalog
        .models
        .values()
        .flatten()
        .filter_map(|l| Some((l.path.clone(), l.stamp?)))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_load_past_the_timeout_is_abandoned() {
        let path = PathBuf::from("slow.slant");
        let slow = || {
            std::thread::sleep(Duration::from_millis(300));
            Ok(1)
        };
        let started = std::time::Instant::now();
        let err = blocking_with_timeout(path.clone(), Duration::from_millis(50), slow)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(250));
        assert!(matches!(err, ServiceError::LoadTimeout { .. }), "{err:?}");
        assert!(err.to_string().contains("slow.slant"), "{err}");
        let fast = blocking_with_timeout(path, Duration::from_secs(5), || Ok(2)).await;
        assert_eq!(fast.unwrap(), 2);
    }

    #[test]
    fn model_folders_list_whole_number_versions_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        for (name, files) in [
            (
                "news",
                &["1.slant", "10.slant", "2.slant", "notes.txt", "v3.slant"][..],
            ),
            ("empty", &[][..]),
            ("tweets", &["7.slant"][..]),
            ("lost+found", &["1.slant"][..]),
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            for f in files {
                std::fs::write(dir.path().join(name).join(f), b"x").unwrap();
            }
        }
        std::fs::write(dir.path().join("stray.slant"), b"x").unwrap();
        let listing = list_dir(dir.path()).unwrap();
        let versions =
            |name: &str| -> Vec<u64> { listing[name].iter().map(|(v, _, _)| *v).collect() };
        assert_eq!(listing.keys().collect::<Vec<_>>(), ["news", "tweets"]);
        assert_eq!(versions("news"), [10, 2, 1]);
        assert_eq!(versions("tweets"), [7]);
        assert!(matches!(
            list_dir(&dir.path().join("missing")),
            Err(ServiceError::ModelDir { .. })
        ));
    }
}
