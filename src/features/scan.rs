//! The scan: a passage tokenized and its word-block features, lexicon
//! annotations and out-of-vocabulary character n-grams looked up, with
//! the lookups started early so that their cache misses overlap.

use super::define::*;
use super::index::*;
use super::lexicon::*;
use super::settings::tf_of;
use super::*;
use crate::text::{finish, tokenize, Token, TokenKind};

/// Scratch buffers reused across passages so that scoring allocates nothing
/// once they have grown.
#[derive(Debug, Default)]
pub struct Workspace {
    pub tokens: Vec<Token>,
    pub(super) grams: GramScratch,
    pub(crate) hits: Vec<u32>,
    /// Occurrences of each of `distinct`.
    pub(crate) counts: Vec<u32>,
    /// The term frequency of each of `distinct` (see `Featurizer::tf`).
    pub(crate) tfs: Vec<f32>,
    /// Distinct features of `hits`, in first-seen order.
    pub(crate) distinct: Vec<u32>,
    /// Per token: what the lexicon says of it.
    pub(crate) lex: Vec<TokenLex>,
    /// The tokens with a valence (see `valenced`).
    pub(crate) valenced: Vec<u32>,
    /// Per token: its unigram feature index, or `u32::MAX`.
    pub(crate) unigrams: Vec<u32>,
    /// Word-block feature hashes of the passage, each with its lookup's
    /// ticket (see [`Lookup`]) and its token when it is a unigram
    /// (`u32::MAX` otherwise).
    pub(super) keys: Vec<(u64, u32, u32)>,
    /// How many of `keys` come first as the tokens' own.
    pub(super) token_keys: usize,
    /// Words the lexicon knows: (hash, token), their annotations fetched.
    pub(super) known: Vec<(u64, u32)>,
    /// Character n-gram hashes of out-of-vocabulary words, each with its
    /// lookup's ticket and its token (see `oov_char_hits`).
    pub(super) gram_keys: Vec<(u64, u32, u32)>,
    /// (token, feature) for every known character n-gram occurrence of
    /// out-of-vocabulary words, sorted.
    /// Each as `token << 32 | feature`, so that sorting compares one word.
    pub(crate) gram_hits: Vec<u64>,
    /// One word's character-block vector (see `word_chars`).
    pub(crate) word_vec: Vec<(u32, f32)>,
    pub(super) char_acc: Vec<(u32, f32)>,
    /// The last passage's features: (feature index, value), sorted by index.
    pub vector: Vec<(u32, f32)>,
    /// Raw head scores, reused by the model.
    pub(crate) scores: Vec<f32>,
    /// Every head's probabilities, after `Model::classify`.
    pub probabilities: Vec<f64>,
    /// Every head's decided label, after `Model::classify`.
    pub labels: Vec<usize>,
}

impl Featurizer {
    /// Tokenizes `passage` into `ws.tokens`, its word-block features (one
    /// per occurrence, in no particular order) into `ws.hits`, each
    /// token's unigram feature into `ws.unigrams` (`u32::MAX` if none), and
    /// what the lexicon says of each token into `ws.lex`. Features are
    /// numbered as `index` numbers them: the featurizer's own (vocabulary
    /// order, as training and explanations need) or a scorer's table;
    /// `markers` are the lexicon markers' features in that numbering.
    ///
    /// The n-gram hashes are gathered first, each lookup started (its
    /// memory prefetched) as its hash is made, then finished: the lookups
    /// are cache misses into a table of megabytes, and issued together they
    /// overlap instead of waiting one after another.
    #[inline(always)]
    pub(crate) fn word_hits(
        &self,
        index: &impl Lookup,
        markers: &[u32; 4],
        passage: &str,
        ws: &mut Workspace,
    ) {
        self.token_hits(index, passage, ws);
        self.lexicon_hits(markers, ws);
        self.ngram_hits(index, ws);
    }

    /// [`Featurizer::word_hits`] up to the tokens' own lookups: every
    /// lookup started, the tokens' own finished (unigram features, and which
    /// words the lexicon knows). The scorer starts the character n-grams'
    /// lookups before [`Featurizer::lexicon_hits`] and
    /// [`Featurizer::ngram_hits`] finish the rest (the n-grams' rows are the
    /// ones that come from farther away, and get the most time).
    ///
    /// The keys are those of `for_each_word_feature`, made n-gram length by
    /// length (a property test holds the two together).
    #[inline(always)]
    pub(crate) fn token_hits(&self, index: &impl Lookup, passage: &str, ws: &mut Workspace) {
        tokenize(passage, &mut ws.tokens);
        let Workspace {
            tokens,
            hits,
            unigrams,
            lex,
            keys,
            token_keys,
            known: known_words,
            ..
        } = ws;
        keys.clear();
        known_words.clear();
        // The keys of `for_each_word_feature`, n-gram length by length: a
        // loop per length runs without branches on where an n-gram ends,
        // and the unigram and bigram loops write their keys with no
        // capacity check each. Each lookup starts as soon as its hash is
        // known: the fetches spread over the hashing instead of queueing
        // in a burst.
        let settings = &self.vocab.settings;
        let [lo, hi] = settings.word_ngrams.map(usize::from);
        // A lexicon word's slot is under its token's hash, so every token's
        // own hash is looked up: as its unigram, or, without unigrams among
        // the n-grams, here (where it finds what the lexicon says, no feature).
        if lo == 1 || !self.lexicon.is_empty() {
            keys.extend(
                tokens
                    .iter()
                    .enumerate()
                    .map(|(t, token)| (token.hash, index.start(token.hash), t as u32)),
            );
        }
        *token_keys = keys.len();
        for n in lo.max(2)..=hi {
            if n == 2 {
                let next = tokens.get(1..).unwrap_or_default();
                keys.extend(tokens.iter().zip(next).map(|(a, b)| {
                    let h = combine(a.hash, b.hash);
                    (h, index.start(h), u32::MAX)
                }));
            } else {
                for gram in tokens.windows(n) {
                    let h = gram
                        .iter()
                        .skip(1)
                        .fold(gram[0].hash, |h, t| combine(h, t.hash));
                    keys.push((h, index.start(h), u32::MAX));
                }
            }
        }
        if settings.caps_marker {
            for _ in tokens.iter().filter(|t| t.caps) {
                keys.push((CAPS_HASH, index.start(CAPS_HASH), u32::MAX));
            }
        }
        hits.clear();
        unigrams.clear();
        unigrams.resize(tokens.len(), u32::MAX);
        // A word's unigram lookup also says what the lexicon knows of it.
        lex.clear();
        if !self.lexicon.is_empty() {
            lex.resize(tokens.len(), TokenLex::default());
        }
        for &(h, ticket, unigram) in keys.get(..*token_keys).unwrap_or_default() {
            let Some((value, known)) = index.find(h, ticket) else {
                continue;
            };
            if value != NO_FEATURE {
                hits.push(value);
                if let Some(u) = unigrams.get_mut(unigram as usize) {
                    *u = value;
                }
            }
            let word = || {
                tokens
                    .get(unigram as usize)
                    .is_some_and(|t| t.kind == TokenKind::Word)
            };
            if known && word() {
                // Asked below, once the fetch has had time.
                self.lex_index.prefetch(h);
                known_words.push((h, unigram));
            }
        }
    }

    /// The lexicon's part of [`Featurizer::word_hits`], after
    /// [`Featurizer::token_hits`]: what it says of each word it knows, into
    /// `ws.lex`, and its markers' features, into `ws.hits`.
    #[inline(always)]
    pub(crate) fn lexicon_hits(&self, markers: &[u32; 4], ws: &mut Workspace) {
        let Workspace {
            hits,
            lex,
            valenced: with_valence,
            known: known_words,
            ..
        } = ws;
        for &(h, t) in known_words.iter() {
            if let (Some(slot), Some(l)) = (self.lex_index.slot(h), lex.get_mut(t as usize)) {
                *l = self.lex_of(slot.lex);
            }
        }
        valenced(lex, with_valence);
        // The lexicon words' markers, as `for_each_lexicon_feature` has
        // them, by their features in `index` (`markers`), which need no
        // lookup; the compound score's term is not counted (see `transform`).
        for &i in with_valence.iter() {
            if let Some((polarity, strong)) = Lexicon::polarity(lex, i as usize) {
                for k in std::iter::once(polarity).chain(strong) {
                    if let Some(&j) = markers.get(k).filter(|&&j| j != NO_FEATURE) {
                        hits.push(j);
                    }
                }
            }
        }
    }

    /// The rest of [`Featurizer::word_hits`], after
    /// [`Featurizer::token_hits`]: the lookups of longer n-grams and
    /// `<caps>` markers finished, their features added to `ws.hits`.
    #[inline(always)]
    pub(crate) fn ngram_hits(&self, index: &impl Lookup, ws: &mut Workspace) {
        let Workspace {
            hits,
            keys,
            token_keys,
            ..
        } = ws;
        for &(h, ticket, _) in keys.get(*token_keys..).unwrap_or_default() {
            if let Some((value, _)) = index.find(h, ticket).filter(|&(v, _)| v != NO_FEATURE) {
                hits.push(value);
            }
        }
    }

    /// The features of the lexicon's markers in the featurizer's own
    /// numbering (see [`Featurizer::word_hits`]).
    pub(crate) fn markers(&self) -> &[u32; 4] {
        &self.markers
    }

    /// What the lexicon says of a word, from its index slot's `lex`.
    #[inline]
    pub(super) fn lex_of(&self, packed: u32) -> TokenLex {
        TokenLex {
            valence: self
                .valences
                .get((packed & 0xff_ffff) as usize)
                .copied()
                .unwrap_or(0.0),
            role: (packed >> 24) as u8,
        }
    }

    /// The hashes of the character n-grams of every word token without a
    /// unigram feature (`ws.unigrams` after [`Featurizer::word_hits`]),
    /// each with its token, into `ws.gram_keys`, their lookups in `index`
    /// started: the scorer does other work before
    /// [`Featurizer::oov_char_hits`] finishes them.
    #[inline(always)]
    pub(crate) fn oov_char_keys(&self, index: &impl Lookup, passage: &str, ws: &mut Workspace) {
        let Workspace {
            tokens,
            grams,
            unigrams,
            gram_keys,
            ..
        } = ws;
        gram_keys.clear();
        let Some(range) = self.vocab.settings.char_range() else {
            return;
        };
        for (t, token) in tokens.iter().enumerate() {
            if token.kind != TokenKind::Word || unigrams.get(t) != Some(&u32::MAX) {
                continue;
            }
            let word = &passage[token.start as usize..token.end as usize];
            char_grams_by_length(range, word, grams, |_, hashes| {
                gram_keys.extend(hashes.iter().map(|&h| {
                    let h = finish(h);
                    (h, index.start(h), t as u32)
                }));
            });
        }
    }

    /// The known character n-grams of `ws.gram_keys` (see
    /// [`Featurizer::oov_char_keys`], with the same `index`) as (token,
    /// feature) pairs, packed in a `u64`, into `ws.gram_hits`, sorted: one
    /// occurrence each, so equal pairs count.
    #[inline(always)]
    pub(crate) fn oov_char_hits(&self, index: &impl Lookup, ws: &mut Workspace) {
        let Workspace {
            gram_keys,
            gram_hits,
            ..
        } = ws;
        gram_hits.clear();
        for &(h, ticket, t) in gram_keys.iter() {
            if let Some((g, _)) = index.find(h, ticket) {
                gram_hits.push(u64::from(t) << 32 | u64::from(g));
            }
        }
        gram_hits.sort_unstable();
    }

    /// A sublinear (or raw) term frequency: from a table for the small
    /// counts nearly every feature has, so that scoring neither branches on
    /// whether a feature repeats nor calls `ln` for it.
    #[inline]
    pub(crate) fn tf(&self, count: usize) -> f32 {
        self.tf_small
            .get(count)
            .copied()
            .unwrap_or_else(|| tf_of(&self.vocab.settings, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::ParamGuard;

    proptest::proptest! {
        /// A word's unigram lookup answers for the lexicon (see `HashIndex`):
        /// it must say what the lexicon itself says, for words that are
        /// features, words that are not, and roles without valence; and the
        /// hits must be those of the lexicon's own annotations. Also when
        /// unigrams are not among the n-grams (no unigram lookups to ride on).
        #[test]
        fn lookups_annotate_as_the_lexicon_does(
            passage in "(good|GOOD|bad|not|very|barely|but|awful|zest|news|the|2|!!|[a-z]{1,5}| |, ){0,14}",
            word_ngrams in proptest::sample::select(vec![[1u8, 1], [1, 2], [2, 2], [2, 3]]),
        ) {
            let lexicon: Vec<(String, f32)> = [("good", 1.9), ("bad", -2.5), ("awful", -2.0), ("zest", 0.7)]
                .iter()
                .map(|&(w, v)| (w.to_string(), v))
                .collect();
            let settings = FeatureParams(FeatureSettings { min_df: 2, word_ngrams, ..Default::default() })
                .check()
                .unwrap();
            // "zest" and "awful" are seen once: not features.
            let corpus = ["good news", "not good", "bad news but good", "very bad", "zest awful the"];
            let f = Featurizer::fit_with_lexicon(&settings, &lexicon, corpus, || {}).unwrap();
            proptest::prop_assert!(f.vocabulary().terms.iter().all(|t| t != "zest"));
            let mut ws = Workspace::default();
            f.word_hits(&f.index, &f.markers, &passage, &mut ws);
            let mut expected = Vec::new();
            f.lexicon.annotate(&ws.tokens, &mut expected);
            proptest::prop_assert_eq!(&ws.lex, &expected);
            let mut reference = Vec::new();
            let score = f.lexicon.markers[4].0;
            for_each_word_feature(&f.vocab.settings, &ws.tokens, |h, _| reference.extend(f.index.get(h)));
            for_each_lexicon_feature(&f.lexicon, &expected, 0..expected.len(), |h, _| {
                if h != score {
                    reference.extend(f.index.get(h));
                }
            });
            // The same features, in whatever order.
            let mut hits = ws.hits.clone();
            hits.sort_unstable();
            reference.sort_unstable();
            proptest::prop_assert_eq!(&hits, &reference);
            // The compound score walks only the tokens with a valence; every
            // token gives the same sum.
            let all: Vec<u32> = (0..ws.tokens.len() as u32).collect();
            proptest::prop_assert_eq!(
                Lexicon::compound(&ws.tokens, &ws.lex, &ws.valenced).to_bits(),
                Lexicon::compound(&ws.tokens, &ws.lex, &all).to_bits()
            );
        }
    }
}
