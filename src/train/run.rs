//! Training: reads every head's data, fits the shared featurizer, then fits
//! each head's logistic regression along its C grid (warm-started), picks C
//! and (two-class heads) the decision threshold on dev, and assembles the
//! model file's data.
//!
//! C and the threshold maximise the mean macro-F1 over the head's dev
//! files, so each domain counts equally however large its dev file is.
//! Everything is deterministic: same data and config, same bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use linfa::traits::{FitWith, Predict};
use linfa::{DatasetBase, ParamGuard};
use ndarray::{Array1, Array2};
use rayon::prelude::*;

use super::config::{ClassWeight, HeadConfig, TrainConfig};
use super::lbfgs::Termination;
use super::logistic::{LinearModel, LogisticParams, SolverError};
use super::records::SparseRecords;
use crate::data::{read_labeled, read_lexicon, DataError, Example};
use crate::eval::metrics::{ClassificationReport, MetricsError};
use crate::features::{FeatureError, Featurizer, Scratch};
use crate::model::{Fingerprint, HeadData, ModelData};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("featurizer: {0}")]
    Features(#[from] FeatureError),
    #[error("head {head:?}: {source}")]
    Solver { head: String, source: SolverError },
    #[error("head {head:?}: {source}")]
    Metrics { head: String, source: MetricsError },
}

/// Progress callbacks, so the CLI can draw bars and tests stay quiet.
pub trait Progress {
    /// A step with `total` units starts.
    fn start(&mut self, _step: &str, _total: u64) {}
    fn advance(&mut self, _n: u64) {}
    fn finish(&mut self) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

/// Options beyond the config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Skip (and count) invalid input lines instead of stopping.
    pub skip_invalid: bool,
}

/// What training produced, with a per-head summary for the CLI.
pub struct Trained {
    pub model: ModelData,
    pub summary: Vec<HeadSummary>,
    pub skipped: Vec<(PathBuf, u64, String)>,
}

#[derive(Debug, Clone)]
pub struct HeadSummary {
    pub head: String,
    pub c: f64,
    pub threshold: Option<f64>,
    pub train_rows: usize,
    /// Seconds to featurize the training rows plus one cold fit (the
    /// grid's first, at its smallest C; later points start from the
    /// previous optimum): the figure comparable to a scikit-learn
    /// pipeline's fit.
    pub fit_seconds: f64,
    /// Seconds spent on the whole C grid.
    pub grid_seconds: f64,
    /// Iterations of the fit at the chosen C.
    pub iterations: u64,
    /// The fits along the C grid that stopped before the gradient
    /// tolerance: (C, iterations, how it ended).
    pub unconverged: Vec<(f64, u64, Termination)>,
    /// dev file -> (accuracy, macro-F1)
    pub dev: Vec<(String, f64, f64)>,
}

struct HeadInputs {
    train: Vec<Example>,
    train_weight: Vec<f32>,
    /// Rows of each training file, in order.
    train_sources: Vec<usize>,
    /// Each training file's path and text column, in order: what the
    /// vocabulary counts once however many heads read the file.
    train_files: Vec<(PathBuf, String)>,
    dev: Vec<(String, Vec<Example>)>,
    prints: Vec<Fingerprint>,
}

/// Trains every head of `config`.
pub fn train(
    config: &TrainConfig,
    config_bytes: &[u8],
    options: &TrainOptions,
    progress: &mut dyn Progress,
) -> Result<Trained, TrainError> {
    let settings = config.features.check_ref()?.clone();
    let mut skipped = Vec::new();
    // 1. Read every file once.
    let mut heads = Vec::with_capacity(config.heads.len());
    for h in &config.heads {
        let mut d = HeadInputs {
            train: Vec::new(),
            train_weight: Vec::new(),
            train_sources: Vec::new(),
            train_files: Vec::new(),
            dev: Vec::new(),
            prints: Vec::new(),
        };
        for (role, specs) in [("train", &h.train), ("dev", &h.dev)] {
            for spec in specs {
                let resolved = config.resolve(spec);
                let read = read_labeled(&resolved, &h.labels, options.skip_invalid)?;
                if read.skipped > 0 {
                    skipped.push((
                        resolved.path.clone(),
                        read.skipped,
                        read.first_skip.clone().unwrap_or_default(),
                    ));
                }
                d.prints.push(Fingerprint {
                    role: role.into(),
                    path: spec.path.display().to_string(),
                    sha256: read.sha256,
                    rows: read.examples.len() as u64,
                });
                if role == "train" {
                    let rows = read.examples.len();
                    d.train_weight
                        .extend(std::iter::repeat_n(spec.weight, rows));
                    d.train_sources.push(rows);
                    d.train_files
                        .push((resolved.path.clone(), spec.text.clone()));
                    d.train.extend(read.examples);
                } else {
                    d.dev.push((spec.path.display().to_string(), read.examples));
                }
            }
        }
        heads.push(d);
    }
    // 2. One featurizer for all heads, fitted on every training text: each
    // file once, however many heads read it (a file read by several heads,
    // with other labels or weights, would otherwise count its terms'
    // documents twice and shift every idf).
    let corpus = vocabulary_corpus(&heads);
    progress.start("vocabulary", corpus.len() as u64);
    let corpus = corpus.into_iter();
    let lexicon = match &config.lexicon {
        Some(path) => read_lexicon(path)?.0,
        None => Vec::new(),
    };
    let featurizer =
        Featurizer::fit_with_lexicon(&settings, &lexicon, corpus, || progress.advance(1))?;
    progress.finish();
    // 3. Each head.
    let mut out_heads = Vec::new();
    let mut summary = Vec::new();
    for (h, d) in config.heads.iter().zip(heads) {
        let (head, s) = train_head(h, d, &featurizer, progress)?;
        out_heads.push(head);
        summary.push(s);
    }
    let model = ModelData {
        slant_version: env!("CARGO_PKG_VERSION").to_string(),
        config_sha256: crate::data::hex(&<sha2::Sha256 as sha2::Digest>::digest(config_bytes)),
        vocabulary: featurizer.vocabulary().clone(),
        heads: out_heads,
    };
    Ok(Trained {
        model,
        summary,
        skipped,
    })
}

/// The texts the vocabulary is fitted on: every head's training rows,
/// each file (path and text column) once, in config order.
fn vocabulary_corpus(heads: &[HeadInputs]) -> Vec<&str> {
    let mut seen = std::collections::BTreeSet::new();
    let mut corpus = Vec::new();
    for d in heads {
        let mut start = 0;
        for (file, &rows) in d.train_files.iter().zip(&d.train_sources) {
            if seen.insert(file) {
                corpus.extend(
                    d.train
                        .get(start..start + rows)
                        .unwrap_or_default()
                        .iter()
                        .map(|e| e.text.as_str()),
                );
            }
            start += rows;
        }
    }
    corpus
}

/// Featurizes passages into a sparse matrix, on every core (rayon; rows
/// are independent and collected in order, so the result does not depend
/// on the thread count).
fn matrix(featurizer: &Featurizer, examples: &[Example]) -> SparseRecords {
    let rows: Vec<Vec<(u32, f32)>> = examples
        .par_iter()
        .map_init(Scratch::default, |scratch, e| {
            featurizer.transform(&e.text, scratch).to_vec()
        })
        .collect();
    SparseRecords::from_rows(featurizer.len(), rows.iter().map(Vec::as_slice))
}

/// Each training row's class weight: [`class_weights`] over the whole
/// head, or over each file alone with `balanced_per_source`.
fn row_class_weights(h: &HeadConfig, y: &[usize], sources: &[usize]) -> Vec<f32> {
    if h.class_weight != ClassWeight::BalancedPerSource {
        let cw = class_weights(h, y);
        return y.iter().map(|&c| cw[c]).collect();
    }
    let mut out = Vec::with_capacity(y.len());
    let mut start = 0;
    for &rows in sources {
        let part = y.get(start..start + rows).unwrap_or_default();
        let cw = class_weights(h, part);
        out.extend(part.iter().map(|&c| cw[c]));
        start += rows;
    }
    out
}

/// Class weights over the rows `y`: 1 each, or n / (k · n_class).
fn class_weights(h: &HeadConfig, y: &[usize]) -> Vec<f32> {
    let k = h.labels.len();
    match h.class_weight {
        ClassWeight::None => vec![1.0; k],
        ClassWeight::Balanced | ClassWeight::BalancedPerSource => {
            let mut counts = vec![0usize; k];
            y.iter().for_each(|&c| counts[c] += 1);
            counts
                .iter()
                .map(|&n| {
                    if n == 0 {
                        0.0
                    } else {
                        y.len() as f32 / (k as f32 * n as f32)
                    }
                })
                .collect()
        }
    }
}

struct DevSet {
    name: String,
    x: SparseRecords,
    y: Vec<usize>,
}

/// Mean macro-F1 over dev sets at a threshold.
fn dev_score(
    labels: &[String],
    sets: &[DevSet],
    probs: &[Array2<f64>],
    threshold: Option<f64>,
) -> Result<f64, MetricsError> {
    let mut sum = 0.0;
    for (s, p) in sets.iter().zip(probs) {
        sum += dev_report(labels, s, p, threshold)?.macro_f1;
    }
    Ok(sum / sets.len() as f64)
}

/// A dev set's metrics under the head's rule (restricted to the labels the
/// set uses, as `slant eval` does).
fn dev_report(
    labels: &[String],
    set: &DevSet,
    probs: &Array2<f64>,
    threshold: Option<f64>,
) -> Result<ClassificationReport, MetricsError> {
    let decide = |p: &[f64]| crate::model::decide(threshold, p);
    Ok(crate::eval::report(labels, &set.y, probs.view(), decide)?.1)
}

fn train_head(
    h: &HeadConfig,
    d: HeadInputs,
    featurizer: &Featurizer,
    progress: &mut dyn Progress,
) -> Result<(HeadData, HeadSummary), TrainError> {
    let solver = |source| TrainError::Solver {
        head: h.name.clone(),
        source,
    };
    let metrics = |source| TrainError::Metrics {
        head: h.name.clone(),
        source,
    };
    let k = h.labels.len();
    let featurize_start = Instant::now();
    let x = matrix(featurizer, &d.train);
    let featurize_seconds = featurize_start.elapsed().as_secs_f64();
    let y: Vec<usize> = d.train.iter().map(|e| e.label).collect();
    let cw = row_class_weights(h, &y, &d.train_sources);
    let mut weights: Array1<f32> = cw
        .iter()
        .zip(&d.train_weight)
        .map(|(&c, &w)| w * c)
        .collect();
    if h.balance_sources && !d.train_sources.is_empty() {
        let mean = y.len() as f32 / d.train_sources.len() as f32;
        let mut start = 0;
        for &rows in &d.train_sources {
            let scale = if rows == 0 { 0.0 } else { mean / rows as f32 };
            weights
                .slice_mut(ndarray::s![start..start + rows])
                .mapv_inplace(|w| w * scale);
            start += rows;
        }
    }
    let dataset = DatasetBase::new(x, Array1::from(y)).with_weights(weights);
    let dev: Vec<DevSet> = d
        .dev
        .iter()
        .map(|(name, ex)| DevSet {
            name: name.clone(),
            x: matrix(featurizer, ex),
            y: ex.iter().map(|e| e.label).collect(),
        })
        .collect();
    let mut grid = h.c_grid.clone();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    progress.start(&format!("head {}", h.name), grid.len() as u64);
    let grid_start = Instant::now();
    let mut previous: Option<LinearModel> = None;
    // (score, C, threshold, model)
    let mut best: Option<(f64, f64, Option<f64>, LinearModel)> = None;
    let mut unconverged = Vec::new();
    // The first fit starts cold; its time is the head's `fit_seconds`.
    let mut cold_seconds = None;
    for &c in &grid {
        let t = Instant::now();
        let params = LogisticParams::new(k)
            .c(c)
            .max_iterations(h.max_iterations)
            .gradient_tolerance(h.tolerance)
            .check()
            .map_err(solver)?;
        let model = params
            .fit_with(previous.as_ref(), &dataset)
            .map_err(solver)?;
        cold_seconds.get_or_insert(t.elapsed().as_secs_f64());
        if !model.termination.converged() {
            unconverged.push((c, model.iterations, model.termination));
        }
        let probs: Vec<Array2<f64>> = dev
            .iter()
            .map(|s| model.predict(&DatasetBase::new(s.x.clone(), ())))
            .collect();
        let threshold = if k == 2 {
            if h.tune_threshold {
                Some(tune_threshold(&h.labels, &dev, &probs).map_err(metrics)?)
            } else {
                Some(0.5)
            }
        } else {
            None
        };
        let score = dev_score(&h.labels, &dev, &probs, threshold).map_err(metrics)?;
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, c, threshold, model.clone()));
        }
        previous = Some(model);
        progress.advance(1);
    }
    progress.finish();
    let grid_seconds = grid_start.elapsed().as_secs_f64();
    let Some((_, c, threshold, model)) = best else {
        return Err(solver(SolverError::Empty));
    };
    let fit_seconds = featurize_seconds + cold_seconds.unwrap_or_default();
    let mut dev_metrics = BTreeMap::new();
    let mut dev_summary = Vec::new();
    for s in &dev {
        let p: Array2<f64> = model.predict(&DatasetBase::new(s.x.clone(), ()));
        let r = dev_report(&h.labels, s, &p, threshold).map_err(metrics)?;
        dev_metrics.insert(format!("{} accuracy", s.name), r.accuracy);
        dev_metrics.insert(format!("{} macro_f1", s.name), r.macro_f1);
        dev_metrics.insert(format!("{} log_loss", s.name), r.log_loss);
        dev_summary.push((s.name.clone(), r.accuracy, r.macro_f1));
    }
    let mut hyperparameters = BTreeMap::new();
    hyperparameters.insert("C".to_string(), c);
    hyperparameters.insert(
        crate::model::CLASS_WEIGHT_BALANCED.to_string(),
        f64::from(u8::from(h.class_weight != ClassWeight::None)),
    );
    if h.class_weight == ClassWeight::BalancedPerSource {
        hyperparameters.insert(crate::model::CLASS_WEIGHT_PER_SOURCE.to_string(), 1.0);
    }
    let head = HeadData {
        name: h.name.clone(),
        scope: h.scope,
        labels: h.labels.clone(),
        threshold,
        weights: model.weights.iter().map(|&w| w as f32).collect(),
        intercept: model.intercept.iter().map(|&w| w as f32).collect(),
        hyperparameters,
        dev_metrics,
        data: d.prints,
    };
    let summary = HeadSummary {
        head: h.name.clone(),
        c,
        threshold,
        train_rows: dataset.records.matrix().rows(),
        fit_seconds,
        grid_seconds,
        iterations: model.iterations,
        unconverged,
        dev: dev_summary,
    };
    Ok((head, summary))
}

/// The threshold on P(labels[1]) in [0.05, 0.95] (steps of 0.01) with the
/// best mean dev macro-F1; ties go to the one nearest 0.5.
fn tune_threshold(
    labels: &[String],
    dev: &[DevSet],
    probs: &[Array2<f64>],
) -> Result<f64, MetricsError> {
    let mut best = (f64::NEG_INFINITY, 0.5);
    for i in 5..=95 {
        let t = f64::from(i) / 100.0;
        let s = dev_score(labels, dev, probs, Some(t))?;
        let closer = (t - 0.5).abs() < (best.1 - 0.5f64).abs();
        if s > best.0 + 1e-12 || ((s - best.0).abs() <= 1e-12 && closer) {
            best = (s, t);
        }
    }
    Ok(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(class_weight: &str) -> HeadConfig {
        toml::from_str(&format!(
            "name = \"h\"\nlabels = [\"a\", \"b\"]\nclass_weight = \"{class_weight}\"\n\
             train = [{{ path = \"t\" }}]\ndev = [{{ path = \"d\" }}]\n"
        ))
        .unwrap()
    }

    #[test]
    fn balanced_per_source_balances_each_file_alone() {
        // File 1: three of class 0, one of class 1. File 2: two of class 0.
        let y = [0, 0, 0, 1, 0, 0];
        let sources = [4, 2];
        let whole = row_class_weights(&head("balanced"), &y, &sources);
        // Over the head: 6 rows, 5 of class 0, 1 of class 1.
        assert!((whole[0] - 6.0 / 10.0).abs() < 1e-6 && (whole[3] - 3.0).abs() < 1e-6);
        let per = row_class_weights(&head("balanced_per_source"), &y, &sources);
        let expected = [4.0 / 6.0, 4.0 / 6.0, 4.0 / 6.0, 2.0, 0.0, 0.0];
        // A one-class file: its class weighs n / (k · n) = 1 / 2.
        let expected = [&expected[..4], &[0.5, 0.5]].concat();
        for (a, b) in per.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{per:?}");
        }
        assert_eq!(row_class_weights(&head("none"), &y, &sources), [1.0; 6]);
    }

    #[test]
    fn the_vocabulary_reads_each_file_once() {
        let example = |text: &str| Example {
            text: text.into(),
            label: 0,
            tags: vec![],
        };
        let inputs = |files: &[(&str, &[&str])]| HeadInputs {
            train: files
                .iter()
                .flat_map(|(_, rows)| rows.iter().map(|t| example(t)))
                .collect(),
            train_weight: vec![],
            train_sources: files.iter().map(|(_, rows)| rows.len()).collect(),
            train_files: files
                .iter()
                .map(|(p, _)| (PathBuf::from(p), "text".to_string()))
                .collect(),
            dev: vec![],
            prints: vec![],
        };
        let heads = [
            inputs(&[("a", &["a1", "a2"]), ("b", &["b1"])]),
            inputs(&[("b", &["b1"]), ("c", &["c1"])]),
        ];
        assert_eq!(vocabulary_corpus(&heads), ["a1", "a2", "b1", "c1"]);
    }
}
