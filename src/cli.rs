//! CLI: the `slant` command line. Parses flags into the library's types,
//! runs the command, and renders results; all behaviour lives in the
//! library modules.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use crate::config::TrainConfig;
use crate::data::{open_passages, read_labeled, DataSpec, Format};
use crate::features::Workspace;
use crate::model::{Model, ModelData};
use crate::train::{train, Progress, TrainOptions};

mod serve;

pub use serve::{parse_bytes, parse_duration, BenchGrpcArgs, LogFormat, ServeArgs};

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
    /// Score passages (plain lines or JSONL with a `text` field), one JSON line each.
    Score(ScoreArgs),
    /// Describe a model file.
    Info(InfoArgs),
    /// Serve the model over gRPC (slant.v1.Scorer, health, reflection).
    Serve(Box<ServeArgs>),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The training config (TOML).
    #[arg(long, default_value = "data/default.toml")]
    pub config: PathBuf,
    /// Where to write the model file.
    #[arg(long, default_value = "models/default.slant")]
    pub out: PathBuf,
    /// Overrides the config's data_root.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Skip malformed lines and unknown labels (and report how many) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// The head to evaluate.
    #[arg(long)]
    pub head: String,
    /// Labeled data (JSONL, CSV or TSV by extension).
    #[arg(long)]
    pub data: PathBuf,
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
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "jsonl" => Ok(Format::Jsonl),
        "csv" => Ok(Format::Csv),
        "tsv" => Ok(Format::Tsv),
        _ => Err(format!("unknown format {s:?} (jsonl, csv or tsv)")),
    }
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Heads to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub heads: Vec<String>,
    /// Add the K n-grams that pushed each decision most, with their spans.
    #[arg(long, default_value_t = 0)]
    pub explain: usize,
    /// Input file, or - for standard input.
    #[arg(default_value = "-")]
    pub input: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Single-thread scoring throughput (all heads) over the peer benchmark corpus.
    Score(BenchScoreArgs),
    /// Drive a running server and report rps, passages/s and latency percentiles.
    Grpc(BenchGrpcArgs),
}

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

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Score(a) => cmd_score(a),
        Command::Info(a) => cmd_info(a),
        Command::Bench(BenchCommand::Score(a)) => cmd_bench_score(a),
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

fn load(path: &std::path::Path) -> Result<Model> {
    Model::load(path).context("cannot load the model")
}

fn cmd_train(a: TrainArgs) -> Result<()> {
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

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let model = load(&a.model)?;
    let Some(head) = model.head_index(&a.head) else {
        let names: Vec<&str> = model.heads().iter().map(|h| h.name.as_str()).collect();
        bail!(
            "the model has no head {:?} (heads: {})",
            a.head,
            names.join(", ")
        );
    };
    let spec = DataSpec {
        format: a.format,
        text: a.text_field.clone(),
        label: a.label_field.clone(),
        ..DataSpec::new(&a.data)
    };
    let data = read_labeled(&spec, &model.heads()[head].labels, a.skip_invalid)?;
    if data.skipped > 0 {
        eprintln!(
            "skipped {} invalid lines in {} (first: {})",
            data.skipped,
            a.data.display(),
            data.first_skip.unwrap_or_default()
        );
    }
    let r = crate::eval::evaluate(&model, head, &data.examples)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        if let Value::Object(m) = &mut v {
            m.insert("data".into(), json!(a.data.display().to_string()));
            m.insert("skipped".into(), json!(data.skipped));
            m.insert("model_id".into(), json!(model.id()));
        }
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "head {} on {} (model {})",
            r.head,
            a.data.display(),
            model.id()
        )?;
        if let Some(labels) = &r.restricted_to {
            writeln!(
                out,
                "note: the data uses only {labels:?}; predictions are the argmax over those labels"
            )?;
        }
        writeln!(out, "decision: {}", r.decision)?;
        write!(out, "{}", r.report.to_text())?;
    }
    Ok(())
}

fn cmd_score(a: ScoreArgs) -> Result<()> {
    let model = load(&a.model)?;
    let mut heads = Vec::new();
    for name in a.heads.iter().filter(|n| !n.is_empty()) {
        match model.head_index(name) {
            Some(i) => heads.push(i),
            None => bail!("the model has no head {name:?}"),
        }
    }
    let input = open_passages(&a.input)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut ws = Workspace::default();
    for item in input {
        let (line, text) = item?;
        let scores = model.score(&text, &heads, a.explain, &mut ws);
        let mut obj = Map::new();
        for s in scores {
            let head = &model.heads()[s.head];
            let probs: Map<String, Value> = head
                .labels
                .iter()
                .zip(&s.probabilities)
                .map(|(l, p)| (l.clone(), json!(p)))
                .collect();
            let mut h = Map::new();
            h.insert("label".into(), json!(head.labels[s.label]));
            h.insert("probabilities".into(), Value::Object(probs));
            if a.explain > 0 {
                let ex: Vec<Value> = s
                    .contributions
                    .iter()
                    .map(|c| {
                        json!({
                            "feature": model.featurizer().term(c.feature),
                            "weight": c.weight,
                            "spans": c.spans.iter().map(|&(s, e)| json!([s, e])).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                h.insert("explain".into(), Value::Array(ex));
            }
            obj.insert(head.name.clone(), Value::Object(h));
        }
        writeln!(out, "{}", json!({ "line": line, "heads": obj }))?;
    }
    out.flush()?;
    Ok(())
}

fn cmd_info(a: InfoArgs) -> Result<()> {
    let model = load(&a.model)?;
    let d = model.data();
    let v = model.featurizer().vocabulary();
    let heads: Vec<Value> = d
        .heads
        .iter()
        .map(|h| {
            json!({
                "name": h.name,
                "labels": h.labels,
                "threshold": h.threshold,
                "hyperparameters": h.hyperparameters,
                "dev_metrics": h.dev_metrics,
                "data": h.data.iter().map(|f| json!({"role": f.role, "path": f.path, "sha256": f.sha256, "rows": f.rows})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let info = json!({
        "model_id": model.id(),
        "path": a.model.display().to_string(),
        "slant_version": d.slant_version,
        "config_sha256": d.config_sha256,
        "features": { "settings": v.settings, "terms": model.featurizer().len(), "idf_documents": v.n_docs },
        "heads": heads,
    });
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{info}")?;
        return Ok(());
    }
    writeln!(out, "model {} ({})", model.id(), a.model.display())?;
    writeln!(
        out,
        "trained by slant {}; config sha256 {}",
        d.slant_version, d.config_sha256
    )?;
    writeln!(
        out,
        "features: {} terms from {} documents; {}",
        model.featurizer().len(),
        v.n_docs,
        serde_json::to_string(&v.settings)?
    )?;
    for h in &d.heads {
        writeln!(out, "\nhead {}: labels {:?}", h.name, h.labels)?;
        match h.threshold {
            Some(t) => writeln!(out, "  decision: {} when P >= {t}", h.labels[1])?,
            None => writeln!(out, "  decision: argmax")?,
        }
        writeln!(
            out,
            "  hyperparameters: {}",
            serde_json::to_string(&h.hyperparameters)?
        )?;
        for f in &h.data {
            writeln!(
                out,
                "  {:<5} {} ({} rows, sha256 {})",
                f.role, f.path, f.rows, f.sha256
            )?;
        }
        for (k, val) in &h.dev_metrics {
            writeln!(out, "  dev {k}: {val:.4}")?;
        }
    }
    Ok(())
}

fn cmd_bench_score(a: BenchScoreArgs) -> Result<()> {
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
