//! Negative contractions read as their two words (`expand_contractions`):
//! "wasn't" as "was not", "won't" as "will not", "can't" as "can not".
//!
//! A passage then reads the same whether its negation is contracted or
//! not: "The hotel wasn't good." and "The hotel was not good." have the
//! same tokens, so the same word n-grams, negation scope and lexicon
//! negation. Without it, the contracted form is a word of its own whose
//! weight was learned from whichever sources wrote it, and a quarter of
//! the behaviour suite's sentences changed label when their "not" was
//! contracted.
//!
//! The featurizer does this when scoring only (see
//! `Featurizer::fit_with_lexicon` for why training reads words as written).
//!
//! A detached "n't" ("does n't") is left as written. Only text tokenized
//! the Penn Treebank's way has one (SST's), and the model learned it as
//! written there: read as "not", it cost SST-2's dev split 0.808 → 0.806
//! macro-F1 and SST-3's 0.559 → 0.558; left alone, neither moves.

use super::{hash_str, Token, TokenKind};

/// The word meant by a contraction's first part, by that part as written
/// (lower-cased): most are the word itself; "ca", "wo", "sha" and "ai" are
/// not words. A word ending in "n't" whose first part is not here ("y'alln't")
/// is left as written.
const FIRST_PARTS: &[(&str, &str)] = &[
    ("ai", "is"),
    ("are", "are"),
    ("ca", "can"),
    ("could", "could"),
    ("dare", "dare"),
    ("did", "did"),
    ("do", "do"),
    ("does", "does"),
    ("had", "had"),
    ("has", "has"),
    ("have", "have"),
    ("is", "is"),
    ("might", "might"),
    ("must", "must"),
    ("need", "need"),
    ("ought", "ought"),
    ("sha", "shall"),
    ("should", "should"),
    ("was", "was"),
    ("were", "were"),
    ("wo", "will"),
    ("would", "would"),
];

/// Longest first part in [`FIRST_PARTS`].
const LONGEST: usize = 6;

/// The token hash of "not".
pub const NOT: u64 = hash_str("not");

/// Splits every negative contraction among `tokens` (a tokenized
/// `passage`) in two: the first part, spanning its letters and hashed as
/// the word meant ("ca" as "can"), and "not", spanning "n't" (or "n’t").
/// `made` gets the tokens, by their position after the split, whose hash
/// is not that of their text as written ("not" for "n't", "can" for
/// "ca"), in order.
pub fn split(passage: &str, tokens: &mut Vec<Token>, made: &mut Vec<u32>) {
    made.clear();
    let b = passage.as_bytes();
    // Each apostrophe found in one SIMD sweep (the curly one starts E2,
    // as do other curly marks): cheaper than a check per word, as most
    // passages have none and few have a contraction.
    for at in memchr::memchr2_iter(b'\'', 0xe2, b) {
        let width = match b.get(at..at + 3) {
            Some([0xe2, 0x80, 0x99]) => 3,
            _ if b.get(at) == Some(&b'\'') => 1,
            _ => continue,
        };
        // An "n" before it, a "t" after.
        let (Some(&n), Some(&t)) = (at.checked_sub(1).and_then(|k| b.get(k)), b.get(at + width))
        else {
            continue;
        };
        if n | 0x20 != b'n' || t | 0x20 != b't' {
            continue;
        }
        // The word token that ends with that "t" (tokens are in order,
        // so their ends are too).
        let (cut, end) = (at - 1, at + width + 1);
        let i = tokens.partition_point(|tok| (tok.end as usize) < end);
        let Some(&word) = tokens.get(i) else {
            continue;
        };
        if word.kind != TokenKind::Word || word.end as usize != end || word.start as usize >= cut {
            // Not a word's end, or a detached "n't", which stays as written.
            continue;
        }
        let Some((meant, as_written)) =
            first_part(b.get(word.start as usize..cut).unwrap_or_default())
        else {
            continue;
        };
        if let Some(first) = tokens.get_mut(i) {
            first.end = cut as u32;
            first.hash = meant;
        }
        let not = Token {
            start: cut as u32,
            end: word.end,
            hash: NOT,
            kind: TokenKind::Word,
            caps: false,
        };
        tokens.insert(i + 1, not);
        if !as_written {
            made.push(i as u32);
        }
        made.push(i as u32 + 1);
    }
}

/// The token hash of the word a contraction's first part stands for, and
/// whether that is the part as written.
fn first_part(part: &[u8]) -> Option<(u64, bool)> {
    if part.len() > LONGEST {
        return None;
    }
    let mut lower = [0u8; LONGEST];
    let lower = &mut lower[..part.len()];
    for (l, &c) in lower.iter_mut().zip(part) {
        *l = c.to_ascii_lowercase();
    }
    let (written, meant) = FIRST_PARTS
        .iter()
        .find(|(written, _)| written.as_bytes() == lower)?;
    Some((hash_str(meant), written == meant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    /// Each token as (its text as written, whether its hash is that of
    /// the word given), and `made`.
    fn read(passage: &str) -> (Vec<(String, u64)>, Vec<u32>) {
        let (mut tokens, mut made) = (Vec::new(), Vec::new());
        tokenize(passage, &mut tokens);
        split(passage, &mut tokens, &mut made);
        let tokens = tokens
            .iter()
            .map(|t| {
                (
                    passage[t.start as usize..t.end as usize].to_string(),
                    t.hash,
                )
            })
            .collect();
        (tokens, made)
    }

    /// The words a passage reads as: each token's hash, named.
    fn words(passage: &str) -> Vec<String> {
        let (tokens, _) = read(passage);
        tokens
            .iter()
            .map(|(written, h)| {
                ["not", "can", "will", "shall", "is"]
                    .into_iter()
                    .find(|w| hash_str(w) == *h)
                    .map_or_else(|| written.to_lowercase(), str::to_string)
            })
            .collect()
    }

    #[test]
    fn a_contracted_negation_reads_as_its_two_words() {
        assert_eq!(
            words("The hotel wasn't good."),
            ["the", "hotel", "was", "not", "good"]
        );
        assert_eq!(
            words("I won't go, I can't"),
            ["i", "will", "not", "go", "i", "can", "not"]
        );
        assert_eq!(words("They DIDN’T care"), ["they", "did", "not", "care"]);
        assert_eq!(
            words("Shan't, ain't, needn't"),
            ["shall", "not", "is", "not", "need", "not"]
        );
    }

    #[test]
    fn the_two_words_span_the_written_parts() {
        let (tokens, made) = read("I can't say it wasn’t fun");
        let written: Vec<&str> = tokens.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(
            written,
            ["I", "ca", "n't", "say", "it", "was", "n’t", "fun"]
        );
        // "ca" (read as "can") and both "n't" are made; "was" is as written.
        assert_eq!(made, [1, 2, 6]);
        let hashes: Vec<u64> = tokens.iter().map(|&(_, h)| h).collect();
        assert_eq!(hashes[1], hash_str("can"));
        assert_eq!(hashes[2], NOT);
        assert_eq!(hashes[5], hash_str("was"));
        assert_eq!(hashes[6], NOT);
    }

    #[test]
    fn other_words_are_left_as_written() {
        for passage in [
            "The cat sat",
            "Don Quixote",
            "that isn t it",
            "it does n't work",
            "y'alln't",
            "n'",
            "'t",
            "xn't",
            "isn'tt",
            "",
        ] {
            let mut tokens = Vec::new();
            tokenize(passage, &mut tokens);
            let before = tokens.clone();
            let mut made = Vec::new();
            split(passage, &mut tokens, &mut made);
            assert_eq!(tokens, before, "{passage:?}");
            assert!(made.is_empty(), "{passage:?}");
        }
    }

    #[test]
    fn caps_stay_with_the_first_part() {
        let passage = "WE WON'T PAY";
        let (mut tokens, mut made) = (Vec::new(), Vec::new());
        tokenize(passage, &mut tokens);
        split(passage, &mut tokens, &mut made);
        let caps: Vec<bool> = tokens.iter().map(|t| t.caps).collect();
        assert_eq!(caps, [true, true, false, true]);
    }

    proptest::proptest! {
        /// Whatever the text, a split keeps the tokens in order, each
        /// span inside the passage on a character boundary, and only
        /// splits a word in two whose parts meet: the first part's end is
        /// the "not"'s start.
        #[test]
        fn a_split_keeps_the_tokens_in_order(
            passage in "(isn't|WON’T|can't|n't|ca|don|’|'|n|t|[a-zA-Z]{1,4}|é|\\.| ){0,16}",
        ) {
            let (mut tokens, mut made) = (Vec::new(), Vec::new());
            tokenize(&passage, &mut tokens);
            let before = tokens.clone();
            split(&passage, &mut tokens, &mut made);
            for pair in tokens.windows(2) {
                proptest::prop_assert!(pair[0].end <= pair[1].start);
            }
            for t in &tokens {
                proptest::prop_assert!(passage.get(t.start as usize..t.end as usize).is_some());
            }
            let nots = tokens.len() - before.len();
            proptest::prop_assert_eq!(tokens.iter().filter(|t| t.hash == NOT).count() - before.iter().filter(|t| t.hash == NOT).count(), nots);
            for (k, t) in tokens.iter().enumerate() {
                if t.hash == NOT && !before.contains(t) {
                    proptest::prop_assert_eq!(tokens[k - 1].end, t.start);
                }
            }
            proptest::prop_assert!(made.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
