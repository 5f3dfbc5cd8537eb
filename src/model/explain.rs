//! Explanations: each head's score for a passage with what pushed it, in
//! the passage's own words (every feature folded into the words it came
//! from) or, for debugging, as raw features, with their byte spans.
//!
//! Feature `j`'s contribution towards label `l` is x_j·w_j (negated for
//! label 0) for a two-class head, x_j·(w_jl − mean_c w_jc) otherwise.
//! A word's contribution is the sum of its features' contributions, each
//! times the word's share of the feature (see
//! [`Featurizer::token_shares`](crate::features::Featurizer::token_shares)):
//! the words' contributions add up to the features'.
//!
//! For a mixture head, a feature's weight is its joint model's and linear
//! experts' weights (each as above) times their shares of the blend on
//! that passage: λ, and (1 − λ)·g_d for domain d's expert. This is how
//! the blend leans on each model there, not an exact split of its
//! probability; the gate's own weights (which domain a passage reads like)
//! are not shown.

use super::scorer::Workspace;
use super::scorer::{Head, Model};
use std::collections::HashMap;

/// What [`Model::score`] adds to each head's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Explain {
    /// Scores alone.
    #[default]
    None,
    /// The `k` passage words that push the head most (see
    /// [`HeadScore::explained`]): every feature folded into its words.
    Words(usize),
    /// The `k` raw features (n-grams, character n-grams, markers) with the
    /// largest contribution to the decided label, by absolute value: for
    /// debugging a model.
    Features(usize),
}

impl Explain {
    /// How many contributions each head gets at most.
    pub fn k(self) -> usize {
        match self {
            Self::None => 0,
            Self::Words(k) | Self::Features(k) => k,
        }
    }
}

/// One head's score for one passage.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadScore {
    /// Index into [`Model::heads`].
    pub head: usize,
    /// The decided label.
    pub label: usize,
    pub probabilities: Vec<f64>,
    /// The label the contributions are signed toward (a positive weight
    /// pushes toward it). With [`Explain::Words`]: the positive label
    /// (index 1) of a two-class head, whatever was decided ("what reads as
    /// sensational here"), else the decided label. Otherwise the decided
    /// label.
    pub explained: usize,
    pub contributions: Vec<Contribution>,
}

/// A word's or a feature's push toward [`HeadScore::explained`].
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Its contribution to the explained label's score relative to the
    /// others (log-odds for two-class heads); negative pushes against it.
    pub weight: f64,
    /// UTF-8 byte spans in the passage: a word's single span, or every
    /// occurrence of a feature.
    pub spans: Vec<(u32, u32)>,
    /// `None` for a word (its text is the passage at its one span);
    /// `Some(j)` for raw feature `j` (its text: `Featurizer::term`).
    pub feature: Option<u32>,
}

/// Words hidden from word explanations: function words that carry a
/// phrase's weight (bigrams split over them) without saying anything a
/// reader could act on. They still count in every score and in the sums.
/// A passage's opening word is shown all the same when the head reads
/// first words ("This Is Why…": how a headline opens is the signal).
const HIDDEN_WORDS: &[&str] = &[
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "with", "from", "and", "or", "as",
    "is", "are", "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "he",
    "she", "they", "we", "i", "you", "his", "her", "their", "our", "has", "have", "had", "do",
    "does", "did", "s", "'s", "’s",
];

fn hidden(word: &str) -> bool {
    word.len() <= 5 && HIDDEN_WORDS.iter().any(|h| h.eq_ignore_ascii_case(word))
}

impl Model {
    /// Feature `j`'s weight toward `label` relative to the other labels,
    /// summed over the head's `parts` (see [`Head::parts`]) times their
    /// shares.
    fn toward(&self, j: u32, head: &Head, parts: &[(usize, f64)], label: usize) -> f64 {
        parts
            .iter()
            .map(|&(column, share)| share * self.toward_in(j, head, column, label))
            .sum()
    }

    /// Feature `j`'s weight toward `label` relative to the other labels in
    /// the model whose columns start at `column`: w_j (negated for label
    /// 0) for two classes, w_jl − mean_c w_jc otherwise (the first class's
    /// weight is 0 as the scorer keeps them, and the difference is the
    /// same for weights shifted by one amount).
    fn toward_in(&self, j: u32, head: &Head, column: usize, label: usize) -> f64 {
        let classes = head.labels.len();
        if classes == 2 {
            let w = f64::from(self.weight(j, column));
            return if label == 1 { w } else { -w };
        }
        let w = |c: usize| {
            if c == 0 {
                0.0
            } else {
                f64::from(self.weight(j, column + c - 1))
            }
        };
        let mean = (0..classes).map(w).sum::<f64>() / classes as f64;
        w(label) - mean
    }

    /// Scores one passage with the heads in `heads` (indices, in that
    /// order; none when empty, and then the passage is not read), adding
    /// each head's contributions as `explain` asks.
    pub fn score(
        &self,
        passage: &str,
        heads: &[usize],
        explain: Explain,
        ws: &mut Workspace,
    ) -> Vec<HeadScore> {
        if heads.is_empty() {
            return Vec::new();
        }
        self.classify(passage, ws);
        let mut shares = Vec::new();
        match explain {
            Explain::None => {}
            Explain::Features(_) => {
                self.featurizer.transform(passage, &mut ws.scan);
            }
            Explain::Words(_) => {
                self.featurizer.transform(passage, &mut ws.scan);
                self.featurizer
                    .token_shares(passage, &mut ws.scan, &mut shares);
            }
        }
        let mut out = Vec::with_capacity(heads.len());
        for &h in heads {
            let Some(head) = self.heads.get(h) else {
                continue;
            };
            let label = ws.labels[h];
            let probabilities =
                ws.probabilities[head.offset..head.offset + head.labels.len()].to_vec();
            let (explained, contributions) = match explain {
                Explain::None | Explain::Words(0) | Explain::Features(0) => (label, Vec::new()),
                Explain::Features(k) => (label, self.explain(passage, head, label, k, ws)),
                Explain::Words(k) => {
                    let toward = if head.outputs == 1 { 1 } else { label };
                    (
                        toward,
                        self.explain_words(passage, head, toward, k, &shares, ws),
                    )
                }
            };
            out.push(HeadScore {
                head: h,
                label,
                probabilities,
                explained,
                contributions,
            });
        }
        out
    }

    /// Every token's contribution toward `label` (see the module comment),
    /// from the vector and `shares` of the last transformed passage, and
    /// whether the token is the passage's opening word as the head reads
    /// it (a first-word feature with weight in the head).
    fn word_weights(
        &self,
        head: &Head,
        label: usize,
        shares: &[(u32, u32, f32)],
        ws: &Workspace,
    ) -> (Vec<f64>, Vec<bool>) {
        let tokens = crate::features::Featurizer::token_spans(&ws.scan).count();
        let mut by_token = vec![0f64; tokens];
        let mut opening = vec![false; tokens];
        let parts = head.parts(ws);
        let vector = ws.scan.vector();
        let mut v = 0;
        for &(j, t, share) in shares {
            while vector.get(v).is_some_and(|&(f, _)| f < j) {
                v += 1;
            }
            let Some(&(f, x)) = vector.get(v) else {
                break;
            };
            if f != j {
                continue;
            }
            let w = self.toward(j, head, &parts, label);
            if let Some(acc) = by_token.get_mut(t as usize) {
                *acc += f64::from(x) * w * f64::from(share);
            }
            if w != 0.0 && self.featurizer.is_first_word(j) {
                if let Some(o) = opening.get_mut(t as usize) {
                    *o = true;
                }
            }
        }
        (by_token, opening)
    }

    /// The `k` passage words that push `head` toward `label` most, in the
    /// passage's own words: every feature's contribution folded into the
    /// tokens it comes from. Words pushing toward `label` come first,
    /// largest first; then, if fewer than `k` do, those pushing against it,
    /// largest first. A word is a token (`!!` and numbers count as words);
    /// one written several times is one contribution with every
    /// occurrence's span. Function words ([`HIDDEN_WORDS`]) are left out.
    fn explain_words(
        &self,
        passage: &str,
        head: &Head,
        label: usize,
        k: usize,
        shares: &[(u32, u32, f32)],
        ws: &Workspace,
    ) -> Vec<Contribution> {
        let (by_token, opening) = self.word_weights(head, label, shares, ws);
        // A word written several times is one contribution with a span per
        // occurrence, its weight their sum; occurrences pushing the other
        // way (a negated "good") stay apart, so neither hides the other.
        let mut words: Vec<(f64, Vec<(u32, u32)>)> = Vec::new();
        let mut index: HashMap<(&str, bool), usize> = HashMap::new();
        // Tokens that span one written word (a contraction's two parts)
        // are one word, their weights summed.
        let mut by_word: Vec<((u32, u32), f64, bool)> = Vec::new();
        let tokens = crate::features::Featurizer::token_spans(&ws.scan).zip(&by_token);
        for (((_, span), &w), &opens) in tokens.zip(&opening) {
            match by_word.last_mut() {
                Some(last) if last.0 == span => {
                    last.1 += w;
                    last.2 |= opens;
                }
                _ => by_word.push((span, w, opens)),
            }
        }
        for ((a, b), w, opens) in by_word {
            let text = passage.get(a as usize..b as usize).unwrap_or("");
            if w == 0.0 || (hidden(text) && !opens) {
                continue;
            }
            let i = *index.entry((text, w > 0.0)).or_insert_with(|| {
                words.push((0.0, Vec::new()));
                words.len() - 1
            });
            words[i].0 += w;
            words[i].1.push((a, b));
        }
        words.sort_by(|a, b| {
            (b.0 > 0.0)
                .cmp(&(a.0 > 0.0))
                .then(b.0.abs().total_cmp(&a.0.abs()))
                .then(a.1.cmp(&b.1))
        });
        words.truncate(k);
        words
            .into_iter()
            .map(|(weight, spans)| Contribution {
                weight,
                spans,
                feature: None,
            })
            .collect()
    }

    /// The `k` features of the last transformed passage with the largest
    /// contribution (in absolute value) to `label`'s score relative to the
    /// other labels. Needs the vector of `featurizer.transform(passage)`
    /// in `ws`.
    fn explain(
        &self,
        passage: &str,
        head: &Head,
        label: usize,
        k: usize,
        ws: &mut Workspace,
    ) -> Vec<Contribution> {
        let parts = head.parts(ws);
        let mut contrib: Vec<(u32, f64)> = ws
            .scan
            .vector()
            .iter()
            .map(|&(j, v)| (j, f64::from(v) * self.toward(j, head, &parts, label)))
            .filter(|&(_, w)| w != 0.0)
            .collect();
        contrib.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        contrib.truncate(k);
        let wanted: Vec<u32> = contrib.iter().map(|&(j, _)| j).collect();
        let spans = self.featurizer.spans(passage, &mut ws.scan, &wanted);
        contrib
            .into_iter()
            .zip(spans)
            .map(|((feature, weight), spans)| Contribution {
                weight,
                spans,
                feature: Some(feature),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FeatureParams, FeatureSettings, Featurizer};
    use linfa::ParamGuard;
    use std::path::Path;

    /// The tiny model refitted with character n-grams, the lexicon and the
    /// context features on, and pseudo-random weights; its second head a
    /// mixture.
    fn model() -> Model {
        model_with(0.3)
    }

    /// [`model`] with its mixture's joint weight `joint_weight` (at 0, no
    /// joint model).
    fn model_with(joint_weight: f64) -> Model {
        let settings = FeatureParams(FeatureSettings {
            char_ngrams: [2, 4],
            min_df: 1,
            negation_scope: true,
            title_marker: true,
            first_word: true,
            identity_classes: true,
            expand_contractions: true,
            ..Default::default()
        })
        .check()
        .unwrap();
        let lexicon: Vec<(String, f32)> = [("good", 1.9), ("bad", -2.5), ("awful", -2.0)]
            .iter()
            .map(|&(w, v)| (w.to_string(), v))
            .collect();
        let corpus = [
            "Shocking news: the senator LIED!!",
            "GOOD news, not bad: the rally is very good",
            "zebra café Über 3.5 but awful With The French",
            "This Is Why the rally is good",
        ];
        let f = Featurizer::fit_with_lexicon(&settings, &lexicon, corpus, || {}).unwrap();
        let mut data = super::super::tiny();
        let n = f.len();
        data.vocabulary = f.vocabulary().clone();
        let mut unit = crate::testing::uniform(0x9e37_79b9_7f4a_7c15);
        let mut rnd = move || (unit() * 2.0 - 1.0) as f32;
        data.heads[0].weights = (0..n * 3).map(|_| rnd()).collect();
        data.heads[1].weights = (0..n).map(|_| rnd()).collect();
        // The second head a mixture: its explanations fold its joint model
        // and linear experts by their shares of the blend.
        super::super::make_mixture(&mut data, 1, 0x51ab, joint_weight);
        Model::from_data(data, "t".into(), Path::new("t")).unwrap()
    }

    /// Folding features into words loses nothing: a passage's word
    /// contributions (function words included) add up to its feature
    /// contributions, for every head and label, with or without a mixture's
    /// joint model.
    #[test]
    fn word_contributions_add_up_to_the_feature_contributions() {
        for joint_weight in [0.3, 0.0] {
            word_contributions_add_up(&model_with(joint_weight));
        }
    }

    fn word_contributions_add_up(m: &Model) {
        let mut ws = Workspace::default();
        let mut shares = Vec::new();
        for passage in [
            "Shocking news: the senator LIED!! not good, but awful",
            "GOOD news, not bad: the rally is very good",
            "zebra café Über 3.5 With The French",
            "This Is Why the senator LIED",
            "the rally isn't good, the news isn’t bad",
        ] {
            m.classify(passage, &mut ws);
            m.featurizer.transform(passage, &mut ws.scan);
            m.featurizer
                .token_shares(passage, &mut ws.scan, &mut shares);
            for head in &m.heads {
                for label in 0..head.labels.len() {
                    let words: f64 = m.word_weights(head, label, &shares, &ws).0.iter().sum();
                    let features: f64 = m
                        .explain(passage, head, label, usize::MAX, &mut ws)
                        .iter()
                        .map(|c| c.weight)
                        .sum();
                    assert!(
                        (words - features).abs() < 1e-4 * (1.0 + features.abs()),
                        "{passage:?} head {} label {label}: {words} vs {features}",
                        head.name
                    );
                }
            }
        }
    }

    /// Every head of `m` on `passage`, each with all its words.
    fn every_head_in_words(m: &Model, passage: &str, ws: &mut Workspace) -> Vec<HeadScore> {
        m.score(passage, &m.every_head(), Explain::Words(usize::MAX), ws)
    }

    /// A contraction read as two words ("is" + "not") is one word to a
    /// reader: the word as written, with its span.
    #[test]
    fn a_contraction_is_one_word() {
        let m = model();
        let mut ws = Workspace::default();
        let passage = "the rally isn't good";
        for s in every_head_in_words(&m, passage, &mut ws) {
            let words: Vec<&str> = (s.contributions.iter())
                .flat_map(|c| &c.spans)
                .map(|&(a, b)| &passage[a as usize..b as usize])
                .collect();
            assert!(words.contains(&"isn't"), "{words:?}");
            assert!(!words.contains(&"n't"), "{words:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the passage, its explanation lists words of it: each
        /// span a non-empty piece of the passage, none listed twice or
        /// overlapping another (a contraction's two parts are one word).
        #[test]
        fn explanations_list_each_word_once(
            passage in "(isn't|ISN’T|can't|won't|n't|not|good|bad|rally|the|news|'|’|@x|[a-z]{1,5}| |, |\\. ){0,14}",
        ) {
            let m = model();
            let mut ws = Workspace::default();
            for s in every_head_in_words(&m, &passage, &mut ws) {
                let mut spans: Vec<(u32, u32)> =
                    s.contributions.iter().flat_map(|c| c.spans.iter().copied()).collect();
                for &(a, b) in &spans {
                    proptest::prop_assert!(passage
                        .get(a as usize..b as usize)
                        .is_some_and(|w| !w.is_empty()));
                }
                spans.sort_unstable();
                for pair in spans.windows(2) {
                    proptest::prop_assert!(pair[0].1 <= pair[1].0, "{:?}", spans);
                }
            }
        }
    }

    #[test]
    fn words_come_toward_the_explained_label_first_and_name_no_marker() {
        let m = model();
        let mut ws = Workspace::default();
        let passage = "not bad, but awful!! The senator LIED";
        for s in every_head_in_words(&m, passage, &mut ws) {
            let head = &m.heads()[s.head];
            // Two-class heads explain their positive label, whatever they
            // decided; others the decided label.
            let expected = if head.labels.len() == 2 { 1 } else { s.label };
            assert_eq!(s.explained, expected);
            let first_against = s
                .contributions
                .iter()
                .position(|c| c.weight < 0.0)
                .unwrap_or(s.contributions.len());
            let (toward, against) = s.contributions.split_at(first_against);
            assert!(against.iter().all(|c| c.weight < 0.0));
            assert!(toward.windows(2).all(|p| p[0].weight >= p[1].weight));
            assert!(against
                .windows(2)
                .all(|p| p[0].weight.abs() >= p[1].weight.abs()));
            for c in &s.contributions {
                assert_eq!(c.feature, None);
                assert_eq!(c.spans.len(), 1);
                let (a, b) = c.spans[0];
                let text = &passage[a as usize..b as usize];
                assert!(!text.contains('<') && !hidden(text), "{text:?}");
            }
        }
        // k limits; raw features keep their ids and the decided label.
        let s = m.score(passage, &[1], Explain::Words(2), &mut ws);
        assert!(s[0].contributions.len() <= 2);
        let s = m.score(passage, &[1], Explain::Features(3), &mut ws);
        assert_eq!(s[0].explained, s[0].label);
        assert!(s[0].contributions.iter().all(|c| c.feature.is_some()));
        let s = m.score(passage, &[1], Explain::None, &mut ws);
        assert!(s[0].contributions.is_empty());
    }

    /// A function word is shown when it opens the passage and the head
    /// reads first words (here every head has weight on `<first>this`);
    /// the same word elsewhere, and other function words, stay hidden.
    #[test]
    fn an_opening_function_word_is_shown_when_the_head_reads_it() {
        let m = model();
        let mut ws = Workspace::default();
        let passage = "This Is Why the senator read this";
        for s in every_head_in_words(&m, passage, &mut ws) {
            let words: Vec<&str> = s
                .contributions
                .iter()
                .flat_map(|c| c.spans.iter())
                .map(|&(a, b)| &passage[a as usize..b as usize])
                .collect();
            assert!(words.contains(&"This"), "{words:?}");
            assert!(
                !words.iter().any(|w| ["this", "Is", "the"].contains(w)),
                "{words:?}"
            );
        }
    }
}
