//! Bench: single-thread scoring throughput over the same corpus as
//! `shared/bench/throughput.py` — the `text` of every `*/train.jsonl` under
//! a folder (folders sorted, lines in file order), repeated to N passages;
//! the same measured against peers in the same rounds (ratios and their
//! medians); and how long loading a model file takes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

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
    /// With several rounds or peers: every round (the figures above are
    /// the median round's) and each peer's ratio over them (see [`versus`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Vec<Round>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus: Option<Vec<Versus>>,
}

/// A peer's throughput, as `shared/bench/throughput.py` prints it: one
/// JSON line per peer with at least these two fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRate {
    pub peer: String,
    pub passages_per_s: f64,
}

/// The peers' rates in a peer command's output: every line that is a JSON
/// object with `peer` and a positive `passages_per_s`; other lines
/// (warnings, progress) are not rates and are passed over.
pub fn peer_rates(output: &str) -> Vec<PeerRate> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<PeerRate>(line.trim()).ok())
        .filter(|r| r.passages_per_s.is_finite() && r.passages_per_s > 0.0)
        .collect()
}

/// One round: the peers measured, then slant, back to back, so that both
/// see the machine in the same state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub passages_per_s: f64,
    pub peers: Vec<PeerRate>,
}

impl Round {
    /// slant's rate over `peer`'s in this round.
    pub fn ratio(&self, peer: &PeerRate) -> f64 {
        self.passages_per_s / peer.passages_per_s
    }
}

/// slant against one peer over the rounds that measured it: the median of
/// each round's ratio (slant's passages/s over the peer's in that round),
/// and its spread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Versus {
    pub peer: String,
    pub rounds: usize,
    /// The peer's median passages/s.
    pub passages_per_s: f64,
    pub ratio: f64,
    pub min_ratio: f64,
    pub max_ratio: f64,
}

/// Each peer's [`Versus`], peers in the order they first reported. A
/// ratio is only ever taken within a round: this machine's speed drifts
/// between rounds far more than within one.
pub fn versus(rounds: &[Round]) -> Vec<Versus> {
    let mut names: Vec<&str> = Vec::new();
    for r in rounds.iter().flat_map(|r| &r.peers) {
        if !names.contains(&r.peer.as_str()) {
            names.push(&r.peer);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let (mut rates, mut ratios): (Vec<f64>, Vec<f64>) = rounds
                .iter()
                .filter_map(|r| {
                    let p = r.peers.iter().find(|p| p.peer == name)?;
                    Some((p.passages_per_s, r.ratio(p)))
                })
                .unzip();
            let (min_ratio, max_ratio) = min_max(&ratios);
            Versus {
                peer: name.to_string(),
                rounds: ratios.len(),
                passages_per_s: median(&mut rates),
                ratio: median(&mut ratios),
                min_ratio,
                max_ratio,
            }
        })
        .collect()
}

/// The median (the mean of the middle two for an even count; 0 for none).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The smallest and the largest value (infinity and 0 for none).
fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// The round whose slant rate is the median's (the upper middle one for an
/// even count): the round whose figures a report leads with.
pub fn median_round(rounds: &[Round]) -> usize {
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| {
        rounds[a]
            .passages_per_s
            .total_cmp(&rounds[b].passages_per_s)
    });
    order.get(rounds.len() / 2).copied().unwrap_or(0)
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
        for (k, r) in self.rounds.iter().flatten().enumerate() {
            write!(f, "\n  round {}: {:.0} passages/s", k + 1, r.passages_per_s)?;
            for p in &r.peers {
                write!(
                    f,
                    "; {} {:.0} ({:.2}x)",
                    p.peer,
                    p.passages_per_s,
                    r.ratio(p)
                )?;
            }
        }
        for v in self.versus.iter().flatten() {
            write!(
                f,
                "\n  {:.2}x {}: median of {} round{} (min {:.2}x, max {:.2}x); the peer's median {:.0} passages/s",
                v.ratio,
                v.peer,
                v.rounds,
                if v.rounds == 1 { "" } else { "s" },
                v.min_ratio,
                v.max_ratio,
                v.passages_per_s
            )?;
        }
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
        rounds: None,
        versus: None,
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
    let (min_ms, max_ms) = min_max(&total);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn round(slant: f64, peers: &[(&str, f64)]) -> Round {
        Round {
            passages_per_s: slant,
            peers: peers
                .iter()
                .map(|&(peer, passages_per_s)| PeerRate {
                    peer: peer.to_string(),
                    passages_per_s,
                })
                .collect(),
        }
    }

    #[test]
    fn peer_rates_are_read_from_throughput_py_lines_alone() {
        // As throughput.py prints them, among lines that are not rates.
        let out = "fitting...\n\
            {\"peer\": \"sklearn-tfidf12-logreg\", \"passages\": 200000, \"mb\": 19.4, \"passages_per_s\": 40687, \"mb_per_s\": 3.95}\n\
            Warning : `load_model` does not return WordVectorModel\n\
            {\"peer\": \"fasttext-bigram\", \"passages\": 200000, \"passages_per_s\": 89012.5}\n\
            {\"peer\": \"broken\", \"passages_per_s\": 0}\n\
            {\"passages_per_s\": 5}\n\
            [1, 2]\n";
        let rates = peer_rates(out);
        assert_eq!(
            rates,
            [
                PeerRate {
                    peer: "sklearn-tfidf12-logreg".into(),
                    passages_per_s: 40687.0
                },
                PeerRate {
                    peer: "fasttext-bigram".into(),
                    passages_per_s: 89012.5
                },
            ]
        );
        assert!(peer_rates("").is_empty());
    }

    #[test]
    fn each_ratio_is_taken_within_its_round_and_the_median_reported() {
        // The machine slows down in round 2 for both: within each round
        // slant is 10x, 10x and 16x the peer, so the median ratio is 10,
        // where the ratio of the medians (600 / 50) would say 12.
        let rounds = [
            round(1000.0, &[("a", 100.0), ("b", 500.0)]),
            round(300.0, &[("a", 30.0)]),
            round(800.0, &[("a", 50.0), ("b", 200.0)]),
        ];
        let v = versus(&rounds);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].peer, "a");
        assert_eq!(v[0].rounds, 3);
        assert_eq!(v[0].ratio, 10.0);
        assert_eq!((v[0].min_ratio, v[0].max_ratio), (10.0, 16.0));
        assert_eq!(v[0].passages_per_s, 50.0);
        // A peer missing from a round is compared over the rounds it ran.
        assert_eq!(v[1].peer, "b");
        assert_eq!(v[1].rounds, 2);
        assert_eq!(v[1].ratio, 3.0);
        assert_eq!(v[1].passages_per_s, 350.0);
        assert!(versus(&[round(5.0, &[])]).is_empty());
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
        // The round a report leads with: the median rate's (upper middle).
        let rounds =
            |rates: &[f64]| -> Vec<Round> { rates.iter().map(|&r| round(r, &[])).collect() };
        assert_eq!(median_round(&rounds(&[5.0, 1.0, 3.0])), 2);
        assert_eq!(median_round(&rounds(&[5.0, 1.0, 3.0, 4.0])), 3);
        assert_eq!(median_round(&rounds(&[7.0])), 0);
    }
}
