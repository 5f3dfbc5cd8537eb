//! Typo aliases (`typo_aliases`): a word outside the vocabulary that is a
//! common misspelling of a word the model knows is read as that word.
//!
//! A misspelt word has no word feature, and shares few of its character
//! n-grams with the word meant ("exclelent" keeps 5 of "excellent"'s 21),
//! so the one word that carries a short passage's sentiment is lost to a
//! typo. The words misspellings may be read as are the vocabulary's
//! words seen in at least [`MIN_DF`] training documents and the lexicon's
//! words (plain lower-case ASCII letters); a misspelling is one of their
//! neighbours by one slip of the hand:
//!
//! - two adjacent letters swapped ("exclelent"), for words of at least
//!   [`MIN_SWAP`] letters;
//! - one letter left out ("excelent"), for words of at least
//!   [`MIN_DROP`] letters (shorter words' deletions are too often other
//!   words);
//! - a letter held down ("goooood"): an unknown word with a letter three
//!   times or more in a row is respelt with fewer repeats until it is one
//!   of those words (see [`fewer_repeats`]).
//!
//! They are made from the vocabulary alone when a model is loaded, so the
//! model file holds no more than the setting; training reads words as
//! written (see `Featurizer::fit_with_lexicon`). An alias is
//! asked only about a word the index does not know (a word the model knows
//! is never read as another), and answers with the word meant: its unigram
//! feature, what the lexicon says of it, and, when it is a feature, its
//! characters (the scan and the reference vector both read the word meant
//! in place of the word written). N-grams spanning it and its context
//! features (`NOT_word`, `<first>word`) keep the written word. The scan
//! leaves names (a capitalised word inside a sentence), handles and links
//! alone. Where two words share a neighbour, the more frequent word (the
//! lower idf; lexicon words after every vocabulary word) takes it, then
//! the earlier in term order: the same vocabulary gives the same aliases.

use std::collections::{HashMap, HashSet};
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

type IdentityBuild = BuildHasherDefault<IdentityHasher>;

/// A misspelling's token hash → the token hash of the word meant (as the
/// index and the lexicon know it), and the words misspellings may be read
/// as.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypoAliases {
    aliases: HashMap<u64, u64, IdentityBuild>,
    /// The token hashes of the words misspellings may be read as.
    targets: HashSet<u64, IdentityBuild>,
}

impl TypoAliases {
    /// The aliases of `words` (the words misspellings may be read as):
    /// (word, rank) pairs, a lower rank winning a shared neighbour. Words
    /// that are not plain lower-case ASCII letters are left out; `known`
    /// says which hashes are words of their own (never aliases).
    pub(crate) fn build<'a>(
        words: impl IntoIterator<Item = (&'a str, f32)>,
        known: impl Fn(u64) -> bool,
    ) -> Self {
        let mut words: Vec<(&str, f32)> = words
            .into_iter()
            .filter(|(w, _)| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
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
            out.targets.insert(meant);
            neighbours(w.as_bytes(), &mut variant, |v| {
                let h = hash_letters(v);
                if !known(h) {
                    out.aliases.entry(h).or_insert(meant);
                }
            });
        }
        out
    }

    /// The token hash of the word meant by `word` (its token hash `h`), if
    /// that is a misspelling: one slip from a word the model knows, or
    /// that word with a letter held down ("goooood", see [`fewer_repeats`]).
    /// `buf` is scratch space.
    #[inline]
    pub(crate) fn get(&self, h: u64, word: &str, buf: &mut Vec<u8>) -> Option<u64> {
        if let Some(&meant) = self.aliases.get(&h) {
            return Some(meant);
        }
        let mut meant = None;
        fewer_repeats(word, buf, |w| {
            let h = hash_letters(w);
            let known = self.targets.contains(&h);
            if known {
                meant = Some(h);
            }
            known
        });
        meant
    }
}

/// The token hash of a word made here of ASCII letters (so UTF-8).
fn hash_letters(word: &[u8]) -> u64 {
    hash_str(std::str::from_utf8(word).unwrap_or_default())
}

/// `word` (ASCII letters; lower-cased here) as written with a key held
/// down: every run of three or more of a letter (which English words do
/// not have) cut to two ("goooood" → "good"), then to one ("sooo" →
/// "so"), into `buf` in turn until `each` says it is a word. A doubled
/// letter is left as it is: "rapped" is not "raped", nor "scarred"
/// "scared".
fn fewer_repeats(word: &str, buf: &mut Vec<u8>, mut each: impl FnMut(&[u8]) -> bool) {
    let w = word.as_bytes();
    if w.len() < 3 || !w.iter().all(u8::is_ascii_alphabetic) {
        return;
    }
    let runs = || w.chunk_by(|a, b| a.eq_ignore_ascii_case(b));
    if !runs().any(|r| r.len() >= 3) {
        return;
    }
    for cut in [2, 1] {
        buf.clear();
        for run in runs() {
            let n = if run.len() >= 3 { cut } else { run.len() };
            buf.extend(std::iter::repeat_n(run[0].to_ascii_lowercase(), n));
        }
        if each(buf) {
            return;
        }
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
            if w[i] == w[i - 1] {
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

    /// What `a` reads `written` as.
    fn get(a: &TypoAliases, written: &str) -> Option<u64> {
        a.get(hash_str(&written.to_lowercase()), written, &mut Vec::new())
    }

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

    fn respellings(word: &str) -> Vec<String> {
        let mut out = Vec::new();
        fewer_repeats(word, &mut Vec::new(), |v| {
            out.push(String::from_utf8(v.to_vec()).unwrap());
            false
        });
        out
    }

    #[test]
    fn a_held_down_letter_is_let_go() {
        assert_eq!(respellings("Goooood"), ["good", "god"]);
        assert_eq!(respellings("sooo"), ["soo", "so"]);
        assert_eq!(respellings("exceLLLennt"), ["excellennt", "excelennt"]);
        assert!(respellings("rapped").is_empty());
        assert!(respellings("cat").is_empty());
        // Short words are words to read too, though they have no aliases.
        let a = TypoAliases::build([("so", 1.0), ("bad", 1.0)], |_| false);
        assert_eq!(get(&a, "sooo"), Some(hash_str("so")));
        assert_eq!(get(&a, "BAAAAD"), Some(hash_str("bad")));
        assert_eq!(get(&a, "abd"), None);
        assert!(respellings("café").is_empty());
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
            let got = a.get(tokens[0].hash, written, &mut Vec::new());
            assert_eq!(got, Some(tokens_hash(meant)), "{written}");
        }
        tokenize("excellent", &mut tokens);
        assert_eq!(a.get(tokens[0].hash, "excellent", &mut Vec::new()), None);
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
        assert_eq!(get(&a, "from"), None);
        assert_eq!(get(&a, "form"), None);
        assert_eq!(get(&a, "ofrm"), Some(hash_str("form")));
        assert_eq!(get(&a, "rfom"), Some(hash_str("from")));
        // "planet" and "plaint" both lose a letter to "plant": the lower
        // rank takes it, then the earlier term, whatever the input order.
        let meant = |words: [(&str, f32); 2]| get(&TypoAliases::build(words, |_| false), "plant");
        let (planet, plaint) = (Some(hash_str("planet")), Some(hash_str("plaint")));
        assert_eq!(meant([("planet", 0.5), ("plaint", 1.0)]), planet);
        assert_eq!(meant([("plaint", 1.0), ("planet", 0.5)]), planet);
        assert_eq!(meant([("planet", 1.0), ("plaint", 1.0)]), plaint);
        assert_eq!(meant([("plaint", 1.0), ("planet", 1.0)]), plaint);
        // A word listed twice (a feature and a lexicon word) keeps its
        // lower rank.
        let twice = [("planet", f32::INFINITY), ("plaint", 1.0), ("planet", 0.5)];
        assert_eq!(get(&TypoAliases::build(twice, |_| false), "plant"), planet);
    }

    #[test]
    fn words_that_are_not_plain_letters_get_no_aliases() {
        let a = TypoAliases::build(
            [("don't", 1.0), ("<caps>", 1.0), ("café", 1.0), ("ab", 1.0)],
            |_| false,
        );
        assert!(a.aliases.is_empty());
    }
}
