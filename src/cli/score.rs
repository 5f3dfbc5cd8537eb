//! `slant score`: scores passages, one JSON line each: the proto3 JSON
//! of the `slant.v1.ScoreResponse` that `Score` would answer for that one
//! passage, with the input line number as its `requestId`. With
//! `--article`, the whole input is one article, answered as
//! `ScoreArticle` answers it (`slant.v1.ArticleResponse`).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{data_error, load};
use crate::data::{open_passages, read_text, DataError, PassageFormat};
use crate::model::Model;
use crate::model::{Explain, Workspace};
use crate::proto;
use crate::service::Limits;
use crate::text::split::split_article;

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
    /// Score the whole input as one article, as the server's ScoreArticle
    /// does: split into sentences, each scored, plus a summary per head;
    /// prints one `slant.v1.ArticleResponse`. Heads whose scope is
    /// headlines (clickbait) read only the --title.
    #[arg(long, conflicts_with_all = ["format", "text_field", "skip_invalid"])]
    pub article: bool,
    /// With --article: the article's headline.
    #[arg(long, requires = "article")]
    pub title: Option<String>,
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
    let explain = if a.raw_features {
        Explain::Features(a.explain)
    } else {
        Explain::Words(a.explain)
    };
    if heads.is_empty() {
        heads = model.every_head();
    }
    if a.article {
        return article(&model, &heads, explain, &a.input, a.title.as_deref());
    }
    let flags = [("--text-field", a.text_field.as_str())];
    let input =
        open_passages(&a.input, a.format, &a.text_field).map_err(|e| data_error(e, &flags))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut ws = Workspace::default();
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

/// `--article`: the input (a file or standard input) is one article's text,
/// split and scored as ScoreArticle does with the server's default limits:
/// the title with every head of `heads`, the body's passages without the
/// heads whose scope is headlines, and a summary per head.
fn article(
    model: &Model,
    heads: &[usize],
    explain: Explain,
    input: &Path,
    title: Option<&str>,
) -> Result<()> {
    let text = read_text(input)?;
    let title = title.unwrap_or("").trim();
    let ranges = split_article(&text, Limits::default().max_passage_bytes);
    if ranges.is_empty() && title.is_empty() {
        bail!(
            "nothing to score: {} holds nothing but whitespace, and no --title was given",
            shown(input)
        );
    }
    let mut ws = Workspace::default();
    let mut passages = Vec::with_capacity(ranges.len() + 1);
    if !title.is_empty() {
        let scores = model.score(title, heads, explain, &mut ws);
        passages.push(proto::ScoredPassage {
            start: 0,
            end: u32::try_from(title.len()).unwrap_or(u32::MAX),
            score: Some(proto::passage_score(model, title, &scores)),
            in_title: true,
        });
    }
    let body = proto::body_heads(model, heads);
    for r in ranges {
        let passage = text.get(r.clone()).unwrap_or("");
        // No head at all when only headline heads were asked for.
        let scores = model.score(passage, &body, explain, &mut ws);
        passages.push(proto::ScoredPassage {
            start: u32::try_from(r.start).unwrap_or(u32::MAX),
            end: u32::try_from(r.end).unwrap_or(u32::MAX),
            score: Some(proto::passage_score(model, passage, &scores)),
            in_title: false,
        });
    }
    let summary = proto::article_summary(model, heads, &passages, |_, head, probs| {
        (head.decide(probs), head.threshold.unwrap_or(0.0))
    });
    let response = proto::ArticleResponse {
        passages,
        summary,
        model_id: model.id().to_string(),
        request_id: String::new(),
        model: String::new(),
        model_version: String::new(),
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &response)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn shown(input: &Path) -> String {
    if input == Path::new("-") {
        "standard input".to_string()
    } else {
        input.display().to_string()
    }
}
