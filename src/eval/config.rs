//! An eval config: the labeled sets a model is measured on, each with the
//! head that scores it, in one TOML file.
//!
//! ```toml
//! data_root = "../../shared/datasets"      # relative to this file
//! slices = ["source", "outlet"]            # fields to report metrics by
//!
//! [[sets]]
//! head = "sentiment"
//! path = "sentfin/test.jsonl"              # relative to data_root
//!
//! [[sets]]
//! head = "sensational"
//! path = "babe/test.jsonl"
//! label_map = { biased = "sensational", non_biased = "not_sensational" }
//! ```
//! A set takes `format`, `text` and `label` as a training data entry does,
//! `skip_labels` (rows left out by their label as written), and
//! `skip_invalid = true` to score only the rows whose (mapped) label is one
//! of the head's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::data::{DataError, DataSpec, Format};

/// The fields metrics are reported by when neither the config nor the
/// command line says otherwise.
pub const DEFAULT_SLICES: [&str; 2] = ["source", "outlet"];

/// One set: a labeled file and the head that scores it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    pub head: String,
    pub path: PathBuf,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default = "text")]
    pub text: String,
    #[serde(default = "label")]
    pub label: String,
    #[serde(default)]
    pub label_map: BTreeMap<String, String>,
    /// Skip (and count) rows whose label is not one of the head's after
    /// `label_map` — to score, say, only the `non_biased` rows of a set.
    #[serde(default)]
    pub skip_invalid: bool,
    /// Rows with these labels (as written, before `label_map`) are left
    /// out, as a training data entry's `skip_labels`.
    #[serde(default)]
    pub skip_labels: Vec<String>,
}

fn text() -> String {
    "text".into()
}
fn label() -> String {
    "label".into()
}

/// The sets and how to slice them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default)]
    pub data_root: Option<PathBuf>,
    #[serde(default = "default_slices")]
    pub slices: Vec<String>,
    pub sets: Vec<EvalSet>,
}

fn default_slices() -> Vec<String> {
    DEFAULT_SLICES.iter().map(|s| s.to_string()).collect()
}

/// A TOML file that could not be read or parsed, named.
#[derive(Debug, thiserror::Error)]
pub enum TomlFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

/// Reads and parses the TOML file at `path` (an eval config, a behaviour
/// suite).
pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TomlFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TomlFileError::Io {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| TomlFileError::Parse {
        path: path.into(),
        source,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum EvalConfigError {
    #[error(transparent)]
    File(#[from] TomlFileError),
    #[error("{path}: lists no [[sets]]")]
    NoSets { path: PathBuf },
}

impl EvalConfig {
    /// Reads the config; set paths are resolved against `data_root`
    /// (`override_root`, else the file's own `data_root` relative to the
    /// file, else the file's folder).
    pub fn load(path: &Path, override_root: Option<&Path>) -> Result<Self, EvalConfigError> {
        let mut config: Self = read_toml(path)?;
        if config.sets.is_empty() {
            return Err(EvalConfigError::NoSets { path: path.into() });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let root = match (override_root, &config.data_root) {
            (Some(r), _) => r.to_path_buf(),
            (None, Some(r)) => base.join(r),
            (None, None) => base.to_path_buf(),
        };
        for set in &mut config.sets {
            set.path = root.join(&set.path);
        }
        config.data_root = Some(root);
        Ok(config)
    }
}

impl EvalSet {
    /// How to read this set, keeping the `slices` fields.
    pub fn spec(&self, slices: &[String]) -> DataSpec {
        DataSpec {
            format: self.format,
            text: self.text.clone(),
            label: self.label.clone(),
            label_map: self.label_map.clone(),
            slices: slices.to_vec(),
            skip_labels: self.skip_labels.clone(),
            ..DataSpec::new(&self.path)
        }
    }
}

/// Why a set could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("the model has no head {head:?} (heads: {known})")]
    UnknownHead { head: String, known: String },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: {source}")]
    Metrics {
        path: PathBuf,
        #[source]
        source: super::metrics::MetricsError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_resolve_against_the_data_root() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eval.toml");
        std::fs::write(
            &path,
            r#"data_root = "data"
[[sets]]
head = "sensational"
path = "babe/test.jsonl"
label_map = { biased = "sensational" }
"#,
        )
        .unwrap();
        let c = EvalConfig::load(&path, None).unwrap();
        assert_eq!(c.sets[0].path, dir.path().join("data/babe/test.jsonl"));
        assert_eq!(c.slices, ["source", "outlet"]);
        let spec = c.sets[0].spec(&c.slices);
        assert_eq!(spec.label_map["biased"], "sensational");
        assert_eq!(spec.slices, ["source", "outlet"]);
        let c = EvalConfig::load(&path, Some(Path::new("/elsewhere"))).unwrap();
        assert_eq!(c.sets[0].path, Path::new("/elsewhere/babe/test.jsonl"));
        std::fs::write(&path, "sets = []\n").unwrap();
        assert!(matches!(
            EvalConfig::load(&path, None),
            Err(EvalConfigError::NoSets { .. })
        ));
        std::fs::write(&path, "[[sets]]\nhead = \"x\"\npath = \"y\"\nheads = 1\n").unwrap();
        assert!(matches!(
            EvalConfig::load(&path, None),
            Err(EvalConfigError::File(TomlFileError::Parse { .. }))
        ));
    }
}
