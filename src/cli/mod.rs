//! CLI: the `slant` command line. Parses flags into the library's types,
//! runs the command, and renders results; all behaviour lives in the
//! library modules.

mod bench;
mod check;
mod eval;
mod info;
mod score;
mod serve;
mod train;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::Write;

use crate::data::{DataError, Format};
use crate::model::Model;

pub use bench::{BenchLoadArgs, BenchScoreArgs};
pub use check::CheckArgs;
pub use eval::EvalArgs;
pub use info::InfoArgs;
pub use score::ScoreArgs;
pub use serve::{parse_bytes, parse_duration, BenchGrpcArgs, LogFormat, ServeArgs};
pub use train::TrainArgs;

#[derive(Parser, Debug)]
#[command(
    name = "slant",
    version,
    about = "Score news passages for sentiment, sensational framing, clickbait and misinformation."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train every head a config lists and write the model file.
    Train(TrainArgs),
    /// Report a head's metrics on labeled data.
    Eval(EvalArgs),
    /// Run a behaviour suite: sentences made from templates, by capability
    /// (negation, contrast, robustness to links and typos, …), and how often
    /// each test fails.
    Check(CheckArgs),
    /// Score passages (plain lines or JSONL with a `text` field), one JSON line each.
    Score(ScoreArgs),
    /// Describe a model file.
    Info(InfoArgs),
    /// Serve the models on one port: gRPC (slant.v1.Scorer, health, reflection),
    /// gRPC-Web, JSON over HTTP (/v1/score, /v1/score-article, …) and a page at /.
    Serve(Box<ServeArgs>),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

pub(crate) fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "jsonl" => Ok(Format::Jsonl),
        "csv" => Ok(Format::Csv),
        "tsv" => Ok(Format::Tsv),
        _ => Err(format!("unknown format {s:?} (jsonl, csv or tsv)")),
    }
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Single-thread scoring throughput (all heads) over the peer benchmark corpus.
    Score(BenchScoreArgs),
    /// How long loading a model file takes (median of several loads).
    Load(BenchLoadArgs),
    /// Drive a running server over gRPC or its JSON API and report rps,
    /// passages/s and latency percentiles.
    Grpc(BenchGrpcArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Check(a) => check::run(a),
        Command::Score(a) => score::run(a),
        Command::Info(a) => info::run(a),
        Command::Bench(BenchCommand::Score(a)) => bench::run(a),
        Command::Bench(BenchCommand::Load(a)) => bench::run_load(a),
        Command::Serve(a) => {
            serve::init_tracing(a.log_format)?;
            let rt = runtime()?;
            let result = rt.block_on(serve::serve(*a));
            // A model load stuck in the kernel must not keep the process
            // alive: its blocking thread is left behind.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
        Command::Bench(BenchCommand::Grpc(a)) => {
            let json = a.json;
            let report = runtime()?.block_on(crate::client::bench_grpc(a.load_spec()))?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                writeln!(out, "{report}")?;
            }
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Loads a model; an error names the file and, for a relative path, where
/// it was looked for.
pub(crate) fn load(path: &std::path::Path) -> Result<Model> {
    Model::load(path).with_context(|| {
        match std::env::current_dir() {
            Ok(cwd) if path.is_relative() => format!(
                "cannot load the model {} (looked for {}: relative paths start from the working directory)",
                path.display(),
                cwd.join(path).display()
            ),
            _ => format!("cannot load the model {}", path.display()),
        }
    })
}

/// A data error for the command line: a missing field or column also
/// names the flag that picks it (`flags`: each flag with its value).
pub(crate) fn data_error(e: DataError, flags: &[(&str, &str)]) -> anyhow::Error {
    let (DataError::MissingField { field, .. } | DataError::MissingColumn { field, .. }) = &e
    else {
        return e.into();
    };
    match flags.iter().find(|(_, value)| value == field) {
        Some((flag, _)) => anyhow::anyhow!("{e}; {flag} picks another"),
        None => e.into(),
    }
}

/// Writes `error` and the causes its message does not already include,
/// one per line: a cause whose text a message above already holds (`x: Is
/// a directory` above `Is a directory`, a TOML error's snippet) is said
/// once.
pub fn report(error: &anyhow::Error, out: &mut impl Write) -> std::io::Result<()> {
    let mut said: Vec<String> = Vec::new();
    for (i, cause) in error.chain().enumerate() {
        let text = cause.to_string();
        if said.iter().any(|s| s.contains(text.trim())) {
            continue;
        }
        if i == 0 {
            writeln!(out, "error: {text}")?;
        } else {
            writeln!(out, "  caused by: {text}")?;
        }
        said.push(text);
    }
    Ok(())
}
