//! Evaluation metrics for a single-label, multi-class classifier.
//!
//! [`ClassificationReport::compute`] takes the class labels, the true class
//! indices `y_true`, the predicted class indices `y_pred` and the predicted
//! class probabilities `probs` (an `n × k` matrix, `k = labels.len()`, whose rows
//! sum to about 1). `y_pred` is taken as given and is never recomputed from
//! `probs`, so a caller may use a decision threshold instead of the argmax.
//!
//! Definitions (`n` samples, classes indexed in `labels` order):
//!
//! * **Confusion matrix**: `confusion[t][p]` is the number of samples whose true
//!   class is `t` and whose predicted class is `p`. Rows are true classes and
//!   columns are predicted classes.
//! * **Accuracy**: the fraction of samples with `y_pred[i] == y_true[i]`, i.e.
//!   the trace of the confusion matrix divided by `n`.
//! * **Per-class precision, recall, F1 and support**, for class `c` with
//!   `TP = confusion[c][c]`, `FP` = column sum minus `TP`, `FN` = row sum minus
//!   `TP`:
//!   - precision `= TP / (TP + FP)`, the fraction of samples predicted as `c`
//!     that really are `c`;
//!   - recall `= TP / (TP + FN)`, the fraction of samples of class `c` that are
//!     predicted as `c`;
//!   - F1 `= 2·TP / (2·TP + FP + FN)`, the harmonic mean of precision and
//!     recall;
//!   - support `= TP + FN`, the number of samples whose true class is `c`.
//!
//!   A ratio whose denominator is zero is reported as `0.0`, like
//!   scikit-learn's `zero_division=0`.
//! * **Macro-F1**: the unweighted mean of the per-class F1 over all `labels`,
//!   including classes that never occur (they count as F1 `0.0`).
//! * **Log-loss** (cross-entropy): `-(1/n) Σ ln p_i`, where `p_i =
//!   probs[i, y_true[i]]` is clipped to `[1e-15, 1 - 1e-15]` so that the value
//!   stays finite. Rows are not renormalised.
//! * **ROC-AUC**: reported only for two classes. It is the area under the ROC
//!   curve of the score `probs[:, 1]` with class index 1 as the positive class.
//!   It is computed as the Mann–Whitney statistic: the probability that a
//!   randomly drawn positive sample scores higher than a randomly drawn negative
//!   one, with ties counted as one half. This is the same as the average-rank
//!   formula `(R₊ − n₊(n₊+1)/2) / (n₊·n₋)`. It is `None` when there are not
//!   exactly two classes or when one of them is absent from `y_true`.
//! * **ECE** (expected calibration error): the confidence of sample `i` is
//!   `conf_i = probs[i, y_pred[i]]`, the probability given to the class that was
//!   predicted. The confidences are put into 15 equal-width bins over `[0, 1]`.
//!   Bin `b` is `[b/15, (b+1)/15)`, computed as `floor(conf · 15)`, and the last
//!   bin also holds `1.0`. Then `ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)|`,
//!   where `acc` is the fraction of samples in the bin with `y_pred == y_true`
//!   and `conf` is their mean confidence. Empty bins add nothing.
//!
//! Inputs are checked first. Empty input, mismatched lengths, class indices out
//! of range, a wrong `probs` shape, probabilities that are not finite or fall
//! outside `[0, 1]`, and empty or duplicate labels all give a
//! [`MetricsError`]. The functions here never panic. Row sums of `probs` are
//! not checked.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use ndarray::ArrayView2;
use serde::Serialize;

/// Number of equal-width confidence bins used for the expected calibration error.
pub const ECE_BINS: usize = 15;

/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` before taking logs.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassMetrics {
    /// `TP / (TP + FP)`, or `0.0` if the class is never predicted.
    pub precision: f64,
    /// `TP / (TP + FN)`, or `0.0` if the class never occurs in `y_true`.
    pub recall: f64,
    /// `2·TP / (2·TP + FP + FN)`, or `0.0` if the denominator is zero.
    pub f1: f64,
    /// Number of samples whose true class is this class.
    pub support: usize,
}

/// Summary of a classifier's performance on a labelled evaluation set.
#[derive(Debug, Clone, Serialize)]
pub struct ClassificationReport {
    /// Number of evaluated samples.
    pub n: usize,
    /// Class labels; this is the class order used by `confusion`.
    pub labels: Vec<String>,
    /// Fraction of correctly predicted samples.
    pub accuracy: f64,
    /// Unweighted mean of the per-class F1 over `labels`.
    pub macro_f1: f64,
    /// Per-class precision, recall, F1 and support, keyed by label.
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// `confusion[true][pred]`, in `labels` order.
    pub confusion: Vec<Vec<usize>>,
    /// Mean `-ln p(true class)`, with `p` clipped to `[1e-15, 1 - 1e-15]`.
    pub log_loss: f64,
    /// Two classes only: ROC-AUC of `probs[:, 1]` with class 1 as positive.
    /// `None` for any other number of classes or if a class is absent from `y_true`.
    pub roc_auc: Option<f64>,
    /// Expected calibration error over 15 equal-width confidence bins.
    pub ece: f64,
}

/// Reasons why a [`ClassificationReport`] cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// No samples were given.
    #[error("cannot compute metrics on zero samples")]
    Empty,
    /// The label list is empty.
    #[error("no class labels given")]
    NoClasses,
    /// The same label appears twice in the label list.
    #[error("duplicate class label {0:?}")]
    DuplicateLabel(String),
    /// `y_true` and `y_pred` have different lengths.
    #[error("length mismatch: y_true has {y_true} entries, y_pred has {y_pred}")]
    LengthMismatch { y_true: usize, y_pred: usize },
    /// A class index in `y_true` or `y_pred` is not below `labels.len()`.
    #[error("{which}[{index}] = {class} is out of range for {n_classes} classes")]
    ClassOutOfRange {
        which: &'static str,
        index: usize,
        class: usize,
        n_classes: usize,
    },
    /// `probs` does not have shape `n × labels.len()`.
    #[error("probability matrix has shape {actual:?}, expected {expected:?}")]
    ProbShape {
        expected: (usize, usize),
        actual: (usize, usize),
    },
    /// An entry of `probs` is NaN, infinite, negative or greater than 1.
    #[error("probs[{row}, {col}] = {value} is not a probability in [0, 1]")]
    InvalidProbability { row: usize, col: usize, value: f64 },
}

/// `confusion[true][pred]` over `k` classes, from (true, predicted) class
/// indices below `k`.
pub(crate) fn confusion_of(
    k: usize,
    pairs: impl IntoIterator<Item = (usize, usize)>,
) -> Vec<Vec<usize>> {
    let mut confusion = vec![vec![0_usize; k]; k];
    for (t, p) in pairs {
        if let Some(cell) = confusion.get_mut(t).and_then(|row| row.get_mut(p)) {
            *cell += 1;
        }
    }
    confusion
}

/// Precision, recall, F1 and support of class `c` in `confusion`.
fn class_metrics(confusion: &[Vec<usize>], c: usize) -> ClassMetrics {
    let tp = confusion[c][c];
    let support: usize = confusion[c].iter().sum();
    let predicted: usize = confusion.iter().map(|row| row[c]).sum();
    let fp = predicted - tp;
    let fn_ = support - tp;
    ClassMetrics {
        precision: ratio(tp as f64, predicted as f64),
        recall: ratio(tp as f64, support as f64),
        f1: ratio(2.0 * tp as f64, (2 * tp + fp + fn_) as f64),
        support,
    }
}

/// Accuracy and macro-F1 (over every class of `confusion`, as defined
/// above) of a square confusion matrix.
pub(crate) fn accuracy_and_macro_f1(confusion: &[Vec<usize>]) -> (f64, f64) {
    let k = confusion.len();
    let n: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let f1_sum: f64 = (0..k).map(|c| class_metrics(confusion, c).f1).sum();
    (ratio(correct as f64, n as f64), ratio(f1_sum, k as f64))
}

/// Macro-F1 over the classes of `confusion` that occur in the truth or
/// the predictions (scikit-learn's default labels); 0 when none do.
pub(crate) fn present_macro_f1(confusion: &[Vec<usize>]) -> f64 {
    let present: Vec<usize> = (0..confusion.len())
        .filter(|&c| confusion[c].iter().any(|&x| x > 0) || confusion.iter().any(|row| row[c] > 0))
        .collect();
    let f1_sum: f64 = present
        .iter()
        .map(|&c| class_metrics(confusion, c).f1)
        .sum();
    ratio(f1_sum, present.len() as f64)
}

impl ClassificationReport {
    /// Computes every metric in the report.
    ///
    /// `y_true` and `y_pred` hold class indices into `labels`. `probs` is an
    /// `n × labels.len()` matrix of class probabilities whose rows sum to about 1.
    /// `y_pred` is used as given (it need not be the argmax of `probs`).
    pub fn compute(
        labels: &[String],
        y_true: &[usize],
        y_pred: &[usize],
        probs: ArrayView2<f64>,
    ) -> Result<Self, MetricsError> {
        validate(labels, y_true, y_pred, probs)?;
        let n = y_true.len();
        let k = labels.len();

        let confusion = confusion_of(k, y_true.iter().copied().zip(y_pred.iter().copied()));
        let (accuracy, macro_f1) = accuracy_and_macro_f1(&confusion);
        let per_class = labels
            .iter()
            .enumerate()
            .map(|(c, label)| (label.clone(), class_metrics(&confusion, c)))
            .collect();

        let log_loss = y_true
            .iter()
            .enumerate()
            .map(|(i, &t)| -probs[[i, t]].clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln())
            .sum::<f64>()
            / n as f64;

        let roc_auc = if k == 2 {
            let scored: Vec<(f64, bool)> = y_true
                .iter()
                .enumerate()
                .map(|(i, &t)| (probs[[i, 1]], t == 1))
                .collect();
            binary_auc(scored)
        } else {
            None
        };

        let ece = expected_calibration_error(y_true, y_pred, probs);

        Ok(Self {
            n,
            labels: labels.to_vec(),
            accuracy,
            macro_f1,
            per_class,
            confusion,
            log_loss,
            roc_auc,
            ece,
        })
    }

    /// Human-readable multi-line summary. It shows accuracy, macro-F1, a
    /// per-class precision/recall/F1/support table, the confusion matrix with
    /// label headers, log-loss, ROC-AUC (when available) and ECE.
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ClassificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CORNER: &str = "true\\pred";
        let label_width = self
            .labels
            .iter()
            .map(|l| l.chars().count())
            .chain([CORNER.len(), "class".len()])
            .max()
            .unwrap_or(0);

        writeln!(f, "samples   {}", self.n)?;
        writeln!(f, "accuracy  {:.4}", self.accuracy)?;
        writeln!(f, "macro-F1  {:.4}", self.macro_f1)?;
        writeln!(f)?;

        writeln!(
            f,
            "{:<label_width$}  {:>9}  {:>9}  {:>9}  {:>9}",
            "class", "precision", "recall", "f1", "support"
        )?;
        for label in &self.labels {
            if let Some(m) = self.per_class.get(label) {
                writeln!(
                    f,
                    "{:<label_width$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}",
                    label, m.precision, m.recall, m.f1, m.support
                )?;
            }
        }
        writeln!(f)?;

        writeln!(f, "confusion matrix (rows: true class, columns: predicted)")?;
        let max_count = self.confusion.iter().flatten().copied().max().unwrap_or(0);
        let cell_width = self
            .labels
            .iter()
            .map(|l| l.chars().count())
            .chain([max_count.to_string().len()])
            .max()
            .unwrap_or(1);
        write!(f, "{CORNER:<label_width$}")?;
        for label in &self.labels {
            write!(f, "  {label:>cell_width$}")?;
        }
        writeln!(f)?;
        for (label, row) in self.labels.iter().zip(&self.confusion) {
            write!(f, "{label:<label_width$}")?;
            for count in row {
                write!(f, "  {count:>cell_width$}")?;
            }
            writeln!(f)?;
        }
        writeln!(f)?;

        writeln!(f, "log-loss  {:.4}", self.log_loss)?;
        if let Some(auc) = self.roc_auc {
            writeln!(f, "ROC-AUC   {auc:.4}")?;
        }
        writeln!(f, "ECE       {:.4} ({ECE_BINS} bins)", self.ece)
    }
}

/// Checks every precondition of [`ClassificationReport::compute`], so that
/// the computation itself can index freely.
fn validate(
    labels: &[String],
    y_true: &[usize],
    y_pred: &[usize],
    probs: ArrayView2<f64>,
) -> Result<(), MetricsError> {
    let k = labels.len();
    if k == 0 {
        return Err(MetricsError::NoClasses);
    }
    let mut seen = HashSet::with_capacity(k);
    if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
        return Err(MetricsError::DuplicateLabel(dup.clone()));
    }
    if y_true.len() != y_pred.len() {
        return Err(MetricsError::LengthMismatch {
            y_true: y_true.len(),
            y_pred: y_pred.len(),
        });
    }
    if y_true.is_empty() {
        return Err(MetricsError::Empty);
    }
    for (which, ys) in [("y_true", y_true), ("y_pred", y_pred)] {
        if let Some((index, &class)) = ys.iter().enumerate().find(|&(_, &c)| c >= k) {
            return Err(MetricsError::ClassOutOfRange {
                which,
                index,
                class,
                n_classes: k,
            });
        }
    }
    let expected = (y_true.len(), k);
    let actual = probs.dim();
    if actual != expected {
        return Err(MetricsError::ProbShape { expected, actual });
    }
    if let Some(((row, col), &value)) = probs
        .indexed_iter()
        .find(|&(_, &v)| !(0.0..=1.0).contains(&v))
    {
        return Err(MetricsError::InvalidProbability { row, col, value });
    }
    Ok(())
}

/// `num / den`, or `0.0` when `den` is zero.
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Mann–Whitney AUC of `(score, is_positive)` pairs with ties counted as one
/// half. Returns `None` if there are no positives or no negatives. Scores must
/// not be NaN.
fn binary_auc(mut scored: Vec<(f64, bool)>) -> Option<f64> {
    let n_pos = scored.iter().filter(|(_, pos)| *pos).count() as u128;
    let n_neg = scored.len() as u128 - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Twice the U statistic, kept in integers so that it is exact.
    let mut twice_u: u128 = 0;
    let mut neg_below: u128 = 0;
    for group in scored.chunk_by(|a, b| a.0 == b.0) {
        let pos = group.iter().filter(|(_, p)| *p).count() as u128;
        let neg = group.len() as u128 - pos;
        twice_u += 2 * pos * neg_below + pos * neg;
        neg_below += neg;
    }
    Some(twice_u as f64 / (2 * n_pos * n_neg) as f64)
}

/// ECE over [`ECE_BINS`] equal-width bins of `probs[i, y_pred[i]]`.
/// The inputs must already be validated.
fn expected_calibration_error(y_true: &[usize], y_pred: &[usize], probs: ArrayView2<f64>) -> f64 {
    let mut count = [0_usize; ECE_BINS];
    let mut correct = [0_usize; ECE_BINS];
    let mut conf_sum = [0.0_f64; ECE_BINS];
    for (i, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
        let conf = probs[[i, p]];
        let bin = ((conf * ECE_BINS as f64).floor() as usize).min(ECE_BINS - 1);
        count[bin] += 1;
        correct[bin] += usize::from(t == p);
        conf_sum[bin] += conf;
    }
    let n = y_true.len() as f64;
    (0..ECE_BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let size = count[b] as f64;
            let gap = (correct[b] as f64 / size - conf_sum[b] / size).abs();
            size / n * gap
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array1, Array2};

    const EPS: f64 = 1e-12;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn assert_class(r: &ClassificationReport, label: &str, p: f64, rec: f64, f1: f64, s: usize) {
        let m = &r.per_class[label];
        assert_abs_diff_eq!(m.precision, p, epsilon = EPS);
        assert_abs_diff_eq!(m.recall, rec, epsilon = EPS);
        assert_abs_diff_eq!(m.f1, f1, epsilon = EPS);
        assert_eq!(m.support, s, "support of {label}");
    }

    /// 3 classes, 6 samples. No confidence lies on a bin edge (a multiple of 1/15).
    fn three_class() -> (Vec<String>, Vec<usize>, Vec<usize>, Array2<f64>) {
        let labels = strings(&["a", "b", "c"]);
        let y_true = vec![0, 0, 1, 1, 2, 2];
        let y_pred = vec![0, 1, 1, 1, 2, 0];
        let probs = array![
            [0.70, 0.20, 0.10],
            [0.40, 0.50, 0.10],
            [0.10, 0.85, 0.05],
            [0.30, 0.65, 0.05],
            [0.10, 0.15, 0.75],
            [0.50, 0.10, 0.40],
        ];
        (labels, y_true, y_pred, probs)
    }

    #[test]
    fn three_class_hand_computed() {
        let (labels, y_true, y_pred, probs) = three_class();
        let r = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view()).unwrap();

        assert_eq!(r.n, 6);
        assert_eq!(r.labels, labels);
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
        assert_abs_diff_eq!(r.accuracy, 4.0 / 6.0, epsilon = EPS);

        // a: TP 1, FP 1, FN 1; b: TP 2, FP 1, FN 0; c: TP 1, FP 0, FN 1.
        assert_class(&r, "a", 0.5, 0.5, 0.5, 2);
        assert_class(&r, "b", 2.0 / 3.0, 1.0, 0.8, 2);
        assert_class(&r, "c", 1.0, 0.5, 2.0 / 3.0, 2);
        assert_eq!(r.per_class.len(), 3);
        assert_abs_diff_eq!(r.macro_f1, (0.5 + 0.8 + 2.0 / 3.0) / 3.0, epsilon = EPS);

        let ll = -(0.7_f64.ln()
            + 0.4_f64.ln()
            + 0.85_f64.ln()
            + 0.65_f64.ln()
            + 0.75_f64.ln()
            + 0.4_f64.ln())
            / 6.0;
        assert_abs_diff_eq!(r.log_loss, ll, epsilon = EPS);

        assert!(r.roc_auc.is_none());

        // Confidences (bin): 0.70 (10) ok, 0.50 (7) wrong, 0.85 (12) ok, 0.65 (9) ok,
        // 0.75 (11) ok, 0.50 (7) wrong.
        // Bin 7: 2 samples, acc 0, conf 0.5. The others are singletons with acc 1.
        let ece = (2.0 * 0.5 + 0.30 + 0.15 + 0.35 + 0.25) / 6.0;
        assert_abs_diff_eq!(r.ece, ece, epsilon = EPS);
    }

    #[test]
    fn two_class_hand_computed() {
        let labels = strings(&["neg", "pos"]);
        let y_true = vec![0, 0, 1, 1];
        // A threshold of 0.3 on P(pos) rather than the argmax.
        let y_pred = vec![0, 1, 1, 1];
        let probs = array![[0.9, 0.1], [0.55, 0.45], [0.65, 0.35], [0.15, 0.85]];
        let r = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view()).unwrap();

        assert_eq!(r.n, 4);
        assert_eq!(r.confusion, vec![vec![1, 1], vec![0, 2]]);
        assert_abs_diff_eq!(r.accuracy, 0.75, epsilon = EPS);
        assert_class(&r, "neg", 1.0, 0.5, 2.0 / 3.0, 2);
        assert_class(&r, "pos", 2.0 / 3.0, 1.0, 0.8, 2);
        assert_abs_diff_eq!(r.macro_f1, (2.0 / 3.0 + 0.8) / 2.0, epsilon = EPS);

        let ll = -(0.9_f64.ln() + 0.55_f64.ln() + 0.35_f64.ln() + 0.85_f64.ln()) / 4.0;
        assert_abs_diff_eq!(r.log_loss, ll, epsilon = EPS);

        // Positives score 0.35 and 0.85, negatives 0.1 and 0.45:
        // 0.35 beats 1 negative and 0.85 beats 2, so AUC = 3 / 4.
        assert_abs_diff_eq!(r.roc_auc.unwrap(), 0.75, epsilon = EPS);

        // Confidence is the probability of the *predicted* class: 0.9 (bin 13, ok),
        // 0.45 (bin 6, wrong), 0.35 (bin 5, ok), 0.85 (bin 12, ok).
        let ece = (0.1 + 0.45 + 0.65 + 0.15) / 4.0;
        assert_abs_diff_eq!(r.ece, ece, epsilon = EPS);
    }

    fn auc_of(scores: &[f64], y: &[usize]) -> Option<f64> {
        let labels = strings(&["0", "1"]);
        let probs = Array2::from_shape_fn((scores.len(), 2), |(i, j)| {
            if j == 1 {
                scores[i]
            } else {
                1.0 - scores[i]
            }
        });
        let y_pred: Vec<usize> = scores.iter().map(|&s| usize::from(s >= 0.5)).collect();
        ClassificationReport::compute(&labels, y, &y_pred, probs.view())
            .unwrap()
            .roc_auc
    }

    #[test]
    fn auc_reference_example() {
        let auc = auc_of(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
        assert_abs_diff_eq!(auc, 0.75, epsilon = EPS);
    }

    #[test]
    fn auc_with_ties() {
        // pos {0.5, 0.9}, neg {0.5, 0.5}: 0.5 ties both (0.5 + 0.5) and 0.9 beats both (2).
        let auc = auc_of(&[0.5, 0.5, 0.5, 0.9], &[0, 1, 0, 1]).unwrap();
        assert_abs_diff_eq!(auc, 3.0 / 4.0, epsilon = EPS);

        // pos {0.2, 0.7}, neg {0.2, 0.7}: 0.5 + 0 + 1 + 0.5 = 2 of 4 pairs.
        let auc = auc_of(&[0.2, 0.2, 0.7, 0.7], &[0, 1, 0, 1]).unwrap();
        assert_abs_diff_eq!(auc, 0.5, epsilon = EPS);

        // Every score tied: AUC is exactly 0.5.
        let auc = auc_of(&[0.3; 5], &[0, 1, 1, 0, 1]).unwrap();
        assert_abs_diff_eq!(auc, 0.5, epsilon = EPS);

        // Average-rank formula as a cross-check. Sorted scores
        // 0.1(n) 0.3(p) 0.3(n) 0.3(p) 0.6(n) 0.8(p) 0.8(p) get ranks 1, 3, 3, 3, 5, 6.5, 6.5.
        // R+ = 3 + 3 + 6.5 + 6.5 = 19, n+ = 4, n- = 3: (19 - 10) / 12 = 0.75.
        let auc = auc_of(&[0.3, 0.1, 0.8, 0.3, 0.6, 0.8, 0.3], &[1, 0, 1, 0, 0, 1, 1]).unwrap();
        assert_abs_diff_eq!(auc, 0.75, epsilon = EPS);
    }

    #[test]
    fn auc_extremes_and_absent_class() {
        assert_abs_diff_eq!(
            auc_of(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]).unwrap(),
            1.0,
            epsilon = EPS
        );
        assert_abs_diff_eq!(
            auc_of(&[0.9, 0.8, 0.2, 0.1], &[0, 0, 1, 1]).unwrap(),
            0.0,
            epsilon = EPS
        );
        assert!(auc_of(&[0.1, 0.9, 0.4], &[0, 0, 0]).is_none());
        assert!(auc_of(&[0.1, 0.9, 0.4], &[1, 1, 1]).is_none());
    }

    #[test]
    fn perfect_classifier() {
        let labels = strings(&["x", "y", "z"]);
        let y = vec![0, 1, 2, 2, 1, 0, 2];
        let probs = Array2::from_shape_fn((y.len(), 3), |(i, j)| f64::from(u8::from(y[i] == j)));
        let r = ClassificationReport::compute(&labels, &y, &y, probs.view()).unwrap();
        assert_abs_diff_eq!(r.accuracy, 1.0);
        assert_abs_diff_eq!(r.macro_f1, 1.0);
        for (label, support) in [("x", 2), ("y", 2), ("z", 3)] {
            assert_class(&r, label, 1.0, 1.0, 1.0, support);
        }
        assert_eq!(
            r.confusion,
            vec![vec![2, 0, 0], vec![0, 2, 0], vec![0, 0, 3]]
        );
        // p = 1 is clipped to 1 - 1e-15.
        assert!(r.log_loss > 0.0 && r.log_loss < 1e-14, "{}", r.log_loss);
        assert_abs_diff_eq!(r.ece, 0.0);
        assert!(r.roc_auc.is_none());

        let labels = strings(&["neg", "pos"]);
        let y = vec![1, 0, 0, 1];
        let probs = array![[0.2, 0.8], [0.9, 0.1], [0.7, 0.3], [0.4, 0.6]];
        let r = ClassificationReport::compute(&labels, &y, &y, probs.view()).unwrap();
        assert_abs_diff_eq!(r.accuracy, 1.0);
        assert_abs_diff_eq!(r.roc_auc.unwrap(), 1.0);
    }

    #[test]
    fn log_loss_clips_zero_probability() {
        let labels = strings(&["a", "b"]);
        let probs = array![[0.0, 1.0], [1.0, 0.0]];
        let r = ClassificationReport::compute(&labels, &[0, 0], &[1, 0], probs.view()).unwrap();
        // Row 0: p = 0, clipped to 1e-15. Row 1: p = 1, clipped to 1 - 1e-15.
        let expected = (-(1e-15_f64).ln() - (1.0 - 1e-15_f64).ln()) / 2.0;
        assert_abs_diff_eq!(r.log_loss, expected, epsilon = 1e-9);
        assert!(r.log_loss.is_finite());
    }

    #[test]
    fn ece_hand_example() {
        // Bin 13 [13/15, 14/15): conf 0.9 and 0.92, 1 of 2 correct -> |0.5 - 0.91| * 2/5.
        // Bin 9: conf 0.62, correct -> 0.38 * 1/5.  Bin 8: 0.55, wrong -> 0.55 * 1/5.
        // Bin 14 holds 1.0: conf 1.0, correct -> 0.
        let labels = strings(&["a", "b"]);
        let y_true = vec![0, 1, 1, 0, 1];
        let y_pred = vec![0, 0, 1, 1, 1];
        let probs = array![
            [0.9, 0.1],
            [0.92, 0.08],
            [0.38, 0.62],
            [0.45, 0.55],
            [0.0, 1.0]
        ];
        let r = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view()).unwrap();
        let expected = (0.41 * 2.0 + 0.38 + 0.55 + 0.0) / 5.0;
        assert_abs_diff_eq!(r.ece, expected, epsilon = EPS);

        // A perfectly calibrated bin: ten predictions at confidence 0.7 (bin 10), 7 correct.
        let y_true: Vec<usize> = (0..10).map(|i| usize::from(i >= 7)).collect();
        let y_pred = vec![0; 10];
        let probs = Array2::from_shape_fn((10, 2), |(_, j)| if j == 0 { 0.7 } else { 0.3 });
        let r = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view()).unwrap();
        assert_abs_diff_eq!(r.ece, 0.0, epsilon = EPS);
        assert_abs_diff_eq!(r.accuracy, 0.7, epsilon = EPS);
    }

    #[test]
    fn zero_division_gives_zero() {
        // Class "c" never occurs and is never predicted; "b" is predicted but never true.
        let labels = strings(&["a", "b", "c"]);
        let y_true = vec![0, 0, 0];
        let y_pred = vec![0, 1, 0];
        let probs = array![[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.5, 0.3, 0.2]];
        let r = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view()).unwrap();
        assert_class(&r, "a", 1.0, 2.0 / 3.0, 0.8, 3);
        assert_class(&r, "b", 0.0, 0.0, 0.0, 0);
        assert_class(&r, "c", 0.0, 0.0, 0.0, 0);
        // Classes that never occur still count in the macro mean.
        assert_abs_diff_eq!(r.macro_f1, 0.8 / 3.0, epsilon = EPS);
        assert!(r.roc_auc.is_none());
    }

    #[test]
    fn single_class_labels() {
        let labels = strings(&["only"]);
        let probs = array![[1.0], [1.0]];
        let r = ClassificationReport::compute(&labels, &[0, 0], &[0, 0], probs.view()).unwrap();
        assert_abs_diff_eq!(r.accuracy, 1.0);
        assert_abs_diff_eq!(r.macro_f1, 1.0);
        assert!(r.roc_auc.is_none());
    }

    #[test]
    fn error_cases() {
        let l2 = strings(&["a", "b"]);
        let p = array![[0.5, 0.5], [0.5, 0.5]];

        assert!(matches!(
            ClassificationReport::compute(&l2, &[], &[], Array2::zeros((0, 2)).view()),
            Err(MetricsError::Empty)
        ));
        assert!(matches!(
            ClassificationReport::compute(&[], &[0], &[0], Array2::zeros((1, 0)).view()),
            Err(MetricsError::NoClasses)
        ));
        assert!(matches!(
            ClassificationReport::compute(&strings(&["a", "a"]), &[0, 1], &[0, 1], p.view()),
            Err(MetricsError::DuplicateLabel(l)) if l == "a"
        ));
        assert!(matches!(
            ClassificationReport::compute(&l2, &[0, 1], &[0], p.view()),
            Err(MetricsError::LengthMismatch {
                y_true: 2,
                y_pred: 1
            })
        ));
        assert!(matches!(
            ClassificationReport::compute(&l2, &[0, 2], &[0, 1], p.view()),
            Err(MetricsError::ClassOutOfRange {
                which: "y_true",
                index: 1,
                class: 2,
                n_classes: 2
            })
        ));
        assert!(matches!(
            ClassificationReport::compute(&l2, &[0, 1], &[7, 1], p.view()),
            Err(MetricsError::ClassOutOfRange {
                which: "y_pred",
                index: 0,
                class: 7,
                ..
            })
        ));
        assert!(matches!(
            ClassificationReport::compute(&l2, &[0, 1], &[0, 1], array![[0.5, 0.5]].view()),
            Err(MetricsError::ProbShape {
                expected: (2, 2),
                actual: (1, 2)
            })
        ));
        assert!(matches!(
            ClassificationReport::compute(&l2, &[0, 1], &[0, 1], Array2::zeros((2, 3)).view()),
            Err(MetricsError::ProbShape {
                expected: (2, 2),
                actual: (2, 3)
            })
        ));
        for bad in [f64::NAN, f64::INFINITY, -0.1, 1.5] {
            let probs = array![[0.5, 0.5], [0.5, bad]];
            let err = ClassificationReport::compute(&l2, &[0, 1], &[0, 1], probs.view());
            assert!(
                matches!(
                    err,
                    Err(MetricsError::InvalidProbability { row: 1, col: 1, .. })
                ),
                "{bad}: {err:?}"
            );
        }
        // Error messages are readable.
        let msg = ClassificationReport::compute(&l2, &[0, 1], &[0], p.view())
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "length mismatch: y_true has 2 entries, y_pred has 1");
    }

    #[test]
    fn to_text_contains_every_section() {
        let (labels, y_true, y_pred, probs) = three_class();
        let r = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view()).unwrap();
        let text = r.to_text();
        for needle in [
            "accuracy  0.6667",
            "macro-F1  0.6556",
            "precision",
            "support",
            "confusion matrix",
            "log-loss",
            "ECE       0.3417 (15 bins)",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("ROC-AUC"));
        // Rows of the confusion matrix, with label headers.
        assert!(text.contains("true\\pred  a  b  c\n"), "{text}");
        assert!(text.contains("\nc          1  0  1\n"), "{text}");
        assert!(text.contains("\nb             0.6667     1.0000     0.8000          2\n"));

        let labels = strings(&["negative", "positive"]);
        let probs = array![[0.9, 0.1], [0.6, 0.4], [0.35, 0.65], [0.2, 0.8]];
        let r = ClassificationReport::compute(&labels, &[0, 0, 1, 1], &[0, 0, 1, 1], probs.view())
            .unwrap();
        let text = r.to_text();
        assert!(text.contains("ROC-AUC   1.0000"), "{text}");
        assert!(text.contains("negative"));
    }

    #[test]
    fn serializes_to_json() {
        let (labels, y_true, y_pred, probs) = three_class();
        let r = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view()).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["n"], 6);
        assert_eq!(v["labels"], serde_json::json!(["a", "b", "c"]));
        assert_eq!(
            v["confusion"],
            serde_json::json!([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
        );
        assert_eq!(v["per_class"]["b"]["support"], 2);
        assert!(v["roc_auc"].is_null());
        assert!(v["ece"].is_f64());
    }

    /// Tiny deterministic generator for the linfa cross-check.
    fn lcg_sequence(seed: u64, len: usize, modulus: u64) -> Vec<usize> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 33) % modulus) as usize
            })
            .collect()
    }

    /// Reads the counts from linfa's `Debug` output. `ConfusionMatrix` has no
    /// public accessor for its cells.
    /// Returns `(row label, column label) -> count`.
    fn linfa_cells<L: std::fmt::Display>(
        cm: &linfa::metrics::ConfusionMatrix<L>,
    ) -> BTreeMap<(usize, usize), usize> {
        let text = format!("{cm:?}");
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<usize> = lines
            .next()
            .unwrap()
            .split('|')
            .skip(1)
            .map(|s| s.trim().parse().unwrap())
            .collect();
        let mut cells = BTreeMap::new();
        for line in lines {
            let mut parts = line.split('|').map(str::trim);
            let row: usize = parts.next().unwrap().parse().unwrap();
            for (col, count) in header.iter().zip(parts) {
                let count: f32 = count.parse().unwrap();
                cells.insert((row, *col), count as usize);
            }
        }
        cells
    }

    /// Cross-checks against `linfa` 0.8.1's `ConfusionMatrix`.
    ///
    /// Facts about linfa 0.8.1 (`src/metrics_classification.rs`) that this test pins:
    /// * `pred.confusion_matrix(&truth)` builds `matrix[pred][truth]`: rows are
    ///   *predicted*, which is the transpose of our `confusion[true][pred]`. Its
    ///   classes are the sorted labels present in either array, *reversed* when
    ///   there are exactly two, so in the binary case `1` is the first
    ///   ("positive") class.
    /// * Its `precision()` is `m[0,0] / (m[0,0] + m[1,0])`. With this row
    ///   orientation that is TP / (TP + FN), which is the usual **recall**, and
    ///   its `recall()` is the usual **precision**. F1 is symmetric, so it
    ///   agrees. Calling it as `truth.confusion_matrix(&pred)` gives
    ///   `matrix[truth][pred]`, and then `precision()` and `recall()` have their
    ///   usual meaning.
    /// * Multi-class `precision()`, `recall()` and `f1_score()` are averages over
    ///   `split_one_vs_all()`, one binary matrix per class in ascending label order.
    #[test]
    fn cross_check_against_linfa() {
        use linfa::prelude::*;

        let tol = 1e-5;

        // Binary case.
        let names = strings(&["neg", "pos"]);
        let truth = lcg_sequence(1, 40, 2);
        let pred = lcg_sequence(2, 40, 2);
        let probs = Array2::from_elem((40, 2), 0.5);
        let r = ClassificationReport::compute(&names, &truth, &pred, probs.view()).unwrap();
        let truth_a = Array1::from(truth.clone());
        let pred_a = Array1::from(pred.clone());
        let cm = pred_a.confusion_matrix(&truth_a).unwrap();
        let pos = &r.per_class["pos"];
        assert_abs_diff_eq!(f64::from(cm.accuracy()), r.accuracy, epsilon = tol);
        assert_abs_diff_eq!(f64::from(cm.precision()), pos.recall, epsilon = tol);
        assert_abs_diff_eq!(f64::from(cm.recall()), pos.precision, epsilon = tol);
        assert_abs_diff_eq!(f64::from(cm.f1_score()), pos.f1, epsilon = tol);
        let cm_t = truth_a.confusion_matrix(&pred_a).unwrap();
        assert_abs_diff_eq!(f64::from(cm_t.precision()), pos.precision, epsilon = tol);
        assert_abs_diff_eq!(f64::from(cm_t.recall()), pos.recall, epsilon = tol);
        // The data are chosen so that precision != recall, which makes the swap observable.
        assert!((pos.precision - pos.recall).abs() > 0.01);
        let cells = linfa_cells(&cm);
        assert_eq!(cells.len(), 4);
        for ((p, t), count) in cells {
            assert_eq!(r.confusion[t][p], count, "binary cell true={t} pred={p}");
        }

        // Multi-class case (every class occurs, so linfa's class set matches ours).
        let names = strings(&["a", "b", "c", "d"]);
        let truth = lcg_sequence(3, 200, 4);
        let pred: Vec<usize> = lcg_sequence(4, 200, 4)
            .into_iter()
            .zip(&truth)
            .map(|(noise, &t)| if noise < 2 { t } else { noise })
            .collect();
        let probs = Array2::from_elem((200, 4), 0.25);
        let r = ClassificationReport::compute(&names, &truth, &pred, probs.view()).unwrap();
        let truth_a = Array1::from(truth);
        let pred_a = Array1::from(pred);
        let cm = pred_a.confusion_matrix(&truth_a).unwrap();
        assert_abs_diff_eq!(f64::from(cm.accuracy()), r.accuracy, epsilon = tol);

        let cells = linfa_cells(&cm);
        assert_eq!(cells.len(), 16);
        for ((p, t), count) in cells {
            assert_eq!(r.confusion[t][p], count, "cell true={t} pred={p}");
        }

        let splits = cm.split_one_vs_all();
        assert_eq!(splits.len(), 4);
        for (class, split) in names.iter().zip(&splits) {
            let m = &r.per_class[class];
            assert_abs_diff_eq!(f64::from(split.precision()), m.recall, epsilon = tol);
            assert_abs_diff_eq!(f64::from(split.recall()), m.precision, epsilon = tol);
            assert_abs_diff_eq!(f64::from(split.f1_score()), m.f1, epsilon = tol);
        }
        let mean = |f: fn(&ClassMetrics) -> f64| r.per_class.values().map(f).sum::<f64>() / 4.0;
        assert_abs_diff_eq!(f64::from(cm.precision()), mean(|m| m.recall), epsilon = tol);
        assert_abs_diff_eq!(f64::from(cm.recall()), mean(|m| m.precision), epsilon = tol);
        assert_abs_diff_eq!(r.macro_f1, mean(|m| m.f1), epsilon = tol);
    }
}
