//! Evaluation: a head of a loaded model against labeled data.
//!
//! When the data uses only some of the head's labels (positive/negative data
//! against a three-class sentiment head), the prediction is the argmax over
//! those labels, probabilities are renormalised over them, and the report
//! says so in `restricted_to`. Otherwise the head's own decision rule
//! (its tuned threshold for two-class heads) is used.

pub mod metrics;

use ndarray::Array2;
use serde::Serialize;

use crate::data::Example;
use crate::features::Workspace;
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

/// Scores `examples` (labels index the head's labels) with head `head`.
pub fn evaluate(
    model: &Model,
    head: usize,
    examples: &[Example],
) -> Result<EvalReport, MetricsError> {
    let h = &model.heads()[head.min(model.heads().len().saturating_sub(1))];
    let mut present: Vec<usize> = examples.iter().map(|e| e.label).collect();
    present.sort_unstable();
    present.dedup();
    let restricted = present.len() < h.labels.len() && present.len() >= 2;
    let used: Vec<usize> = if restricted {
        present
    } else {
        (0..h.labels.len()).collect()
    };
    let labels: Vec<String> = used.iter().map(|&i| h.labels[i].clone()).collect();
    let mut probs = Array2::zeros((examples.len(), used.len()));
    let mut y_true = Vec::with_capacity(examples.len());
    let mut y_pred = Vec::with_capacity(examples.len());
    let mut ws = Workspace::default();
    for (i, e) in examples.iter().enumerate() {
        let scored = model.score(&e.text, &[head], 0, &mut ws);
        let Some(s) = scored.first() else { continue };
        let sub: Vec<f64> = used.iter().map(|&l| s.probabilities[l]).collect();
        let total: f64 = sub.iter().sum();
        for (j, p) in sub.iter().enumerate() {
            probs[[i, j]] = if total > 0.0 {
                p / total
            } else {
                1.0 / used.len() as f64
            };
        }
        y_true.push(used.iter().position(|&l| l == e.label).unwrap_or(0));
        y_pred.push(if restricted { argmax(&sub) } else { s.label });
    }
    let report = ClassificationReport::compute(&labels, &y_true, &y_pred, probs.view())?;
    let decision = match (restricted, h.threshold) {
        (true, _) => format!(
            "argmax over the {} labels present in the data",
            labels.len()
        ),
        (false, Some(t)) => format!("{} when its probability >= {t}", h.labels[1]),
        (false, None) => "argmax".to_string(),
    };
    Ok(EvalReport {
        head: h.name.clone(),
        restricted_to: restricted.then_some(labels),
        decision,
        report,
    })
}
