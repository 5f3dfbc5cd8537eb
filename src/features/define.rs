//! What a feature is: the word n-grams, `<caps>` markers, context features
//! (`NOT_word`, `<title>`, `<first>word`, `<mkt±>`), lexicon markers and character n-grams of a
//! tokenized passage, their hashes, and the text
//! and span each occurrence stands for. Fitting and explanations walk them
//! here; the scan makes the same hashes in another order.

use super::lexicon::{Lexicon, TokenLex};
use super::settings::FeatureSettings;
use crate::text::{finish, hash_str, Token, TokenKind};

/// Where a feature occurs: enough to rebuild its text and its span.
#[derive(Debug, Clone, Copy)]
pub(super) enum Occurrence {
    /// Tokens `first .. first + n`.
    Words { first: usize, n: usize },
    /// The `<caps>` marker on token `token`.
    Caps { token: usize },
    /// A lexicon marker (`<lex+>`, `<lex-->`, …) on token `token`.
    Lexicon { token: usize, marker: &'static str },
    /// Token `token` in a negation's scope (`NOT_word`).
    Negated { token: usize },
    /// The title-case marker on token `token`.
    Title { token: usize },
    /// Token `token` as the passage's first word (`<first>word`).
    First { token: usize },
    /// A market direction marker (`<mkt+>` when `up`, else `<mkt->`) on
    /// token `token`.
    Market { token: usize, up: bool },
    /// Character n-gram number `index` (of length `n`) of token `token`,
    /// counted over the word padded with one boundary mark on each side
    /// (the word meant, for a misspelt token: see `typos`; only fitting,
    /// which reads words as written, asks for an occurrence's text).
    Chars {
        token: usize,
        index: usize,
        n: usize,
    },
}

pub(super) const CAPS: &str = "<caps>";
pub(super) const CAPS_HASH: u64 = hash_str(CAPS);
/// Marks a word boundary in character n-gram terms (`_sho`, `ing_`).
pub(super) const BOUNDARY: char = '_';
pub(super) const CHAR_SEED: u64 = 0x6368_6172_5f6e_6772; // "char_ngr"
/// How a character n-gram's term starts (`ch:_sho`).
pub(super) const CHAR_PREFIX: &str = "ch:";

/// The hash [`for_each_char_gram`] gives the character n-gram `gram`.
pub(super) fn char_gram_hash(gram: &str) -> u64 {
    finish(gram.chars().fold(CHAR_SEED, char_step))
}

/// One character into a character n-gram's running hash: a multiply and
/// a rotation, no finaliser. The n-grams from one start share the steps
/// and each is finished on its own ([`char_gram_hash`]), so the chain of
/// dependent multiplications per character is one long, not three.
#[inline(always)]
pub(super) fn char_step(h: u64, c: char) -> u64 {
    (h ^ u64::from(u32::from(c)))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(26)
}

#[inline]
pub(super) fn combine(a: u64, b: u64) -> u64 {
    finish(a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b)
}

/// A passage's tokens as the featurizer reads them, in training and
/// scoring alike: identity words as their class (with
/// `identity_classes`). Scoring may read more (see `Scan::token_hits`).
#[inline]
pub(super) fn tokens_of(settings: &FeatureSettings, passage: &str, tokens: &mut Vec<Token>) {
    crate::text::tokenize(passage, tokens);
    if settings.identity_classes {
        crate::text::classes::apply(passage, tokens);
    }
}

/// Walks every feature occurrence of a tokenized passage, calling
/// `visit(hash, occurrence)`. The single definition of what a feature is,
/// shared by fitting and explaining; scoring makes the same hashes in
/// another order (`Scan::token_hits`, and `char_grams_by_length`
/// directly), and a property test holds the word block to this.
///
/// `meant(token)` is the word a misspelt token is read as (see `typos`):
/// its hash and text, which stand for the token's own in its unigram and
/// its character n-grams (n-grams spanning it keep the written word, as
/// the scan does).
#[allow(clippy::too_many_arguments)]
pub(super) fn for_each_feature<'w>(
    settings: &FeatureSettings,
    lexicon: &Lexicon,
    lex: &[TokenLex],
    with_chars: bool,
    passage: &'w str,
    tokens: &[Token],
    grams: &mut GramScratch,
    meant: impl Fn(usize) -> Option<(u64, &'w str)>,
    mut visit: impl FnMut(u64, Occurrence),
) {
    for_each_word_feature(settings, tokens, |h, occ| match occ {
        Occurrence::Words { first, n: 1 } => visit(meant(first).map_or(h, |m| m.0), occ),
        _ => visit(h, occ),
    });
    super::context::for_each_context_feature(settings, passage, tokens, &mut visit);
    for_each_lexicon_feature(lexicon, lex, 0..lex.len(), &mut visit);
    if with_chars && settings.char_range().is_some() {
        for (i, t) in tokens.iter().enumerate() {
            if t.kind == TokenKind::Word {
                let word = meant(i).map_or(&passage[t.start as usize..t.end as usize], |m| m.1);
                for_each_char_gram(settings, word, grams, |h, index, n| {
                    visit(h, Occurrence::Chars { token: i, index, n })
                });
            }
        }
    }
}

/// The word n-grams and `<caps>` markers of [`for_each_feature`].
#[inline]
pub(super) fn for_each_word_feature(
    settings: &FeatureSettings,
    tokens: &[Token],
    mut visit: impl FnMut(u64, Occurrence),
) {
    let [lo, hi] = settings.word_ngrams;
    let (lo, hi) = (usize::from(lo), usize::from(hi));
    for first in 0..tokens.len() {
        let mut h = 0u64;
        for n in 1..=hi.min(tokens.len() - first) {
            let t = tokens[first + n - 1].hash;
            h = if n == 1 { t } else { combine(h, t) };
            if n >= lo {
                visit(h, Occurrence::Words { first, n });
            }
        }
    }
    if settings.caps_marker {
        for (i, t) in tokens.iter().enumerate() {
            if t.caps {
                visit(CAPS_HASH, Occurrence::Caps { token: i });
            }
        }
    }
}

/// The lexicon markers of [`for_each_feature`], for the tokens `tokens`
/// (tokens without a valence have none: the scorer passes only those with
/// one, see [`valenced`]).
#[inline]
pub(super) fn for_each_lexicon_feature(
    lexicon: &Lexicon,
    lex: &[TokenLex],
    tokens: impl IntoIterator<Item = usize>,
    mut visit: impl FnMut(u64, Occurrence),
) {
    if !lexicon.is_empty() {
        let m = &lexicon.markers;
        for i in tokens {
            if let Some((polarity, strong)) = Lexicon::polarity(lex, i) {
                let (polarity, strong) = (m[polarity], strong.map(|s| m[s]));
                // The compound score's term: visited so that fitting keeps
                // it and explanations find its words; its value is set
                // apart from the counted word block (see `Featurizer::transform`).
                let score = lexicon.markers[4];
                visit(
                    score.0,
                    Occurrence::Lexicon {
                        token: i,
                        marker: score.1,
                    },
                );
                visit(
                    polarity.0,
                    Occurrence::Lexicon {
                        token: i,
                        marker: polarity.1,
                    },
                );
                if let Some(strong) = strong {
                    visit(
                        strong.0,
                        Occurrence::Lexicon {
                            token: i,
                            marker: strong.1,
                        },
                    );
                }
            }
        }
    }
}

/// The lower-cased characters of `_word_` into `chars`, exactly as
/// `str::to_lowercase` lower-cases (final sigma included).
pub(super) fn padded_lower(word: &str, chars: &mut Vec<char>) {
    chars.clear();
    chars.push(BOUNDARY);
    if word.is_ascii() {
        chars.extend(word.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else if word.contains('Σ') {
        chars.extend(word.to_lowercase().chars());
    } else {
        chars.extend(word.chars().flat_map(char::to_lowercase));
    }
    chars.push(BOUNDARY);
}

/// Scratch for one word's character n-grams: its padded lower-case
/// characters, and each start's running hash.
#[derive(Debug, Default)]
pub(crate) struct GramScratch {
    pub(super) chars: Vec<char>,
    pub(super) levels: Vec<u64>,
}

/// Visits each character n-gram of one word: `visit(hash, index, n)`.
pub(super) fn for_each_char_gram(
    settings: &FeatureSettings,
    word: &str,
    scratch: &mut GramScratch,
    mut visit: impl FnMut(u64, usize, usize),
) {
    let Some(range) = settings.char_range() else {
        return;
    };
    char_grams_by_length(range, word, scratch, |n, hashes| {
        for (start, &h) in hashes.iter().enumerate() {
            visit(finish(h), start, n);
        }
    });
}

/// The character n-grams of one word, length by length: `visit(n, hashes)`
/// gets the unfinished hashes (see [`finish`]) of every n-gram of length `n`,
/// by start. Each start's running hash grows one character per length, so
/// a loop per length runs without a branch on where each n-gram ends (the
/// scorer takes them a length at a time).
#[inline(always)]
pub(super) fn char_grams_by_length(
    (lo, hi): (usize, usize),
    word: &str,
    scratch: &mut GramScratch,
    mut visit: impl FnMut(usize, &[u64]),
) {
    let GramScratch { chars, levels } = scratch;
    padded_lower(word, chars);
    levels.clear();
    levels.resize(chars.len(), CHAR_SEED);
    for n in 1..=hi.min(chars.len()) {
        for (h, &c) in levels.iter_mut().zip(&chars[n - 1..]) {
            *h = char_step(*h, c);
        }
        if n >= lo {
            visit(n, &levels[..chars.len() - n + 1]);
        }
    }
}

pub(super) fn occurrence_text(passage: &str, tokens: &[Token], occ: Occurrence) -> String {
    // A context feature's term: its prefix and the word (`NOT_good`).
    let prefixed =
        |prefix: &str, token: usize| format!("{prefix}{}", tokens[token].normalized(passage));
    match occ {
        Occurrence::Words { first, n } => {
            let mut s = String::new();
            for (k, t) in tokens[first..first + n].iter().enumerate() {
                if k > 0 {
                    s.push(' ');
                }
                s.push_str(&t.normalized(passage));
            }
            s
        }
        Occurrence::Caps { .. } => CAPS.to_string(),
        Occurrence::Lexicon { marker, .. } => marker.to_string(),
        Occurrence::Negated { token } => prefixed(super::context::NEGATED_PREFIX, token),
        Occurrence::Title { .. } => super::context::TITLE.to_string(),
        Occurrence::First { token } => prefixed(super::context::FIRST_PREFIX, token),
        Occurrence::Market { up, .. } => super::context::MARKET_TERMS[usize::from(up)].to_string(),
        Occurrence::Chars { token, index, n } => {
            let t = tokens[token];
            let mut word = Vec::new();
            padded_lower(&passage[t.start as usize..t.end as usize], &mut word);
            let gram: String = word[index..index + n].iter().collect();
            format!("{CHAR_PREFIX}{gram}")
        }
    }
}

pub(super) fn occurrence_span(tokens: &[Token], occ: Occurrence) -> (u32, u32) {
    match occ {
        Occurrence::Words { first, n } => (tokens[first].start, tokens[first + n - 1].end),
        Occurrence::Caps { token }
        | Occurrence::Lexicon { token, .. }
        | Occurrence::Negated { token }
        | Occurrence::Title { token }
        | Occurrence::First { token }
        | Occurrence::Market { token, .. }
        | Occurrence::Chars { token, .. } => (tokens[token].start, tokens[token].end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_n_grams_are_the_padded_word_s_substrings() {
        let settings = FeatureSettings {
            char_ngrams: [3, 5],
            ..FeatureSettings::default()
        };
        let mut grams = GramScratch::default();
        for word in [
            "a",
            "ab",
            "abc",
            "news",
            "SHOCKING",
            "naïve",
            "ΟΔΟΣ",
            "x1y2z3w4v5u6t7",
        ] {
            // By definition: every 3- to 5-character substring of
            // `_word_` lower-cased, with where it starts and its length.
            let padded: Vec<char> = format!("_{}_", word.to_lowercase()).chars().collect();
            let mut expected = Vec::new();
            for n in 3..=5 {
                for start in 0..padded.len().saturating_sub(n - 1) {
                    let gram: String = padded[start..start + n].iter().collect();
                    expected.push((char_gram_hash(&gram), start, n));
                }
            }
            let mut got = Vec::new();
            for_each_char_gram(&settings, word, &mut grams, |h, start, n| {
                got.push((h, start, n))
            });
            expected.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, expected, "{word}");
        }
    }
}
