//! Arbitrary bytes → prost decode as `slant.v1.ScoreRequest` and as
//! `slant.v1.ArticleRequest` (either may fail; neither may panic). Each
//! decoded request passes the server's own checks
//! (`slant::service::request`), which must refuse unknown and repeated
//! heads with INVALID_ARGUMENT and accept only distinct known heads within
//! the contribution limit. What passes is scored by a fixed tiny model
//! built in-process, and every result must hold: one probability per label
//! summing to 1, a label that indexes the head's labels, and every
//! contribution span a non-empty range inside its passage on char
//! boundaries.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use slant::features::{FeatureSettings, Featurizer};
use slant::model::{Expert, HeadData, Linear, Mixture, Model, ModelData, Workspace};
use slant::proto::{ArticleRequest, ScoreRequest};
use slant::service::request::{check_article, check_contributions, check_score};
use slant::service::Limits;
use slant::text::split::split_article;
use tonic::Code;

/// The server's defaults, with a small passage limit so that fuzzed
/// articles exercise the cutting.
fn limits() -> Limits {
    Limits {
        max_passage_bytes: 200,
        ..Limits::default()
    }
}

/// Three heads (three-, two- and four-label) over word 1–2-grams, the
/// `<caps>` marker, lexicon markers and character 2–4-grams, with fixed
/// pseudo-random weights: every feature kind can show up in an explanation.
fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let settings = FeatureSettings {
            char_ngrams: [2, 4],
            char_weight: 0.7,
            // Misspellings of the lexicon's words ("godo", "shcoking") are
            // read as the words meant: the alias path gets fuzzed too.
            typo_aliases: true,
            // Contractions ("won't") are split in two: that path too.
            expand_contractions: true,
            // Handles are left out: that path too.
            skip_handles: true,
            // Market moves ("rally", "fall") are marked: that path too.
            market_words: true,
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
                    scope: slant::model::Scope::Passage,
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    threshold,
                    weights: (0..n * k).map(|_| rnd()).collect(),
                    intercept: (0..k).map(|_| rnd()).collect(),
                    hyperparameters: BTreeMap::new(),
                    dev_metrics: BTreeMap::new(),
                    data: vec![],
                    mixture: None,
                }
            };
        // Sentiment a mixture of two experts under a gate, the second
        // reading only what follows a contrasting "but".
        let mut linear = |k: usize| Linear {
            weights: (0..n * k).map(|_| rnd()).collect(),
            intercept: (0..k).map(|_| rnd()).collect(),
        };
        let mixture = Mixture {
            joint_weight: 0.0,
            sources: vec!["general".into(), "other".into()],
            gate: linear(1),
            experts: vec![Expert::Linear(linear(3)), Expert::Linear(linear(3))],
            after_contrast: Some(1),
        };
        let mut sentiment = head(
            "sentiment",
            &["negative", "neutral", "positive"],
            None,
            &mut rnd,
        );
        sentiment.weights.clear();
        sentiment.intercept.clear();
        sentiment.mixture = Some(mixture);
        let data = ModelData {
            slant_version: "fuzz".into(),
            config_sha256: "0".repeat(64),
            vocabulary: f.vocabulary().clone(),
            heads: vec![
                sentiment,
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

/// The server's verdict on `names` must be: INVALID_ARGUMENT when a name
/// is unknown or repeated; else the distinct heads, in the order named.
fn check_heads(model: &Model, names: &[String], verdict: Result<&[usize], Code>) {
    let mut seen = std::collections::BTreeSet::new();
    let bad = names
        .iter()
        .any(|n| model.head_index(n).is_none() || !seen.insert(n.as_str()));
    match verdict {
        Ok(heads) => {
            assert!(!bad, "bad heads {names:?} were accepted");
            if names.is_empty() {
                assert_eq!(heads.len(), model.heads().len());
            } else {
                let expected: Vec<usize> =
                    names.iter().filter_map(|n| model.head_index(n)).collect();
                assert_eq!(heads, expected.as_slice());
            }
        }
        Err(code) => {
            if bad {
                assert_eq!(code, Code::InvalidArgument, "heads {names:?}");
            }
        }
    }
}

fn score_and_check(
    model: &Model,
    passage: &str,
    heads: &[usize],
    explain: usize,
    ws: &mut Workspace,
) {
    let explain = explain as usize;
    // Words and raw features by turns (the passage's length decides).
    let mode = if passage.len() % 2 == 0 {
        slant::model::Explain::Words(explain)
    } else {
        slant::model::Explain::Features(explain)
    };
    let scores = model.score(passage, heads, mode, ws);
    assert_eq!(scores.len(), heads.len(), "one score per requested head");
    for (i, s) in scores.iter().enumerate() {
        assert_eq!(s.head, heads[i], "heads answer in the requested order");
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
                "feature {:?} has no span in {passage:?}",
                c.feature
            );
            for &(a, b) in &c.spans {
                let (a, b) = (a as usize, b as usize);
                assert!(
                    a < b
                        && b <= passage.len()
                        && passage.is_char_boundary(a)
                        && passage.is_char_boundary(b),
                    "span {a}..{b} of {:?} in {passage:?}",
                    c.feature.map(|j| model.featurizer().term(j))
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let model = model();
    let limits = limits();
    let mut ws = Workspace::default();
    if let Ok(req) = ScoreRequest::decode(data) {
        let checked = check_score(model, &limits, &req);
        check_heads(
            model,
            &req.heads,
            checked.as_ref().map(|c| c.heads.as_slice()).map_err(|s| s.code()),
        );
        if let Ok(c) = checked {
            assert!(req.passages.len() * c.heads.len() * c.explain <= limits.max_contributions);
            for passage in &req.passages {
                score_and_check(model, passage, &c.heads, c.explain, &mut ws);
            }
        }
    }
    if let Ok(req) = ArticleRequest::decode(data) {
        let checked = check_article(model, &limits, &req);
        check_heads(
            model,
            &req.heads,
            checked.as_ref().map(|c| c.heads.as_slice()).map_err(|s| s.code()),
        );
        if let Ok(c) = checked {
            let text = req.text.as_str();
            let passages = split_article(text, limits.max_passage_bytes);
            let n = passages.len() + usize::from(!req.title.trim().is_empty());
            if check_contributions(n, c.heads.len(), c.explain, limits.max_contributions).is_err() {
                return;
            }
            for r in passages {
                assert!(
                    r.start < r.end
                        && r.end <= text.len()
                        && text.is_char_boundary(r.start)
                        && text.is_char_boundary(r.end),
                    "passage {r:?} of {text:?}"
                );
                score_and_check(model, &text[r], &c.heads, c.explain, &mut ws);
            }
            if !req.title.is_empty() {
                score_and_check(model, &req.title, &c.heads, c.explain, &mut ws);
            }
        }
    }
});
