//! `slant bench score`: single-thread scoring throughput; `slant bench
//! load`: how long loading a model takes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::load;

#[derive(clap::Args, Debug)]
pub struct BenchScoreArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Folder whose */train.jsonl files make the corpus (as ../shared/bench/throughput.py).
    #[arg(long)]
    pub corpus: PathBuf,
    /// Passages to score (the corpus repeats to this many).
    #[arg(long, default_value_t = 200_000)]
    pub passages: usize,
    #[arg(long)]
    pub json: bool,
    /// Also time scoring stopped after each stage (tokenize, word lookups,
    /// character n-grams, all), to see where the time goes.
    #[arg(long)]
    pub stages: bool,
}

pub(super) fn run(a: BenchScoreArgs) -> Result<()> {
    let model = load(&a.model)?;
    let corpus = crate::bench::corpus(&a.corpus, a.passages)?;
    let mut r = crate::bench::score(&model, &corpus);
    if a.stages {
        r.stages = Some(crate::bench::stages(&model, &corpus));
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
    } else {
        writeln!(out, "{r}")?;
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct BenchLoadArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Loads to time (after one unmeasured load).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run_load(a: BenchLoadArgs) -> Result<()> {
    let r = crate::bench::load(&a.model, a.runs)
        .with_context(|| format!("cannot load the model {}", a.model.display()))?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
    } else {
        writeln!(out, "{r}")?;
    }
    Ok(())
}
