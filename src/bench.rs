//! Bench: single-thread scoring throughput over the same corpus as
//! `shared/bench/throughput.py` — the `text` of every `*/train.jsonl` under
//! a folder (folders sorted, lines in file order), repeated to N passages.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::data::{DataError, PassageReader};
use crate::features::Workspace;
use crate::model::Model;

#[derive(Debug, Clone, Serialize)]
pub struct ScoreBench {
    pub passages: usize,
    pub mb: f64,
    pub seconds: f64,
    pub passages_per_s: f64,
    pub mb_per_s: f64,
    pub heads: usize,
}

impl std::fmt::Display for ScoreBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passages ({:.1} MB) through {} heads in {:.3} s: {:.0} passages/s, {:.2} MB/s (one thread)",
            self.passages, self.mb, self.heads, self.seconds, self.passages_per_s, self.mb_per_s
        )
    }
}

/// The `text` of every `DIR/*/train.jsonl`, folders sorted, lines in file
/// order: the corpus of `shared/bench/throughput.py`.
pub fn corpus_texts(dir: &Path) -> Result<Vec<String>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path().join("train.jsonl")))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut base = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).map_err(|source| DataError::Io {
            path: f.clone(),
            source,
        })?;
        for item in PassageReader::new(std::io::BufReader::new(file), &f) {
            base.push(item?.1);
        }
    }
    if base.is_empty() {
        return Err(DataError::Empty {
            path: dir.to_path_buf(),
        });
    }
    Ok(base)
}

/// [`corpus_texts`] repeated to `n` passages.
pub fn corpus(dir: &Path, n: usize) -> Result<Vec<String>, DataError> {
    let base = corpus_texts(dir)?;
    Ok(base.iter().cycle().take(n).cloned().collect())
}

/// Scores every passage with every head on this thread, after a warm-up
/// on the first 2,000.
pub fn score(model: &Model, passages: &[String]) -> ScoreBench {
    let mut ws = Workspace::default();
    let mut sink = 0usize;
    for p in passages.iter().take(2000) {
        model.classify(p, &mut ws);
        sink += ws.labels.len();
    }
    let start = Instant::now();
    for p in passages {
        model.classify(p, &mut ws);
        sink += ws.labels.iter().sum::<usize>();
    }
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(sink);
    let mb = passages.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    ScoreBench {
        passages: passages.len(),
        mb,
        seconds,
        passages_per_s: passages.len() as f64 / seconds,
        mb_per_s: mb / seconds,
        heads: model.heads().len(),
    }
}
