//! Evaluation: a head of a loaded model against labeled data.
//!
//! When the data uses only some of the head's labels (positive/negative data
//! against a three-class sentiment head), the prediction is the argmax over
//! those labels, probabilities are renormalised over them, and the report
//! says so in `restricted_to`. Otherwise the head's own decision rule
//! (its tuned threshold for two-class heads) is used.

pub mod metrics;

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::data::Example;
use crate::model::Workspace;
use crate::model::{argmax, Model};
use metrics::{ClassificationReport, MetricsError};

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub head: String,
    /// The labels predictions were restricted to, when the data has fewer
    /// labels than the head.
    pub restricted_to: Option<Vec<String>>,
    pub decision: String,
    #[serde(flatten)]
    pub report: ClassificationReport,
}

/// Metrics of `probs` (samples × the head's labels) against `y_true`
/// (indices into `labels`). Predictions come from `decide` (the head's own
/// rule) unless the data uses fewer labels than the head; then they are the
/// argmax over the labels present, with probabilities renormalised over
/// them, and those labels are returned.
pub fn report(
    labels: &[String],
    y_true: &[usize],
    probs: ArrayView2<f64>,
    decide: impl Fn(&[f64]) -> usize,
) -> Result<(Option<Vec<String>>, ClassificationReport), MetricsError> {
    let mut present: Vec<usize> = y_true.to_vec();
    present.sort_unstable();
    present.dedup();
    if present.iter().any(|&l| l >= labels.len()) || probs.ncols() != labels.len() {
        return Err(MetricsError::ProbShape {
            expected: (y_true.len(), labels.len()),
            actual: probs.dim(),
        });
    }
    let restricted = present.len() < labels.len() && present.len() >= 2;
    if !restricted {
        let pred: Vec<usize> = probs
            .rows()
            .into_iter()
            .map(|r| decide(&r.to_vec()))
            .collect();
        return Ok((
            None,
            ClassificationReport::compute(labels, y_true, &pred, probs)?,
        ));
    }
    let used_labels: Vec<String> = present.iter().map(|&i| labels[i].clone()).collect();
    let mut sub = Array2::zeros((y_true.len(), present.len()));
    let mut pred = Vec::with_capacity(y_true.len());
    for (i, row) in probs.rows().into_iter().enumerate() {
        let total: f64 = present.iter().map(|&l| row[l]).sum();
        for (j, &l) in present.iter().enumerate() {
            sub[[i, j]] = if total > 0.0 {
                row[l] / total
            } else {
                1.0 / present.len() as f64
            };
        }
        pred.push(argmax(sub.row(i).as_slice().unwrap_or(&[])));
    }
    let truth: Vec<usize> = y_true
        .iter()
        .map(|t| present.iter().position(|l| l == t).unwrap_or(0))
        .collect();
    let r = ClassificationReport::compute(&used_labels, &truth, &pred, sub.view())?;
    Ok((Some(used_labels), r))
}

/// Scores `examples` (labels index the head's labels) with head `head`.
pub fn evaluate(
    model: &Model,
    head: usize,
    examples: &[Example],
) -> Result<EvalReport, MetricsError> {
    let Some(h) = model.heads().get(head) else {
        return Err(MetricsError::NoClasses);
    };
    let mut probs = Array2::zeros((examples.len(), h.labels.len()));
    let mut ws = Workspace::default();
    for (i, e) in examples.iter().enumerate() {
        if let Some(s) = model.score(&e.text, &[head], 0, &mut ws).first() {
            probs
                .row_mut(i)
                .iter_mut()
                .zip(&s.probabilities)
                .for_each(|(d, p)| *d = *p);
        }
    }
    let y_true: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let (restricted_to, report) = report(&h.labels, &y_true, probs.view(), |p| h.decide(p))?;
    let decision = match (&restricted_to, h.threshold) {
        (Some(l), _) => format!("argmax over the {} labels present in the data", l.len()),
        (None, Some(t)) => format!("{} when its probability >= {t}", h.labels[1]),
        (None, None) => "argmax".to_string(),
    };
    Ok(EvalReport {
        head: h.name.clone(),
        restricted_to,
        decision,
        report,
    })
}
