//! `slant score`: scores passages, one JSON line each.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::load;
use crate::data::open_passages;
use crate::model::Workspace;

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

pub(super) fn run(a: ScoreArgs) -> Result<()> {
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
