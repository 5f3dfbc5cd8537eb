//! Fitting a featurizer on a corpus (document frequencies, pruning, IDF)
//! and rebuilding its lookup tables from a stored vocabulary.

use std::collections::HashMap;

use super::define::*;
use super::index::*;
use super::lexicon::*;
use super::settings::tf_of;
use super::typos::{self, TypoAliases};
use super::*;
use crate::text::hash_str;

impl Featurizer {
    /// Fits the vocabulary and IDF on `corpus` with checked settings.
    pub fn fit<'a>(
        settings: &FeatureSettings,
        corpus: impl IntoIterator<Item = &'a str>,
        progress: impl FnMut(),
    ) -> Result<Self, FeatureError> {
        Self::fit_with_lexicon(settings, &[], corpus, progress)
    }

    /// [`Featurizer::fit`] with a sentiment lexicon (see [`Lexicon`]).
    pub fn fit_with_lexicon<'a>(
        settings: &FeatureSettings,
        lexicon: &[(String, f32)],
        corpus: impl IntoIterator<Item = &'a str>,
        mut progress: impl FnMut(),
    ) -> Result<Self, FeatureError> {
        struct Entry {
            df: u32,
            term: String,
        }
        let mut table: HashMap<u64, Entry> = HashMap::new();
        let mut tokens = Vec::new();
        let mut grams = GramScratch::default();
        let mut seen: Vec<u64> = Vec::new();
        let mut n_docs = 0u64;
        let mut lexicon: Vec<(String, f32)> = lexicon
            .iter()
            .map(|(w, v)| (w.to_lowercase(), *v))
            .collect();
        lexicon.sort_by(|a, b| a.0.cmp(&b.0));
        lexicon.dedup_by(|a, b| a.0 == b.0);
        let lex = Lexicon::new(&lexicon);
        let mut annotations = Vec::new();
        for passage in corpus {
            n_docs += 1;
            tokens_of(settings, passage, &mut tokens);
            seen.clear();
            lex.annotate(&tokens, &mut annotations);
            for_each_feature(
                settings,
                &lex,
                &annotations,
                true,
                passage,
                &tokens,
                &mut grams,
                |_| None,
                |h, occ| {
                    seen.push(h);
                    // Texts are built once per distinct hash. Two different
                    // texts with one 64-bit hash (about 1 in 10^7 for a
                    // million-term vocabulary) would share a feature.
                    table.entry(h).or_insert_with(|| Entry {
                        df: 0,
                        term: occurrence_text(passage, &tokens, occ),
                    });
                },
            );
            seen.sort_unstable();
            seen.dedup();
            for h in &seen {
                if let Some(e) = table.get_mut(h) {
                    e.df += 1;
                }
            }
            progress();
        }
        if n_docs == 0 {
            return Err(FeatureError::EmptyCorpus);
        }
        let mut kept: Vec<(u64, Entry)> = table
            .into_iter()
            .filter(|(_, e)| e.df >= settings.min_df)
            .collect();
        if kept.is_empty() {
            return Err(FeatureError::EmptyVocabulary {
                min_df: settings.min_df,
            });
        }
        if settings.max_features > 0 && kept.len() > settings.max_features {
            // Ties end on the hash: a word and a character n-gram can share
            // a term (the word `ch:ab`, the 2-gram `ab`), and the table's
            // order is random.
            kept.sort_by(|a, b| {
                b.1.df
                    .cmp(&a.1.df)
                    .then_with(|| a.1.term.cmp(&b.1.term))
                    .then(a.0.cmp(&b.0))
            });
            kept.truncate(settings.max_features);
        }
        kept.sort_by(|a, b| a.1.term.cmp(&b.1.term).then(a.0.cmp(&b.0)));
        let n = n_docs as f64;
        let vocab = Vocabulary {
            settings: settings.clone(),
            n_docs,
            idf: kept
                .iter()
                .map(|(_, e)| (((1.0 + n) / (1.0 + f64::from(e.df))).ln() + 1.0) as f32)
                .collect(),
            hashes: kept.iter().map(|(h, _)| *h).collect(),
            terms: kept.into_iter().map(|(_, e)| e.term).collect(),
            lexicon,
        };
        // Training reads every word as written: `typo_aliases`,
        // `expand_contractions` and `skip_handles` are for the passages a
        // model scores (see `typos`, `text::contractions`,
        // `text::handles`). A training corpus's rare words
        // are mostly words, not slips, and read as their neighbours they
        // cost dev (SST-2 0.808 → 0.798, BABE 0.731 → 0.718 with the
        // default config), where aliases at scoring alone moved no dev set
        // by more than 0.003. Contractions expanded in training too moved
        // dev both ways (NewsMTSC 0.627 → 0.616, PTC 0.666 → 0.674) and
        // taught the heads a negated complaint was a complaint (the
        // suite's negated complaints failed 36%, from 2%); at scoring alone,
        // no dev set moved by more than 0.002.
        Self::rebuild(vocab, false)
    }

    /// Rebuilds the lookup index from a stored vocabulary, checking it.
    /// With `typo_aliases` in its settings, misspellings are read as the
    /// words meant; with `expand_contractions`, negative contractions as
    /// their two words; with `skip_handles`, `@handles` are left out.
    pub fn from_vocabulary(vocab: Vocabulary) -> Result<Self, FeatureError> {
        Self::rebuild(vocab, true)
    }

    /// [`Featurizer::from_vocabulary`], with the scoring-time readings
    /// its settings ask for (typo aliases, contractions, handles) only when
    /// `scoring` (training reads words as written).
    fn rebuild(vocab: Vocabulary, scoring: bool) -> Result<Self, FeatureError> {
        vocab.settings.validate()?;
        let n = vocab.terms.len();
        if vocab.hashes.len() != n || vocab.idf.len() != n {
            return Err(FeatureError::InvalidVocabulary(format!(
                "{} terms, {} hashes, {} idf values",
                n,
                vocab.hashes.len(),
                vocab.idf.len()
            )));
        }
        if n == 0 || n >= NO_FEATURE as usize {
            return Err(FeatureError::InvalidVocabulary(format!("{n} terms")));
        }
        if let Some(bad) = vocab.idf.iter().position(|v| !v.is_finite() || *v <= 0.0) {
            return Err(FeatureError::InvalidVocabulary(format!(
                "idf of term {:?} is {}",
                vocab.terms[bad], vocab.idf[bad]
            )));
        }
        // Character n-grams get their own table: scoring probes them only
        // for words outside the vocabulary, and the word table it probes
        // for every n-gram stays half the size.
        let is_char: Vec<bool> = vocab
            .terms
            .iter()
            .zip(&vocab.hashes)
            .map(|(t, &h)| t.strip_prefix(CHAR_PREFIX).map(char_gram_hash) == Some(h))
            .collect();
        let n_char = is_char.iter().filter(|&&c| c).count();
        let lexicon = Lexicon::new(&vocab.lexicon);
        // Room for the lexicon's words (and its role words) too.
        let mut index = HashIndex::with_capacity(n - n_char + lexicon.words.len());
        let mut char_index = HashIndex::with_capacity(n_char);
        for (i, &h) in vocab.hashes.iter().enumerate() {
            let table = if is_char[i] {
                &mut char_index
            } else {
                &mut index
            };
            if let Some(prev) = table.insert(h, i as u32) {
                return Err(FeatureError::Collision(
                    vocab.terms[prev as usize].clone(),
                    vocab.terms[i].clone(),
                ));
            }
        }
        if let Some((w, v)) = vocab
            .lexicon
            .iter()
            .find(|(w, v)| w.is_empty() || !v.is_finite())
        {
            return Err(FeatureError::InvalidVocabulary(format!(
                "lexicon entry {w:?} = {v}"
            )));
        }
        let lexicon_score = if lexicon.is_empty() {
            None
        } else {
            index.get(hash_str(LEXICON_SCORE))
        };
        // What the lexicon says of each word goes into the word's slot:
        // the valence as a number into `valences`, the role beside it.
        let mut valences: Vec<f32> = vec![0.0];
        let mut numbers: HashMap<u32, u32> = HashMap::new();
        let mut words: Vec<(u64, TokenLex)> = lexicon.words.iter().map(|(&h, &l)| (h, l)).collect();
        words.sort_unstable_by_key(|&(h, _)| h);
        let mut lex_index = HashIndex::with_capacity(words.len());
        for (h, l) in words {
            let number = if l.valence == 0.0 {
                0
            } else {
                *numbers.entry(l.valence.to_bits()).or_insert_with(|| {
                    valences.push(l.valence);
                    valences.len() as u32 - 1
                })
            };
            let Some(packed) = PackedLex::new(l.role, number) else {
                return Err(FeatureError::InvalidVocabulary(format!(
                    "{} distinct lexicon valences (at most {})",
                    numbers.len(),
                    PackedLex::VALENCES - 1
                )));
            };
            index.entry(h).lex = packed;
            lex_index.entry(h).lex = packed;
        }
        let tf_small = std::array::from_fn(|count| tf_of(&vocab.settings, count));
        let markers =
            std::array::from_fn(|k| index.get(lexicon.markers[k].0).unwrap_or(NO_FEATURE));
        // Misspellings of the words the model knows: its unigram words
        // (ranked by idf, the more frequent first) and the lexicon's words
        // (after them).
        let contractions = scoring && vocab.settings.expand_contractions;
        let skip_handles = scoring && vocab.settings.skip_handles;
        let aliases = (scoring && vocab.settings.typo_aliases).then(|| {
            let unigrams = vocab
                .terms
                .iter()
                .zip(&vocab.hashes)
                .zip(&vocab.idf)
                .filter(|((t, &h), &idf)| {
                    hash_str(t) == h && document_frequency(idf, vocab.n_docs) >= typos::MIN_DF
                })
                .map(|((t, _), &idf)| (t.as_str(), idf));
            let lexicon_words = vocab
                .lexicon
                .iter()
                .map(|(w, _)| (w.as_str(), f32::INFINITY));
            TypoAliases::build(unigrams.chain(lexicon_words), |h| index.slot(h).is_some())
        });
        Ok(Self {
            vocab,
            index,
            char_index,
            lex_index,
            lexicon,
            lexicon_score,
            markers,
            valences,
            tf_small,
            aliases,
            contractions,
            skip_handles,
        })
    }
}

/// The document frequency an idf was computed from (the inverse of the
/// smoothed idf of [`Featurizer::fit_with_lexicon`], rounded: the idf is
/// an `f32`).
fn document_frequency(idf: f32, n_docs: u64) -> f64 {
    ((1.0 + n_docs as f64) / (f64::from(idf) - 1.0).exp() - 1.0).round()
}

#[cfg(test)]
mod tests {
    use super::super::fitted;
    use super::*;

    #[test]
    fn min_df_and_max_features_prune() {
        let s = FeatureSettings {
            word_ngrams: [1, 1],
            caps_marker: false,
            min_df: 2,
            ..Default::default()
        };
        let f = fitted(s.clone(), &["a b", "a c", "a b"]);
        assert_eq!(f.vocabulary().terms, ["a", "b"]);
        let s = FeatureSettings {
            min_df: 1,
            max_features: 1,
            ..s
        };
        let f = fitted(s, &["a b", "a c", "a b"]);
        assert_eq!(f.vocabulary().terms, ["a"]);
    }

    #[test]
    fn max_features_cuts_ties_the_same_way_every_time() {
        // The word `ch:ab` and the character 2-gram `ab` share the term
        // `ch:ab` and a df; the cut at three features falls between them.
        let settings = FeatureSettings {
            word_ngrams: [1, 1],
            char_ngrams: [2, 2],
            caps_marker: false,
            max_features: 3,
            ..Default::default()
        };
        let hashes = || {
            fitted(settings.clone(), &["ch:ab"])
                .vocabulary()
                .hashes
                .clone()
        };
        let first = hashes();
        for _ in 0..50 {
            assert_eq!(hashes(), first);
        }
    }

    #[test]
    fn char_ngrams_are_word_bounded() {
        let s = FeatureSettings {
            word_ngrams: [1, 1],
            char_ngrams: [3, 3],
            caps_marker: false,
            ..Default::default()
        };
        let f = fitted(s, &["Wow"]);
        assert_eq!(f.vocabulary().terms, ["ch:_wo", "ch:ow_", "ch:wow", "wow"]);
    }

    #[test]
    fn stored_vocabulary_is_checked() {
        let f = fitted(FeatureSettings::default(), &["a b"]);
        let mut v = f.vocabulary().clone();
        v.idf.pop();
        assert!(matches!(
            Featurizer::from_vocabulary(v),
            Err(FeatureError::InvalidVocabulary(_))
        ));
        let mut v = f.vocabulary().clone();
        v.hashes[1] = v.hashes[0];
        assert!(matches!(
            Featurizer::from_vocabulary(v),
            Err(FeatureError::Collision(..))
        ));
    }
}
