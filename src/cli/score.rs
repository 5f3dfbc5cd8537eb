//! `slant score`: scores passages, one JSON line each: the proto3 JSON
//! of the `slant.v1.ScoreResponse` that `Score` would answer for that one
//! passage, with the input line number as its `requestId`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::{data_error, load};
use crate::data::{open_passages, DataError, PassageFormat};
use crate::model::{Explain, Workspace};
use crate::proto;

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Heads to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub heads: Vec<String>,
    /// Add the K passage words that push each head most, with their spans
    /// (two-class heads: toward their positive label, e.g. what reads as
    /// sensational; others: toward the decided label). Each contribution's
    /// `feature` is the word as written.
    #[arg(long, default_value_t = 0)]
    pub explain: usize,
    /// With --explain: the K raw features (n-grams, character n-grams,
    /// markers such as <caps>) with the largest push on the decided label
    /// instead of words, for debugging a model.
    #[arg(long)]
    pub raw_features: bool,
    /// Input format: plain (one passage a line), jsonl, csv or tsv. By
    /// default from the extension (.txt plain); otherwise, and for standard
    /// input, JSONL when the first line starts with `{`, else plain.
    #[arg(long, value_parser = parse_passage_format)]
    pub format: Option<PassageFormat>,
    /// Text field (JSONL) or column (CSV, TSV).
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Skip malformed lines (and report how many) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Input file, or - for standard input.
    #[arg(default_value = "-")]
    pub input: PathBuf,
}

fn parse_passage_format(s: &str) -> Result<PassageFormat, String> {
    match s {
        "plain" => Ok(PassageFormat::Plain),
        "jsonl" => Ok(PassageFormat::Jsonl),
        "csv" => Ok(PassageFormat::Csv),
        "tsv" => Ok(PassageFormat::Tsv),
        _ => Err(format!("unknown format {s:?} (plain, jsonl, csv or tsv)")),
    }
}

pub(super) fn run(a: ScoreArgs) -> Result<()> {
    let model = load(&a.model)?;
    let mut heads = Vec::new();
    for name in a.heads.iter().filter(|n| !n.is_empty()) {
        match model.head_index(name) {
            Some(i) => heads.push(i),
            None => {
                let known: Vec<&str> = model.heads().iter().map(|h| h.name.as_str()).collect();
                bail!(
                    "the model has no head {name:?} (heads: {})",
                    known.join(", ")
                )
            }
        }
    }
    let flags = [("--text-field", a.text_field.as_str())];
    let input =
        open_passages(&a.input, a.format, &a.text_field).map_err(|e| data_error(e, &flags))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut ws = Workspace::default();
    let explain = if a.raw_features {
        Explain::Features(a.explain)
    } else {
        Explain::Words(a.explain)
    };
    let (mut skipped, mut first_skip) = (0u64, None);
    for item in input {
        let (line, text) = match item {
            Ok(item) => item,
            Err(e @ DataError::Io { .. }) => return Err(e.into()),
            Err(e) if a.skip_invalid => {
                skipped += 1;
                first_skip.get_or_insert_with(|| e.to_string());
                continue;
            }
            Err(e) => return Err(data_error(e, &flags)),
        };
        let scores = model.score(&text, &heads, explain, &mut ws);
        let response = proto::ScoreResponse {
            results: vec![proto::passage_score(&model, &text, &scores)],
            model_id: model.id().to_string(),
            request_id: line.to_string(),
            // A model file, not a server's named model.
            model: String::new(),
            model_version: String::new(),
        };
        serde_json::to_writer(&mut out, &response)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if skipped > 0 {
        eprintln!(
            "skipped {skipped} invalid lines in {} (first: {})",
            a.input.display(),
            first_skip.unwrap_or_default()
        );
    }
    Ok(())
}
