//! Leave one source out: what a head does on a domain it has not seen.
//!
//! For each head with two or more training files (sources), and each
//! source: the head is trained on the other sources alone — featurizer,
//! C and threshold chosen without the left-out source, nor the training
//! and dev files of its folder or domain —
//! and measured on the left-out source's dev file (the config's dev file
//! of the same source, else `dev.jsonl` beside the training file). The
//! same dev file scored by the head trained on every source gives the
//! in-domain figure beside it (trained without `refit`, which would put
//! that dev file in its training; a head held out refits, when its
//! config says so, on the other sources' dev files alone). Choose
//! features and regularisation by
//! these figures and by dev, never by the test splits.

use std::path::PathBuf;

use serde::Serialize;

use super::config::{same_source, HeadConfig, TrainConfig};
use super::run::{train, Progress, TrainError, TrainOptions};
use crate::data::DataSpec;
use crate::eval::bootstrap::{self, Interval};
use crate::eval::config::{EvalError, EvalSet};
use crate::eval::evaluate_set;
use crate::model::{Model, ModelError};

/// One head without one source, measured on that source's dev file.
#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    pub head: String,
    /// The left-out training file, as the config names it.
    pub left_out: String,
    /// The dev file it was measured on, as the config names it (or the
    /// file found beside it).
    pub dev: String,
    pub n: usize,
    /// Trained without the source.
    pub accuracy: f64,
    pub macro_f1: f64,
    /// With resamples asked for: the 95% bootstrap interval of `macro_f1`
    /// over the dev file's examples (how far it could move on another
    /// sample of the same size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_f1_interval: Option<Interval>,
    pub ece: f64,
    /// Trained with every source (the in-domain figure).
    pub with_accuracy: f64,
    pub with_macro_f1: f64,
}

/// A source that could not be left out, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub head: String,
    pub left_out: String,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct TransferReport {
    pub rows: Vec<Transfer>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// The dev file that measures `train`'s source: the head's dev file of
/// the same source ([`same_source`]), else `dev.jsonl` beside it on disk.
fn dev_of(config: &TrainConfig, head: &HeadConfig, train: &DataSpec) -> Option<DataSpec> {
    if let Some(d) = head.dev.iter().find(|d| same_source(d, train)) {
        return Some(d.clone());
    }
    let beside = DataSpec {
        path: train.folder().join("dev.jsonl"),
        ..train.clone()
    };
    config.resolve(&beside).path.is_file().then_some(beside)
}

/// Trains `head` alone on `config`'s features, with its own train and dev
/// files replaced, and compiles the result.
fn fit(
    config: &TrainConfig,
    config_bytes: &[u8],
    head: &HeadConfig,
    options: &TrainOptions,
    progress: &mut dyn Progress,
) -> Result<Model, TransferError> {
    let single = TrainConfig {
        heads: vec![head.clone()],
        ..config.clone()
    };
    let trained = train(&single, config_bytes, options, progress)?;
    let path = PathBuf::from(format!("(trained for {})", head.name));
    Ok(Model::from_data(trained.model, head.name.clone(), &path)?)
}

/// Whether `file` goes with `source` when `source` is left out: it sits
/// in the same folder, or is of the same domain (`DataSpec::domain`: its
/// folder's name unless the config names another). So a dev file of the
/// same kind of text from another folder (SST-2 movie reviews, tagged with
/// SST-3's domain) chooses neither C nor the threshold, and a training
/// file of the same domain (FakeNewsNet's PolitiFact claims in LIAR's) is
/// not trained on.
fn goes_with(file: &DataSpec, source: &DataSpec) -> bool {
    file.folder() == source.folder() || file.domain() == source.domain()
}

/// The head's training and dev files with `source` and those that go with
/// it (see [`goes_with`]) left out.
fn others(head: &HeadConfig, source: &DataSpec) -> (Vec<DataSpec>, Vec<DataSpec>) {
    let keep = |files: &[DataSpec]| {
        files
            .iter()
            .filter(|f| !goes_with(f, source))
            .cloned()
            .collect()
    };
    (keep(&head.train), keep(&head.dev))
}

/// Leaves each source of each head in `heads` (all when empty) out in turn;
/// with `resamples` above 0, each held-out figure gets its bootstrap
/// interval.
pub fn leave_one_source_out(
    config: &TrainConfig,
    config_bytes: &[u8],
    heads: &[String],
    resamples: usize,
    options: &TrainOptions,
    progress: &mut dyn Progress,
) -> Result<TransferReport, TransferError> {
    let mut report = TransferReport::default();
    for head in &config.heads {
        if !heads.is_empty() && !heads.contains(&head.name) || head.train.len() < 2 {
            continue;
        }
        // Without a refit: the figure beside is on a dev file that the
        // refit would train on.
        let in_domain = HeadConfig {
            refit: false,
            ..head.clone()
        };
        let with = fit(config, config_bytes, &in_domain, options, progress)?;
        for source in &head.train {
            let left_out = source.path.display().to_string();
            let skip = |reason: &str| Skipped {
                head: head.name.clone(),
                left_out: left_out.clone(),
                reason: reason.to_string(),
            };
            let Some(dev) = dev_of(config, head, source) else {
                report
                    .skipped
                    .push(skip("no dev file in its folder to measure it on"));
                continue;
            };
            let (others_train, others_dev) = others(head, source);
            if others_train.is_empty() {
                report
                    .skipped
                    .push(skip("no training file of another domain to train on"));
                continue;
            }
            if others_dev.is_empty() {
                report
                    .skipped
                    .push(skip("no other source's dev file to choose C on"));
                continue;
            }
            let without = HeadConfig {
                train: others_train,
                dev: others_dev,
                ..head.clone()
            };
            // A mixture left with one domain is one model.
            let mut without = without;
            if without.mixture.is_some() && without.domains().len() < 2 {
                without.mixture = None;
            }
            let model = fit(config, config_bytes, &without, options, progress)?;
            let resolved = config.resolve(&dev);
            let set = EvalSet {
                head: head.name.clone(),
                path: resolved.path.clone(),
                format: resolved.format,
                text: resolved.text.clone(),
                label: resolved.label.clone(),
                label_map: resolved.label_map.clone(),
                skip_invalid: options.skip_invalid,
                skip_labels: resolved.skip_labels.clone(),
            };
            let out = evaluate_set(&model, &set, &[], options.skip_invalid)?;
            let inside = evaluate_set(&with, &set, &[], options.skip_invalid)?;
            report.rows.push(Transfer {
                head: head.name.clone(),
                left_out,
                dev: dev.path.display().to_string(),
                n: out.report.report.n,
                accuracy: out.report.report.accuracy,
                macro_f1: out.report.report.macro_f1,
                macro_f1_interval: (resamples > 0)
                    .then(|| bootstrap::uncertainty(&out.report.decided, resamples).macro_f1),
                ece: out.report.report.ece,
                with_accuracy: inside.report.report.accuracy,
                with_macro_f1: inside.report.report.macro_f1,
            });
        }
    }
    Ok(report)
}

impl std::fmt::Display for TransferReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let intervals = self.rows.iter().any(|r| r.macro_f1_interval.is_some());
        let header = if intervals { "95% interval" } else { "" };
        writeln!(
            f,
            "{:<16} {:<36} {:>6} {:>10} {:>12} {:>10} {:>8}",
            "head", "left out (measured on its dev)", "n", "F1 without", header, "F1 with", "ECE"
        )?;
        for r in &self.rows {
            let interval = r
                .macro_f1_interval
                .map(|i| i.to_string())
                .unwrap_or_default();
            writeln!(
                f,
                "{:<16} {:<36} {:>6} {:>10.3} {:>12} {:>10.3} {:>8.3}",
                r.head, r.left_out, r.n, r.macro_f1, interval, r.with_macro_f1, r.ece
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "{:<16} {:<36} skipped: {}", s.head, s.left_out, s.reason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_left_out_source_takes_the_files_of_its_folder_and_domain() {
        let head: HeadConfig = toml::from_str(
            r#"
name = "sentiment"
labels = ["negative", "neutral", "positive"]
# Files that share an expert (`expert`) still leave one domain at a time.
train = [
  { path = "sst3/train.jsonl", expert = "general" },
  { path = "news/train.jsonl", expert = "general" },
  { path = "fin/train.jsonl", domain = "money" },
  { path = "tweets/train.jsonl", domain = "money" },
]
dev = [
  { path = "sst3/dev.jsonl", expert = "general" },
  { path = "sst2/dev.jsonl", domain = "sst3", expert = "general" },
  { path = "news/dev.jsonl", expert = "general" },
  { path = "fin/dev.jsonl", domain = "money" },
]
"#,
        )
        .unwrap();
        let paths = |files: Vec<DataSpec>| -> Vec<String> {
            files.iter().map(|d| d.path.display().to_string()).collect()
        };
        let left = |i: usize| {
            let (train, dev) = others(&head, &head.train[i]);
            (paths(train), paths(dev))
        };
        assert_eq!(
            left(0),
            (
                vec![
                    "news/train.jsonl".into(),
                    "fin/train.jsonl".into(),
                    "tweets/train.jsonl".into()
                ],
                vec!["news/dev.jsonl".into(), "fin/dev.jsonl".into()]
            )
        );
        assert_eq!(
            left(1).1,
            ["sst3/dev.jsonl", "sst2/dev.jsonl", "fin/dev.jsonl"]
        );
        // Financial tweets of the same domain as the financial headlines
        // leave with them.
        let without_fin = (
            vec!["sst3/train.jsonl".to_string(), "news/train.jsonl".into()],
            vec![
                "sst3/dev.jsonl".to_string(),
                "sst2/dev.jsonl".into(),
                "news/dev.jsonl".into(),
            ],
        );
        assert_eq!(left(2), without_fin);
        assert_eq!(left(3), without_fin);
    }
}
