//! `slant bench score`: single-thread scoring throughput, alone or
//! against peers in the same rounds; `slant bench load`: how long loading
//! a model takes.

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
    /// Rounds to time. With several, the report gives every round and
    /// leads with the median one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,
    /// A command that prints peers' throughput as JSON lines with `peer`
    /// and `passages_per_s`, as ../shared/bench/throughput.py does; run
    /// before slant in every round, and each peer's ratio reported as the
    /// median over the rounds. Takes the rest of the command line, e.g.
    /// `--peers ~/.venvs/peers/bin/python ../shared/bench/throughput.py
    /// ../shared/datasets 200000`.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "COMMAND")]
    pub peers: Vec<String>,
}

/// Runs the peers' command once and reads their rates from its output.
fn run_peers(command: &[String]) -> Result<Vec<crate::bench::PeerRate>> {
    let shown = command.join(" ");
    let (program, args) = command.split_first().context("--peers needs a command")?;
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run the peers' command `{shown}`"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    if !out.status.success() {
        anyhow::bail!(
            "the peers' command `{shown}` failed ({}){}{}",
            out.status,
            if tail.is_empty() { "" } else { ":\n" },
            tail.join("\n")
        );
    }
    let rates = crate::bench::peer_rates(&String::from_utf8_lossy(&out.stdout));
    if rates.is_empty() {
        anyhow::bail!(
            "the peers' command `{shown}` printed no peer's rate (JSON lines with `peer` and `passages_per_s`)"
        );
    }
    Ok(rates)
}

pub(super) fn run(a: BenchScoreArgs) -> Result<()> {
    let model = load(&a.model)?;
    let corpus = crate::bench::corpus(&a.corpus, a.passages)?;
    let mut runs = Vec::new();
    let mut rounds = Vec::new();
    for _ in 0..a.rounds {
        let peers = if a.peers.is_empty() {
            Vec::new()
        } else {
            run_peers(&a.peers)?
        };
        let r = crate::bench::score(&model, &corpus);
        rounds.push(crate::bench::Round {
            passages_per_s: r.passages_per_s,
            peers,
        });
        runs.push(r);
    }
    let mut r = runs
        .into_iter()
        .nth(crate::bench::median_round(&rounds))
        .context("no round ran")?;
    if rounds.len() > 1 || !a.peers.is_empty() {
        r.versus = Some(crate::bench::versus(&rounds)).filter(|v| !v.is_empty());
        r.rounds = Some(rounds);
    }
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
