//! Typo aliases (`typo_aliases`): a word outside the vocabulary that is a
//! common misspelling of a word the model knows is read as that word.
//!
//! A misspelt word has no word feature, and shares few of its character
//! n-grams with the word meant ("exclelent" keeps 5 of "excellent"'s 21),
//! so the one word that carries a short passage's sentiment is lost to a
//! typo. The aliases are every vocabulary word's (and lexicon word's)
//! neighbours by one slip of the hand:
//!
//! - two adjacent letters swapped ("exclelent"), for words of at least
//!   [`MIN_SWAP`] letters;
//! - one letter left out ("excelent"), for words of at least
//!   [`MIN_DROP`] letters (shorter words' deletions are too often other
//!   words).
//!
//! They are made from the vocabulary alone when a model is loaded, so the
//! model file holds no more than the setting; training reads words as
//! written (see `Featurizer::fit_with_lexicon`). An alias is
//! asked only about a word the index does not know (a word the model knows
//! is never read as another), and answers with the word meant: its unigram
//! feature, what the lexicon says of it, and its characters (the scan and
//! the reference vector both read the word meant in place of the word
//! written; n-grams spanning it keep the written word). Where two words
//! share a neighbour, the more frequent word (the lower idf; lexicon words
//! that are not features after every feature) takes it, then the earlier
//! in term order: the same vocabulary gives the same aliases.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::index::IdentityHasher;
use crate::text::hash_str;

/// Fewest letters of a word whose swapped neighbours are aliases.
pub const MIN_SWAP: usize = 4;
/// Fewest letters of a word whose shortened neighbours are aliases.
pub const MIN_DROP: usize = 6;
/// Fewest training documents a vocabulary word must have been seen in for
/// its neighbours to be aliases. An unknown word one slip from a rare word
/// is more often a rare word of its own ("potion", not "portion") than a
/// slip; from a common one, a slip.
pub const MIN_DF: f64 = 20.0;

/// A misspelling's token hash → the token hash of the word meant (as the
/// index and the lexicon know it).
#[derive(Debug, Clone, Default)]
pub(crate) struct TypoAliases {
    aliases: HashMap<u64, u64, BuildHasherDefault<IdentityHasher>>,
}

impl TypoAliases {
    /// The aliases of `words`: (word, rank) pairs, a lower rank winning a
    /// shared neighbour. Words that are not plain lower-case ASCII letters
    /// get none; `known` says which hashes are words of their own (never
    /// aliases).
    pub(crate) fn build<'a>(
        words: impl IntoIterator<Item = (&'a str, f32)>,
        known: impl Fn(u64) -> bool,
    ) -> Self {
        let mut words: Vec<(&str, f32)> = words
            .into_iter()
            .filter(|(w, _)| w.len() >= MIN_SWAP && w.bytes().all(|b| b.is_ascii_lowercase()))
            .collect();
        // Each word once, at its lowest rank; then winners first: lower
        // rank, then term order. A neighbour goes to the first word that
        // makes it.
        words.sort_by(|a, b| a.0.cmp(b.0).then(a.1.total_cmp(&b.1)));
        words.dedup_by(|next, kept| next.0 == kept.0);
        words.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
        let mut out = Self::default();
        let mut variant = Vec::new();
        for (w, _) in words {
            let meant = hash_str(w);
            neighbours(w.as_bytes(), &mut variant, |v| {
                // Neighbours are ASCII letters, so UTF-8.
                let h = hash_str(std::str::from_utf8(v).unwrap_or_default());
                if !known(h) {
                    out.aliases.entry(h).or_insert(meant);
                }
            });
        }
        out
    }

    /// The token hash of the word meant by the word with token hash `h`,
    /// if that is a misspelling.
    #[inline]
    pub(crate) fn get(&self, h: u64) -> Option<u64> {
        self.aliases.get(&h).copied()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.aliases.is_empty()
    }
}

/// Each neighbour of `w` by one swap of adjacent letters (if long
/// enough) or one letter left out (if long enough), into `buf` in turn;
/// a neighbour equal to `w` (a doubled letter swapped) is skipped.
fn neighbours(w: &[u8], buf: &mut Vec<u8>, mut each: impl FnMut(&[u8])) {
    if w.len() >= MIN_SWAP {
        for i in 0..w.len() - 1 {
            if w[i] != w[i + 1] {
                buf.clear();
                buf.extend_from_slice(w);
                buf.swap(i, i + 1);
                each(buf);
            }
        }
    }
    if w.len() >= MIN_DROP {
        // Not the first letter or the last: "members" without its first
        // is "embers", "rackets" without its last "racket", other words.
        for i in 1..w.len() - 1 {
            // Leaving out one of a doubled letter gives the same word twice.
            if i > 0 && w[i] == w[i - 1] {
                continue;
            }
            buf.clear();
            buf.extend_from_slice(&w[..i]);
            buf.extend_from_slice(&w[i + 1..]);
            each(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    fn strings(w: &str) -> Vec<String> {
        let mut out = Vec::new();
        neighbours(w.as_bytes(), &mut Vec::new(), |v| {
            out.push(String::from_utf8(v.to_vec()).unwrap())
        });
        out
    }

    #[test]
    fn neighbours_are_one_swap_or_one_letter_away() {
        assert_eq!(strings("good"), ["ogod", "godo"]);
        assert!(strings("bad").is_empty());
        // Six letters: swaps, then deletions (the doubled `t` once, not
        // the first letter or the last).
        assert_eq!(
            strings("bitter"),
            ["ibtter", "btiter", "bitetr", "bittre", "btter", "biter", "bittr"]
        );
    }

    #[test]
    fn a_misspelt_word_reads_as_the_word_meant() {
        let a = TypoAliases::build([("excellent", 1.0), ("good", 1.0)], |_| false);
        let mut tokens = Vec::new();
        for (written, meant) in [
            ("Exclelent", "excellent"),
            ("EXCELENT", "excellent"),
            ("ogod", "good"),
        ] {
            tokenize(written, &mut tokens);
            assert_eq!(a.get(tokens[0].hash), Some(tokens_hash(meant)), "{written}");
        }
        tokenize("excellent", &mut tokens);
        assert_eq!(a.get(tokens[0].hash), None);
    }

    fn tokens_hash(w: &str) -> u64 {
        let mut tokens = Vec::new();
        tokenize(w, &mut tokens);
        tokens[0].hash
    }

    #[test]
    fn known_words_and_shared_neighbours_are_decided_the_same_way() {
        // "form" and "from" swap into each other; both are known words.
        let known = |h: u64| h == hash_str("from") || h == hash_str("form");
        let a = TypoAliases::build([("form", 2.0), ("from", 1.0)], known);
        assert_eq!(a.get(hash_str("from")), None);
        assert_eq!(a.get(hash_str("form")), None);
        assert_eq!(a.get(hash_str("ofrm")), Some(hash_str("form")));
        assert_eq!(a.get(hash_str("rfom")), Some(hash_str("from")));
        // "planet" and "plaint" both lose a letter to "plant": the lower
        // rank takes it, then the earlier term, whatever the input order.
        let meant =
            |words: [(&str, f32); 2]| TypoAliases::build(words, |_| false).get(hash_str("plant"));
        let (planet, plaint) = (Some(hash_str("planet")), Some(hash_str("plaint")));
        assert_eq!(meant([("planet", 0.5), ("plaint", 1.0)]), planet);
        assert_eq!(meant([("plaint", 1.0), ("planet", 0.5)]), planet);
        assert_eq!(meant([("planet", 1.0), ("plaint", 1.0)]), plaint);
        assert_eq!(meant([("plaint", 1.0), ("planet", 1.0)]), plaint);
        // A word listed twice (a feature and a lexicon word) keeps its
        // lower rank.
        let twice = [("planet", f32::INFINITY), ("plaint", 1.0), ("planet", 0.5)];
        assert_eq!(
            TypoAliases::build(twice, |_| false).get(hash_str("plant")),
            planet
        );
    }

    #[test]
    fn words_that_are_not_plain_letters_get_no_aliases() {
        let a = TypoAliases::build(
            [("don't", 1.0), ("<caps>", 1.0), ("café", 1.0), ("ab", 1.0)],
            |_| false,
        );
        assert!(a.is_empty());
    }
}
