//! The model file: a versioned, checksummed container of every head, the
//! shared vocabulary and the training metadata.
//!
//! # File layout
//! ```text
//! offset  size  field
//!      0     8  magic  "SLANTMDL"
//!      8     4  format version, u32 little-endian (currently 11)
//!     12     4  reserved, zero
//!     16     8  payload length in bytes, u64 little-endian
//!     24    32  SHA-256 of the payload
//!     56     …  payload: postcard-encoded [`ModelData`]
//! ```
//! Loading checks, in order: the file size against a hard cap, the magic,
//! the version, the declared length against the actual size, the checksum,
//! the decoding (postcard; no allocation is sized by an unchecked length
//! beyond serde's 1 MiB cautious cap), and then the content (shapes, label
//! sets, thresholds, finite weights, a consistent vocabulary). Each failure
//! is a [`ModelError`] that names the file. The model id is the first 16 hex
//! digits of the payload checksum, so equal content means equal id.
//!
//! # Versions
//! - 3: heads without a scope; feature settings without the context and
//!   identity-class switches.
//! - 4: each head has a [`Scope`] (passage or headline), and the feature
//!   settings gain `negation_scope`, `title_marker` and `identity_classes`.
//!   postcard is positional, so a version 3 payload would not decode (or
//!   would decode wrongly): version 3 files are refused by their version.
//! - 5: a head may be a [`Mixture`] of per-source experts under a gate.
//!   Version 4 files are refused by their version, for the same reason.
//! - 6: the feature settings gain `first_word`. Version 5 files are
//!   refused by their version, for the same reason.
//! - 7: the feature settings gain `typo_aliases`. Version 6 files are
//!   refused by their version, for the same reason.
//! - 8: the feature settings gain `expand_contractions`. Version 7 files
//!   are refused by their version, for the same reason.
//! - 9: the feature settings gain `skip_handles`. Version 8 files are
//!   refused by their version, for the same reason.
//! - 10: a [`Mixture`] gains `after_contrast`. Version 9 files are
//!   refused by their version, for the same reason.
//! - 11: the feature settings gain `market_words`. Version 10 files are
//!   refused by their version, for the same reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::link;
use crate::data::hex;
use crate::features::{FeatureError, Vocabulary};

pub const MAGIC: [u8; 8] = *b"SLANTMDL";
pub const FORMAT_VERSION: u32 = 11;
pub const HEADER_LEN: usize = 56;
/// Larger files are refused before reading: no model needs this much.
pub const MAX_MODEL_BYTES: u64 = 1 << 30;
/// Most labels a head may have (scores live in fixed stack arrays).
pub const MAX_OUTPUTS: usize = 16;
/// Most score columns all heads together may have, as the scorer keeps
/// them (one less than its labels for each model; see [`link::kept`]).
pub const MAX_COLUMNS: usize = 44;

/// Where a head's training or dev data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// "train" or "dev".
    pub role: String,
    /// The path as written in the config (relative to its data root).
    pub path: String,
    pub sha256: String,
    pub rows: u64,
}

/// What a head is meant to read: any passage, or a headline (a title or
/// a social post) only. An article's body is never scored by a
/// headline-scope head: its title is. Written `"passage"` or `"headline"`
/// in configs, JSON and the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Any passage: a sentence, a paragraph, a title.
    #[default]
    Passage,
    /// Headlines and social posts only (e.g. clickbait).
    Headline,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passage => "passage",
            Self::Headline => "headline",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One head as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadData {
    pub name: String,
    /// What the head is meant to read (see [`Scope`]).
    pub scope: Scope,
    /// Label names. For two-class heads the second label is the positive
    /// one: the one whose probability the threshold applies to.
    pub labels: Vec<String>,
    /// Two-class heads: predict `labels[1]` when its probability is at least
    /// this. Multi-class heads: `None` (argmax).
    pub threshold: Option<f64>,
    /// n_features × outputs, feature-major; outputs = 1 for two classes
    /// (log-odds of `labels[1]`), else one per label.
    pub weights: Vec<f32>,
    pub intercept: Vec<f32>,
    /// Hyperparameters as chosen (e.g. "C" -> 4.0).
    pub hyperparameters: BTreeMap<String, f64>,
    /// Metrics on the dev data, "<file> <metric>" -> value.
    pub dev_metrics: BTreeMap<String, f64>,
    pub data: Vec<Fingerprint>,
    /// A mixture of per-source experts; `None` for a plain head (whose
    /// `weights` alone score it). In a mixture, `weights` and `intercept`
    /// are its joint model's, and empty when its joint weight is 0: a
    /// model with no share of the blend is neither trained nor kept.
    pub mixture: Option<Mixture>,
}

/// Whether a mixture of joint weight `joint_weight` has a joint model (one
/// with no share of the blend is neither trained nor kept).
pub fn has_joint(joint_weight: f64) -> bool {
    joint_weight > 0.0
}

/// A head that blends its joint model (trained on the sources that have
/// experts, in [`HeadData::weights`]) with one expert per source, weighted by a gate
/// that reads which source a passage is like:
/// `p(y|x) = λ·p_joint(y|x) + (1 − λ)·Σ_s g_s(x)·p_s(y|x)`.
///
/// One linear model over sources whose word senses conflict (movie reviews
/// and financial tweets) has to average them; each expert keeps its own,
/// and on a passage unlike every source the gate spreads its weight, so
/// the blend behaves as an ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    /// λ, the joint model's share, in [0, 1].
    pub joint_weight: f64,
    /// The sources, in the gate's label order (at least two).
    pub sources: Vec<String>,
    /// The gate: a linear model whose labels are the sources.
    pub gate: Linear,
    /// One per source, in the same order.
    pub experts: Vec<Expert>,
    /// The linear expert (an index into `experts`) that reads only what
    /// follows a passage's last contrasting "but" when scoring (see
    /// `text::contrast`); the gate and the other experts read it all.
    pub after_contrast: Option<u32>,
}

/// A linear model's weights (n_features × outputs, feature-major) and
/// intercepts (outputs), with outputs as [`link::outputs`] gives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub weights: Vec<f32>,
    pub intercept: Vec<f32>,
}

/// What a mixture answers for passages its gate gives to a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expert {
    /// A linear model over the head's labels, trained on the source alone.
    Linear(Linear),
    /// Fixed probabilities, one per label: a source whose rows all have
    /// one label (e.g. ordinary reporting, all `real` for the
    /// misinformation head) teaches the gate where that answer applies.
    Constant(Vec<f64>),
}

impl Mixture {
    /// Score columns (see [`link::kept`]) of the gate and the linear
    /// experts together.
    pub fn columns(&self, labels: usize) -> usize {
        let experts = self
            .experts
            .iter()
            .filter(|e| matches!(e, Expert::Linear(_)))
            .count();
        link::kept(self.sources.len()) + experts * link::kept(labels)
    }
}

/// The hyperparameter that says whether classes were weighted
/// ("balanced"): stored, as every hyperparameter, as a number, 1 or 0.
pub const CLASS_WEIGHT_BALANCED: &str = "class_weight_balanced";

/// The hyperparameter that says whether classes were balanced within
/// each training file (`class_weight = "balanced_per_source"`; then
/// [`CLASS_WEIGHT_BALANCED`] is 1 too).
pub const CLASS_WEIGHT_PER_SOURCE: &str = "class_weight_per_source";

/// Hyperparameters whose stored number means true (1) or false (0).
/// The hyperparameter that says the head's models were fitted again on
/// train + dev once their C and threshold were chosen (`refit = true`).
pub const REFIT_WITH_DEV: &str = "refit_with_dev";
const FLAGS: &[&str] = &[
    CLASS_WEIGHT_BALANCED,
    CLASS_WEIGHT_PER_SOURCE,
    REFIT_WITH_DEV,
];

/// A hyperparameter as it reads: a number, or a flag stored as 1 or 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Hyperparameter {
    Number(f64),
    Flag(bool),
}

impl std::fmt::Display for Hyperparameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(v) => write!(f, "{v}"),
            Self::Flag(b) => write!(f, "{b}"),
        }
    }
}

impl HeadData {
    /// Score columns of the head's own (joint) model.
    pub fn outputs(&self) -> usize {
        link::outputs(self.labels.len())
    }

    /// Whether the head has a model of its own: always for a plain head;
    /// for a mixture, when its joint weight is above 0.
    pub fn has_joint(&self) -> bool {
        self.mixture
            .as_ref()
            .is_none_or(|m| has_joint(m.joint_weight))
    }

    /// Score columns of the whole head as the scorer keeps them (see
    /// [`link::kept`]): its own model's, and a mixture's gate's and linear
    /// experts'.
    pub fn columns(&self) -> usize {
        usize::from(self.has_joint()) * link::kept(self.labels.len())
            + self
                .mixture
                .as_ref()
                .map_or(0, |m| m.columns(self.labels.len()))
    }

    /// The hyperparameters as they read (flags as true/false), by name.
    pub fn hyperparameters(&self) -> BTreeMap<&str, Hyperparameter> {
        self.hyperparameters
            .iter()
            .map(|(k, &v)| {
                let value = if FLAGS.contains(&k.as_str()) {
                    Hyperparameter::Flag(v != 0.0)
                } else {
                    Hyperparameter::Number(v)
                };
                (k.as_str(), value)
            })
            .collect()
    }
}

/// Everything a model file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelData {
    /// The slant version that trained it.
    pub slant_version: String,
    /// sha256 of the training config's bytes.
    pub config_sha256: String,
    pub vocabulary: Vocabulary,
    pub heads: Vec<HeadData>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: {len} bytes is larger than the {max}-byte limit for model files")]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("{path}: truncated: {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShort { path: PathBuf, len: u64 },
    #[error("{path}: not a slant model file (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("{path}: model format version {found} (or its flags) is not supported (this slant reads version {FORMAT_VERSION})")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("{path}: the header declares a {declared}-byte payload but {actual} bytes follow (truncated or padded file)")]
    LengthMismatch {
        path: PathBuf,
        declared: u64,
        actual: u64,
    },
    #[error("{path}: checksum mismatch: the file is corrupted")]
    Checksum { path: PathBuf },
    #[error("{path}: cannot decode the payload: {source}")]
    Decode {
        path: PathBuf,
        source: postcard::Error,
    },
    #[error("{path}: invalid model: {source}")]
    Content {
        path: PathBuf,
        #[source]
        source: InvalidModel,
    },
    /// A check beyond the file's content failed (the server's trial run).
    #[error("{path}: invalid model: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot encode the model: {0}")]
    Encode(postcard::Error),
}

impl ModelData {
    /// Encodes the file bytes: header then payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let payload = postcard::to_stdvec(self).map_err(ModelError::Encode)?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Writes the file atomically (a temporary file renamed into place), so
    /// a server watching the path never reads half a model.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Decodes and checks file bytes; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<(Self, String), ModelError> {
        let (payload, id) = Self::checked_payload(bytes, path)?;
        Self::decode(payload, id, path)
    }

    /// The payload of file bytes whose header, declared size and checksum
    /// hold, and the model id (the checksum's first 8 bytes, hex): what a
    /// reload needs to tell unchanged content without decoding it.
    pub fn checked_payload<'a>(
        bytes: &'a [u8],
        path: &Path,
    ) -> Result<(&'a [u8], String), ModelError> {
        let p = || path.to_path_buf();
        let len = bytes.len() as u64;
        if len > MAX_MODEL_BYTES {
            return Err(ModelError::TooLarge {
                path: p(),
                len,
                max: MAX_MODEL_BYTES,
            });
        }
        if bytes.len() < HEADER_LEN {
            if bytes.len() >= 8 && bytes[..8] != MAGIC {
                return Err(ModelError::BadMagic { path: p() });
            }
            return Err(ModelError::TooShort { path: p(), len });
        }
        let (header, payload) = bytes.split_at(HEADER_LEN);
        if header[..8] != MAGIC {
            return Err(ModelError::BadMagic { path: p() });
        }
        let word = |range: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b[..range.len()].copy_from_slice(&header[range]);
            u64::from_le_bytes(b)
        };
        let version = word(8..12) as u32;
        if version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion {
                path: p(),
                found: version,
            });
        }
        if word(12..16) != 0 {
            return Err(ModelError::UnsupportedVersion {
                path: p(),
                found: version,
            });
        }
        let declared = word(16..24);
        if declared != payload.len() as u64 {
            return Err(ModelError::LengthMismatch {
                path: p(),
                declared,
                actual: payload.len() as u64,
            });
        }
        let digest = Sha256::digest(payload);
        if digest.as_slice() != &header[24..56] {
            return Err(ModelError::Checksum { path: p() });
        }
        Ok((payload, hex(&digest[..8])))
    }

    /// Decodes a checked payload (see [`ModelData::checked_payload`]).
    pub(super) fn decode(
        payload: &[u8],
        id: String,
        path: &Path,
    ) -> Result<(Self, String), ModelError> {
        let p = || path.to_path_buf();
        let data: ModelData = postcard::from_bytes(payload)
            .map_err(|source| ModelError::Decode { path: p(), source })?;
        data.validate()
            .map_err(|source| ModelError::Content { path: p(), source })?;
        Ok((data, id))
    }

    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<(Self, String), ModelError> {
        let bytes = super::open::read_model_file(path)?;
        Self::from_bytes(&bytes, path)
    }

    /// Content checks beyond what decoding guarantees.
    fn validate(&self) -> Result<(), InvalidModel> {
        let n = self.vocabulary.terms.len();
        check_heads(
            self.heads
                .iter()
                .map(|h| (h.name.as_str(), h.labels.as_slice(), h.columns())),
        )?;
        for h in &self.heads {
            if let Some(m) = &h.mixture {
                m.validate(&h.name, h.labels.len(), n)?;
            }
            if h.has_joint() {
                check_linear(&h.name, "", &h.weights, &h.intercept, n, h.outputs())?;
            } else if !(h.weights.is_empty() && h.intercept.is_empty()) {
                return Err(InvalidModel::Mixture {
                    head: h.name.clone(),
                    reason: "joint weight 0, yet a joint model is stored (as slant wrote \
                             before such models were dropped: retrain it)"
                        .to_string(),
                });
            }
            match (h.labels.len(), h.threshold) {
                (2, Some(t)) if t > 0.0 && t < 1.0 => {}
                (2, threshold) => {
                    return Err(InvalidModel::Threshold {
                        head: h.name.clone(),
                        threshold,
                    })
                }
                (_, None) => {}
                (_, Some(_)) => {
                    return Err(InvalidModel::MultiClassThreshold {
                        head: h.name.clone(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Checks a linear model's shape (`n` features × `outputs`) and that its
/// numbers are finite; `part` names it within head `head` ("" for the
/// head's own).
fn check_linear(
    head: &str,
    part: &str,
    weights: &[f32],
    intercept: &[f32],
    n: usize,
    outputs: usize,
) -> Result<(), InvalidModel> {
    let head = || format!("{head}{part}");
    if weights.len() as u64 != n as u64 * outputs as u64 || intercept.len() != outputs {
        return Err(InvalidModel::Shape {
            head: head(),
            weights: weights.len(),
            intercepts: intercept.len(),
            features: n,
            outputs,
        });
    }
    if weights.iter().chain(intercept).any(|w| !w.is_finite()) {
        return Err(InvalidModel::NonFinite { head: head() });
    }
    Ok(())
}

impl Mixture {
    /// The mixture of head `head` (with `labels` labels, over `n`
    /// features): a joint weight in [0, 1], 2 to [`MAX_OUTPUTS`] distinct
    /// named sources, a gate over them, and one expert per source, linear
    /// over the labels or probabilities that sum to 1.
    fn validate(&self, head: &str, labels: usize, n: usize) -> Result<(), InvalidModel> {
        let bad = |reason: String| InvalidModel::Mixture {
            head: head.to_string(),
            reason,
        };
        if !(0.0..=1.0).contains(&self.joint_weight) {
            return Err(bad(format!(
                "joint weight {} is not in [0, 1]",
                self.joint_weight
            )));
        }
        let distinct: std::collections::BTreeSet<&String> = self.sources.iter().collect();
        if self.sources.len() < 2
            || self.sources.len() > MAX_OUTPUTS
            || distinct.len() != self.sources.len()
            || self.sources.iter().any(String::is_empty)
        {
            return Err(bad(format!(
                "sources {:?} must be 2 to {MAX_OUTPUTS} distinct, non-empty names",
                self.sources
            )));
        }
        if self.experts.len() != self.sources.len() {
            return Err(bad(format!(
                "{} experts for {} sources",
                self.experts.len(),
                self.sources.len()
            )));
        }
        let gate = &self.gate;
        let outputs = link::outputs(self.sources.len());
        check_linear(head, " (gate)", &gate.weights, &gate.intercept, n, outputs)?;
        for (source, expert) in self.sources.iter().zip(&self.experts) {
            match expert {
                Expert::Linear(e) => check_linear(
                    head,
                    &format!(" (expert {source})"),
                    &e.weights,
                    &e.intercept,
                    n,
                    link::outputs(labels),
                )?,
                Expert::Constant(p) => {
                    let sum: f64 = p.iter().sum();
                    if p.len() != labels
                        || p.iter().any(|x| !(0.0..=1.0).contains(x))
                        || (sum - 1.0).abs() > 1e-6
                    {
                        return Err(bad(format!(
                            "expert {source:?}: {p:?} are not {labels} probabilities summing to 1"
                        )));
                    }
                }
            }
        }
        if let Some(e) = self.after_contrast {
            if !matches!(self.experts.get(e as usize), Some(Expert::Linear(_))) {
                return Err(bad(format!(
                    "after_contrast {e} is not one of its {} experts, or not a linear one",
                    self.experts.len()
                )));
            }
        }
        Ok(())
    }
}

/// The rules every set of heads keeps, in a training config and in a
/// model file alike.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadsError {
    #[error("no heads")]
    NoHeads,
    #[error("the heads need {columns} score columns (one less than its labels for each model, a mixture's gate and experts included); at most {MAX_COLUMNS} are supported")]
    TooManyColumns { columns: usize },
    #[error("head name {0:?} is empty or repeated")]
    Name(String),
    #[error(
        "head {head:?}: labels {labels:?} must be 2 to {MAX_OUTPUTS} distinct, non-empty names"
    )]
    Labels { head: String, labels: Vec<String> },
}

/// Checks heads given as (name, labels, score columns): at least one,
/// names non-empty and distinct, 2 to [`MAX_OUTPUTS`] distinct non-empty
/// labels each, and at most [`MAX_COLUMNS`] score columns in all.
pub fn check_heads<'a>(
    heads: impl Iterator<Item = (&'a str, &'a [String], usize)> + Clone,
) -> Result<(), HeadsError> {
    if heads.clone().next().is_none() {
        return Err(HeadsError::NoHeads);
    }
    let columns: usize = heads.clone().map(|(_, _, c)| c).sum();
    if columns > MAX_COLUMNS {
        return Err(HeadsError::TooManyColumns { columns });
    }
    let mut names = std::collections::BTreeSet::new();
    for (name, labels, _) in heads {
        if name.is_empty() || !names.insert(name) {
            return Err(HeadsError::Name(name.to_string()));
        }
        let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
        if labels.len() < 2
            || labels.len() > MAX_OUTPUTS
            || distinct.len() != labels.len()
            || labels.iter().any(String::is_empty)
        {
            return Err(HeadsError::Labels {
                head: name.to_string(),
                labels: labels.to_vec(),
            });
        }
    }
    Ok(())
}

/// Why a model file's content (or its compilation) was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvalidModel {
    #[error(transparent)]
    Heads(#[from] HeadsError),
    #[error("head {head:?}: {weights} weights and {intercepts} intercepts for {features} features × {outputs} outputs")]
    Shape {
        head: String,
        weights: usize,
        intercepts: usize,
        features: usize,
        outputs: usize,
    },
    #[error("head {head:?}: non-finite weight")]
    NonFinite { head: String },
    #[error("head {head:?}: two-class threshold {threshold:?} is not in (0, 1)")]
    Threshold {
        head: String,
        threshold: Option<f64>,
    },
    #[error("head {head:?}: a multi-class head has no threshold")]
    MultiClassThreshold { head: String },
    #[error("head {head:?}: mixture: {reason}")]
    Mixture { head: String, reason: String },
    #[error("vocabulary: {0}")]
    Vocabulary(#[from] FeatureError),
    #[error("no perfect hash found for {keys} features")]
    NoPerfectHash { keys: usize },
}

#[cfg(test)]
mod tests {
    use super::super::tiny;
    use super::*;
    use crate::model::Model;
    use crate::model::Workspace;

    #[test]
    fn round_trip_is_byte_identical_and_scores() {
        let data = tiny();
        let bytes = data.to_bytes().unwrap();
        let (back, id) = ModelData::from_bytes(&bytes, Path::new("m")).unwrap();
        assert_eq!(back, data);
        assert_eq!(back.to_bytes().unwrap(), bytes);
        // The scope is stored, and reads as a string in JSON.
        let mut headline = tiny();
        headline.heads[1].scope = Scope::Headline;
        let (back, _) =
            ModelData::from_bytes(&headline.to_bytes().unwrap(), Path::new("m")).unwrap();
        assert_eq!(back.heads[1].scope, Scope::Headline);
        assert_eq!(
            serde_json::to_string(&Scope::Headline).unwrap(),
            "\"headline\""
        );
        assert_eq!(id.len(), 16);
        let model = Model::from_data(back, id, Path::new("m")).unwrap();
        let mut ws = Workspace::default();
        let s = model.score(
            "Good news, SHOCKING news!!",
            &model.every_head(),
            crate::model::Explain::Features(2),
            &mut ws,
        );
        assert_eq!(s.len(), 2);
        assert_eq!(model.heads()[s[0].head].labels[s[0].label], "positive");
        assert!((s[0].probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(s[1].label, 1);
        let top = &s[1].contributions[0];
        assert_eq!(model.featurizer().term(top.feature.unwrap()), "<caps>");
        assert_eq!(top.spans, [(11, 19)]);
        // Head selection keeps the requested order.
        let s = model.score("bad", &[1, 0], crate::model::Explain::None, &mut ws);
        assert_eq!((s[0].head, s[1].head), (1, 0));
        assert!(s[0].contributions.is_empty());
    }

    /// A model fitted with `settings` (and a small lexicon when `lexicon`),
    /// with pseudo-random weights; `extra_heads` more three-class heads
    /// widen its rows (and the scorer's accumulators). `None` when the

    #[test]
    fn corrupt_files_are_refused_with_named_errors() {
        let bytes = tiny().to_bytes().unwrap();
        let p = Path::new("models/x.slant");
        let err = |b: &[u8]| ModelData::from_bytes(b, p).unwrap_err();
        assert!(matches!(err(&bytes[..10]), ModelError::TooShort { .. }));
        assert!(matches!(
            err(&bytes[..bytes.len() - 1]),
            ModelError::LengthMismatch { .. }
        ));
        let mut b = bytes.clone();
        b[0] = b'X';
        assert!(matches!(err(&b), ModelError::BadMagic { .. }));
        // Version 4 to 10 files (heads without a mixture, settings without
        // `first_word`, `typo_aliases`, `expand_contractions`,
        // `skip_handles` or `market_words`, mixtures without
        // `after_contrast`) are refused by their version, with the message
        // that says so.
        for old in [4u8, 5, 6, 7, 8, 9, 10] {
            let mut b = bytes.clone();
            b[8] = old;
            let e = err(&b);
            assert!(
                matches!(e, ModelError::UnsupportedVersion { found, .. } if found == u32::from(old))
            );
            assert!(
                e.to_string().contains(&format!("format version {old}")),
                "{e}"
            );
            assert!(e.to_string().contains("reads version 11"), "{e}");
        }
        let mut b = bytes.clone();
        b[8] = 12;
        assert!(matches!(
            err(&b),
            ModelError::UnsupportedVersion { found: 12, .. }
        ));
        let mut b = bytes.clone();
        let last = b.len() - 1;
        b[last] ^= 1;
        let e = err(&b);
        assert!(matches!(e, ModelError::Checksum { .. }));
        assert!(e
            .to_string()
            .starts_with("models/x.slant: checksum mismatch"));
        // An absurd declared length is refused before any allocation.
        let mut b = bytes.clone();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(err(&b), ModelError::LengthMismatch { .. }));
        // Well-formed container, inconsistent content.
        let mut d = tiny();
        d.heads[0].weights.pop();
        assert!(matches!(
            err(&d.to_bytes().unwrap()),
            ModelError::Content { .. }
        ));
        let mut d = tiny();
        d.heads[1].threshold = Some(1.5);
        assert!(matches!(
            err(&d.to_bytes().unwrap()),
            ModelError::Content { .. }
        ));
    }

    #[test]
    fn mixtures_round_trip_and_inconsistent_ones_are_refused() {
        let mut data = tiny();
        super::super::make_mixture(&mut data, 0, 1, 0.3);
        super::super::make_mixture(&mut data, 1, 2, 0.3);
        let bytes = data.to_bytes().unwrap();
        let (back, _) = ModelData::from_bytes(&bytes, Path::new("m")).unwrap();
        assert_eq!(back, data);
        // 2 + 2 + 2 × 2 and 1 + 2 + 2 × 1 score columns.
        assert_eq!(
            back.heads.iter().map(HeadData::columns).collect::<Vec<_>>(),
            [8, 5]
        );
        let refused = |change: &dyn Fn(&mut Mixture), says: &str| {
            let mut d = data.clone();
            if let Some(m) = d.heads[1].mixture.as_mut() {
                change(m);
            }
            let e = ModelData::from_bytes(&d.to_bytes().unwrap(), Path::new("m")).unwrap_err();
            assert!(matches!(e, ModelError::Content { .. }), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        };
        refused(&|m| m.joint_weight = 1.5, "joint weight 1.5");
        refused(&|m| m.sources[2] = "a".into(), "distinct");
        refused(
            &|m| {
                m.experts.pop();
            },
            "2 experts for 3 sources",
        );
        refused(
            &|m| {
                m.gate.weights.pop();
            },
            "sensational (gate)",
        );
        refused(
            &|m| m.experts[1] = Expert::Constant(vec![0.5, 0.6]),
            "summing to 1",
        );
        refused(
            &|m| {
                if let Expert::Linear(l) = &mut m.experts[0] {
                    l.intercept[0] = f32::NAN;
                }
            },
            "sensational (expert a)",
        );
        refused(&|m| m.after_contrast = Some(3), "after_contrast 3");
        // Expert b answers a constant: it reads no passage.
        refused(&|m| m.after_contrast = Some(1), "not a linear one");
        let mut d = data.clone();
        if let Some(m) = d.heads[1].mixture.as_mut() {
            m.after_contrast = Some(2);
        }
        let (back, _) = ModelData::from_bytes(&d.to_bytes().unwrap(), Path::new("m")).unwrap();
        assert_eq!(back, d);
        // Joint weight 0: no joint model is kept, and its columns go.
        let mut lean = tiny();
        super::super::make_mixture(&mut lean, 1, 2, 0.0);
        let (back, _) = ModelData::from_bytes(&lean.to_bytes().unwrap(), Path::new("m")).unwrap();
        assert!(!back.heads[1].has_joint());
        assert_eq!(back.heads[1].columns(), 4);
        refused(
            &|m| m.joint_weight = 0.0,
            "joint weight 0, yet a joint model",
        );
        let mut d = lean.clone();
        if let Some(m) = d.heads[1].mixture.as_mut() {
            m.joint_weight = 0.3;
        }
        let e = ModelData::from_bytes(&d.to_bytes().unwrap(), Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("sensational"), "{e}");
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let bytes = tiny().to_bytes().unwrap();
        for i in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let e = ModelData::from_bytes(&b, Path::new("m")).unwrap_err();
            let expected = match i {
                0..8 => matches!(e, ModelError::BadMagic { .. }),
                8..16 => matches!(e, ModelError::UnsupportedVersion { .. }),
                16..24 => matches!(e, ModelError::LengthMismatch { .. }),
                _ => matches!(e, ModelError::Checksum { .. }),
            };
            assert!(expected, "flip at {i}: {e}");
        }
    }
}
