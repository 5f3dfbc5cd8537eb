//! `slant train`: fits every head a config lists and writes the model
//! file, with progress bars on a terminal.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::model::ModelData;
use crate::train::{train, Progress, TrainConfig, TrainOptions};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The training config (TOML).
    #[arg(long, default_value = "data/default.toml")]
    pub config: PathBuf,
    /// Where to write the model file (required: an existing file there is
    /// replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Overrides the config's data_root.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Skip malformed lines and unknown labels (and report how many) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// Progress bars on a terminal, nothing when piped.
struct Bars(Option<ProgressBar>);

impl Progress for Bars {
    fn start(&mut self, step: &str, total: u64) {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg:>16} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(step.to_string());
        self.0 = Some(bar);
    }
    fn advance(&mut self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.0.take() {
            b.finish_and_clear();
        }
    }
}

pub(super) fn run(a: TrainArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let (config, bytes) = TrainConfig::load(&a.config, a.data_root.as_deref())?;
    let trained = train(
        &config,
        &bytes,
        &TrainOptions {
            skip_invalid: a.skip_invalid,
        },
        &mut Bars(None),
    )
    .with_context(|| format!("training from {} failed", a.config.display()))?;
    for (path, n, first) in &trained.skipped {
        eprintln!(
            "skipped {n} invalid lines in {} (first: {first})",
            path.display()
        );
    }
    for s in &trained.summary {
        for (c, iterations, end) in &s.unconverged {
            eprintln!(
                "warning: head {}, C = {c}: the solver stopped after {iterations} iterations without reaching the gradient tolerance: {end}",
                s.head
            );
        }
    }
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    trained.model.save(&a.out)?;
    let (_, id) = ModelData::load(&a.out)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<16} {:>7} {:>6} {:>9} {:>7} {:>6}  dev",
        "head", "rows", "C", "threshold", "fit s", "iters"
    )?;
    for s in &trained.summary {
        let t = s
            .threshold
            .map_or("argmax".to_string(), |t| format!("{t:.2}"));
        let dev: Vec<String> = s
            .dev
            .iter()
            .map(|(n, acc, f1)| format!("{n}: acc {acc:.3} macro-F1 {f1:.3}"))
            .collect();
        writeln!(
            out,
            "{:<16} {:>7} {:>6} {:>9} {:>7.2} {:>6}  {}",
            s.head,
            s.train_rows,
            s.c,
            t,
            s.fit_seconds,
            s.iterations,
            dev.join("; ")
        )?;
    }
    writeln!(
        out,
        "wrote {} ({} features, model id {id}) in {:.1} s",
        a.out.display(),
        trained.model.vocabulary.terms.len(),
        start.elapsed().as_secs_f64()
    )?;
    Ok(())
}
