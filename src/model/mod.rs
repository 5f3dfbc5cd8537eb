//! Model: the model file (a versioned, checksummed container of every head,
//! the shared vocabulary and the training metadata) and the compiled,
//! cache-friendly [`Model`] that scores passages.
//!
//! - `format`: the file layout, [`ModelData`], loading and its checks.
//! - `open`: reading a model file without trusting it (no blocking open,
//!   regular files only, the header checked before the payload is read).
//! - [`link`]: scores to probabilities (sigmoid, softmax); the solver
//!   imports them from here.
//! - `scorer`: the compiled [`Model`], its tables and the fast path.
//! - `table`: the scorer's perfect-hash tables of weight rows.
//! - `explain`: per-head scores with the features behind each decision.
//!
//! All heads share one featurizer: a passage is tokenized and looked up once,
//! and each vocabulary row holds every head's weights side by side, so one
//! cache line serves all heads.

mod explain;
mod format;
pub mod link;
mod open;
mod scorer;
mod table;

pub use explain::{Contribution, Explain, HeadScore};
pub use format::{
    check_heads, has_joint, Expert, Fingerprint, HeadData, HeadsError, Hyperparameter,
    InvalidModel, Linear, Mixture, ModelData, ModelError, Scope, CLASS_WEIGHT_BALANCED,
    CLASS_WEIGHT_PER_SOURCE, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_COLUMNS, MAX_MODEL_BYTES,
    MAX_OUTPUTS, REFIT_WITH_DEV,
};
pub use scorer::{argmax, decide, Head, Model, Workspace};

/// Whether this CPU runs AVX2 code (std checks once and caches it): what
/// the scorer's and the links' AVX2 builds are chosen by, at run time, so
/// that one binary runs on any x86_64.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// A two-head model over a three-document vocabulary, for tests.
#[cfg(test)]
pub(crate) fn tiny() -> ModelData {
    use crate::features::{FeatureParams, FeatureSettings, Featurizer};
    use linfa::ParamGuard;
    use std::collections::BTreeMap;
    let settings = FeatureParams(FeatureSettings::default()).check().unwrap();
    let f = Featurizer::fit(
        &settings,
        ["good news", "bad news", "SHOCKING news!!"],
        || {},
    )
    .unwrap();
    let n = f.len();
    let index = |t: &str| f.vocabulary().terms.iter().position(|x| x == t).unwrap();
    let mut sent = vec![0f32; n * 3];
    sent[index("good") * 3 + 2] = 2.0;
    sent[index("bad") * 3] = 2.0;
    let mut sens = vec![0f32; n];
    sens[index("<caps>")] = 3.0;
    sens[index("!!")] = 1.0;
    ModelData {
        slant_version: "test".into(),
        config_sha256: "0".repeat(64),
        vocabulary: f.vocabulary().clone(),
        heads: vec![
            HeadData {
                name: "sentiment".into(),
                scope: Scope::Passage,
                labels: vec!["negative".into(), "neutral".into(), "positive".into()],
                threshold: None,
                weights: sent,
                intercept: vec![0.0, 0.5, 0.0],
                hyperparameters: BTreeMap::new(),
                dev_metrics: BTreeMap::new(),
                data: vec![],
                mixture: None,
            },
            HeadData {
                name: "sensational".into(),
                scope: Scope::Passage,
                labels: vec!["not_sensational".into(), "sensational".into()],
                threshold: Some(0.4),
                weights: sens,
                intercept: vec![-1.0],
                hyperparameters: BTreeMap::new(),
                dev_metrics: BTreeMap::new(),
                data: vec![],
                mixture: None,
            },
        ],
    }
}

/// The constant expert's answer in [`make_mixture`]: 0.9 for the first
/// of `labels` labels, the rest shared by the others.
#[cfg(test)]
pub(crate) fn constant_answer(labels: usize) -> Vec<f64> {
    (0..labels)
        .map(|l| {
            if l == 0 {
                0.9
            } else {
                0.1 / (labels - 1) as f64
            }
        })
        .collect()
}

/// Makes head `head` of `data` a mixture of three sources (a linear
/// expert, a constant one, another linear one) with pseudo-random weights
/// from `seed` and joint weight `joint_weight`, for tests. At 0 the head
/// keeps no joint model.
#[cfg(test)]
pub(crate) fn make_mixture(data: &mut ModelData, head: usize, seed: u64, joint_weight: f64) {
    let n = data.vocabulary.terms.len();
    let mut unit = crate::testing::uniform(seed);
    let mut rnd = move || (unit() * 2.0 - 1.0) as f32;
    let h = &mut data.heads[head];
    let k = h.outputs();
    let labels = h.labels.len();
    let mut linear = |outputs: usize| Linear {
        weights: (0..n * outputs).map(|_| rnd()).collect(),
        intercept: (0..outputs).map(|_| rnd()).collect(),
    };
    let gate = linear(3);
    let first = linear(k);
    let second = linear(k);
    let constant = constant_answer(labels);
    if !has_joint(joint_weight) {
        h.weights.clear();
        h.intercept.clear();
    }
    h.mixture = Some(Mixture {
        joint_weight,
        sources: vec!["a".into(), "b".into(), "c".into()],
        gate,
        experts: vec![
            Expert::Linear(first),
            Expert::Constant(constant),
            Expert::Linear(second),
        ],
        after_contrast: None,
    });
}
