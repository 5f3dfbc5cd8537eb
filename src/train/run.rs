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

use linfa::dataset::Records;
use linfa::traits::{FitWith, Predict};
use linfa::{DatasetBase, ParamGuard};
use ndarray::{Array1, Array2};
use rayon::prelude::*;

use super::config::{ClassWeight, HeadConfig, Read, TrainConfig};
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
    #[error("head {head:?}: {key} = {expert:?} names a domain whose rows all have one label: its expert answers that label's frequency and reads no passage")]
    ConstantExpert {
        head: String,
        key: &'static str,
        expert: String,
    },
    #[error("head {head:?}: lexicon_words makes no rows: no word of the lexicon has |valence| >= {min_valence}, or its labels are not the head's")]
    LexiconWords { head: String, min_valence: f32 },
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
    /// C of the head's own model (none for a mixture without a joint
    /// model, whose joint weight is 0).
    pub c: Option<f64>,
    pub threshold: Option<f64>,
    pub train_rows: usize,
    /// Seconds to featurize the training rows plus one cold fit (the
    /// grid's first, at its smallest C; later points start from the
    /// previous optimum): the figure comparable to a scikit-learn
    /// pipeline's fit.
    pub fit_seconds: f64,
    /// Seconds spent on the whole C grid (and the refit, with `refit`).
    pub grid_seconds: f64,
    /// Iterations of the fit of the head's own model that was kept: at
    /// the chosen C, or, with `refit`, the refit's from it (none without a
    /// joint model).
    pub iterations: Option<u64>,
    /// The fits (along the C grid, and refits) that stopped before the
    /// gradient tolerance: (C, iterations, how it ended).
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
    /// vocabulary counts once however many heads read the file. `None`
    /// for rows the vocabulary does not count (the lexicon's words).
    train_files: Vec<Option<(PathBuf, String)>>,
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
    let (lexicon, lexicon_sha) = match &config.lexicon {
        Some(path) => read_lexicon(path)?,
        None => (Vec::new(), String::new()),
    };
    // Each head as trained: with the lexicon's words among its training
    // files, when it asks for them (their rows are made below).
    let configs: Vec<HeadConfig> = config
        .heads
        .iter()
        .map(|h| {
            let mut h = h.clone();
            h.train.extend(
                config
                    .lexicon
                    .as_deref()
                    .and_then(|path| h.lexicon_spec(path)),
            );
            h
        })
        .collect();
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
                        .push(Some((resolved.path.clone(), spec.text.clone())));
                    d.train.extend(read.examples);
                } else {
                    d.dev.push((spec.path.display().to_string(), read.examples));
                }
            }
        }
        if let (Some(w), Some(path)) = (&h.lexicon_words, &config.lexicon) {
            let rows = w
                .rows(&lexicon, &h.labels)
                .filter(|rows| !rows.is_empty())
                .ok_or_else(|| TrainError::LexiconWords {
                    head: h.name.clone(),
                    min_valence: w.min_valence,
                })?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            d.prints.push(Fingerprint {
                role: "train".into(),
                path: format!("{name}: words of |valence| >= {}", w.min_valence),
                sha256: lexicon_sha.clone(),
                rows: rows.len() as u64,
            });
            d.train_weight
                .extend(std::iter::repeat_n(w.weight, rows.len()));
            d.train_sources.push(rows.len());
            d.train_files.push(None);
            d.train
                .extend(rows.into_iter().map(|(word, label)| Example {
                    text: word.to_string(),
                    label,
                    tags: Vec::new(),
                }));
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
    let featurizer =
        Featurizer::fit_with_lexicon(&settings, &lexicon, corpus, || progress.advance(1))?;
    progress.finish();
    // 3. Each head.
    let mut out_heads = Vec::new();
    let mut summary = Vec::new();
    for (h, d) in configs.iter().zip(heads) {
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
            if file.as_ref().is_some_and(|f| seen.insert(f)) {
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
/// on the thread count), each feature's value times its `scale` (see
/// [`feature_scale`]).
fn matrix(featurizer: &Featurizer, examples: &[Example], scale: Option<&[f32]>) -> SparseRecords {
    let rows: Vec<Vec<(u32, f32)>> = examples
        .par_iter()
        .map_init(Scratch::default, |scratch, e| {
            let mut row = featurizer.transform(&e.text, scratch).to_vec();
            if let Some(scale) = scale {
                for (j, v) in &mut row {
                    *v *= scale.get(*j as usize).copied().unwrap_or(1.0);
                }
            }
            row
        })
        .collect();
    SparseRecords::from_rows(featurizer.len(), rows.iter().map(Vec::as_slice))
}

/// A head's scale of each feature while it is fitted: its `char_scale`
/// for the character n-grams, its `first_word` for the first-word
/// features and its `market_words` for the market markers (0 for a head
/// that does not read them: their weights stay zero), 1 for the rest;
/// `None` when that is 1 for every feature (nothing is multiplied, so the
/// model is the same bits as without the settings).
fn feature_scale(featurizer: &Featurizer, h: &HeadConfig) -> Option<Vec<f32>> {
    let read = Read::ALL.map(|r| {
        let features = match r {
            Read::FirstWord => featurizer.first_word_features().collect(),
            Read::MarketWords => featurizer.market_features(),
        };
        (features, h.read_scale(r))
    });
    let scaled = |(features, s): &&(Vec<u32>, f64)| *s != 1.0 && !features.is_empty();
    if h.char_scale == 1.0 && !read.iter().any(|r| scaled(&r)) {
        return None;
    }
    let mut scale = vec![1.0f32; featurizer.len()];
    if h.char_scale != 1.0 {
        for (_, j, _) in featurizer.char_keys() {
            if let Some(s) = scale.get_mut(j as usize) {
                *s = h.char_scale as f32;
            }
        }
    }
    for (features, s) in read.iter().filter(scaled) {
        for &j in features {
            if let Some(k) = scale.get_mut(j as usize) {
                *k = *s as f32;
            }
        }
    }
    Some(scale)
}

/// A fitted model's weights as stored: each feature's row times its
/// fitting scale, so that unscaled passages score as the scaled ones did
/// in the fit.
fn stored_weights(weights: &Array2<f64>, scale: Option<&[f32]>) -> Vec<f32> {
    let Some(scale) = scale else {
        return f32s(weights.iter().copied());
    };
    weights
        .outer_iter()
        .enumerate()
        .flat_map(|(j, row)| {
            let k = f64::from(scale.get(j).copied().unwrap_or(1.0));
            row.into_iter().map(move |&w| (w * k) as f32)
        })
        .collect()
}

/// Each training row's class weight: [`class_weights`] over the whole
/// head, or over each file alone with `balanced_per_source`.
fn row_class_weights(
    class_weight: ClassWeight,
    k: usize,
    y: &[usize],
    sources: &[usize],
) -> Vec<f32> {
    if class_weight != ClassWeight::BalancedPerSource {
        let cw = class_weights(class_weight, k, y);
        return y.iter().map(|&c| cw[c]).collect();
    }
    let mut out = Vec::with_capacity(y.len());
    let mut start = 0;
    for &rows in sources {
        let part = y.get(start..start + rows).unwrap_or_default();
        let cw = class_weights(class_weight, k, part);
        out.extend(part.iter().map(|&c| cw[c]));
        start += rows;
    }
    out
}

/// Class weights over the rows `y`: 1 each, or n / (k · n_class).
fn class_weights(class_weight: ClassWeight, k: usize, y: &[usize]) -> Vec<f32> {
    match class_weight {
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
    sets: &[&DevSet],
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

/// How one linear model is fitted: a plain head's settings, or those of
/// a mixture's part.
struct Fit<'a> {
    labels: &'a [String],
    c_grid: Vec<f64>,
    class_weight: ClassWeight,
    balance_sources: bool,
    max_iterations: u64,
    tolerance: f64,
    tune_threshold: bool,
}

impl<'a> Fit<'a> {
    fn of(h: &'a HeadConfig) -> Self {
        let mut c_grid = h.c_grid.clone();
        c_grid.sort_by(f64::total_cmp);
        c_grid.dedup();
        Self {
            labels: &h.labels,
            c_grid,
            class_weight: h.class_weight,
            balance_sources: h.balance_sources,
            max_iterations: h.max_iterations,
            tolerance: h.tolerance,
            tune_threshold: h.tune_threshold,
        }
    }
}

/// Training rows: the matrix, labels, each file's row count in order, and
/// each row's weight as the files give it.
struct Rows {
    x: SparseRecords,
    y: Vec<usize>,
    files: Vec<usize>,
    weight: Vec<f32>,
}

/// Each training file's `weight`, in order.
fn file_weights(h: &HeadConfig) -> Vec<f32> {
    h.train.iter().map(|spec| spec.weight).collect()
}

/// The model chosen along a C grid.
struct Fitted {
    model: LinearModel,
    c: f64,
    threshold: Option<f64>,
    /// Seconds of the grid's first (cold) fit.
    cold_seconds: f64,
    unconverged: Vec<(f64, u64, Termination)>,
}

/// Rows `x` (labels `y`) as the solver takes them: each row weighed by
/// its `weight` (its file's), its class weight and (with
/// `balance_sources`) its file's share (`files`: the files' row counts).
fn dataset(
    fit: &Fit,
    x: SparseRecords,
    y: Vec<usize>,
    files: &[usize],
    weight: &[f32],
) -> DatasetBase<SparseRecords, Array1<usize>> {
    let k = fit.labels.len();
    let cw = row_class_weights(fit.class_weight, k, &y, files);
    let mut weights: Array1<f32> = cw.iter().zip(weight).map(|(&c, &w)| w * c).collect();
    if fit.balance_sources && !files.is_empty() {
        let mean = y.len() as f32 / files.len() as f32;
        for r in file_ranges(files) {
            let scale = if r.is_empty() {
                0.0
            } else {
                mean / r.len() as f32
            };
            weights
                .slice_mut(ndarray::s![r])
                .mapv_inplace(|w| w * scale);
        }
    }
    DatasetBase::new(x, Array1::from(y)).with_weights(weights)
}

/// One fit of `fit` at `c`, warm-started from `previous`; noted in
/// `unconverged` when it stops short of the gradient tolerance.
fn fit_at(
    fit: &Fit,
    c: f64,
    previous: Option<&LinearModel>,
    dataset: &DatasetBase<SparseRecords, Array1<usize>>,
    unconverged: &mut Vec<(f64, u64, Termination)>,
) -> Result<LinearModel, FitError> {
    let model = LogisticParams::new(fit.labels.len())
        .c(c)
        .max_iterations(fit.max_iterations)
        .gradient_tolerance(fit.tolerance)
        .check()
        .map_err(FitError::Solver)?
        .fit_with(previous, dataset)
        .map_err(FitError::Solver)?;
    if !model.termination.converged() {
        unconverged.push((c, model.iterations, model.termination));
    }
    Ok(model)
}

/// Fits `fit` on `rows` along its C grid (warm-started, smallest C
/// first) and keeps the C (and, for two classes, threshold) with the best
/// mean dev macro-F1; with no dev sets, the first C. Hands the rows back
/// (a refit builds on them).
fn fit_grid(
    fit: &Fit,
    rows: Rows,
    dev: &[&DevSet],
    progress: &mut dyn Progress,
) -> Result<(Fitted, Rows), FitError> {
    let k = fit.labels.len();
    let Rows {
        x,
        y,
        files,
        weight,
    } = rows;
    let dataset = dataset(fit, x, y, &files, &weight);
    let mut previous: Option<LinearModel> = None;
    // (score, C, threshold, model)
    let mut best: Option<(f64, f64, Option<f64>, LinearModel)> = None;
    let mut unconverged = Vec::new();
    let mut cold_seconds = None;
    for &c in &fit.c_grid {
        let t = Instant::now();
        let model = fit_at(fit, c, previous.as_ref(), &dataset, &mut unconverged)?;
        cold_seconds.get_or_insert(t.elapsed().as_secs_f64());
        let probs: Vec<Array2<f64>> = dev.iter().map(|s| predict(&model, s)).collect();
        let threshold = match (k, fit.tune_threshold && !dev.is_empty()) {
            (2, true) => Some(tune_threshold(fit.labels, dev, &probs).map_err(FitError::Metrics)?),
            (2, false) => Some(0.5),
            _ => None,
        };
        let score = if dev.is_empty() {
            0.0
        } else {
            dev_score(fit.labels, dev, &probs, threshold).map_err(FitError::Metrics)?
        };
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, c, threshold, model.clone()));
        }
        previous = Some(model);
        progress.advance(1);
    }
    let Some((_, c, threshold, model)) = best else {
        return Err(FitError::Solver(SolverError::Empty));
    };
    let fitted = Fitted {
        model,
        c,
        threshold,
        cold_seconds: cold_seconds.unwrap_or_default(),
        unconverged,
    };
    let rows = Rows {
        x: dataset.records,
        y: dataset.targets.into_raw_vec_and_offset().0,
        files,
        weight,
    };
    Ok((fitted, rows))
}

/// The chosen model fitted once more at its C on `rows` (the training
/// rows with the dev files that join them, [`with_dev`]), warm-started
/// from it.
fn refit(
    fit: &Fit,
    chosen: &Fitted,
    rows: Rows,
    unconverged: &mut Vec<(f64, u64, Termination)>,
) -> Result<LinearModel, FitError> {
    let Rows {
        x,
        y,
        files,
        weight,
    } = rows;
    let dataset = dataset(fit, x, y, &files, &weight);
    fit_at(fit, chosen.c, Some(&chosen.model), &dataset, unconverged)
}

/// The training rows with each dev file that joins a training file
/// (`joins`, from [`HeadConfig::dev_joins`]) after that file's rows, at
/// that file's weight (`file_weight`): a file and its dev split count as
/// one source.
fn with_dev(rows: &Rows, dev: &[DevSet], joins: &[Option<usize>], file_weight: &[f32]) -> Rows {
    let mut parts = Vec::new();
    let (mut y, mut weight, mut files) = (Vec::new(), Vec::new(), Vec::new());
    for (f, own) in file_ranges(&rows.files).into_iter().enumerate() {
        let n = own.len();
        let w = file_weight.get(f).copied().unwrap_or(1.0);
        y.extend_from_slice(rows.y.get(own.clone()).unwrap_or_default());
        weight.extend_from_slice(rows.weight.get(own.clone()).unwrap_or_default());
        parts.push((&rows.x, own));
        let mut total = n;
        for (set, _) in dev.iter().zip(joins).filter(|(_, &j)| j == Some(f)) {
            let m = set.y.len();
            parts.push((&set.x, 0..m));
            y.extend_from_slice(&set.y);
            weight.extend(std::iter::repeat_n(w, m));
            total += m;
        }
        files.push(total);
    }
    Rows {
        x: SparseRecords::stack(rows.x.nfeatures(), &parts),
        y,
        files,
        weight,
    }
}

/// Each training row's weight in a mixture's gate: every domain weighs
/// the same, and within one each file (with rows) its `weight`'s share,
/// spread evenly over its rows. `rows`, `domain` and `weight` are per
/// file; the weights total the rows.
fn gate_weights(rows: &[usize], domain: &[usize], weight: &[f32], domains: usize) -> Vec<f32> {
    let total = rows.iter().sum::<usize>() as f32 / domains.max(1) as f32;
    // Each domain's files with rows, their weights summed (in file order).
    let mut domain_weight = vec![0f32; domains.max(1)];
    for ((&n, &d), &w) in rows.iter().zip(domain).zip(weight) {
        if let Some(sum) = domain_weight.get_mut(d).filter(|_| n > 0) {
            *sum += w;
        }
    }
    (0..rows.len())
        .flat_map(|f| {
            // With equal weights, `files` counts the domain's files with
            // rows (the weights' sum over one of them, exact).
            let files = domain_weight.get(domain[f]).copied().unwrap_or(0.0) / weight[f];
            let w = if files.is_finite() && files > 0.0 {
                total / (files * rows[f].max(1) as f32)
            } else {
                0.0
            };
            std::iter::repeat_n(w, rows[f])
        })
        .collect()
}

/// A fit's failure, before the head's (and part's) name is put on it.
enum FitError {
    Solver(SolverError),
    Metrics(MetricsError),
}

impl FitError {
    fn named(self, head: String) -> TrainError {
        match self {
            Self::Solver(source) => TrainError::Solver { head, source },
            Self::Metrics(source) => TrainError::Metrics { head, source },
        }
    }
}

fn predict(model: &LinearModel, set: &DevSet) -> Array2<f64> {
    model.predict(&DatasetBase::new(set.x.clone(), ()))
}

/// Each dev file's metrics under `threshold`, into the model's dev
/// metrics and the summary's (file, accuracy, macro-F1).
#[allow(clippy::type_complexity)]
fn dev_results(
    labels: &[String],
    dev: &[DevSet],
    probs: &[Array2<f64>],
    threshold: Option<f64>,
) -> Result<(BTreeMap<String, f64>, Vec<(String, f64, f64)>), MetricsError> {
    let mut dev_metrics = BTreeMap::new();
    let mut dev_summary = Vec::new();
    for (s, p) in dev.iter().zip(probs) {
        let r = dev_report(labels, s, p, threshold)?;
        dev_metrics.insert(format!("{} accuracy", s.name), r.accuracy);
        dev_metrics.insert(format!("{} macro_f1", s.name), r.macro_f1);
        dev_metrics.insert(format!("{} log_loss", s.name), r.log_loss);
        dev_summary.push((s.name.clone(), r.accuracy, r.macro_f1));
    }
    Ok((dev_metrics, dev_summary))
}

fn f32s(a: impl IntoIterator<Item = f64>) -> Vec<f32> {
    a.into_iter().map(|w| w as f32).collect()
}

fn train_head(
    h: &HeadConfig,
    d: HeadInputs,
    featurizer: &Featurizer,
    progress: &mut dyn Progress,
) -> Result<(HeadData, HeadSummary), TrainError> {
    let named = |e: FitError| e.named(h.name.clone());
    let featurize_start = Instant::now();
    let scale = feature_scale(featurizer, h);
    let scale = scale.as_deref();
    let x = matrix(featurizer, &d.train, scale);
    let featurize_seconds = featurize_start.elapsed().as_secs_f64();
    let y: Vec<usize> = d.train.iter().map(|e| e.label).collect();
    let dev: Vec<DevSet> = d
        .dev
        .iter()
        .map(|(name, ex)| DevSet {
            name: name.clone(),
            x: matrix(featurizer, ex, scale),
            y: ex.iter().map(|e| e.label).collect(),
        })
        .collect();
    let train_rows = y.len();
    let fit = Fit::of(h);
    let rows = Rows {
        x,
        y,
        files: d.train_sources.clone(),
        weight: d.train_weight.clone(),
    };
    if let Some(m) = &h.mixture {
        // The market markers, when one expert alone reads them.
        let unread = match &m.market_expert {
            Some(_) => featurizer.market_features(),
            None => Vec::new(),
        };
        let (head, mut summary) = train_mixture(h, m, d, rows, dev, scale, &unread, progress)?;
        summary.fit_seconds += featurize_seconds;
        return Ok((head, summary));
    }
    let fits = fit.c_grid.len() + usize::from(h.refit);
    progress.start(&format!("head {}", h.name), fits as u64);
    let grid_start = Instant::now();
    let every: Vec<&DevSet> = dev.iter().collect();
    let (fitted, rows) = fit_grid(&fit, rows, &every, progress).map_err(named)?;
    // Dev metrics are the chosen model's, before any refit on dev.
    let probs: Vec<Array2<f64>> = dev.iter().map(|s| predict(&fitted.model, s)).collect();
    let (dev_metrics, dev_summary) = dev_results(&h.labels, &dev, &probs, fitted.threshold)
        .map_err(|e| named(FitError::Metrics(e)))?;
    let mut unconverged = fitted.unconverged.clone();
    let model = if h.refit {
        let r = with_dev(&rows, &dev, &h.dev_joins(), &file_weights(h));
        let model = refit(&fit, &fitted, r, &mut unconverged).map_err(named)?;
        progress.advance(1);
        model
    } else {
        fitted.model
    };
    progress.finish();
    let grid_seconds = grid_start.elapsed().as_secs_f64();
    let Fitted {
        c,
        threshold,
        cold_seconds,
        ..
    } = fitted;
    let stored = linear_of(&model, scale);
    let head = HeadData {
        name: h.name.clone(),
        scope: h.scope,
        labels: h.labels.clone(),
        threshold,
        weights: stored.weights,
        intercept: stored.intercept,
        hyperparameters: hyperparameters(h, Some(c)),
        dev_metrics,
        data: d.prints,
        mixture: None,
    };
    let summary = HeadSummary {
        head: h.name.clone(),
        c: Some(c),
        threshold,
        train_rows,
        fit_seconds: featurize_seconds + cold_seconds,
        grid_seconds,
        iterations: Some(model.iterations),
        unconverged,
        dev: dev_summary,
    };
    Ok((head, summary))
}

/// The hyperparameters every head stores: C and how classes were weighed.
fn hyperparameters(h: &HeadConfig, c: Option<f64>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(c) = c {
        out.insert("C".to_string(), c);
    }
    out.insert(
        crate::model::CLASS_WEIGHT_BALANCED.to_string(),
        f64::from(u8::from(h.class_weight != ClassWeight::None)),
    );
    if h.class_weight == ClassWeight::BalancedPerSource {
        out.insert(crate::model::CLASS_WEIGHT_PER_SOURCE.to_string(), 1.0);
    }
    if h.char_scale != 1.0 {
        out.insert("char_scale".to_string(), h.char_scale);
    }
    for read in Read::ALL {
        let scale = h.read_scale(read);
        if scale != 0.0 {
            out.insert(read.key().to_string(), scale);
        }
    }
    if h.refit {
        out.insert(crate::model::REFIT_WITH_DEV.to_string(), 1.0);
    }
    out
}

/// A fitted model's weights and intercept as the model file stores them.
fn linear_of(model: &LinearModel, scale: Option<&[f32]>) -> crate::model::Linear {
    crate::model::Linear {
        weights: stored_weights(&model.weights, scale),
        intercept: f32s(model.intercept.iter().copied()),
    }
}

/// The labels' frequencies over the rows of `files` (indices into
/// `rows.files`), add-one smoothed over `k` labels, and how many labels
/// occur there.
fn label_frequencies(rows: &Rows, files: &[usize], k: usize) -> (Vec<f64>, usize) {
    let ranges = file_ranges(&rows.files);
    let mut counts = vec![0usize; k];
    for &f in files {
        let y = ranges.get(f).and_then(|r| rows.y.get(r.clone()));
        for &c in y.unwrap_or_default() {
            if let Some(n) = counts.get_mut(c) {
                *n += 1;
            }
        }
    }
    let n: usize = counts.iter().sum();
    let p = counts
        .iter()
        .map(|&c| (c as f64 + 1.0) / (n as f64 + k as f64))
        .collect();
    (p, counts.iter().filter(|&&c| c > 0).count())
}

/// Each file's rows, from the files' row counts in order.
fn file_ranges(files: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    files
        .iter()
        .map(|&n| {
            start += n;
            start - n..start
        })
        .collect()
}

/// The rows of `files` (indices into `rows.files`), in order.
fn subset(rows: &Rows, files: &[usize]) -> Rows {
    let ranges = file_ranges(&rows.files);
    let r: Vec<std::ops::Range<usize>> = files.iter().map(|&f| ranges[f].clone()).collect();
    Rows {
        x: rows.x.rows(&r),
        y: pick(&rows.y, &r),
        files: files.iter().map(|&f| rows.files[f]).collect(),
        weight: pick(&rows.weight, &r),
    }
}

/// The items of `v` in `ranges`, in order.
fn pick<T: Copy>(v: &[T], ranges: &[std::ops::Range<usize>]) -> Vec<T> {
    ranges
        .iter()
        .flat_map(|r| v.get(r.clone()).unwrap_or_default().iter().copied())
        .collect()
}

/// A mixture's expert while the head is trained: a fitted linear model, or
/// the constant answer of a domain of one label.
enum Part {
    Linear(Fitted),
    Constant(Vec<f64>),
}

impl Part {
    /// Its probabilities for every row of `set` (`k` labels).
    fn predict(&self, set: &DevSet, k: usize) -> Array2<f64> {
        match self {
            Self::Linear(e) => predict(&e.model, set),
            Self::Constant(p) => {
                Array2::from_shape_fn((set.y.len(), k), |(_, c)| p.get(c).copied().unwrap_or(0.0))
            }
        }
    }
}

/// A mixture head (see [`crate::train::MixtureConfig`]): its joint model
/// on the domains that have experts, one expert per such domain, the
/// gate over every domain, then the threshold tuned on the blend.
/// `unread`: columns that only the `market_expert` reads (cleared in every
/// other model's rows, so their weights there stay 0; empty: every model
/// reads every column).
#[allow(clippy::too_many_arguments)]
fn train_mixture(
    h: &HeadConfig,
    m: &crate::train::MixtureConfig,
    d: HeadInputs,
    all: Rows,
    dev: Vec<DevSet>,
    scale: Option<&[f32]>,
    unread: &[u32],
    progress: &mut dyn Progress,
) -> Result<(HeadData, HeadSummary), TrainError> {
    let part = |what: &str| {
        let name = format!("{} ({what})", h.name);
        move |e: FitError| e.named(name)
    };
    let k = h.labels.len();
    let train_rows = all.y.len();
    let domains = h.domains();
    let domain_of = |spec: &crate::data::DataSpec| {
        let d = spec.expert();
        domains.iter().position(|x| *x == d)
    };
    // The files of each domain.
    let files_of: Vec<Vec<usize>> = (0..domains.len())
        .map(|di| {
            (0..h.train.len())
                .filter(|&f| domain_of(&h.train[f]) == Some(di))
                .collect()
        })
        .collect();
    // A domain of one label gets a constant expert: that label's
    // frequency, add-one smoothed over the labels.
    let constant: Vec<Option<Vec<f64>>> = files_of
        .iter()
        .map(|files| {
            let (p, labels) = label_frequencies(&all, files, k);
            (labels <= 1).then_some(p)
        })
        .collect();
    let dev_domain: Vec<Option<usize>> = h.dev.iter().map(domain_of).collect();
    // The rows a model fits on: `unread` cleared unless it is the market
    // expert.
    let market = m
        .market_expert
        .as_ref()
        .and_then(|name| domains.iter().position(|d| d == name));
    let rows_for = |mut r: Rows, model: Option<usize>| {
        if model.is_none() || model != market {
            r.x.clear_columns(unread);
        }
        r
    };
    let every: Vec<&DevSet> = dev.iter().collect();
    let fit = Fit::of(h);
    let linear: Vec<usize> = (0..domains.len())
        .filter(|&di| constant[di].is_none())
        .collect();
    let has_joint = crate::model::has_joint(m.joint_weight);
    let models = usize::from(has_joint) + linear.len() + 1;
    let fits = fit.c_grid.len() * (models - 1) + 1 + usize::from(h.refit) * models;
    progress.start(&format!("head {} (mixture)", h.name), fits as u64);
    let grid_start = Instant::now();
    let mut cold = 0.0;
    let mut unconverged = Vec::new();
    let mut hyper = BTreeMap::new();
    // The joint model, on the domains that have experts; none when its
    // share of the blend is 0.
    let mut joint = if has_joint {
        let mut joint_files: Vec<usize> =
            linear.iter().flat_map(|&di| files_of[di].clone()).collect();
        joint_files.sort_unstable();
        let (joint, _) = fit_grid(
            &fit,
            rows_for(subset(&all, &joint_files), None),
            &every,
            progress,
        )
        .map_err(part("joint"))?;
        cold += joint.cold_seconds;
        unconverged.extend(joint.unconverged.iter().copied());
        Some((joint, joint_files))
    } else {
        None
    };
    // The experts, C chosen on their own domain's dev files.
    let mut experts = Vec::with_capacity(domains.len());
    for (di, name) in domains.iter().enumerate() {
        if let Some(p) = &constant[di] {
            experts.push(Part::Constant(p.clone()));
            continue;
        }
        let own: Vec<&DevSet> = dev
            .iter()
            .zip(&dev_domain)
            .filter(|(_, &dd)| dd == Some(di))
            .map(|(s, _)| s)
            .collect();
        let sets = if own.is_empty() { &every } else { &own };
        let (e, _) = fit_grid(
            &fit,
            rows_for(subset(&all, &files_of[di]), Some(di)),
            sets,
            progress,
        )
        .map_err(part(&format!("expert {name}")))?;
        cold += e.cold_seconds;
        unconverged.extend(e.unconverged.iter().copied());
        hyper.insert(format!("expert {name} C"), e.c);
        experts.push(Part::Linear(e));
    }
    // The gate: every row labelled with its domain, weighed by
    // `gate_weights`.
    let file_domain: Vec<usize> = h
        .train
        .iter()
        .map(|spec| domain_of(spec).unwrap_or(0))
        .collect();
    let file_weight = file_weights(h);
    // The gate's rows: the head's matrix cleared of `unread`, each row
    // labelled with its file's domain.
    let gate_rows = |mut x: SparseRecords, files: &[usize]| {
        x.clear_columns(unread);
        let weight = gate_weights(files, &file_domain, &file_weight, domains.len());
        let y = file_domain
            .iter()
            .zip(files)
            .flat_map(|(&d, &n)| std::iter::repeat_n(d, n))
            .collect();
        Rows {
            x,
            y,
            files: vec![weight.len()],
            weight,
        }
    };
    let gate_fit = Fit {
        labels: &domains,
        c_grid: vec![m.gate_c],
        class_weight: ClassWeight::None,
        balance_sources: false,
        max_iterations: h.max_iterations,
        tolerance: h.tolerance,
        tune_threshold: false,
    };
    let Rows {
        x,
        y,
        files,
        weight,
    } = all;
    // A refit below reads the rows as they were before the gate's were
    // cleared (kept only for it).
    let whole_x = (h.refit && !unread.is_empty()).then(|| x.clone());
    let (mut gate, gated) =
        fit_grid(&gate_fit, gate_rows(x, &files), &[], progress).map_err(part("gate"))?;
    cold += gate.cold_seconds;
    unconverged.extend(gate.unconverged.iter().copied());
    // The blend on dev, and its threshold.
    let probs: Vec<Array2<f64>> = dev
        .iter()
        .map(|s| {
            let mut p = match &joint {
                Some((j, _)) => predict(&j.model, s) * m.joint_weight,
                None => Array2::zeros((s.y.len(), k)),
            };
            let g = predict(&gate.model, s);
            for (d, part) in experts.iter().enumerate() {
                let q = part.predict(s, k);
                for (i, mut row) in p.rows_mut().into_iter().enumerate() {
                    let share = (1.0 - m.joint_weight) * g[[i, d]];
                    let answer = q.row(i).to_slice().unwrap_or_default();
                    if let Some(out) = row.as_slice_mut() {
                        crate::model::link::add_share(out, share, answer);
                    }
                }
            }
            p
        })
        .collect();
    let threshold = match (k, h.tune_threshold) {
        (2, true) => Some(
            tune_threshold(&h.labels, &every, &probs)
                .map_err(|e| part("blend")(FitError::Metrics(e)))?,
        ),
        (2, false) => Some(0.5),
        _ => None,
    };
    let (dev_metrics, dev_summary) = dev_results(&h.labels, &dev, &probs, threshold)
        .map_err(|e| part("blend")(FitError::Metrics(e)))?;
    // Every part fitted once more at its chosen C on train + dev; the
    // threshold and the dev metrics above are the chosen blend's.
    if h.refit {
        let all = Rows {
            x: whole_x.unwrap_or(gated.x),
            y,
            files,
            weight,
        };
        let r = with_dev(&all, &dev, &h.dev_joins(), &file_weight);
        if let Some((j, files)) = &mut joint {
            j.model = refit(&fit, j, rows_for(subset(&r, files), None), &mut unconverged)
                .map_err(part("joint"))?;
            progress.advance(1);
        }
        for (di, expert) in experts.iter_mut().enumerate() {
            match expert {
                Part::Linear(e) => {
                    let rows = rows_for(subset(&r, &files_of[di]), Some(di));
                    e.model = refit(&fit, e, rows, &mut unconverged)
                        .map_err(part(&format!("expert {}", domains[di])))?;
                    progress.advance(1);
                }
                // A constant expert's frequencies, counted again.
                Part::Constant(p) => *p = label_frequencies(&r, &files_of[di], k).0,
            }
        }
        gate.model = refit(&gate_fit, &gate, gate_rows(r.x, &r.files), &mut unconverged)
            .map_err(part("gate"))?;
        progress.advance(1);
    }
    progress.finish();
    let grid_seconds = grid_start.elapsed().as_secs_f64();
    let mut hyperparameters = hyperparameters(h, joint.as_ref().map(|(j, _)| j.c));
    hyperparameters.extend(hyper);
    hyperparameters.insert("gate C".to_string(), m.gate_c);
    // Read by one expert alone: said as that expert's.
    if let Some(name) = &m.market_expert {
        let key = Read::MarketWords.key();
        if let Some(v) = hyperparameters.remove(key) {
            hyperparameters.insert(format!("expert {name} {key}"), v);
        }
    }
    hyperparameters.insert("joint_weight".to_string(), m.joint_weight);
    // The joint model's weights and intercept, empty without one.
    let (weights, intercept) = joint
        .as_ref()
        .map(|(j, _)| {
            let l = linear_of(&j.model, scale);
            (l.weights, l.intercept)
        })
        .unwrap_or_default();
    // The experts the config names (domains, as its check made sure): the
    // one that reads what follows a contrast and the one that reads the
    // market markers must read passages.
    let linear_expert = |key: &'static str, named: &Option<String>| match named {
        None => Ok(None),
        Some(name) => match domains.iter().position(|d| d == name) {
            Some(d) if matches!(experts.get(d), Some(Part::Linear(_))) => Ok(Some(d as u32)),
            _ => Err(TrainError::ConstantExpert {
                head: h.name.clone(),
                key,
                expert: name.clone(),
            }),
        },
    };
    let after_contrast = linear_expert("after_contrast", &m.after_contrast)?;
    linear_expert("market_expert", &m.market_expert)?;
    let head = HeadData {
        name: h.name.clone(),
        scope: h.scope,
        labels: h.labels.clone(),
        threshold,
        weights,
        intercept,
        hyperparameters,
        dev_metrics,
        data: d.prints,
        mixture: Some(crate::model::Mixture {
            joint_weight: m.joint_weight,
            sources: domains.clone(),
            gate: linear_of(&gate.model, scale),
            experts: experts
                .into_iter()
                .map(|e| match e {
                    Part::Linear(e) => crate::model::Expert::Linear(linear_of(&e.model, scale)),
                    Part::Constant(p) => crate::model::Expert::Constant(p),
                })
                .collect(),
            after_contrast,
        }),
    };
    let summary = HeadSummary {
        head: h.name.clone(),
        c: joint.as_ref().map(|(j, _)| j.c),
        threshold,
        train_rows,
        fit_seconds: cold,
        grid_seconds,
        iterations: joint.as_ref().map(|(j, _)| j.model.iterations),
        unconverged,
        dev: dev_summary,
    };
    Ok((head, summary))
}

/// The threshold on P(labels[1]) in [0.05, 0.95] (steps of 0.01) with the
/// best mean dev macro-F1; ties go to the one nearest 0.5.
fn tune_threshold(
    labels: &[String],
    dev: &[&DevSet],
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

    /// A head with these scales of the character block, the first words
    /// and the market markers.
    fn scaled(char_scale: f64, first_word: f64, market_words: f64) -> HeadConfig {
        HeadConfig {
            char_scale,
            first_word,
            market_words,
            ..head("none")
        }
    }

    #[test]
    fn the_gate_weighs_domains_alike_and_files_by_their_weight() {
        // Domain 0: files of 10 and 30 rows, weights 1 and 3; domain 1:
        // one file of 20 rows; an empty file takes no share.
        let w = gate_weights(&[10, 30, 20, 0], &[0, 0, 1, 0], &[1.0, 3.0, 1.0, 5.0], 2);
        assert_eq!(w.len(), 60);
        let sum = |r: std::ops::Range<usize>| w[r].iter().sum::<f32>();
        let (a, b, c) = (sum(0..10), sum(10..40), sum(40..60));
        assert!((a + b - c).abs() < 1e-3, "{a} + {b} against {c}");
        assert!((b - 3.0 * a).abs() < 1e-3, "{a} {b}");
        assert!((a + b + c - 60.0).abs() < 1e-3);
        // Equal weights: each file of a domain an equal share, as before
        // weights counted, bit for bit.
        let w = gate_weights(&[10, 30, 20], &[0, 0, 1], &[1.0, 1.0, 1.0], 2);
        assert_eq!(w[0], 30.0 / (2.0 * 10.0));
        assert_eq!(w[10], 30.0 / (2.0 * 30.0));
        assert_eq!(w[40], 30.0 / (1.0 * 20.0));
    }

    #[test]
    fn balanced_per_source_balances_each_file_alone() {
        // File 1: three of class 0, one of class 1. File 2: two of class 0.
        let y = [0, 0, 0, 1, 0, 0];
        let sources = [4, 2];
        let whole = row_class_weights(head("balanced").class_weight, 2, &y, &sources);
        // Over the head: 6 rows, 5 of class 0, 1 of class 1.
        assert!((whole[0] - 6.0 / 10.0).abs() < 1e-6 && (whole[3] - 3.0).abs() < 1e-6);
        let per = row_class_weights(head("balanced_per_source").class_weight, 2, &y, &sources);
        let expected = [4.0 / 6.0, 4.0 / 6.0, 4.0 / 6.0, 2.0, 0.0, 0.0];
        // A one-class file: its class weighs n / (k · n) = 1 / 2.
        let expected = [&expected[..4], &[0.5, 0.5]].concat();
        for (a, b) in per.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{per:?}");
        }
        assert_eq!(
            row_class_weights(head("none").class_weight, 2, &y, &sources),
            [1.0; 6]
        );
    }

    /// data/fixtures/fixture.toml's sentiment head, trained with `scale`
    /// as its `char_scale` (or, with `first_word`, as its `first_word`
    /// with the featurizer's first words on), and its dev file's log-loss
    /// as scoring sees it and as the fit saw it.
    fn scaled_fixture(scale: f64, first_word: bool) -> (ModelData, f64, f64) {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/fixture.toml");
        let (mut config, bytes) = TrainConfig::load(&path, None).unwrap();
        config.heads.truncate(1);
        if first_word {
            config.features.0.first_word = true;
            config.heads[0].first_word = scale;
        } else {
            config.heads[0].char_scale = scale;
        }
        let trained = train(&config, &bytes, &TrainOptions::default(), &mut Quiet).unwrap();
        let fitted = trained.model.heads[0].dev_metrics["sentiment_dev.jsonl log_loss"];
        let model = crate::model::Model::from_data(
            trained.model.clone(),
            "t".into(),
            std::path::Path::new("t"),
        )
        .unwrap();
        let dev = config.resolve(&config.heads[0].dev[0]);
        let examples = read_labeled(&dev, &config.heads[0].labels, false)
            .unwrap()
            .examples;
        let scored = crate::eval::evaluate(&model, 0, &examples, &[]).unwrap();
        (trained.model, scored.report.log_loss, fitted)
    }

    #[test]
    fn a_char_scale_is_folded_into_the_weights_so_scoring_sees_what_the_fit_saw() {
        let (plain, scored, fitted) = scaled_fixture(1.0, false);
        assert!((scored - fitted).abs() < 1e-4, "{scored} against {fitted}");
        assert!(!plain.heads[0].hyperparameters.contains_key("char_scale"));
        for s in [0.5, 2.0] {
            let (m, scored, fitted) = scaled_fixture(s, false);
            // Scoring unscaled passages with the stored weights gives the
            // fit's own dev log-loss (it would not, were the character
            // weights stored as fitted on the scaled block).
            assert!(
                (scored - fitted).abs() < 1e-4,
                "{s}: {scored} against {fitted}"
            );
            assert_eq!(m.heads[0].hyperparameters["char_scale"], s);
            assert_ne!(m.heads[0].weights, plain.heads[0].weights, "{s}");
        }
    }

    #[test]
    fn a_first_word_scale_is_folded_in_and_zero_leaves_the_rest_as_without() {
        let first_words = |m: &ModelData| -> Vec<usize> {
            (0..m.vocabulary.terms.len())
                .filter(|&j| m.vocabulary.terms[j].starts_with("<first>"))
                .collect()
        };
        let (without, _, _) = scaled_fixture(1.0, false);
        let (unread, scored, fitted) = scaled_fixture(0.0, true);
        assert!((scored - fitted).abs() < 1e-4, "{scored} against {fitted}");
        let firsts = first_words(&unread);
        assert!(!firsts.is_empty());
        // Not read: zero weights there, and every other weight as without
        // the setting (the same features, numbered around the new ones).
        let k = unread.heads[0].weights.len() / unread.vocabulary.terms.len();
        let rest: Vec<f32> = (0..unread.vocabulary.terms.len())
            .filter(|j| !firsts.contains(j))
            .flat_map(|j| unread.heads[0].weights[j * k..(j + 1) * k].to_vec())
            .collect();
        assert_eq!(rest, without.heads[0].weights);
        assert_eq!(unread.heads[0].intercept, without.heads[0].intercept);
        assert!(firsts
            .iter()
            .all(|&j| unread.heads[0].weights[j * k..(j + 1) * k]
                .iter()
                .all(|&w| w == 0.0)));
        for s in [0.5, 1.0, 2.0] {
            let (m, scored, fitted) = scaled_fixture(s, true);
            // Scored with FIRST_WORD_VALUE, as the fit saw it times s.
            assert!(
                (scored - fitted).abs() < 1e-4,
                "{s}: {scored} against {fitted}"
            );
            assert_eq!(m.heads[0].hyperparameters["first_word"], s);
            assert!(first_words(&m)
                .iter()
                .any(|&j| m.heads[0].weights[j * k..(j + 1) * k]
                    .iter()
                    .any(|&w| w != 0.0)));
        }
    }

    #[test]
    fn a_char_scale_scales_the_character_block_alone() {
        let fz = crate::features::fitted(
            crate::features::FeatureSettings {
                char_ngrams: [3, 3],
                ..Default::default()
            },
            &["shocking news", "news today"],
        );
        assert!(feature_scale(&fz, &scaled(1.0, 0.0, 0.0)).is_none());
        let scale = feature_scale(&fz, &scaled(0.5, 0.0, 0.0)).unwrap();
        assert_eq!(scale.len(), fz.len());
        for (j, &k) in scale.iter().enumerate() {
            let chars = fz.term(j as u32).starts_with("ch:");
            assert_eq!(k, if chars { 0.5 } else { 1.0 }, "{}", fz.term(j as u32));
        }
        assert!(scale.contains(&0.5) && scale.contains(&1.0));
        // Each feature's row of weights (one column per output) times its scale.
        let w = Array2::from_shape_vec((2, 2), vec![1.0, -2.0, 3.0, 4.0]).unwrap();
        assert_eq!(stored_weights(&w, Some(&[0.5, 1.0])), [0.5, -1.0, 3.0, 4.0]);
        assert_eq!(stored_weights(&w, None), [1.0, -2.0, 3.0, 4.0]);
    }

    #[test]
    fn a_head_fits_first_words_and_market_markers_at_its_own_scales_zero_when_unread() {
        let fz = crate::features::fitted(
            crate::features::FeatureSettings {
                char_ngrams: [3, 3],
                first_word: true,
                market_words: true,
                ..Default::default()
            },
            &[
                "Why shares fell",
                "why it rose",
                "shares did not fall today",
            ],
        );
        let first: Vec<u32> = fz.first_word_features().collect();
        let terms: Vec<&str> = first.iter().map(|&j| fz.term(j)).collect();
        assert_eq!(terms, ["<first>shares", "<first>why"]);
        let market: Vec<&str> = fz.market_features().iter().map(|&j| fz.term(j)).collect();
        assert_eq!(market, ["<mkt+>", "<mkt->"]);
        // A head that reads both at 1, at char_scale 1: nothing to scale.
        assert!(feature_scale(&fz, &scaled(1.0, 1.0, 1.0)).is_none());
        for (c, f, m) in [
            (1.0, 0.0, 0.0),
            (0.5, 0.0, 1.0),
            (0.5, 1.0, 0.0),
            (1.0, 0.25, 2.0),
        ] {
            let scale = feature_scale(&fz, &scaled(c, f, m)).unwrap();
            for (j, &k) in scale.iter().enumerate() {
                let term = fz.term(j as u32);
                let expected = if term.starts_with("<first>") {
                    f
                } else if term.starts_with("<mkt") {
                    m
                } else if term.starts_with("ch:") {
                    c
                } else {
                    1.0
                };
                assert_eq!(k, expected as f32, "{term} at {c}, {f}, {m}");
            }
        }
    }

    #[test]
    fn dev_files_join_their_training_file_at_its_weight() {
        let matrix = |cols: &[u32]| {
            let rows: Vec<Vec<(u32, f32)>> = cols.iter().map(|&j| vec![(j, 1.0)]).collect();
            SparseRecords::from_rows(8, rows.iter().map(Vec::as_slice))
        };
        let set = |cols: &[u32], y: &[usize]| DevSet {
            name: String::new(),
            x: matrix(cols),
            y: y.to_vec(),
        };
        // Files of 2 and 1 rows (weights 2 and 1); dev files joining the
        // second, none and the first.
        let rows = Rows {
            x: matrix(&[0, 1, 2]),
            y: vec![0, 1, 1],
            files: vec![2, 1],
            weight: vec![2.0, 2.0, 1.0],
        };
        let dev = [set(&[5, 6], &[0, 0]), set(&[7], &[1]), set(&[4], &[1])];
        let joined = with_dev(&rows, &dev, &[Some(1), None, Some(0)], &[2.0, 1.0]);
        assert_eq!(joined.files, [3, 3]);
        assert_eq!(joined.y, [0, 1, 1, 1, 0, 0]);
        assert_eq!(joined.weight, [2.0, 2.0, 2.0, 1.0, 1.0, 1.0]);
        let cols: Vec<u32> = (0..6).map(|i| joined.x.row(i).0[0]).collect();
        assert_eq!(cols, [0, 1, 4, 2, 5, 6]);
        // Nothing joins: the rows as they were.
        let alone = with_dev(&rows, &dev, &[None, None, None], &[2.0, 1.0]);
        assert_eq!(
            (alone.files, alone.y, alone.weight),
            (rows.files, rows.y, rows.weight)
        );
    }

    /// data/fixtures' config `file`, its first head refitted on dev or not.
    fn refit_fixture(file: &str, refit: bool) -> HeadData {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/fixtures")
            .join(file);
        let (mut config, bytes) = TrainConfig::load(&path, None).unwrap();
        config.heads.truncate(1);
        // The fixtures share a folder: a source's files name their domain.
        let head = &mut config.heads[0];
        head.refit = refit;
        if head.mixture.is_none() {
            head.train[0].domain = Some("s".into());
            head.dev[0].domain = Some("s".into());
        }
        let trained = train(&config, &bytes, &TrainOptions::default(), &mut Quiet).unwrap();
        trained.model.heads.into_iter().next().unwrap()
    }

    /// Writes labelled rows (text, label) to `dir/name` as JSON lines.
    fn write_jsonl(dir: &std::path::Path, name: &str, rows: &[(&str, &str)]) {
        let body: Vec<String> = rows
            .iter()
            .map(|(text, label)| serde_json::json!({ "text": text, "label": label }).to_string())
            .collect();
        std::fs::write(dir.join(name), body.join("\n")).unwrap();
    }

    /// With `market_expert`, only that expert has weights on the market
    /// markers, in the first fit and in a refit; without it, every model.
    #[test]
    fn only_the_market_expert_reads_the_market_markers() {
        // Two small domains: market news that moves up and down, and
        // reviews whose "rose" and "fell" say nothing of it.
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, rows: &[(&str, &str)]| write_jsonl(dir.path(), name, rows);
        let markets = [
            ("Shares rose after the results", "positive"),
            ("The stock surged on the deal", "positive"),
            ("Shares fell after the warning", "negative"),
            ("The index plunged on rates", "negative"),
            ("The bank reported results", "neutral"),
            ("The fund did not fall today", "neutral"),
        ];
        let reviews = [
            ("A wonderful film, the plot rose to the end", "positive"),
            ("A dull film that fell flat", "negative"),
            ("The film runs two hours", "neutral"),
            ("A great cast and a fine score", "positive"),
            ("A boring, slow story", "negative"),
            ("The film opens on Friday", "neutral"),
        ];
        write("markets.jsonl", &markets);
        write("reviews.jsonl", &reviews);
        let config = |market_expert: &str, refit: bool| {
            format!(
                "data_root = \".\"\n[features]\nmarket_words = true\nnegation_scope = true\n\
                 [[heads]]\nname = \"s\"\nlabels = [\"negative\", \"neutral\", \"positive\"]\n\
                 c_grid = [1]\nmarket_words = 1.0\nrefit = {refit}\n\
                 mixture = {{ joint_weight = 0.5{market_expert} }}\n\
                 train = [{{ path = \"markets.jsonl\" }}, {{ path = \"reviews.jsonl\" }}]\n\
                 dev = [{{ path = \"markets.jsonl\" }}, {{ path = \"reviews.jsonl\" }}]\n"
            )
        };
        // The rows of each model of the head at the market markers.
        let at_markers = |market_expert: &str, refit: bool| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, config(market_expert, refit)).unwrap();
            let (config, bytes) = TrainConfig::load(&path, None).unwrap();
            let m = train(&config, &bytes, &TrainOptions::default(), &mut Quiet)
                .unwrap()
                .model;
            let terms = &m.vocabulary.terms;
            let markers: Vec<usize> = (0..terms.len())
                .filter(|&j| terms[j].starts_with("<mkt"))
                .collect();
            assert_eq!(markers.len(), 2, "{terms:?}");
            let h = &m.heads[0];
            let mixture = h.mixture.as_ref().unwrap();
            let rows = |w: &[f32]| -> Vec<f32> {
                let k = w.len() / terms.len();
                markers
                    .iter()
                    .flat_map(|&j| w[j * k..(j + 1) * k].to_vec())
                    .collect()
            };
            let mut models = vec![
                ("joint".to_string(), rows(&h.weights)),
                ("gate".to_string(), rows(&mixture.gate.weights)),
            ];
            for (name, e) in mixture.sources.iter().zip(&mixture.experts) {
                if let crate::model::Expert::Linear(l) = e {
                    models.push((name.clone(), rows(&l.weights)));
                }
            }
            (models, h.hyperparameters.clone())
        };
        let read = |w: &[f32]| w.iter().any(|&x| x != 0.0);
        for refit in [false, true] {
            let (every, _) = at_markers("", refit);
            assert!(every.iter().all(|(_, w)| read(w)), "{refit}: {every:?}");
            let (one, hyper) = at_markers(", market_expert = \"markets\"", refit);
            for (name, w) in &one {
                assert_eq!(read(w), name == "markets", "{refit}, {name}: {w:?}");
            }
            assert_eq!(hyper["expert markets market_words"], 1.0);
            assert!(!hyper.contains_key("market_words"));
        }
    }

    /// The expert that reads what follows a contrast is stored by its
    /// index; one that answers a constant reads no passage, and is refused
    /// (as it is as the market expert).
    #[test]
    fn after_contrast_names_a_linear_expert() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/mixture.toml");
        let (mut config, bytes) = TrainConfig::load(&path, None).unwrap();
        config.heads.truncate(1);
        let trained = train(&config, &bytes, &TrainOptions::default(), &mut Quiet).unwrap();
        let m = trained.model.heads[0].mixture.as_ref().unwrap();
        assert_eq!(
            (m.sources[1].as_str(), m.after_contrast),
            ("reviews", Some(1))
        );
        if let Some(m) = config.heads[0].mixture.as_mut() {
            m.after_contrast = Some("headlines".into());
        }
        let e = train(&config, &bytes, &TrainOptions::default(), &mut Quiet)
            .err()
            .unwrap();
        assert!(matches!(e, TrainError::ConstantExpert { .. }), "{e}");
        assert!(
            e.to_string().contains(
                r#"after_contrast = "headlines" names a domain whose rows all have one label"#
            ),
            "{e}"
        );
        config.features.0.market_words = true;
        config.heads[0].market_words = 1.0;
        if let Some(m) = config.heads[0].mixture.as_mut() {
            m.after_contrast = None;
            m.market_expert = Some("headlines".into());
        }
        let e = train(&config, &bytes, &TrainOptions::default(), &mut Quiet)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains(
                r#"market_expert = "headlines" names a domain whose rows all have one label"#
            ),
            "{e}"
        );
    }

    #[test]
    fn a_refit_keeps_the_choices_and_dev_metrics_and_changes_the_weights() {
        for file in ["fixture.toml", "mixture.toml"] {
            let (chosen, refitted) = (refit_fixture(file, false), refit_fixture(file, true));
            // C, the threshold and the dev figures are the chosen model's.
            assert_eq!(refitted.dev_metrics, chosen.dev_metrics, "{file}");
            assert_eq!(refitted.threshold, chosen.threshold, "{file}");
            let mut hyper = refitted.hyperparameters.clone();
            assert_eq!(hyper.remove("refit_with_dev"), Some(1.0), "{file}");
            assert_eq!(hyper, chosen.hyperparameters, "{file}");
            // The models kept were fitted again, on more rows: the plain
            // model; in the mixture, the joint model, the gate and the
            // expert of the dev file's domain ("news"), while the constant
            // expert of headlines, which no dev file joins, keeps its
            // frequencies.
            assert_ne!(refitted.weights, chosen.weights, "{file}");
            assert!(!refitted.weights.is_empty(), "{file}");
            if let (Some(r), Some(c)) = (&refitted.mixture, &chosen.mixture) {
                assert_eq!(r.sources, ["news", "reviews", "headlines"]);
                assert_ne!(r.gate.weights, c.gate.weights);
                assert_ne!(r.experts[0], c.experts[0]);
                assert!(matches!(r.experts[2], crate::model::Expert::Constant(_)));
                assert_eq!(r.experts[2], c.experts[2]);
            }
            // And deterministically so.
            assert_eq!(refit_fixture(file, true), refitted, "{file}");
        }
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
                .map(|(p, _)| Some((PathBuf::from(p), "text".to_string())).filter(|_| *p != "-"))
                .collect(),
            dev: vec![],
            prints: vec![],
        };
        // "-": rows the vocabulary does not count (the lexicon's words).
        let heads = [
            inputs(&[("a", &["a1", "a2"]), ("-", &["w1", "w2"]), ("b", &["b1"])]),
            inputs(&[("b", &["b1"]), ("c", &["c1"]), ("-", &["w1"])]),
        ];
        assert_eq!(vocabulary_corpus(&heads), ["a1", "a2", "b1", "c1"]);
    }

    /// The lexicon's words train the expert named, as one more file of
    /// rows, and change nothing else: not the vocabulary (nor any idf), not
    /// the other expert; the model records them among its training data.
    #[test]
    fn lexicon_words_train_their_expert_alone_and_leave_the_vocabulary_be() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, rows: &[(&str, &str)]| write_jsonl(dir.path(), name, rows);
        write(
            "markets.jsonl",
            &[
                ("Shares rose after the results", "positive"),
                ("Shares fell after the warning", "negative"),
                ("The bank reported results", "neutral"),
                ("The fund reported a wonderful quarter", "positive"),
            ],
        );
        write(
            "reviews.jsonl",
            &[
                ("A wonderful film with a fine cast", "positive"),
                ("A dull film that fell flat", "negative"),
                ("The film runs two hours", "neutral"),
                ("A film with a cast", "neutral"),
            ],
        );
        // "zesty" is in no training text; "fine" is too weak to be a row.
        std::fs::write(
            dir.path().join("lex.tsv"),
            "wonderful\t3.0\ndull\t-2.5\nfine\t0.8\nzesty\t2.2\n",
        )
        .unwrap();
        let train_with = |words: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(
                &path,
                format!(
                    "data_root = \".\"\nlexicon = \"lex.tsv\"\n\
                     [[heads]]\nname = \"s\"\nlabels = [\"negative\", \"neutral\", \"positive\"]\n\
                     c_grid = [1]\nbalance_sources = true\n{words}\n\
                     mixture = {{ joint_weight = 0.0 }}\n\
                     train = [{{ path = \"markets.jsonl\" }}, {{ path = \"reviews.jsonl\" }}]\n\
                     dev = [{{ path = \"markets.jsonl\" }}, {{ path = \"reviews.jsonl\" }}]\n"
                ),
            )
            .unwrap();
            let (config, bytes) = TrainConfig::load(&path, None).unwrap();
            train(&config, &bytes, &TrainOptions::default(), &mut Quiet)
                .unwrap()
                .model
        };
        let without = train_with("");
        let with = train_with(
            r#"lexicon_words = { min_valence = 2.0, labels = ["negative", "positive"], weight = 0.5, expert = "reviews" }"#,
        );
        assert_eq!(with.vocabulary, without.vocabulary);
        let (a, b) = (&with.heads[0], &without.heads[0]);
        let (ma, mb) = (a.mixture.as_ref().unwrap(), b.mixture.as_ref().unwrap());
        assert_eq!(ma.sources, ["markets", "reviews"]);
        let linear = |e: &crate::model::Expert| match e {
            crate::model::Expert::Linear(l) => l.weights.clone(),
            _ => panic!("a constant expert"),
        };
        assert_eq!(linear(&ma.experts[0]), linear(&mb.experts[0]), "markets");
        assert_ne!(linear(&ma.experts[1]), linear(&mb.experts[1]), "reviews");
        assert_ne!(ma.gate.weights, mb.gate.weights);
        let extra: Vec<_> = a.data.iter().filter(|p| !b.data.contains(p)).collect();
        assert_eq!(extra.len(), 1, "{extra:?}");
        assert_eq!(
            (
                extra[0].role.as_str(),
                extra[0].path.as_str(),
                extra[0].rows
            ),
            ("train", "lex.tsv: words of |valence| >= 2", 3)
        );
        // Labels that are not the head's make no rows: refused, not ignored
        // (a config built in code skips the load's check).
        let path = dir.path().join("c.toml");
        let (mut config, bytes) = TrainConfig::load(&path, None).unwrap();
        if let Some(w) = config.heads[0].lexicon_words.as_mut() {
            w.labels[1] = "good".into();
        }
        let e = train(&config, &bytes, &TrainOptions::default(), &mut Quiet)
            .err()
            .unwrap();
        assert!(matches!(e, TrainError::LexiconWords { .. }), "{e}");
    }
}
