//! Context features (each opt-in in [`FeatureSettings`]): what a bag of
//! n-grams cannot see on its own, as extra word-block features.
//!
//! - `negation_scope`: every word after a negator (the lexicon's: "not",
//!   "never", "n't", "didn't", …) up to the clause's end (`.`, `,`, `;`, `:`, `!`,
//!   `?`, or a contrast word such as "but") and at most
//!   [`SCOPE_WORDS`] words also emits `NOT_word`, so "not good" and
//!   "good" can weigh differently however far apart "not" and "good" are.
//! - `title_marker`: a `<title>` marker for each capitalised function word
//!   after the first ("Photo Shoot **With** Their Baby"): headline Title
//!   Case, a publisher's style, kept apart from the words themselves.
//! - `first_word`: `<first>word` for the passage's first token that is not
//!   `!`/`?` ("<first>this", "<first><num>"): how a headline opens ("This
//!   Is Why…", "17 Things…", "Watch:") says more than the same word inside
//!   it. Leading `@handles` and links are passed over: a reply's or a
//!   shared link's post opens where its words do. The feature stands
//!   outside the word block's norm, with a fixed value; a head reads it
//!   only if it asks to (`first_word` in its training config); the
//!   others' weights on it are zero.
//! - `market_words`: a `<mkt+>` marker for each word that says a price or
//!   a rating moved up ("rose", "surged", "upgraded", "bullish") and
//!   `<mkt->` for each that says it moved down ("fell", "plunged",
//!   "downgraded"); in a negation's scope the direction flips ("did not
//!   fall"). Financial news says good or bad news with these words, which
//!   other news rarely uses that way, and a model trained on one kind of
//!   financial text meets others' words for the same moves. Like the
//!   first word, the markers stand outside the word block's norm (each
//!   valued by its count's term frequency), and a head reads them only if
//!   it asks to (`market_words` in its training config).
//!
//! All are made from the tokens and the bytes between them, so fitting,
//! explaining and the scorer's fast path share one definition:
//! [`for_each_context_feature`], which the scan (`features::scan`, stage 1)
//! also calls to make their keys (the market markers' counts).

use super::define::{combine, Occurrence};
use super::lexicon::NEGATORS;
use super::FeatureSettings;
use crate::text::{hash_str, Token, TokenKind};

/// Most words a negation's scope covers.
pub(super) const SCOPE_WORDS: usize = 8;
/// What a negated word's term starts with (`NOT_good`).
pub(super) const NEGATED_PREFIX: &str = "NOT_";
const NEGATED_SEED: u64 = hash_str(NEGATED_PREFIX);
/// The title-case marker's term.
pub(super) const TITLE: &str = "<title>";
const TITLE_HASH: u64 = hash_str(TITLE);
/// What a first word's term starts with (`<first>this`).
pub(crate) const FIRST_PREFIX: &str = "<first>";
/// A first-word feature's value in a passage's vector. It stands outside
/// the word block's L2 norm, as the lexicon's compound score does, so
/// that a head that does not read it (its weights there zero) sees every
/// other value as it would without the setting; a head that reads it
/// weighs it by its own `first_word` scale.
pub(crate) const FIRST_WORD_VALUE: f32 = 1.0;
const FIRST_SEED: u64 = hash_str(FIRST_PREFIX);

/// The market markers' terms: a move down, a move up.
pub(super) const MARKET_TERMS: [&str; 2] = ["<mkt->", "<mkt+>"];
/// Their hashes, in the same order: `MARKET_HASHES[usize::from(up)]`.
pub(super) const MARKET_HASHES: [u64; 2] = [hash_str(MARKET_TERMS[0]), hash_str(MARKET_TERMS[1])];
/// Words that say a price, a rating or an index moved up (our own list),
/// a word's forms to a line.
#[rustfmt::skip]
const MARKET_UP: &[&str] = &[
    "rise", "rises", "rising", "rose", "risen",
    "climb", "climbs", "climbed", "climbing",
    "higher",
    "jump", "jumps", "jumped", "jumping",
    "rebound", "rebounds", "rebounded", "rebounding",
    "upgrade", "upgrades", "upgraded",
    "outperform", "outperforms", "outperformed", "outperforming",
    "rally", "rallies", "rallied", "rallying",
    "surge", "surges", "surged", "surging",
    "soar", "soars", "soared", "soaring",
    "bullish",
];
/// Words that say it moved down.
#[rustfmt::skip]
const MARKET_DOWN: &[&str] = &[
    "slip", "slips", "slipped", "slipping",
    "drops", "dropped", "dropping",
    "fall", "falls", "fell", "fallen",
    "decline", "declines", "declined", "declining",
    "sink", "sinks", "sank", "sinking",
    "downgrade", "downgrades", "downgraded",
    "underperform", "underperforms", "underperformed", "underperforming",
    "tumble", "tumbles", "tumbled", "tumbling",
    "slump", "slumps", "slumped", "slumping",
    "bearish",
    "selloff",
    "plunge", "plunges", "plunged", "plunging",
];

/// Words that end a negation's scope (and are not negated themselves).
const CONTRAST: &[&str] = &[
    "but", "however", "although", "though", "yet", "whereas", "while", "except",
];
/// Function words whose capitalised form mid-passage marks Title Case.
const FUNCTION_WORDS: &[&str] = &[
    "of", "to", "in", "and", "the", "a", "an", "for", "on", "with", "at", "by", "from", "is",
    "are", "as",
];

/// The hashes of `words` (lower-case tokens) at compile time.
const fn hashes<const N: usize>(words: &[&str]) -> [u64; N] {
    let mut out = [0u64; N];
    let mut k = 0;
    while k < N {
        out[k] = hash_str(words[k]);
        k += 1;
    }
    out
}

/// The lexicon's negators ("n't" among them, as the Penn Treebank splits
/// "does n't").
const NEGATOR_HASHES: [u64; NEGATORS.len()] = hashes(NEGATORS);
const CONTRAST_HASHES: [u64; CONTRAST.len()] = hashes(CONTRAST);
const FUNCTION_HASHES: [u64; FUNCTION_WORDS.len()] = hashes(FUNCTION_WORDS);
const MARKET_UP_HASHES: [u64; MARKET_UP.len()] = hashes(MARKET_UP);
const MARKET_DOWN_HASHES: [u64; MARKET_DOWN.len()] = hashes(MARKET_DOWN);

/// What a word may be, by the top 12 bits of its hash: one byte per
/// value, with a bit for each list that has a word there. Some 70
/// negators would fill a 64-bit filter, and every token would then be
/// compared with each of them; in 4096 entries, nearly every token is
/// turned away from every list by one load (the table, 4 KB, stays in the
/// L1 cache).
const NEGATOR: u8 = 1;
const CONTRAST_WORD: u8 = 2;
const FUNCTION: u8 = 4;
const MARKET: u8 = 8;
const WORD_KINDS: [u8; 4096] = {
    let mut t = [0u8; 4096];
    let lists: [(&[u64], u8); 5] = [
        (&NEGATOR_HASHES, NEGATOR),
        (&CONTRAST_HASHES, CONTRAST_WORD),
        (&FUNCTION_HASHES, FUNCTION),
        (&MARKET_UP_HASHES, MARKET),
        (&MARKET_DOWN_HASHES, MARKET),
    ];
    let mut l = 0;
    while l < lists.len() {
        let (hashes, bit) = lists[l];
        let mut k = 0;
        while k < hashes.len() {
            t[(hashes[k] >> 52) as usize] |= bit;
            k += 1;
        }
        l += 1;
    }
    t
};

/// The lists a word token may be in (see [`WORD_KINDS`]); none for other
/// tokens.
#[inline(always)]
fn word_kinds(t: &Token) -> u8 {
    if t.kind == TokenKind::Word {
        WORD_KINDS[(t.hash >> 52) as usize]
    } else {
        0
    }
}

/// Whether `h` is in `set`, given that the word's [`word_kinds`] have `bit`.
#[inline(always)]
fn is_in(kinds: u8, bit: u8, h: u64, set: &[u64]) -> bool {
    kinds & bit != 0 && set.contains(&h)
}

/// Which way a market word says something moved (`true`: up), or `None`
/// for any other word.
#[inline(always)]
fn market_direction(kinds: u8, h: u64) -> Option<bool> {
    if is_in(kinds, MARKET, h, &MARKET_UP_HASHES) {
        Some(true)
    } else if is_in(kinds, MARKET, h, &MARKET_DOWN_HASHES) {
        Some(false)
    } else {
        None
    }
}

/// Whether a clause ends between two tokens: `.`, `,`, `;` or `:` in the
/// bytes between them.
#[inline]
fn clause_break(passage: &[u8], from: u32, to: u32) -> bool {
    passage
        .get(from as usize..to as usize)
        .is_some_and(|gap| gap.iter().any(|b| matches!(b, b'.' | b',' | b';' | b':')))
}

/// Whether a sentence (or a quotation) may start between two tokens.
#[inline]
fn sentence_break(passage: &[u8], from: u32, to: u32) -> bool {
    passage.get(from as usize..to as usize).is_some_and(|gap| {
        gap.iter().any(|b| {
            matches!(
                b,
                b'.' | b'!' | b'?' | b':' | b';' | b'"' | b'(' | b'[' | 0xe2
            )
        })
    })
}

/// The term of a negated word's feature: [`NEGATED_PREFIX`] + the word.
#[inline]
pub(super) fn negated_hash(token: u64) -> u64 {
    combine(NEGATED_SEED, token)
}

/// The term of a first word's feature: [`FIRST_PREFIX`] + the word.
#[inline]
pub(super) fn first_hash(token: u64) -> u64 {
    combine(FIRST_SEED, token)
}

/// Whether a whitespace-separated chunk is an `@handle` or a link
/// (`http://`, `https://`, `www.`).
fn is_handle_or_link(chunk: &str) -> bool {
    let starts = |prefix: &str| {
        chunk
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    chunk.starts_with('@') || starts("http://") || starts("https://") || starts("www.")
}

/// The last whitespace-separated chunk of `text` (from the last Unicode
/// whitespace on; all of it when there is none).
fn last_chunk(text: &str) -> &str {
    text.rsplit(char::is_whitespace).next().unwrap_or(text)
}

/// Whether the byte offset `at` of `passage` lies in an `@handle` or a
/// link: names and addresses, not words (typo aliases leave them be).
pub(super) fn in_handle_or_link(passage: &str, at: u32) -> bool {
    let before = passage.get(..at as usize).unwrap_or_default();
    let from = before.len() - last_chunk(before).len();
    is_handle_or_link(passage.get(from..).unwrap_or_default())
}

/// Whether the word at byte offset `at` opens a sentence of `passage`:
/// nothing but spaces, opening quotes and brackets between it and the
/// passage's start, the end of a sentence (`.`, `!`, `?`, `…`, `:`, `;`)
/// or an `@handle` or link.
pub(super) fn opens_sentence(passage: &str, at: u32) -> bool {
    let before = passage.get(..at as usize).unwrap_or_default();
    let before = before.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '(' | '[' | '“' | '‘' | '«')
    });
    match before.chars().next_back() {
        None => true,
        Some('.' | '!' | '?' | '…' | ':' | ';') => true,
        Some(_) => is_handle_or_link(last_chunk(before)),
    }
}

/// Where a passage's words open: the byte offset of its first
/// whitespace-separated chunk (Unicode whitespace, as the tokenizer
/// splits) that is not an `@handle` or a link (`http://`, `https://`,
/// `www.`); the passage's length when there is none.
fn opening(passage: &str) -> u32 {
    let mut rest = passage;
    loop {
        let chunk = rest.trim_start();
        if !is_handle_or_link(chunk) {
            return (passage.len() - chunk.len()) as u32;
        }
        let end = chunk.find(char::is_whitespace).unwrap_or(chunk.len());
        rest = chunk.get(end..).unwrap_or_default();
    }
}

/// Visits every context feature of a tokenized passage, in token order:
/// `visit(hash, occurrence)`. Nothing when every setting is off.
#[inline]
pub(super) fn for_each_context_feature(
    settings: &FeatureSettings,
    passage: &str,
    tokens: &[Token],
    mut visit: impl FnMut(u64, Occurrence),
) {
    if !(settings.negation_scope
        || settings.title_marker
        || settings.first_word
        || settings.market_words)
    {
        return;
    }
    // The first token that is not `!`/`?`, from where the words open.
    let mut first = settings.first_word;
    let bytes = passage.as_bytes();
    let open = if first { opening(passage) } else { 0 };
    // Words left in the current negation's scope (0: none open).
    let mut scope = 0usize;
    let mut previous_end = 0u32;
    for (i, t) in tokens.iter().enumerate() {
        let kinds = word_kinds(t);
        // Most tokens are in no list but the function words', with no
        // negation open and the first word found: nothing below applies
        // to them (every feature needs a list's bit or an open scope, and
        // the title marker a function word with a capital). Turned away
        // here at once, they cost two loads and a test instead of the
        // whole walk; and the test is computed whole, without a branch
        // on whether the word is a function word (a third of words are,
        // at random), so that it is nearly always taken.
        let capital = bytes
            .get(t.start as usize)
            .is_some_and(u8::is_ascii_uppercase);
        let title_case = (kinds & FUNCTION != 0) & capital;
        if (kinds & !FUNCTION == 0) & (scope == 0) & !first & !title_case {
            previous_end = t.end;
            continue;
        }
        if first && t.kind != TokenKind::Punct && t.start >= open {
            visit(first_hash(t.hash), Occurrence::First { token: i });
            first = false;
        }
        let mut negated = false;
        if settings.negation_scope {
            if scope > 0
                && (t.kind == TokenKind::Punct || clause_break(bytes, previous_end, t.start))
            {
                scope = 0;
            }
            if t.kind == TokenKind::Word {
                if is_in(kinds, NEGATOR, t.hash, &NEGATOR_HASHES) {
                    scope = SCOPE_WORDS;
                } else if scope > 0 {
                    // A contrast word closes the scope, and is not negated.
                    if is_in(kinds, CONTRAST_WORD, t.hash, &CONTRAST_HASHES) {
                        scope = 0;
                    } else {
                        visit(negated_hash(t.hash), Occurrence::Negated { token: i });
                        negated = true;
                        scope -= 1;
                    }
                }
            }
        }
        if settings.market_words {
            if let Some(up) = market_direction(kinds, t.hash) {
                // "did not fall": a move down denied reads as one up.
                let up = up != negated;
                visit(
                    MARKET_HASHES[usize::from(up)],
                    Occurrence::Market { token: i, up },
                );
            }
        }
        // The cheap tests first: most tokens are not capitalised.
        if settings.title_marker
            && t.kind == TokenKind::Word
            && capital
            && !t.caps
            && i > 0
            && is_in(kinds, FUNCTION, t.hash, &FUNCTION_HASHES)
            && tokens[i - 1].kind != TokenKind::Punct
            && !sentence_break(bytes, previous_end, t.start)
        {
            visit(TITLE_HASH, Occurrence::Title { token: i });
        }
        previous_end = t.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    #[test]
    fn sentences_open_at_the_start_after_a_stop_or_a_handle() {
        let passage = "Great flight. Terirble food! \"Ruid\" staff, said Martins; @united Slow";
        let mut tokens = Vec::new();
        tokenize(passage, &mut tokens);
        let opening: Vec<String> = tokens
            .iter()
            .filter(|t| opens_sentence(passage, t.start))
            .map(|t| t.normalized(passage))
            .collect();
        assert_eq!(opening, ["great", "terirble", "ruid", "united", "slow"]);
        assert!(opens_sentence("", 0));
    }

    #[test]
    fn handles_and_links_are_told_from_words_anywhere_in_a_passage() {
        let passage = "Great flight @jmorgan see https://t.co/Xy12 and\u{a0}www.Example.com, @ok";
        let mut tokens = Vec::new();
        tokenize(passage, &mut tokens);
        let inside: Vec<(String, bool)> = tokens
            .iter()
            .map(|t| (t.normalized(passage), in_handle_or_link(passage, t.start)))
            .collect();
        let named: Vec<&str> = inside
            .iter()
            .filter(|w| w.1)
            .map(|w| w.0.as_str())
            .collect();
        let words: Vec<&str> = inside
            .iter()
            .filter(|w| !w.1)
            .map(|w| w.0.as_str())
            .collect();
        assert_eq!(words, ["great", "flight", "see", "and"]);
        assert_eq!(
            named,
            ["jmorgan", "https", "t.co", "xy12", "www.example.com", "ok"]
        );
    }

    fn features(settings: &FeatureSettings, passage: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        tokenize(passage, &mut tokens);
        let mut out = Vec::new();
        for_each_context_feature(settings, passage, &tokens, |h, occ| match occ {
            Occurrence::Negated { token } => {
                let t = tokens[token];
                let word = t.normalized(passage);
                assert_eq!(h, negated_hash(hash_str(&word)));
                out.push(format!("{NEGATED_PREFIX}{word}"));
            }
            Occurrence::Title { .. } => {
                assert_eq!(h, TITLE_HASH);
                out.push(TITLE.to_string());
            }
            Occurrence::First { token } => {
                let word = tokens[token].normalized(passage);
                assert_eq!(h, first_hash(hash_str(&word)));
                out.push(format!("{FIRST_PREFIX}{word}"));
            }
            Occurrence::Market { token, up } => {
                assert_eq!(h, MARKET_HASHES[usize::from(up)]);
                assert!(market_direction(word_kinds(&tokens[token]), tokens[token].hash).is_some());
                out.push(MARKET_TERMS[usize::from(up)].to_string());
            }
            _ => unreachable!(),
        });
        out
    }

    fn on() -> FeatureSettings {
        FeatureSettings {
            negation_scope: true,
            title_marker: true,
            ..FeatureSettings::default()
        }
    }

    #[test]
    fn negation_scope_runs_to_the_clause_end() {
        let s = on();
        assert_eq!(
            features(&s, "not bad at all"),
            ["NOT_bad", "NOT_at", "NOT_all"]
        );
        assert_eq!(
            features(&s, "it does n't work , but the cast is good"),
            ["NOT_work"]
        );
        assert_eq!(
            features(&s, "I didn't like it. The ending was great"),
            ["NOT_like", "NOT_it"]
        );
        assert_eq!(features(&s, "never again!! fine"), ["NOT_again"]);
        assert_eq!(
            features(&s, "not one two three four five six seven eight nine"),
            [
                "NOT_one",
                "NOT_two",
                "NOT_three",
                "NOT_four",
                "NOT_five",
                "NOT_six",
                "NOT_seven",
                "NOT_eight"
            ]
        );
        // a second negator reopens the scope
        assert_eq!(
            features(&s, "no doubt, not sure"),
            ["NOT_doubt", "NOT_sure"]
        );
        assert!(features(&s, "a good film").is_empty());
    }

    #[test]
    fn title_case_function_words_are_marked() {
        let s = on();
        assert_eq!(
            features(&s, "A Couple Did A Stunning Photo Shoot With Their Baby"),
            [TITLE, TITLE]
        );
        // first word, ALL CAPS and lower case do not count
        assert!(features(&s, "The markets rose in the morning").is_empty());
        assert!(features(&s, "WAR IN THE EAST").is_empty());
        assert!(features(&s, "It fell. The rest: A loss").is_empty());
    }

    #[test]
    fn the_first_word_is_marked_once() {
        let s = FeatureSettings {
            first_word: true,
            ..FeatureSettings::default()
        };
        assert_eq!(features(&s, "Why This Matters"), ["<first>why"]);
        // numbers read as <num>; a leading "!!" is skipped
        assert_eq!(features(&s, "17 Things Only You Know"), ["<first><num>"]);
        assert_eq!(features(&s, "!! Watch: it fell"), ["<first>watch"]);
        assert!(features(&s, "").is_empty());
        assert!(features(&s, "?!").is_empty());
        // leading handles and links are passed over, later ones are not
        assert_eq!(features(&s, "@user_1 @b This Is Why"), ["<first>this"]);
        assert_eq!(
            features(&s, "  https://t.co/x1Y www.a.com HTTP://b Watch @c"),
            ["<first>watch"]
        );
        assert_eq!(features(&s, "Why @c matters"), ["<first>why"]);
        assert!(features(&s, "@only https://t.co/x").is_empty());
        // Unicode whitespace ends a handle, as it ends a token
        assert_eq!(features(&s, "@user\u{a0}Hello world"), ["<first>hello"]);
        assert_eq!(features(&s, "@user\u{3000}Ünë news"), ["<first>ünë"]);
        // beside the other context features, in token order
        let all = FeatureSettings {
            first_word: true,
            ..on()
        };
        assert_eq!(
            features(&all, "Not bad At all"),
            ["<first>not", "NOT_bad", "NOT_at", "<title>", "NOT_all"]
        );
    }

    #[test]
    fn market_words_are_marked_by_direction_and_a_denied_move_flips() {
        let s = FeatureSettings {
            market_words: true,
            ..FeatureSettings::default()
        };
        assert_eq!(
            features(&s, "Shares ROSE 3%, then fell and Plunged"),
            ["<mkt+>", "<mkt->", "<mkt->"]
        );
        assert_eq!(features(&s, "Analysts upgraded the bank"), ["<mkt+>"]);
        assert!(features(&s, "The bank reported results").is_empty());
        // Without negation scopes a move is read as written; with them, a
        // move in a negation's scope reads the other way, to the clause end.
        assert_eq!(features(&s, "Shares did not fall"), ["<mkt->"]);
        let both = FeatureSettings {
            market_words: true,
            negation_scope: true,
            ..FeatureSettings::default()
        };
        assert_eq!(
            features(&both, "Shares did not fall, they rose"),
            ["NOT_fall", "<mkt+>", "<mkt+>"]
        );
        assert_eq!(features(&both, "It never surged"), ["NOT_surged", "<mkt->"]);
    }

    #[test]
    fn off_by_default() {
        assert!(features(&FeatureSettings::default(), "not The bad").is_empty());
    }
}
