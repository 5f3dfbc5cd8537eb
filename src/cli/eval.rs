//! `slant eval`: a head's metrics on labeled data.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{data_error, load, parse_format};
use crate::data::{read_labeled, DataSpec, Format};

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

pub(super) fn run(a: EvalArgs) -> Result<()> {
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
    let flags = [
        ("--text-field", a.text_field.as_str()),
        ("--label-field", a.label_field.as_str()),
    ];
    let data = read_labeled(&spec, &model.heads()[head].labels, a.skip_invalid)
        .map_err(|e| data_error(e, &flags))?;
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
