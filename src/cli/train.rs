//! `slant train`: fits every head a config lists and writes the model
//! file, with progress bars on a terminal.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::model::ModelData;
use crate::train::{leave_one_source_out, train, Progress, TrainConfig, TrainOptions};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The training config (TOML).
    #[arg(long, default_value = "data/default.toml")]
    pub config: PathBuf,
    /// Where to write the model file (required: an existing file there is
    /// replaced).
    #[arg(long, required_unless_present = "leave_one_out")]
    pub out: Option<PathBuf>,
    /// Write no model: for each head with several training files, train it
    /// without each file in turn and measure it on that file's dev split
    /// (how the head does on a domain it has not seen), beside the same
    /// head trained on every file.
    #[arg(long, conflicts_with = "out")]
    pub leave_one_out: bool,
    /// With --leave-one-out, only these heads (default: all).
    #[arg(long = "head")]
    pub heads: Vec<String>,
    /// With --leave-one-out, print the table as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --leave-one-out, bootstrap resamples of each held-out dev file
    /// (0: none): its macro-F1 gets a 95% interval, as `eval --bootstrap`.
    #[arg(long, default_value_t = 0)]
    pub bootstrap: usize,
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
    if !a.leave_one_out {
        // Checked here: clap counts the flag's default (false) as given, so
        // `requires = "leave_one_out"` would let these pass unread.
        let given: Vec<&str> = [
            ("--head", !a.heads.is_empty()),
            ("--json", a.json),
            ("--bootstrap", a.bootstrap > 0),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect();
        if !given.is_empty() {
            bail!(
                "{} can only be given with --leave-one-out",
                given.join(", ")
            );
        }
    }
    let (config, bytes) = TrainConfig::load(&a.config, a.data_root.as_deref())?;
    let Some(out_path) = a.out.clone() else {
        let options = TrainOptions {
            skip_invalid: a.skip_invalid,
        };
        let report = leave_one_source_out(
            &config,
            &bytes,
            &a.heads,
            a.bootstrap,
            &options,
            &mut Bars(None),
        )
        .with_context(|| format!("leaving sources out of {} failed", a.config.display()))?;
        let mut out = std::io::stdout().lock();
        if a.json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        } else {
            write!(out, "{report}")?;
            writeln!(out, "({:.1} s)", start.elapsed().as_secs_f64())?;
        }
        return Ok(());
    };
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
    if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    trained.model.save(&out_path)?;
    let (_, id) = ModelData::load(&out_path)?;
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
            s.c.map_or("-".to_string(), |c| c.to_string()),
            t,
            s.fit_seconds,
            s.iterations.map_or("-".to_string(), |i| i.to_string()),
            dev.join("; ")
        )?;
    }
    writeln!(
        out,
        "wrote {} ({} features, model id {id}) in {:.1} s",
        out_path.display(),
        trained.model.vocabulary.terms.len(),
        start.elapsed().as_secs_f64()
    )?;
    Ok(())
}
