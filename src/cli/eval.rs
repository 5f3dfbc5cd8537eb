//! `slant eval`: heads' metrics on labeled sets, one table of head × set
//! (and its JSON form), with metrics by slice when the data has a
//! `source` or `outlet` field.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::{data_error, load, parse_format};
use crate::data::{DataError, Format};
use crate::eval::config::{EvalConfig, EvalError, EvalSet, DEFAULT_SLICES};
use crate::eval::{bootstrap, evaluate_set, SetReport};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// The head that scores every --data file.
    #[arg(long, required_unless_present = "config")]
    pub head: Option<String>,
    /// Labeled data (JSONL, CSV or TSV by extension); repeat for several
    /// sets.
    #[arg(long, required_unless_present = "config")]
    pub data: Vec<PathBuf>,
    /// An eval config (TOML) listing sets, each with its head; see
    /// data/eval.toml.
    #[arg(long, conflicts_with_all = ["head", "data"])]
    pub config: Option<PathBuf>,
    /// Overrides the eval config's data_root.
    #[arg(long, requires = "config")]
    pub data_root: Option<PathBuf>,
    /// Renames labels as read, for data labelled in other words, e.g.
    /// biased=sensational,non_biased=not_sensational.
    #[arg(long, value_delimiter = ',', value_parser = parse_label_pair)]
    pub label_map: Vec<(String, String)>,
    /// Fields (columns) to report metrics by, when the data has them
    /// (default: source, outlet).
    #[arg(long = "slice", value_delimiter = ',')]
    pub slices: Vec<String>,
    /// Text column / field.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Label column / field.
    #[arg(long, default_value = "label")]
    pub label_field: String,
    /// File format, if the extension does not tell.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Skip malformed lines and unknown labels (and report how many).
    #[arg(long)]
    pub skip_invalid: bool,
    /// Print one JSON object: the model id and every set's metrics.
    #[arg(long)]
    pub json: bool,
    /// Bootstrap resamples per set (0: none): each set's accuracy and
    /// macro-F1 get a 95% interval, how far they could move on another
    /// sample of the same size.
    #[arg(long, default_value_t = 0)]
    pub bootstrap: usize,
    /// Another model to score every set too: each set reports its
    /// figures and the difference in macro-F1 (this model's less the
    /// other's) with a 95% paired-bootstrap interval and the share of
    /// resamples this model wins (--bootstrap resamples, 1000 if unset).
    #[arg(long, value_name = "MODEL")]
    pub compare: Option<PathBuf>,
}

/// Resamples for `--compare` when `--bootstrap` does not say.
const COMPARE_RESAMPLES: usize = 1000;

fn parse_label_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => {
            Ok((from.to_string(), to.to_string()))
        }
        _ => Err(format!("{s:?} is not FROM=TO (e.g. biased=sensational)")),
    }
}

pub(super) fn run(a: EvalArgs) -> Result<()> {
    let model = load(&a.model)?;
    let (sets, mut slices) = match &a.config {
        Some(path) => {
            let c = EvalConfig::load(path, a.data_root.as_deref())?;
            (c.sets, c.slices)
        }
        None => {
            let Some(head) = &a.head else {
                bail!("name the head with --head, or give an eval config with --config");
            };
            let sets = a
                .data
                .iter()
                .map(|path| EvalSet {
                    head: head.clone(),
                    path: path.clone(),
                    format: a.format,
                    text: a.text_field.clone(),
                    label: a.label_field.clone(),
                    label_map: a.label_map.iter().cloned().collect(),
                    skip_invalid: false,
                    skip_labels: Vec::new(),
                })
                .collect();
            (sets, DEFAULT_SLICES.iter().map(|s| s.to_string()).collect())
        }
    };
    if !a.slices.is_empty() {
        slices = a.slices.clone();
    }
    let flags = [
        ("--text-field", a.text_field.as_str()),
        ("--label-field", a.label_field.as_str()),
    ];
    let other = a.compare.as_deref().map(load).transpose()?;
    let mut reports = Vec::with_capacity(sets.len());
    for set in &sets {
        let evaluate = |model| {
            evaluate_set(model, set, &slices, a.skip_invalid)
                .map_err(|e| match e {
                    EvalError::Data(e @ DataError::Io { .. }) => anyhow::Error::from(e),
                    EvalError::Data(e) => data_error(e, &flags),
                    e => e.into(),
                })
                .with_context(|| format!("cannot evaluate {}", set.path.display()))
        };
        let mut r = evaluate(&model)?;
        if a.bootstrap > 0 {
            r.bootstrap = Some(bootstrap::uncertainty(&r.report.decided, a.bootstrap));
        }
        if let Some(other) = &other {
            let theirs = evaluate(other)?;
            let resamples = if a.bootstrap > 0 {
                a.bootstrap
            } else {
                COMPARE_RESAMPLES
            };
            let versus = bootstrap::paired(
                &r.report.decided,
                &theirs.report.decided,
                other.id(),
                resamples,
            )
            .with_context(|| format!("cannot compare the models on {}", set.path.display()))?;
            r.versus = Some(versus);
        }
        if r.skipped > 0 {
            eprintln!(
                "skipped {} invalid lines in {} (first: {})",
                r.skipped,
                r.data,
                r.first_skip.as_deref().unwrap_or_default()
            );
        }
        reports.push(r);
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(
            out,
            "{}",
            json!({ "model_id": model.id(), "sets": reports })
        )?;
        return Ok(());
    }
    write!(out, "{}", table(model.id(), &reports))?;
    if let [only] = reports.as_slice() {
        writeln!(out)?;
        if let Some(labels) = &only.report.restricted_to {
            writeln!(
                out,
                "note: the data uses only {labels:?}; predictions are the argmax over those labels"
            )?;
        }
        writeln!(out, "decision: {}", only.report.decision)?;
        write!(out, "{}", only.report.report.to_text())?;
    }
    Ok(())
}

/// Shortens a set's path to its last two names (`babe/test.jsonl`).
fn short(path: &str) -> String {
    let names: Vec<String> = std::path::Path::new(path)
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    names[names.len().saturating_sub(2)..].join("/")
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

/// A line for each set that `cells` gives cells for: its head, its set,
/// then the cells.
fn per_set(s: &mut String, reports: &[SetReport], cells: impl Fn(&SetReport) -> Option<String>) {
    use std::fmt::Write as _;
    for r in reports {
        if let Some(cells) = cells(r) {
            let _ = writeln!(s, "{:<16} {:<40} {cells}", r.report.head, short(&r.data));
        }
    }
}

/// The head × set table, its intervals and comparison when asked for,
/// then each set's slices.
fn table(model_id: &str, reports: &[SetReport]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "model {model_id}");
    let _ = writeln!(
        s,
        "{:<16} {:<40} {:>6} {:>8} {:>8} {:>8} {:>7} {:>6}",
        "head", "set", "n", "accuracy", "macro-F1", "log-loss", "ROC-AUC", "ECE"
    );
    for r in reports {
        let m = &r.report.report;
        let _ = writeln!(
            s,
            "{:<16} {:<40} {:>6} {:>8.3} {:>8.3} {:>8} {:>7} {:>6}",
            r.report.head,
            short(&r.data),
            m.n,
            m.accuracy,
            m.macro_f1,
            opt(Some(m.log_loss)),
            opt(m.roc_auc),
            opt(Some(m.ece))
        );
    }
    if let Some(u) = reports.iter().find_map(|r| r.bootstrap.as_ref()) {
        let _ = writeln!(
            s,
            "\n{:.0}% bootstrap intervals ({} resamples of each set):",
            u.level * 100.0,
            u.resamples
        );
        let _ = writeln!(
            s,
            "{:<16} {:<40} {:>13} {:>13}",
            "head", "set", "accuracy", "macro-F1"
        );
        per_set(&mut s, reports, |r| {
            let u = r.bootstrap.as_ref()?;
            Some(format!(
                "{:>13} {:>13}",
                u.accuracy.to_string(),
                u.macro_f1.to_string()
            ))
        });
    }
    if let Some(v) = reports.iter().find_map(|r| r.versus.as_ref()) {
        let _ = writeln!(
            s,
            "\nagainst model {} (its figures; this model's less its, each with a {:.0}% paired-bootstrap interval over {} resamples; the share of resamples this model's macro-F1 wins):",
            v.model_id,
            bootstrap::LEVEL * 100.0,
            v.resamples
        );
        let _ = writeln!(
            s,
            "{:<16} {:<40} {:>8} {:>8} {:>23} {:>23} {:>6}",
            "head",
            "set",
            "accuracy",
            "macro-F1",
            "accuracy difference",
            "macro-F1 difference",
            "wins"
        );
        per_set(&mut s, reports, |r| {
            let v = r.versus.as_ref()?;
            let difference = |d: f64, i: bootstrap::Interval| format!("{d:+.3} ({i})");
            Some(format!(
                "{:>8.3} {:>8.3} {:>23} {:>23} {:>6.2}",
                v.accuracy,
                v.macro_f1,
                difference(v.accuracy_difference, v.accuracy_difference_interval),
                difference(v.macro_f1_difference, v.macro_f1_difference_interval),
                v.share_better
            ))
        });
    }
    for r in reports.iter().filter(|r| !r.report.slices.is_empty()) {
        let _ = writeln!(s, "\n{} on {}, by slice:", r.report.head, short(&r.data));
        for (field, values) in &r.report.slices {
            for v in values.iter().take(20) {
                let _ = writeln!(
                    s,
                    "  {:<32} {:>6} {:>8.3} {:>8.3}",
                    format!("{field}={}", v.value),
                    v.n,
                    v.accuracy,
                    v.macro_f1
                );
            }
            if values.len() > 20 {
                let _ = writeln!(s, "  ({} more {field} values in --json)", values.len() - 20);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_pairs_and_short_paths() {
        assert_eq!(
            parse_label_pair("biased=sensational"),
            Ok(("biased".into(), "sensational".into()))
        );
        assert!(parse_label_pair("biased").is_err());
        assert!(parse_label_pair("=x").is_err());
        assert_eq!(
            short("../shared/datasets/babe/test.jsonl"),
            "babe/test.jsonl"
        );
        assert_eq!(short("test.jsonl"), "test.jsonl");
        assert_eq!(short("data/fixtures/./dev.tsv"), "fixtures/dev.tsv");
    }
}
