//! Featurizer settings as written in a training config and stored in a
//! model file, checked once through linfa's [`ParamGuard`].

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

/// Featurizer settings, as written in the training config and stored in
/// the model file. Obtained checked through [`FeatureParams`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureSettings {
    /// Word n-gram lengths, inclusive: `[1, 2]` is unigrams and bigrams.
    pub word_ngrams: [u8; 2],
    /// Character n-gram lengths inside word boundaries (`[0, 0]` = off).
    pub char_ngrams: [u8; 2],
    /// Emit a `<caps>` feature for each ALL-CAPS word.
    pub caps_marker: bool,
    /// Drop terms seen in fewer documents than this.
    pub min_df: u32,
    /// Keep at most this many terms (most frequent first; 0 = no limit).
    pub max_features: usize,
    /// tf = 1 + ln(count) instead of the raw count.
    pub sublinear_tf: bool,
    /// Scale of the character n-gram block relative to the word block.
    pub char_weight: f32,
    /// Scale of the lexicon's compound-score feature (with a lexicon).
    pub lexicon_weight: f32,
    /// `NOT_word` features for words in a negation's scope (see
    /// `features::context`).
    pub negation_scope: bool,
    /// A `<title>` marker for each capitalised function word after the
    /// first (headline Title Case; see `features::context`).
    pub title_marker: bool,
    /// A `<first>word` feature for the passage's first word (how a
    /// headline opens: "This", "Why", a number; see `features::context`).
    pub first_word: bool,
    /// Identity and named-entity words (nationalities, countries, cities,
    /// religions, orientations, names) become their class token
    /// (`<religion>`, …; see `text::classes`).
    pub identity_classes: bool,
    /// When scoring, a word outside the vocabulary that is one slip (two
    /// adjacent letters swapped, one inner letter left out, a letter held
    /// down) from a word seen in 20 training documents or a lexicon word
    /// reads as that word; names, handles and links excepted (see
    /// `features::typos`). Training reads words as written.
    pub typo_aliases: bool,
    /// When scoring, a negative contraction reads as its two words:
    /// "wasn't" as "was not", "won't" as "will not" (see
    /// `text::contractions`). Training reads words as written.
    pub expand_contractions: bool,
    /// When scoring, `@handles` are left out (see `text::handles`).
    /// Training reads them as written.
    pub skip_handles: bool,
    /// A `<mkt+>` or `<mkt->` marker for each market direction word
    /// ("rose", "plunged", "upgraded"; flipped in a negation's scope),
    /// outside the word block's norm, read only by heads that ask to (see
    /// `features::context`).
    pub market_words: bool,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            word_ngrams: [1, 2],
            char_ngrams: [0, 0],
            caps_marker: true,
            min_df: 1,
            max_features: 0,
            sublinear_tf: true,
            char_weight: 1.0,
            lexicon_weight: 1.0,
            negation_scope: false,
            title_marker: false,
            first_word: false,
            identity_classes: false,
            typo_aliases: false,
            expand_contractions: false,
            skip_handles: false,
            market_words: false,
        }
    }
}

/// Unchecked featurizer parameters; [`ParamGuard::check`] validates them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureParams(pub FeatureSettings);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FeatureError {
    #[error("word_ngrams must be [min, max] with 1 <= min <= max <= 5, got {0:?}")]
    WordNgrams([u8; 2]),
    #[error("char_ngrams must be [0, 0] (off) or [min, max] with 1 <= min <= max <= 8, got {0:?}")]
    CharNgrams([u8; 2]),
    #[error("min_df must be at least 1")]
    MinDf,
    #[error("{field} must be positive and finite, got {value}")]
    Weight { field: &'static str, value: f32 },
    #[error("the training corpus is empty")]
    EmptyCorpus,
    #[error("no term is left after pruning (min_df = {min_df})")]
    EmptyVocabulary { min_df: u32 },
    #[error("hash collision between terms {0:?} and {1:?}")]
    Collision(String, String),
    #[error("invalid vocabulary: {0}")]
    InvalidVocabulary(String),
}

impl FeatureSettings {
    /// The checks behind [`FeatureParams`]' guard; also run on settings read
    /// from a model file.
    pub fn validate(&self) -> Result<(), FeatureError> {
        let [lo, hi] = self.word_ngrams;
        if lo < 1 || lo > hi || hi > 5 {
            return Err(FeatureError::WordNgrams(self.word_ngrams));
        }
        let [clo, chi] = self.char_ngrams;
        if !(clo == 0 && chi == 0) && (clo < 1 || clo > chi || chi > 8) {
            return Err(FeatureError::CharNgrams(self.char_ngrams));
        }
        if self.min_df < 1 {
            return Err(FeatureError::MinDf);
        }
        if !(self.char_weight.is_finite() && self.char_weight > 0.0) {
            return Err(FeatureError::Weight {
                field: "char_weight",
                value: self.char_weight,
            });
        }
        if !(self.lexicon_weight.is_finite() && self.lexicon_weight > 0.0) {
            return Err(FeatureError::Weight {
                field: "lexicon_weight",
                value: self.lexicon_weight,
            });
        }
        Ok(())
    }

    pub(crate) fn char_range(&self) -> Option<(usize, usize)> {
        let [lo, hi] = self.char_ngrams;
        (lo > 0).then_some((usize::from(lo), usize::from(hi)))
    }
}

impl ParamGuard for FeatureParams {
    type Checked = FeatureSettings;
    type Error = FeatureError;

    fn check_ref(&self) -> Result<&Self::Checked, Self::Error> {
        self.0.validate()?;
        Ok(&self.0)
    }

    fn check(self) -> Result<Self::Checked, Self::Error> {
        self.0.validate()?;
        Ok(self.0)
    }
}

/// The term frequency of a feature seen `count` times: 1 + ln(count) with
/// sublinear tf, else `count` (either way exactly 1 for one occurrence).
pub(super) fn tf_of(settings: &FeatureSettings, count: usize) -> f32 {
    if settings.sublinear_tf {
        1.0 + (count as f32).ln()
    } else {
        count as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_rejects_bad_settings() {
        let bad = FeatureParams(FeatureSettings {
            word_ngrams: [2, 1],
            ..Default::default()
        });
        assert_eq!(
            bad.check_ref().unwrap_err(),
            FeatureError::WordNgrams([2, 1])
        );
        let bad = FeatureParams(FeatureSettings {
            char_ngrams: [0, 3],
            ..Default::default()
        });
        assert!(bad.check().is_err());
        let bad = FeatureParams(FeatureSettings {
            min_df: 0,
            ..Default::default()
        });
        assert!(bad.check().is_err());
        // A bad weight is named.
        let bad = FeatureParams(FeatureSettings {
            lexicon_weight: f32::NAN,
            ..Default::default()
        });
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "lexicon_weight must be positive and finite, got NaN"
        );
        let bad = FeatureParams(FeatureSettings {
            char_weight: -1.0,
            ..Default::default()
        });
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "char_weight must be positive and finite, got -1"
        );
    }

    #[test]
    fn one_occurrence_weighs_exactly_one() {
        for sublinear_tf in [true, false] {
            let settings = FeatureSettings {
                sublinear_tf,
                ..Default::default()
            };
            assert_eq!(tf_of(&settings, 1), 1.0);
            assert_eq!(
                tf_of(&settings, 3),
                if sublinear_tf { 1.0 + 3f32.ln() } else { 3.0 }
            );
        }
    }
}
