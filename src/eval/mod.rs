//! Evaluation: heads of a loaded model against labeled data, one set or
//! many (an eval config: `config`), with metrics by slice (a `source` or
//! `outlet` field) when the data has them.
//!
//! When the data uses only some of the head's labels (positive/negative data
//! against a three-class sentiment head), the prediction is the argmax over
//! those labels, probabilities are renormalised over them, and the report
//! says so in `restricted_to`. Otherwise the head's own decision rule
//! (its tuned threshold for two-class heads) is used.

pub mod behaviour;
pub mod bootstrap;
pub mod config;
pub mod metrics;

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::data::{read_labeled, Example};
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
    /// By field (e.g. `outlet`): each value's metrics, most examples first.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub slices: BTreeMap<String, Vec<SliceReport>>,
    /// Every example's truth and prediction, for bootstrap intervals.
    #[serde(skip)]
    pub decided: bootstrap::Decided,
}

/// Metrics of the examples with one value of a slice field.
#[derive(Debug, Clone, Serialize)]
pub struct SliceReport {
    pub value: String,
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
}

/// The decisions behind a report: the labels scored (all the head's, or
/// those the data uses), each example's truth and prediction as indices
/// into them, and the probabilities over them.
struct Decisions {
    restricted_to: Option<Vec<String>>,
    truth: Vec<usize>,
    pred: Vec<usize>,
    probs: Array2<f64>,
}

/// Predictions for `probs` (samples × the head's labels) against `y_true`
/// (indices into `labels`): from `decide` (the head's own rule) unless the
/// data uses fewer labels than the head; then the argmax over the labels
/// present, with probabilities renormalised over them.
fn decisions(
    labels: &[String],
    y_true: &[usize],
    probs: ArrayView2<f64>,
    decide: impl Fn(&[f64]) -> usize,
) -> Result<Decisions, MetricsError> {
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
        let pred = probs
            .rows()
            .into_iter()
            .map(|r| decide(&r.to_vec()))
            .collect();
        return Ok(Decisions {
            restricted_to: None,
            truth: y_true.to_vec(),
            pred,
            probs: probs.to_owned(),
        });
    }
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
    let truth = y_true
        .iter()
        .map(|t| present.iter().position(|l| l == t).unwrap_or(0))
        .collect();
    Ok(Decisions {
        restricted_to: Some(present.iter().map(|&i| labels[i].clone()).collect()),
        truth,
        pred,
        probs: sub,
    })
}

/// Metrics of `probs` (samples × the head's labels) against `y_true`
/// (indices into `labels`); see [`decisions`] for how predictions are made
/// and when they are restricted to the labels the data uses (which are
/// then returned).
pub fn report(
    labels: &[String],
    y_true: &[usize],
    probs: ArrayView2<f64>,
    decide: impl Fn(&[f64]) -> usize,
) -> Result<(Option<Vec<String>>, ClassificationReport), MetricsError> {
    let d = decisions(labels, y_true, probs, decide)?;
    let used = d.restricted_to.as_deref().unwrap_or(labels);
    let r = ClassificationReport::compute(used, &d.truth, &d.pred, d.probs.view())?;
    Ok((d.restricted_to, r))
}

/// Accuracy and macro-F1 (over the labels in the truth or the
/// predictions, as scikit-learn's default) of the examples `rows`.
fn slice_metrics(truth: &[usize], pred: &[usize], rows: &[usize]) -> (f64, f64) {
    let pairs = || rows.iter().map(|&i| (truth[i], pred[i]));
    let classes = pairs().map(|(t, p)| t.max(p) + 1).max().unwrap_or(0);
    let confusion = metrics::confusion_of(classes, pairs());
    let (accuracy, _) = metrics::accuracy_and_macro_f1(&confusion);
    (accuracy, metrics::present_macro_f1(&confusion))
}

/// Scores `examples` (labels index the head's labels) with head `head`;
/// `slices` names the fields of the examples' tags, in order, to report
/// metrics by (a field no example has is left out).
pub fn evaluate(
    model: &Model,
    head: usize,
    examples: &[Example],
    slices: &[String],
) -> Result<EvalReport, MetricsError> {
    let Some(h) = model.heads().get(head) else {
        return Err(MetricsError::NoClasses);
    };
    let mut probs = Array2::zeros((examples.len(), h.labels.len()));
    let mut ws = Workspace::default();
    for (i, e) in examples.iter().enumerate() {
        if let Some(s) = model
            .score(&e.text, &[head], crate::model::Explain::None, &mut ws)
            .first()
        {
            probs
                .row_mut(i)
                .iter_mut()
                .zip(&s.probabilities)
                .for_each(|(d, p)| *d = *p);
        }
    }
    let y_true: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let d = decisions(&h.labels, &y_true, probs.view(), |p| h.decide(p))?;
    let used = d.restricted_to.as_deref().unwrap_or(&h.labels);
    let report = ClassificationReport::compute(used, &d.truth, &d.pred, d.probs.view())?;
    let restricted_to = d.restricted_to.clone();
    let classes = used.len();
    let decision = match (&restricted_to, h.threshold) {
        (Some(l), _) => format!("argmax over the {} labels present in the data", l.len()),
        (None, Some(t)) => format!("{} when its probability >= {t}", h.labels[1]),
        (None, None) => "argmax".to_string(),
    };
    let mut by_field = BTreeMap::new();
    for (k, field) in slices.iter().enumerate() {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in examples.iter().enumerate() {
            if let Some(v) = e.tags.get(k).filter(|v| !v.is_empty()) {
                groups.entry(v.as_str()).or_default().push(i);
            }
        }
        // One value only says nothing the whole set does not.
        if groups.len() < 2 {
            continue;
        }
        let mut values: Vec<SliceReport> = groups
            .into_iter()
            .map(|(value, rows)| {
                let (accuracy, macro_f1) = slice_metrics(&d.truth, &d.pred, &rows);
                SliceReport {
                    value: value.to_string(),
                    n: rows.len(),
                    accuracy,
                    macro_f1,
                }
            })
            .collect();
        values.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.value.cmp(&b.value)));
        by_field.insert(field.clone(), values);
    }
    Ok(EvalReport {
        head: h.name.clone(),
        restricted_to,
        decision,
        report,
        slices: by_field,
        decided: bootstrap::Decided {
            classes,
            truth: d.truth,
            pred: d.pred,
        },
    })
}

/// One set's evaluation, as `slant eval` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// The file, as given.
    pub data: String,
    /// Lines skipped (with `skip_invalid`), and the first reason.
    pub skipped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_skip: Option<String>,
    #[serde(flatten)]
    pub report: EvalReport,
    /// With resamples asked for: the bootstrap intervals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<bootstrap::Uncertainty>,
    /// Against another model (`slant eval --compare`), on the same draws.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus: Option<bootstrap::Paired>,
}

/// Reads and scores one set with its head, reporting by `slices`.
pub fn evaluate_set(
    model: &Model,
    set: &config::EvalSet,
    slices: &[String],
    skip_invalid: bool,
) -> Result<SetReport, config::EvalError> {
    let Some(head) = model.head_index(&set.head) else {
        let known: Vec<&str> = model.heads().iter().map(|h| h.name.as_str()).collect();
        return Err(config::EvalError::UnknownHead {
            head: set.head.clone(),
            known: known.join(", "),
        });
    };
    let skip_invalid = skip_invalid || set.skip_invalid;
    let data = read_labeled(&set.spec(slices), &model.heads()[head].labels, skip_invalid)?;
    let report = evaluate(model, head, &data.examples, slices).map_err(|source| {
        config::EvalError::Metrics {
            path: set.path.clone(),
            source,
        }
    })?;
    Ok(SetReport {
        data: set.path.display().to_string(),
        skipped: data.skipped,
        first_skip: data.first_skip,
        report,
        bootstrap: None,
        versus: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_use_the_sets_own_decisions() {
        // Truth and predictions over three labels; two slices.
        let truth = [0, 0, 1, 1, 2, 2];
        let pred = [0, 1, 1, 1, 2, 0];
        let (acc, f1) = slice_metrics(&truth, &pred, &[0, 1, 2, 3]);
        assert_eq!(acc, 0.75);
        // Labels 0 and 1: F1 2/3 and 4/5.
        assert!((f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12, "{f1}");
        let (acc, f1) = slice_metrics(&truth, &pred, &[4, 5]);
        assert_eq!(acc, 0.5);
        // Labels 0 (predicted, never true: F1 0) and 2 (F1 2/3).
        assert!((f1 - (0.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12, "{f1}");
    }

    #[test]
    fn a_set_is_scored_with_slices() {
        let model = crate::model::Model::from_data(
            crate::model::tiny(),
            "t".into(),
            std::path::Path::new("t"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        std::fs::write(
            &path,
            concat!(
                "{\"text\": \"good news\", \"label\": \"pos\", \"outlet\": \"A\"}\n",
                "{\"text\": \"bad news\", \"label\": \"neg\", \"outlet\": \"A\"}\n",
                "{\"text\": \"good good\", \"label\": \"pos\", \"outlet\": \"B\"}\n",
                "{\"text\": \"news\", \"label\": \"neg\"}\n",
            ),
        )
        .unwrap();
        let set = config::EvalSet {
            head: "sentiment".into(),
            path: path.clone(),
            format: None,
            text: "text".into(),
            label: "label".into(),
            label_map: [
                ("pos".to_string(), "positive".to_string()),
                ("neg".to_string(), "negative".to_string()),
            ]
            .into(),
            skip_invalid: false,
            skip_labels: vec![],
        };
        let slices = vec!["source".to_string(), "outlet".to_string()];
        let r = evaluate_set(&model, &set, &slices, false).unwrap();
        assert_eq!(r.report.report.n, 4);
        assert_eq!(
            r.report.restricted_to.as_deref(),
            Some(&["negative".to_string(), "positive".to_string()][..])
        );
        // No example has a source; outlet A has two, B one; the fourth has none.
        assert!(!r.report.slices.contains_key("source"));
        let outlets: Vec<(&str, usize)> = r.report.slices["outlet"]
            .iter()
            .map(|s| (s.value.as_str(), s.n))
            .collect();
        assert_eq!(outlets, [("A", 2), ("B", 1)]);
        let unknown = config::EvalSet {
            head: "nope".into(),
            ..set
        };
        assert!(matches!(
            evaluate_set(&model, &unknown, &slices, false),
            Err(config::EvalError::UnknownHead { .. })
        ));
    }
}
