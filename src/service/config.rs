//! Server configuration: the limits a request is checked against, the
//! drain and watch timings, and the parsers for sizes (`64KiB`) and
//! durations (`10s`) used by the command line.

use std::path::PathBuf;
use std::time::Duration;

/// Request limits. Each names the command-line flag that sets it, and
/// every refusal's message names that flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `--max-batch`: passages in one Score request (RESOURCE_EXHAUSTED).
    pub max_batch: usize,
    /// `--max-passage-bytes`: bytes in one passage or title
    /// (INVALID_ARGUMENT); also the length limit when splitting articles.
    pub max_passage_bytes: usize,
    /// `--max-article-bytes`: bytes of an article's text plus title
    /// (INVALID_ARGUMENT).
    pub max_article_bytes: usize,
    /// `--max-message-bytes`: size of one encoded request message
    /// (RESOURCE_EXHAUSTED), applied by the gRPC decoder.
    pub max_message_bytes: usize,
    /// `--max-explain`: contributions per head a request may ask for
    /// (INVALID_ARGUMENT).
    pub max_explain: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            max_passage_bytes: 64 * 1024,
            max_article_bytes: 1024 * 1024,
            max_message_bytes: 4 * 1024 * 1024,
            max_explain: 64,
        }
    }
}

/// Everything [`Server`](super::Server) needs besides its sockets.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The model file, loaded at start and reloaded on request.
    pub model_path: PathBuf,
    pub limits: Limits,
    /// How long calls in flight may run after shutdown starts.
    pub drain_timeout: Duration,
    /// Poll the model file's (length, mtime) this often and reload when it
    /// changes; `None` turns watching off.
    pub watch: Option<Duration>,
    /// Serve TLS (rustls) with these PEM files; `None` serves plaintext.
    pub tls: Option<TlsFiles>,
}

/// PEM files for TLS: the server's certificate chain and key, and, to
/// require client certificates, the CA that signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl ServerConfig {
    /// Default limits, a 10 s drain, no watching.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            limits: Limits::default(),
            drain_timeout: Duration::from_secs(10),
            watch: None,
            tls: None,
        }
    }
}

/// Parses a byte size: a plain number of bytes, or a number with a suffix
/// `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (all powers of 1024; `B` alone = bytes).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (expected e.g. 65536, 64KiB or 4MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration: a number of seconds (`10`, `0.5`) or a number with a
/// unit `ms`, `s`, `m` or `h` (`500ms`, `10s`, `2m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (expected e.g. 10s, 500ms or 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1e3,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("4 MiB"), Ok(4 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
