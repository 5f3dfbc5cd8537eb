//! `slant check`: a model's heads against a behaviour suite (sentences made
//! from templates, by capability), one table of tests with their failure
//! rates, and its JSON form.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::load;
use crate::eval::behaviour::{compare, Suite, TestReport};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[arg(long, default_value = "models/default.slant")]
    pub model: PathBuf,
    /// The behaviour suite (TOML): templates, what fills them, and what
    /// each test expects; see data/behaviour.toml.
    #[arg(long, default_value = "data/behaviour.toml")]
    pub suite: PathBuf,
    /// Failed cases shown per test.
    #[arg(long, default_value_t = 2)]
    pub examples: usize,
    /// Print one JSON object: the model id and every test's outcome.
    #[arg(long)]
    pub json: bool,
    /// Another model to run the suite too: each test reports its
    /// failures beside this model's, and how many cases this model fixes
    /// (passes where the other fails) and breaks (the reverse).
    #[arg(long, value_name = "MODEL")]
    pub compare: Option<PathBuf>,
}

pub(super) fn run(a: CheckArgs) -> Result<()> {
    let model = load(&a.model)?;
    let suite = Suite::load(&a.suite)?;
    let mut reports = suite.run(&model, a.examples)?;
    if let Some(path) = &a.compare {
        let other = load(path)?;
        let theirs = suite
            .run(&other, 0)
            .with_context(|| format!("cannot run the suite on {}", path.display()))?;
        compare(&mut reports, &theirs, other.id());
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(
            out,
            "{}",
            json!({ "model_id": model.id(), "suite": a.suite.display().to_string(), "tests": reports })
        )?;
    } else {
        write!(out, "{}", table(model.id(), &reports))?;
    }
    Ok(())
}

/// What a test expects, in words.
fn expects(r: &TestReport) -> String {
    match (r.kind, &r.expected) {
        ("label", Some(l)) => l.clone(),
        ("not", Some(l)) => format!("not {l}"),
        ("raises", Some(l)) => format!("P({l}) not lower"),
        ("lowers", Some(l)) => format!("P({l}) not higher"),
        _ => "same label".into(),
    }
}

fn table(model_id: &str, reports: &[TestReport]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "model {model_id}");
    let versus = reports.iter().find_map(|r| r.versus.as_ref());
    if let Some(v) = versus {
        let _ = writeln!(
            s,
            "against {}: its rate, and the cases this model fixes and breaks",
            v.model_id
        );
    }
    let _ = write!(
        s,
        "{:<12} {:<44} {:<15} {:<23} {:>6} {:>7} {:>7}",
        "capability", "test", "head", "expects", "cases", "failed", "rate"
    );
    if versus.is_some() {
        let _ = write!(s, " {:>7} {:>6} {:>6}", "other", "fixed", "broken");
    }
    let _ = writeln!(s);
    for r in reports {
        let _ = write!(
            s,
            "{:<12} {:<44} {:<15} {:<23} {:>6} {:>7} {:>6.1}%",
            r.capability,
            r.name,
            r.head,
            expects(r),
            r.cases,
            r.failed,
            100.0 * r.failure_rate
        );
        if let Some(v) = &r.versus {
            let _ = write!(
                s,
                " {:>6.1}% {:>6} {:>6}",
                100.0 * v.failure_rate,
                v.fixed,
                v.broken
            );
        }
        let _ = writeln!(s);
    }
    let cases: usize = reports.iter().map(|r| r.cases).sum();
    let failed: usize = reports.iter().map(|r| r.failed).sum();
    let _ = writeln!(s, "{} tests, {cases} cases, {failed} failed", reports.len());
    let mut first = true;
    for r in reports.iter().filter(|r| !r.examples.is_empty()) {
        if first {
            let _ = writeln!(s, "\nfailures (the first of each test):");
            first = false;
        }
        let _ = writeln!(s, "{}:", r.name);
        for f in &r.examples {
            match (&f.edited, &f.edited_label) {
                (Some(e), Some(l)) => match (f.probability, f.edited_probability, &r.expected) {
                    (Some(p), Some(q), Some(of)) => {
                        let _ = writeln!(s, "  {:?} P({of}) {p:.3} -> {:?} {q:.3}", f.passage, e);
                    }
                    _ => {
                        let _ = writeln!(s, "  {:?} {} -> {:?} {l}", f.passage, f.label, e);
                    }
                },
                _ => {
                    let _ = writeln!(s, "  {:?} {}", f.passage, f.label);
                }
            }
        }
    }
    s
}
