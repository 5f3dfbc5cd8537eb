//! `slant info`: describes a model file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::{json, Value};

use super::load;
use crate::model::Expert;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(a: InfoArgs) -> Result<()> {
    let model = load(&a.model)?;
    let d = model.data();
    let v = model.featurizer().vocabulary();
    let heads: Vec<Value> = d
        .heads
        .iter()
        .map(|h| {
            json!({
                "name": h.name,
                "scope": h.scope,
                "labels": h.labels,
                "threshold": h.threshold,
                "hyperparameters": h.hyperparameters(),
                "dev_metrics": h.dev_metrics,
                "mixture": h.mixture.as_ref().map(|m| json!({
                    "joint_weight": m.joint_weight,
                    "experts": m.sources.iter().zip(&m.experts).enumerate().map(|(i, (s, e))| match e {
                        Expert::Linear(_) => json!({"domain": s, "kind": "linear", "after_contrast": m.after_contrast == Some(i as u32)}),
                        Expert::Constant(p) => json!({"domain": s, "kind": "constant", "probabilities": p}),
                    }).collect::<Vec<_>>(),
                })),
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
        writeln!(out, "  scope: {}", h.scope)?;
        match h.threshold {
            Some(t) => writeln!(out, "  decision: {} when P >= {t}", h.labels[1])?,
            None => writeln!(out, "  decision: argmax")?,
        }
        if let Some(m) = &h.mixture {
            let experts: Vec<String> = m
                .sources
                .iter()
                .zip(&m.experts)
                .enumerate()
                .map(|(i, (s, e))| match e {
                    Expert::Linear(_) if m.after_contrast == Some(i as u32) => {
                        format!("{s} (reads what follows a contrasting \"but\")")
                    }
                    Expert::Linear(_) => s.clone(),
                    Expert::Constant(p) => format!("{s} (constant {p:.4?})"),
                })
                .collect();
            writeln!(
                out,
                "  mixture: joint weight {}; gate over {}",
                m.joint_weight,
                experts.join(", ")
            )?;
        }
        writeln!(
            out,
            "  hyperparameters: {}",
            h.hyperparameters()
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
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
