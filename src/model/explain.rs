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
//! are not shown. An expert that reads only what follows a passage's
//! contrast (`Mixture::after_contrast`) contributes through the vector of
//! that text alone, so the words before the "but" get nothing from it.

use super::scorer::Workspace;
use super::scorer::{Head, Model};
use crate::features::Contrast;
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
        // Each head's label, and the label its contributions lean toward.
        let chosen: Vec<(usize, &Head, usize, usize)> = heads
            .iter()
            .filter_map(|&h| {
                let head = self.heads.get(h)?;
                let label = *ws.labels.get(h)?;
                let toward = match explain {
                    Explain::Words(k) if k > 0 && head.outputs == 1 => 1,
                    _ => label,
                };
                Some((h, head, label, toward))
            })
            .collect();
        let contributions: Vec<Vec<Contribution>> = match explain {
            Explain::None | Explain::Words(0) | Explain::Features(0) => {
                chosen.iter().map(|_| Vec::new()).collect()
            }
            Explain::Words(k) => {
                let mut words = self.each_reading(
                    passage,
                    &chosen,
                    ws,
                    |m, ws| token_shares(m, passage, ws),
                    |m, head, toward, parts, shares, ws| {
                        m.word_weights(head, toward, parts, shares, ws)
                    },
                );
                words
                    .iter_mut()
                    .map(|w| explain_words(passage, std::mem::take(w), k))
                    .collect()
            }
            Explain::Features(k) => {
                let by_feature = self.each_reading(
                    passage,
                    &chosen,
                    ws,
                    |_, _| (),
                    |m, head, toward, parts, (), ws| m.feature_weights(head, toward, parts, ws),
                );
                let tops: Vec<Vec<(u32, f64)>> =
                    by_feature.into_iter().map(|c| top_features(c, k)).collect();
                self.with_spans(passage, tops, ws)
            }
        };
        ws.scan.contrast = Contrast::Ignore;
        chosen
            .into_iter()
            .zip(contributions)
            .map(|((h, head, label, toward), contributions)| HeadScore {
                head: h,
                label,
                probabilities: ws
                    .probabilities
                    .get(head.offset..head.offset + head.labels.len())
                    .unwrap_or_default()
                    .to_vec(),
                explained: toward,
                contributions,
            })
            .collect()
    }

    /// `weigh` for each chosen head (index, head, label, label toward) with
    /// the passage as each of its models reads it, the results of a head
    /// appended: the passage whole for the models that read it whole, then,
    /// when the passage has a contrast, what follows it for the expert that
    /// reads only that (see `text::contrast`). `weigh` gets
    /// the models (see [`Head::parts`]), what `prepare` made of the reading
    /// (once for every head) and `ws` with the passage's vector
    /// transformed.
    fn each_reading<P, T>(
        &self,
        passage: &str,
        chosen: &[(usize, &Head, usize, usize)],
        ws: &mut Workspace,
        prepare: impl Fn(&Self, &mut Workspace) -> P,
        weigh: impl Fn(&Self, &Head, usize, &[(usize, f64)], &P, &Workspace) -> Vec<T>,
    ) -> Vec<Vec<T>> {
        // The passage whole, noting its contrast (and keeping what follows).
        ws.scan.contrast = Contrast::Find;
        self.featurizer.transform(passage, &mut ws.scan);
        let contrasted = ws.scan.contrasted;
        let (whole, after): (Vec<_>, Vec<_>) = chosen
            .iter()
            .map(|&(_, head, _, _)| {
                let only_after = head.after_contrast().filter(|_| contrasted);
                head.parts(ws)
                    .into_iter()
                    .partition::<Vec<_>, _>(|&(c, _)| Some(c) != only_after)
            })
            .unzip();
        let prepared = prepare(self, ws);
        let mut out: Vec<Vec<T>> = chosen
            .iter()
            .zip(&whole)
            .map(|(&(_, head, _, toward), parts)| weigh(self, head, toward, parts, &prepared, ws))
            .collect();
        if after.iter().any(|p| !p.is_empty()) {
            ws.scan.contrast = Contrast::Kept;
            self.featurizer.transform(passage, &mut ws.scan);
            let prepared = prepare(self, ws);
            for ((&(_, head, _, toward), parts), o) in chosen.iter().zip(&after).zip(&mut out) {
                if !parts.is_empty() {
                    o.extend(weigh(self, head, toward, parts, &prepared, ws));
                }
            }
            ws.scan.contrast = Contrast::Ignore;
        }
        out
    }

    /// Every token's contribution toward `label` (see the module comment)
    /// through the models `parts` (see [`Head::parts`]), from the vector
    /// and `shares` of the last transformed passage: (the word's span,
    /// contribution, whether the token is the passage's opening word as the
    /// head reads it, a first-word feature with weight in the head), in
    /// token order.
    fn word_weights(
        &self,
        head: &Head,
        label: usize,
        parts: &[(usize, f64)],
        shares: &[(u32, u32, f32)],
        ws: &Workspace,
    ) -> Vec<WordWeight> {
        let mut out: Vec<WordWeight> = crate::features::Featurizer::token_spans(&ws.scan)
            .map(|(_, span)| (span, 0.0, false))
            .collect();
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
            let w = self.toward(j, head, parts, label);
            if let Some(o) = out.get_mut(t as usize) {
                o.1 += f64::from(x) * w * f64::from(share);
                o.2 |= w != 0.0 && self.featurizer.is_first_word(j);
            }
        }
        out
    }

    /// Every feature's contribution toward `label` through the models
    /// `parts` (see [`Head::parts`]), from the vector of the last
    /// transformed passage: (feature, contribution), the zeros left out.
    fn feature_weights(
        &self,
        head: &Head,
        label: usize,
        parts: &[(usize, f64)],
        ws: &Workspace,
    ) -> Vec<(u32, f64)> {
        ws.scan
            .vector()
            .iter()
            .map(|&(j, v)| (j, f64::from(v) * self.toward(j, head, parts, label)))
            .filter(|&(_, w)| w != 0.0)
            .collect()
    }

    /// Each head's features (`tops`, see [`top_features`]) as
    /// contributions with their spans in the passage: from the passage
    /// whole, and for a feature only what follows its contrast has (its
    /// first word, say), from that.
    fn with_spans(
        &self,
        passage: &str,
        tops: Vec<Vec<(u32, f64)>>,
        ws: &mut Workspace,
    ) -> Vec<Vec<Contribution>> {
        let mut wanted: Vec<u32> = tops.iter().flatten().map(|&(j, _)| j).collect();
        wanted.sort_unstable();
        wanted.dedup();
        ws.scan.contrast = Contrast::Find;
        self.featurizer.transform(passage, &mut ws.scan);
        let mut spans = self.featurizer.spans(passage, &mut ws.scan, &wanted);
        if ws.scan.contrasted && spans.iter().any(Vec::is_empty) {
            ws.scan.contrast = Contrast::Kept;
            self.featurizer.transform(passage, &mut ws.scan);
            let after = self.featurizer.spans(passage, &mut ws.scan, &wanted);
            for (s, a) in spans.iter_mut().zip(after) {
                if s.is_empty() {
                    *s = a;
                }
            }
        }
        ws.scan.contrast = Contrast::Ignore;
        tops.into_iter()
            .map(|top| {
                top.into_iter()
                    .map(|(feature, weight)| Contribution {
                        weight,
                        spans: wanted
                            .binary_search(&feature)
                            .ok()
                            .and_then(|i| spans.get(i))
                            .cloned()
                            .unwrap_or_default(),
                        feature: Some(feature),
                    })
                    .collect()
            })
            .collect()
    }
}

/// The `k` features with the largest contribution (in absolute value)
/// among `by_feature` (a feature may come twice, from the passage whole
/// and from what follows its contrast: its contributions add).
fn top_features(mut by_feature: Vec<(u32, f64)>, k: usize) -> Vec<(u32, f64)> {
    by_feature.sort_by_key(|&(j, _)| j);
    crate::features::add_equal_keys(&mut by_feature);
    by_feature.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    by_feature.truncate(k);
    by_feature
}

/// Each feature's tokens and their shares (see
/// [`Featurizer::token_shares`](crate::features::Featurizer::token_shares))
/// in the passage `ws` last transformed.
fn token_shares(m: &Model, passage: &str, ws: &mut Workspace) -> Vec<(u32, u32, f32)> {
    let mut shares = Vec::new();
    m.featurizer
        .token_shares(passage, &mut ws.scan, &mut shares);
    shares
}

/// A token's contribution to an explanation: the span of the word it is
/// part of, its weight, and whether it opens the passage as a head that
/// reads first words sees it.
type WordWeight = ((u32, u32), f64, bool);

/// The `k` passage words that push a head most, from its tokens'
/// contributions (see [`Model::word_weights`]; from the passage whole and
/// from what follows its contrast, in any order), in the passage's own
/// words. Words pushing toward the label come first, largest first; then,
/// if fewer than `k` do, those pushing against it, largest first. A word
/// is a token (`!!` and numbers count as words); one written several times
/// is one contribution with every occurrence's span. Function words
/// ([`HIDDEN_WORDS`]) are left out.
fn explain_words(passage: &str, mut tokens: Vec<WordWeight>, k: usize) -> Vec<Contribution> {
    // Tokens that span one written word (a contraction's two parts, or a
    // token read both whole and after its contrast) are one word, their
    // weights summed.
    tokens.sort_by_key(|t| t.0);
    tokens.dedup_by(|next, kept| {
        let same = next.0 == kept.0;
        if same {
            kept.1 += next.1;
            kept.2 |= next.2;
        }
        same
    });
    // A word written several times is one contribution with a span per
    // occurrence, its weight their sum; occurrences pushing the other
    // way (a negated "good") stay apart, so neither hides the other.
    let mut words: Vec<(f64, Vec<(u32, u32)>)> = Vec::new();
    let mut index: HashMap<(&str, bool), usize> = HashMap::new();
    for ((a, b), w, opens) in tokens {
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
        model_with(0.3, None)
    }

    /// [`model`] with its mixture's joint weight `joint_weight` (at 0, no
    /// joint model), and `after_contrast` as its expert that reads only
    /// what follows a contrast (0 and 2 are linear).
    fn model_with(joint_weight: f64, after_contrast: Option<u32>) -> Model {
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
        if let Some(m) = data.heads[1].mixture.as_mut() {
            m.after_contrast = after_contrast;
        }
        Model::from_data(data, "t".into(), Path::new("t")).unwrap()
    }

    /// Folding features into words loses nothing: a passage's word
    /// contributions (function words included) add up to its feature
    /// contributions, for every head and label, with or without a mixture's
    /// joint model, and with an expert that reads only what follows a
    /// contrast.
    #[test]
    fn word_contributions_add_up_to_the_feature_contributions() {
        for (joint_weight, after) in [(0.3, None), (0.0, None), (0.3, Some(2)), (0.0, Some(0))] {
            word_contributions_add_up(&model_with(joint_weight, after));
        }
    }

    /// Every head and label of `m`, as `Model::each_reading` takes them.
    fn every_label(m: &Model) -> Vec<(usize, &Head, usize, usize)> {
        (m.heads.iter().enumerate())
            .flat_map(|(h, head)| (0..head.labels.len()).map(move |l| (h, head, l, l)))
            .collect()
    }

    fn word_contributions_add_up(m: &Model) {
        let mut ws = Workspace::default();
        for passage in [
            "Shocking news: the senator LIED!! not good, but awful",
            "GOOD news, not bad: the rally is very good",
            "zebra café Über 3.5 With The French",
            "This Is Why the senator LIED",
            "the rally isn't good, the news isn’t bad",
            "the rally is good but the news is bad",
        ] {
            let chosen = every_label(m);
            m.classify(passage, &mut ws);
            let words = m.each_reading(
                passage,
                &chosen,
                &mut ws,
                |m, ws| token_shares(m, passage, ws),
                |m, head, l, parts, shares, ws| m.word_weights(head, l, parts, shares, ws),
            );
            m.classify(passage, &mut ws);
            let features = m.each_reading(
                passage,
                &chosen,
                &mut ws,
                |_, _| (),
                |m, head, l, parts, (), ws| m.feature_weights(head, l, parts, ws),
            );
            for (((_, head, label, _), w), f) in chosen.iter().zip(words).zip(features) {
                let words: f64 = w.iter().map(|t| t.1).sum();
                let features: f64 = f.iter().map(|c| c.1).sum();
                assert!(
                    (words - features).abs() < 1e-4 * (1.0 + features.abs()),
                    "{passage:?} head {} label {label}: {words} vs {features}",
                    head.name
                );
            }
        }
    }

    /// An expert that reads only what follows a contrast gives no weight
    /// to the words before it; the others do.
    #[test]
    fn an_expert_after_a_contrast_explains_only_what_follows() {
        let m = model_with(0.0, Some(2));
        let mut ws = Workspace::default();
        let passage = "the rally is very good, but awful news";
        let but = passage.find("but").unwrap() as u32;
        m.classify(passage, &mut ws);
        assert!(ws.scan.contrasted);
        let head = &m.heads[1];
        let after = head.after_contrast().unwrap();
        let chosen = [(1, head, 1, 1)];
        let only = |keep: bool| {
            move |m: &Model,
                  head: &Head,
                  l: usize,
                  parts: &[(usize, f64)],
                  shares: &Vec<(u32, u32, f32)>,
                  ws: &Workspace| {
                let parts: Vec<_> = (parts.iter().copied())
                    .filter(|&(c, _)| (c == after) == keep)
                    .collect();
                m.word_weights(head, l, &parts, shares, ws)
            }
        };
        let shares = |m: &Model, ws: &mut Workspace| token_shares(m, passage, ws);
        m.classify(passage, &mut ws);
        let read_after = &m.each_reading(passage, &chosen, &mut ws, shares, only(true))[0];
        assert!(read_after.iter().any(|t| t.1 != 0.0));
        assert!(
            read_after.iter().all(|t| t.1 == 0.0 || t.0 .0 > but),
            "{read_after:?}"
        );
        m.classify(passage, &mut ws);
        let read_whole = &m.each_reading(passage, &chosen, &mut ws, shares, only(false))[0];
        assert!(read_whole.iter().any(|t| t.0 .1 < but && t.1 != 0.0));
        // Every raw feature shown has a span: one only what follows the
        // contrast has (its first word) is found there.
        let passage = "the rally is good, but shocking news";
        let at = passage.find("shocking").unwrap() as u32;
        let first = crate::features::index_of(&m.featurizer, "<first>shocking");
        let raw = &m.score(passage, &[1], Explain::Features(usize::MAX), &mut ws)[0];
        assert!(
            raw.contributions.iter().all(|c| !c.spans.is_empty()),
            "{raw:?}"
        );
        let opening = raw.contributions.iter().find(|c| c.feature == Some(first));
        assert_eq!(
            opening.map(|c| c.spans.as_slice()),
            Some(&[(at, at + 8)][..])
        );
    }

    /// Without contributions, the label explained is the one decided,
    /// whatever kind of explanation was asked for.
    #[test]
    fn no_contributions_explain_the_decided_label() {
        let m = model();
        let mut ws = Workspace::default();
        let mut a_two_class_head_said_no = false;
        for passage in [
            "Shocking news: the senator LIED!!",
            "GOOD news, not bad: the rally is very good",
            "zebra café Über 3.5 With The French",
        ] {
            for explain in [Explain::None, Explain::Words(0), Explain::Features(0)] {
                for s in m.score(passage, &m.every_head(), explain, &mut ws) {
                    assert_eq!(s.explained, s.label, "{passage:?} {explain:?}");
                    assert!(s.contributions.is_empty());
                    a_two_class_head_said_no |= m.heads[s.head].labels.len() == 2 && s.label == 0;
                }
            }
        }
        assert!(a_two_class_head_said_no);
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
