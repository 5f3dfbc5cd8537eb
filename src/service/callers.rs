//! Who may call, and how much at once.
//!
//! - **API keys** (`--api-keys FILE`): one `name:sha256-of-key` a line
//!   (`#` comments and blank lines allowed), reloaded on SIGHUP. With a key
//!   file, every Scorer call needs `authorization: Bearer KEY` and is
//!   UNAUTHENTICATED otherwise; health and reflection stay open unless
//!   `--protect-all`. A key is known by the SHA-256 of what the caller
//!   sends, so the file holds no secret; the key's *name* labels metrics
//!   and the access log, never the key.
//! - **Concurrency** (`--max-concurrent-requests`, `--max-concurrent-per-key`):
//!   Scorer calls hold a slot until their response has been sent; a call
//!   that finds no free slot is refused at once with RESOURCE_EXHAUSTED and
//!   a retry hint (`retry-after`, `grpc-retry-pushback-ms`) rather than
//!   queued, so no caller waits without bound and one caller cannot take
//!   every slot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::MetadataValue;
use tonic::Status;

use super::error::ServiceError;
use super::request::Limit;

/// How long a refused caller is told to wait before retrying.
const RETRY_AFTER_MS: u64 = 200;

/// A caller that presented a known key: the key's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller(pub Arc<str>);

/// The keys of a key file: SHA-256 of the key → its name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Keys(HashMap<[u8; 32], Arc<str>>);

impl Keys {
    /// Parses a key file's text; `path` names it in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, ServiceError> {
        let bad = |line: usize, reason: String| ServiceError::ApiKeys {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut keys = HashMap::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, hash)) = line.split_once(':') else {
                return Err(bad(i + 1, "expected name:sha256-hex".into()));
            };
            let (name, hash) = (name.trim(), hash.trim());
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(bad(
                    i + 1,
                    format!("key name {name:?} must be letters, digits, '-', '_' or '.'"),
                ));
            }
            let digest = parse_sha256(hash).ok_or_else(|| {
                bad(
                    i + 1,
                    "the key's SHA-256 must be 64 hex digits (e.g. `printf %s KEY | sha256sum`)"
                        .into(),
                )
            })?;
            if !names.insert(name.to_string()) {
                return Err(bad(i + 1, format!("key name {name:?} appears twice")));
            }
            if keys.insert(digest, Arc::from(name)).is_some() {
                return Err(bad(i + 1, "the same key is listed twice".into()));
            }
        }
        Ok(Self(keys))
    }

    pub(crate) fn load(path: &Path) -> Result<Self, ServiceError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServiceError::ApiKeyFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn name_of(&self, key: &str) -> Option<Arc<str>> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.0.get(&digest).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The settings behind [`Callers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerPolicy {
    /// `--api-keys`: the key file; `None` lets anyone call.
    pub api_keys: Option<PathBuf>,
    /// `--protect-all`: health and reflection need a key too.
    pub protect_all: bool,
    /// `--max-concurrent-requests`: Scorer calls at once, server-wide.
    pub max_concurrent_requests: Option<usize>,
    /// `--max-concurrent-per-key`: Scorer calls at once per key.
    pub max_concurrent_per_key: Option<usize>,
}

impl Default for CallerPolicy {
    /// No keys; at most 256 Scorer calls at once.
    fn default() -> Self {
        Self {
            api_keys: None,
            protect_all: false,
            max_concurrent_requests: Some(256),
            max_concurrent_per_key: None,
        }
    }
}

/// Keys and concurrency slots, shared by every call.
#[derive(Debug)]
pub(crate) struct Callers {
    policy: CallerPolicy,
    keys: RwLock<Option<Arc<Keys>>>,
    global: Option<Arc<Semaphore>>,
    per_key: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
}

/// Slots a call holds until its response is sent.
#[derive(Debug, Default)]
pub(crate) struct Slots(#[allow(dead_code)] Vec<OwnedSemaphorePermit>);

impl Callers {
    pub(crate) fn new(policy: CallerPolicy) -> Result<Self, ServiceError> {
        let keys = match &policy.api_keys {
            Some(path) => Some(Arc::new(Keys::load(path)?)),
            None => None,
        };
        Ok(Self {
            global: policy
                .max_concurrent_requests
                .map(|n| Arc::new(Semaphore::new(n))),
            policy,
            keys: RwLock::new(keys),
            per_key: Mutex::new(HashMap::new()),
        })
    }

    fn keys(&self) -> Option<Arc<Keys>> {
        match self.keys.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// What identifies the key file's current version (length,
    /// modification time, inode), if there is one.
    pub(crate) fn key_file_stamp(&self) -> Option<(u64, Option<std::time::SystemTime>, u64)> {
        let meta = std::fs::metadata(self.policy.api_keys.as_ref()?).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some((meta.len(), meta.modified().ok(), inode))
    }

    /// Reads the key file again (SIGHUP). A file that does not parse is
    /// refused and the keys already loaded stay.
    pub(crate) fn reload(&self) -> Result<Option<usize>, ServiceError> {
        let Some(path) = &self.policy.api_keys else {
            return Ok(None);
        };
        let keys = Keys::load(path)?;
        let n = keys.len();
        match self.keys.write() {
            Ok(mut g) => *g = Some(Arc::new(keys)),
            Err(p) => *p.into_inner() = Some(Arc::new(keys)),
        }
        Ok(Some(n))
    }

    /// The caller a request's `authorization` header names. `protected`
    /// says whether the method needs a key (Scorer calls always do when
    /// keys are on; health and reflection with `--protect-all`).
    pub(crate) fn authenticate(
        &self,
        headers: &http::HeaderMap,
        scorer: bool,
    ) -> Result<Option<Caller>, Status> {
        let Some(keys) = self.keys() else {
            return Ok(None);
        };
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let caller = bearer.and_then(|key| keys.name_of(key)).map(Caller);
        if caller.is_none() && (scorer || self.policy.protect_all) {
            return Err(Status::unauthenticated(if bearer.is_some() {
                "unknown API key"
            } else {
                "this server needs an API key: send `authorization: Bearer KEY`"
            }));
        }
        Ok(caller)
    }

    /// Takes the slots a Scorer call needs, or refuses it at once.
    pub(crate) fn admit(&self, caller: Option<&Caller>) -> Result<Slots, Status> {
        let mut slots = Vec::with_capacity(2);
        if let Some(global) = &self.global {
            match global.clone().try_acquire_owned() {
                Ok(p) => slots.push(p),
                Err(_) => {
                    return Err(Limit::MaxConcurrentRequests.refuse(shed(format!(
                        "the server is at its max-concurrent-requests limit of {} calls",
                        self.policy.max_concurrent_requests.unwrap_or(0)
                    ))))
                }
            }
        }
        if let (Some(limit), Some(Caller(name))) = (self.policy.max_concurrent_per_key, caller) {
            let sem = {
                let mut map = match self.per_key.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                map.entry(name.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                    .clone()
            };
            match sem.try_acquire_owned() {
                Ok(p) => slots.push(p),
                Err(_) => {
                    return Err(Limit::MaxConcurrentPerKey.refuse(shed(format!(
                        "key {name:?} is at its max-concurrent-per-key limit of {limit} calls"
                    ))))
                }
            }
        }
        Ok(Slots(slots))
    }
}

/// RESOURCE_EXHAUSTED with a retry hint.
fn shed(message: String) -> Status {
    let mut status =
        Status::resource_exhausted(format!("{message}; retry after {RETRY_AFTER_MS} ms"));
    let md = status.metadata_mut();
    md.insert(
        "grpc-retry-pushback-ms",
        MetadataValue::from(RETRY_AFTER_MS),
    );
    md.insert(
        "retry-after",
        MetadataValue::from(RETRY_AFTER_MS.div_ceil(1000)),
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(key: &str) -> String {
        Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn headers(value: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(v) = value {
            h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn key_files_parse_and_refuse_with_the_line() {
        let path = Path::new("keys.txt");
        let text = format!(
            "# teams\n\nnewsroom:{}\n analytics : {} \n",
            sha("k1"),
            sha("k2")
        );
        let keys = Keys::parse(&text, path).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.name_of("k1").as_deref(), Some("newsroom"));
        assert_eq!(keys.name_of("k2").as_deref(), Some("analytics"));
        assert_eq!(keys.name_of("k3"), None);
        for (bad, line) in [
            ("no-colon".to_string(), 1),
            (format!("a:{}\nb c:{}", sha("x"), sha("y")), 2),
            ("a:abcd".to_string(), 1),
            (format!("a:{}\na:{}", sha("x"), sha("y")), 2),
            (format!("a:{}\nb:{}", sha("x"), sha("x")), 2),
        ] {
            match Keys::parse(&bad, path) {
                Err(ServiceError::ApiKeys { line: l, .. }) => assert_eq!(l, line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn keys_gate_scorer_calls_and_protect_all_gates_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("newsroom:{}\n", sha("secret"))).unwrap();
        let policy = CallerPolicy {
            api_keys: Some(path.clone()),
            ..CallerPolicy::default()
        };
        let callers = Callers::new(policy.clone()).unwrap();
        let ok = callers
            .authenticate(&headers(Some("Bearer secret")), true)
            .unwrap();
        assert_eq!(ok, Some(Caller(Arc::from("newsroom"))));
        for h in [
            None,
            Some("Bearer nope"),
            Some("secret"),
            Some("Basic secret"),
        ] {
            let e = callers.authenticate(&headers(h), true).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{h:?}");
        }
        // Health and reflection stay open...
        assert_eq!(callers.authenticate(&headers(None), false).unwrap(), None);
        // ...unless protect_all.
        let all = Callers::new(CallerPolicy {
            protect_all: true,
            ..policy
        })
        .unwrap();
        assert!(all.authenticate(&headers(None), false).is_err());
        // Revoked by a reload.
        std::fs::write(&path, format!("analytics:{}\n", sha("other"))).unwrap();
        assert_eq!(callers.reload().unwrap(), Some(1));
        assert!(callers
            .authenticate(&headers(Some("Bearer secret")), true)
            .is_err());
        // A broken file leaves the keys as they were.
        std::fs::write(&path, "garbage").unwrap();
        assert!(callers.reload().is_err());
        assert!(callers
            .authenticate(&headers(Some("Bearer other")), true)
            .is_ok());
    }

    #[test]
    fn slots_are_shed_at_once_and_given_back() {
        let callers = Callers::new(CallerPolicy {
            max_concurrent_requests: Some(3),
            max_concurrent_per_key: Some(2),
            ..CallerPolicy::default()
        })
        .unwrap();
        let a = Caller(Arc::from("a"));
        let s1 = callers.admit(Some(&a)).unwrap();
        let _s2 = callers.admit(Some(&a)).unwrap();
        let e = callers.admit(Some(&a)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("max-concurrent-per-key"), "{e:?}");
        assert_eq!(Limit::of(&e), Some(Limit::MaxConcurrentPerKey));
        assert_eq!(e.metadata().get("grpc-retry-pushback-ms").unwrap(), "200");
        // Another caller still gets the server's last slot...
        let _s3 = callers.admit(Some(&Caller(Arc::from("b")))).unwrap();
        // ...and then the server is full.
        let e = callers.admit(None).unwrap_err();
        assert!(e.message().contains("max-concurrent-requests"), "{e:?}");
        drop(s1);
        assert!(callers.admit(Some(&a)).is_ok());
    }
}
