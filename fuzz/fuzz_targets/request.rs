//! Arbitrary bytes → prost decode as `slant.v1.ScoreRequest` and as
//! `slant.v1.ArticleRequest` (either may fail; neither may panic). The
//! decoded passages (an article's split passages and its title) are scored
//! by a fixed tiny model built in-process, with the requested heads and up
//! to 64 explanations, and every result must hold: one probability per
//! label summing to 1, a label that indexes the head's labels, and every
//! contribution span a non-empty range inside its passage on char
//! boundaries.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use slant::features::{FeatureSettings, Featurizer};
use slant::model::{HeadData, Model, ModelData, Workspace};
use slant::proto::{ArticleRequest, ScoreRequest};
use slant::text::split::split_article;

/// The server's default `--max-explain`.
const MAX_EXPLAIN: u32 = 64;
/// A small passage limit, so that fuzzed articles exercise the cutting.
const MAX_PASSAGE_BYTES: usize = 200;

/// Three heads (three-, two- and four-label) over word 1–2-grams, the
/// `<caps>` marker, lexicon markers and character 2–4-grams, with fixed
/// pseudo-random weights: every feature kind can show up in an explanation.
fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let settings = FeatureSettings {
            char_ngrams: [2, 4],
            char_weight: 0.7,
            ..Default::default()
        };
        settings.validate().expect("settings");
        let corpus = [
            "SHOCKING news: the senator LIED!!",
            "Markets rally as rates fall 3.5 percent",
            "Über café naïve résumé — «vraiment?»",
            "You won't believe what happened next?!",
            "東京 officials say the plan is good",
            "bad news for the économie",
        ];
        // Lexicon words that are features and one that is not ("awful").
        let lexicon: Vec<(String, f32)> = [
            ("good", 1.9),
            ("bad", -2.5),
            ("shocking", -1.5),
            ("awful", -2.0),
        ]
        .iter()
        .map(|&(w, v)| (w.to_string(), v))
        .collect();
        let f = Featurizer::fit_with_lexicon(&settings, &lexicon, corpus, || {}).expect("fit");
        let n = f.len();
        let mut x = 7u32;
        let mut rnd = move || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((x >> 8) % 2000) as f32 / 500.0 - 2.0
        };
        let head =
            |name: &str, labels: &[&str], threshold: Option<f64>, rnd: &mut dyn FnMut() -> f32| {
                let k = if labels.len() == 2 { 1 } else { labels.len() };
                HeadData {
                    name: name.into(),
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    threshold,
                    weights: (0..n * k).map(|_| rnd()).collect(),
                    intercept: (0..k).map(|_| rnd()).collect(),
                    hyperparameters: BTreeMap::new(),
                    dev_metrics: BTreeMap::new(),
                    data: vec![],
                }
            };
        let data = ModelData {
            slant_version: "fuzz".into(),
            config_sha256: "0".repeat(64),
            vocabulary: f.vocabulary().clone(),
            heads: vec![
                head(
                    "sentiment",
                    &["negative", "neutral", "positive"],
                    None,
                    &mut rnd,
                ),
                head(
                    "clickbait",
                    &["not_clickbait", "clickbait"],
                    Some(0.4),
                    &mut rnd,
                ),
                head(
                    "misinformation",
                    &["true", "mixed", "false", "satire"],
                    None,
                    &mut rnd,
                ),
            ],
        };
        // Through the file format, as the server loads it.
        let bytes = data.to_bytes().expect("encode");
        let (data, id) = ModelData::from_bytes(&bytes, Path::new("fuzz")).expect("decode");
        Model::from_data(data, id, Path::new("fuzz")).expect("compile")
    })
}

/// Head indices for the requested names (all when empty); `None` when a
/// name is unknown (the server answers INVALID_ARGUMENT).
fn resolve(model: &Model, names: &[String]) -> Option<Vec<usize>> {
    names.iter().map(|n| model.head_index(n)).collect()
}

fn score_and_check(
    model: &Model,
    passage: &str,
    heads: &[usize],
    explain: u32,
    ws: &mut Workspace,
) {
    let explain = explain.min(MAX_EXPLAIN) as usize;
    let scores = model.score(passage, heads, explain, ws);
    let expected = if heads.is_empty() {
        model.heads().len()
    } else {
        heads.len()
    };
    assert_eq!(scores.len(), expected, "one score per requested head");
    for (i, s) in scores.iter().enumerate() {
        if !heads.is_empty() {
            assert_eq!(s.head, heads[i], "heads answer in the requested order");
        }
        let head = &model.heads()[s.head];
        assert_eq!(s.probabilities.len(), head.labels.len());
        let sum: f64 = s.probabilities.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-9 && s.probabilities.iter().all(|p| (0.0..=1.0).contains(p)),
            "head {:?}: probabilities {:?} for {passage:?}",
            head.name,
            s.probabilities
        );
        assert!(
            s.label < head.labels.len(),
            "label {} of {:?}",
            s.label,
            head.labels
        );
        assert!(s.contributions.len() <= explain);
        for c in &s.contributions {
            assert!(
                c.weight.is_finite() && c.weight != 0.0,
                "weight {}",
                c.weight
            );
            assert!(
                !c.spans.is_empty(),
                "feature {} has no span in {passage:?}",
                c.feature
            );
            for &(a, b) in &c.spans {
                let (a, b) = (a as usize, b as usize);
                assert!(
                    a < b
                        && b <= passage.len()
                        && passage.is_char_boundary(a)
                        && passage.is_char_boundary(b),
                    "span {a}..{b} of feature {:?} in {passage:?}",
                    model.featurizer().term(c.feature)
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let model = model();
    let mut ws = Workspace::default();
    if let Ok(req) = ScoreRequest::decode(data) {
        if let Some(heads) = resolve(model, &req.heads) {
            for passage in &req.passages {
                score_and_check(model, passage, &heads, req.explain, &mut ws);
            }
        }
    }
    if let Ok(req) = ArticleRequest::decode(data) {
        if let Some(heads) = resolve(model, &req.heads) {
            let text = req.text.as_str();
            for r in split_article(text, MAX_PASSAGE_BYTES) {
                assert!(
                    r.start < r.end
                        && r.end <= text.len()
                        && text.is_char_boundary(r.start)
                        && text.is_char_boundary(r.end),
                    "passage {r:?} of {text:?}"
                );
                score_and_check(model, &text[r], &heads, req.explain, &mut ws);
            }
            if !req.title.is_empty() {
                score_and_check(model, &req.title, &heads, req.explain, &mut ws);
            }
        }
    }
});
