//! Bench: single-thread scoring throughput over the same corpus as
//! `shared/bench/throughput.py` — the `text` of every `*/train.jsonl` under
//! a folder (folders sorted, lines in file order), repeated to N passages;
//! and how long loading a model file takes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::data::{DataError, PassageReader};
use crate::model::Model;
use crate::model::Workspace;

#[derive(Debug, Clone, Serialize)]
pub struct ScoreBench {
    pub passages: usize,
    pub mb: f64,
    pub seconds: f64,
    pub passages_per_s: f64,
    pub mb_per_s: f64,
    pub heads: usize,
    /// With `--stages`: where the time goes (see [`stages`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<Stage>>,
}

/// Scoring stopped after one stage: its time per passage, stages before
/// it included.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub stage: &'static str,
    pub ns_per_passage: f64,
}

impl std::fmt::Display for ScoreBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passages ({:.1} MB) through {} heads in {:.3} s: {:.0} passages/s, {:.2} MB/s (one thread)",
            self.passages, self.mb, self.heads, self.seconds, self.passages_per_s, self.mb_per_s
        )?;
        for s in self.stages.iter().flatten() {
            write!(
                f,
                "\n  up to {:<10} {:>7.0} ns/passage",
                s.stage, s.ns_per_passage
            )?;
        }
        Ok(())
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

/// Seconds `step` takes over every passage on this thread, after a
/// warm-up on the first 2,000. `step` returns a number that is summed and
/// kept, so that no work is optimised away.
fn time(passages: &[String], mut step: impl FnMut(&str, &mut Workspace) -> usize) -> f64 {
    let mut ws = Workspace::default();
    let mut sink = 0usize;
    for p in passages.iter().take(2000) {
        sink += step(p, &mut ws);
    }
    let start = Instant::now();
    for p in passages {
        sink += step(p, &mut ws);
    }
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(sink);
    seconds
}

/// One passage scored with every head: the step [`score`] times.
fn classify(model: &Model) -> impl FnMut(&str, &mut Workspace) -> usize + '_ {
    |p, ws| {
        model.classify(p, ws);
        ws.labels.iter().sum()
    }
}

/// Scores every passage with every head on this thread, after a warm-up
/// on the first 2,000.
pub fn score(model: &Model, passages: &[String]) -> ScoreBench {
    let seconds = time(passages, classify(model));
    let mb = passages.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    ScoreBench {
        passages: passages.len(),
        mb,
        seconds,
        passages_per_s: passages.len() as f64 / seconds,
        mb_per_s: mb / seconds,
        heads: model.heads().len(),
        stages: None,
    }
}

/// Where scoring's time goes: the passages scored again and again, each
/// time stopped after one more stage of [`Model::classify`]:
/// - `tokenize`: tokens and their hashes
/// - `words`: the word n-gram, marker and lexicon lookups
/// - `chars`: the character n-gram lookups of out-of-vocabulary words
/// - `all`: everything, up to each head's probabilities and label
///
/// Each time includes the stages before it, so a stage's own cost is its
/// difference from the one before. (Stopped early, a stage may overlap
/// less with what follows it than in a full run.)
pub fn stages(model: &Model, passages: &[String]) -> Vec<Stage> {
    let mut tokens = Vec::new();
    let per_passage = |seconds: f64| seconds * 1e9 / passages.len().max(1) as f64;
    let stage = |stage, seconds| Stage {
        stage,
        ns_per_passage: per_passage(seconds),
    };
    vec![
        stage(
            "tokenize",
            time(passages, |p, _| {
                crate::text::tokenize(p, &mut tokens);
                tokens.len()
            }),
        ),
        stage("words", time(passages, |p, ws| model.lookups(p, ws, false))),
        stage("chars", time(passages, |p, ws| model.lookups(p, ws, true))),
        stage("all", time(passages, classify(model))),
    ]
}

/// How long loading a model file takes, over several loads.
#[derive(Debug, Clone, Serialize)]
pub struct LoadBench {
    pub model: String,
    pub runs: usize,
    /// Reading the file and checking it (header, checksum, decoding,
    /// content), median ms.
    pub read_ms: f64,
    /// Compiling the scorer (featurizer index, tables, precomputed
    /// character sums), median ms.
    pub compile_ms: f64,
    /// Both, per load: median, min and max ms.
    pub total_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl std::fmt::Display for LoadBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loading {} ({} runs): median {:.1} ms (read and check {:.1} ms, compile {:.1} ms), min {:.1} ms, max {:.1} ms",
            self.model, self.runs, self.total_ms, self.read_ms, self.compile_ms, self.min_ms, self.max_ms
        )
    }
}

/// Loads `path` `runs` times (after one unmeasured load).
pub fn load(path: &Path, runs: usize) -> Result<LoadBench, crate::model::ModelError> {
    let once = || -> Result<(f64, f64), crate::model::ModelError> {
        let t0 = Instant::now();
        let (data, id) = crate::model::ModelData::load(path)?;
        let t1 = Instant::now();
        let model = Model::from_data(data, id, path)?;
        let t2 = Instant::now();
        drop(model);
        Ok(((t1 - t0).as_secs_f64() * 1e3, (t2 - t1).as_secs_f64() * 1e3))
    };
    once()?;
    let runs = runs.max(1);
    let mut read = Vec::with_capacity(runs);
    let mut compile = Vec::with_capacity(runs);
    let mut total = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (r, c) = once()?;
        read.push(r);
        compile.push(c);
        total.push(r + c);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (min_ms, max_ms) = total
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    Ok(LoadBench {
        model: path.display().to_string(),
        runs,
        read_ms: median(&mut read),
        compile_ms: median(&mut compile),
        total_ms: median(&mut total),
        min_ms,
        max_ms,
    })
}
