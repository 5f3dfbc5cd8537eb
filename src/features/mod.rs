//! Features: TF-IDF over word n-grams, `<caps>` markers and optional
//! word-bounded character n-grams, with a vocabulary that maps every
//! feature back to its text.
//!
//! [`FeatureParams`] (checked with linfa's [`ParamGuard`]) are fitted on a
//! corpus into a [`Featurizer`]: the kept terms (min_df, max_features),
//! their hashes and their smoothed IDF. A passage's vector has two blocks:
//!
//! - the word block: word n-grams and `<caps>` markers, sublinear tf × idf,
//!   L2-normalised;
//! - the character block (when `char_ngrams` is on): each word's character
//!   n-grams (of `_word_`), count × idf, summed over the passage's words,
//!   divided by √(Σ over words of each word's squared norm) and scaled by
//!   `char_weight`. That is the L2 norm of the sum when words share no
//!   n-gram, and keeps the block linear in per-word quantities;
//! - beside both blocks, outside their norms: the lexicon's compound
//!   score, the first word (`<first>word`) and the market markers
//!   (`<mkt±>`, valued by their counts' term frequency).
//!
//! So a model can precompute each vocabulary word's character contribution
//! (its n-grams' weights) and squared norm, and score without touching a
//! single character n-gram (see `model`). Feature
//! hashes come from the token hashes: no strings on the scoring path.
//!
//! - `settings`: [`FeatureSettings`], their checks and the term frequency.
//! - `define`: what a feature is, its hash, text and span.
//! - `context`: the opt-in context features (negation scope, Title Case,
//!   the first word, market words).
//! - `index`: the hash index and the [`Lookup`] trait the scan uses.
//! - `lexicon`: the sentiment lexicon, its word lists and compound score.
//! - `fit`: fitting on a corpus, rebuilding from a stored [`Vocabulary`].
//! - `scan`: a passage's features looked up, stage by stage.
//! - `transform`: the reference vector and feature spans.
//! - `typos`: misspellings read as the word meant (`typo_aliases`).

mod context;
mod define;
mod fit;
mod index;
mod lexicon;
mod scan;
mod settings;
mod transform;
mod typos;

use serde::{Deserialize, Serialize};

pub(crate) use context::FIRST_WORD_VALUE;
pub use index::IdentityHasher;
pub(crate) use index::{prefetch_at, Lookup, NO_FEATURE};
pub use lexicon::{Lexicon, LEXICON_SCORE};
pub(crate) use scan::Contrast;
pub use scan::Scratch;
pub use settings::{FeatureError, FeatureParams, FeatureSettings};

use index::HashIndex;

/// The vocabulary and IDF as stored in a model file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub settings: FeatureSettings,
    /// Number of documents the IDF was computed on.
    pub n_docs: u64,
    pub terms: Vec<String>,
    pub hashes: Vec<u64>,
    pub idf: Vec<f32>,
    /// Sentiment lexicon (lower-case word, valence), sorted; empty = none.
    pub lexicon: Vec<(String, f32)>,
}

/// A fitted featurizer: vocabulary plus the hash index used for lookups.
#[derive(Debug, Clone)]
pub struct Featurizer {
    vocab: Vocabulary,
    /// Word n-grams and markers.
    index: HashIndex,
    /// Character n-grams.
    char_index: HashIndex,
    /// The lexicon's words alone, with what it says of each: a table
    /// small enough to stay in cache, asked only about words that `index`
    /// (or a scorer's table) says the lexicon knows.
    lex_index: HashIndex,
    lexicon: Lexicon,
    /// Index of the [`LEXICON_SCORE`] feature, when the vocabulary has it.
    lexicon_score: Option<u32>,
    /// The features of the lexicon's four markers (`<lex+>`, `<lex->`,
    /// `<lex++>`, `<lex-->`), [`NO_FEATURE`] for one the vocabulary lacks.
    markers: [u32; 4],
    /// The lexicon's distinct valences after a 0 (number 0, "none"), as
    /// numbered in index slots.
    valences: Vec<f32>,
    /// [`tf_of`] of the counts 0 to 7.
    tf_small: [f32; 8],
    /// Misspellings of the vocabulary's and the lexicon's words: `None`
    /// (every word read as written) unless a model with `typo_aliases`.
    aliases: Option<typos::TypoAliases>,
    /// Whether negative contractions read as their two words: only a
    /// model's, with `expand_contractions` (see `text::contractions`).
    contractions: bool,
    /// Whether `@handles` are left out: only a model's, with
    /// `skip_handles` (see `text::handles`).
    skip_handles: bool,
}

impl Featurizer {
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    pub fn len(&self) -> usize {
        self.vocab.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vocab.terms.is_empty()
    }

    pub fn term(&self, index: u32) -> &str {
        &self.vocab.terms[index as usize]
    }

    /// The inverse document frequency of feature `j`.
    pub fn idf(&self, j: u32) -> f32 {
        self.vocab.idf[j as usize]
    }

    pub fn settings(&self) -> &FeatureSettings {
        &self.vocab.settings
    }

    /// Every key of the word block, in a fixed order: (hash, feature or
    /// [`NO_FEATURE`] for a word only the lexicon knows, whether the
    /// lexicon knows it).
    pub(crate) fn word_keys(&self) -> impl Iterator<Item = (u64, u32, bool)> + '_ {
        self.index.keys()
    }

    /// Every character n-gram feature, in a fixed order, as
    /// [`Featurizer::word_keys`].
    pub(crate) fn char_keys(&self) -> impl Iterator<Item = (u64, u32, bool)> + '_ {
        self.char_index.keys()
    }

    /// Whether feature `j` is a first-word feature (`<first>word`).
    pub(crate) fn is_first_word(&self, j: u32) -> bool {
        self.vocab
            .terms
            .get(j as usize)
            .is_some_and(|t| t.starts_with(context::FIRST_PREFIX))
    }

    /// Every first-word feature (`<first>word`, see `first_word` in
    /// [`FeatureSettings`]), in feature order.
    pub(crate) fn first_word_features(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.vocab.terms.len() as u32).filter(|&j| self.is_first_word(j))
    }

    /// The market markers' features (`<mkt->`, `<mkt+>` that the
    /// vocabulary has, see `market_words` in [`FeatureSettings`]), in
    /// feature order.
    pub(crate) fn market_features(&self) -> Vec<u32> {
        let mut found: Vec<u32> = context::MARKET_HASHES
            .iter()
            .filter_map(|&h| self.index.get(h))
            .collect();
        found.sort_unstable();
        found
    }
}

/// Pairs sorted by key, each key once: the values of a run of equal keys
/// added into the first.
pub(crate) fn add_equal_keys<K: PartialEq, V: std::ops::AddAssign + Copy>(pairs: &mut Vec<(K, V)>) {
    pairs.dedup_by(|next, kept| {
        let same = next.0 == kept.0;
        if same {
            kept.1 += next.1;
        }
        same
    });
}

#[cfg(test)]
pub(crate) fn fitted(settings: FeatureSettings, corpus: &[&str]) -> Featurizer {
    use linfa::ParamGuard;
    let checked = FeatureParams(settings).check().unwrap();
    Featurizer::fit(&checked, corpus.iter().copied(), || {}).unwrap()
}

#[cfg(test)]
pub(crate) fn index_of(f: &Featurizer, term: &str) -> u32 {
    f.vocabulary().terms.iter().position(|t| t == term).unwrap() as u32
}
