//! The sentiment lexicon: its word lists (negators, boosters, dampeners),
//! what it says of each token, its markers and its VADER-style compound
//! score.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::index::IdentityHasher;
use crate::text::{hash_str, Token, TokenKind};

/// The tokens with a valence, in order: what the lexicon's passes walk
/// (most tokens have none, and skipping them one by one mispredicts).
pub(super) fn valenced(lex: &[TokenLex], out: &mut Vec<u32>) {
    out.clear();
    out.resize(lex.len(), 0);
    let mut n = 0;
    for (i, l) in lex.iter().enumerate() {
        out[n] = i as u32;
        n += usize::from(l.valence != 0.0);
    }
    out.truncate(n);
}

/// Words that flip the polarity of a lexicon word up to three tokens later.
pub(super) const NEGATORS: &[&str] = &[
    "not",
    "no",
    "never",
    "nor",
    "neither",
    "without",
    "nothing",
    "nobody",
    "none",
    "hardly",
    "barely",
    "cannot",
    "don't",
    "doesn't",
    "didn't",
    "isn't",
    "aren't",
    "wasn't",
    "weren't",
    "won't",
    "wouldn't",
    "can't",
    "couldn't",
    "shouldn't",
    "hasn't",
    "haven't",
    "hadn't",
    "ain't",
    "don’t",
    "doesn’t",
    "didn’t",
    "isn’t",
    "aren’t",
    "wasn’t",
    "weren’t",
    "won’t",
    "wouldn’t",
    "can’t",
    "couldn’t",
    "shouldn’t",
    "hasn’t",
    "haven’t",
    "hadn’t",
    "ain’t",
    // The Penn Treebank's split ("does n't", as SST writes it).
    "n't",
    "n’t",
];
/// VADER's intensifiers: each adds 0.293 to a following lexicon word's
/// magnitude (DAMPENERS take it away), less by 5% per word of distance.
pub(super) const BOOSTERS: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerable",
    "considerably",
    "decidedly",
    "deeply",
    "enormous",
    "enormously",
    "entirely",
    "especially",
    "exceptional",
    "exceptionally",
    "extreme",
    "extremely",
    "fabulously",
    "fully",
    "greatly",
    "highly",
    "hugely",
    "incredible",
    "incredibly",
    "intensely",
    "major",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "total",
    "totally",
    "tremendous",
    "tremendously",
    "unbelievably",
    "unusually",
    "utter",
    "utterly",
    "very",
];
pub(super) const DAMPENERS: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "kinda",
    "less",
    "little",
    "marginal",
    "marginally",
    "occasional",
    "occasionally",
    "partly",
    "scarce",
    "scarcely",
    "slight",
    "slightly",
    "somewhat",
    "sorta",
];
/// VADER's intensifier increment (`B_INCR` in vaderSentiment).
pub(super) const BOOST: f32 = 0.293;
/// Valence at or beyond which a lexicon word also gets a strong marker.
pub(super) const STRONG: f32 = 2.0;
pub(super) type Marker = (u64, &'static str);

/// A sentiment lexicon as features: each word in it emits `<lex+>` or
/// `<lex->` (flipped after a negator within three tokens), and `<lex++>` or
/// `<lex-->` too when its valence is at least 2 in magnitude. The markers
/// are ordinary word-block features, so their weights are learned; they
/// carry the lexicon's knowledge to words the training data never showed.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    /// Every word the lexicon knows something about, by token hash.
    pub(super) words: HashMap<u64, TokenLex, BuildHasherDefault<IdentityHasher>>,
    pub(super) markers: [Marker; 5],
}

/// What the lexicon says of one token: its valence (0 when none) and its
/// role (negator, booster, dampener, "but").
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TokenLex {
    pub(super) valence: f32,
    pub(super) role: u8,
}

pub(super) const NEGATOR: u8 = 1;
pub(super) const BOOSTER: u8 = 2;
pub(super) const DAMPENER: u8 = 4;
pub(super) const BUT: u8 = 8;

/// The dense lexicon feature: a VADER-style compound score of the passage.
pub const LEXICON_SCORE: &str = "<lexscore>";
// The constants below are VADER's: Hutto & Gilbert, "VADER: A Parsimonious
// Rule-based Model for Sentiment Analysis of Social Media Text" (ICWSM
// 2014), as its reference code (vaderSentiment) sets them.
/// VADER's damping of a negated word's valence (`N_SCALAR`).
pub(super) const NEGATION_SCALE: f32 = -0.74;
/// VADER's boost for an ALL-CAPS lexicon word (`C_INCR`).
pub(super) const CAPS_BOOST: f32 = 0.733;
/// How many tokens before a lexicon word a negator, booster or dampener
/// reaches (VADER looks three words back).
pub(super) const WINDOW: usize = 3;
/// How much a booster's or dampener's effect shrinks per word of distance
/// (VADER scales it by 1, 0.95 and 0.9 one, two and three words back).
pub(super) const BOOST_DECAY: f32 = 0.05;
/// A lexicon word's weight before a "but" (VADER's `_but_check`)...
pub(super) const BEFORE_BUT: f32 = 0.5;
/// ...and after it.
pub(super) const AFTER_BUT: f32 = 1.5;
/// The squashing constant of the compound score s / √(s² + α) (VADER's
/// `normalize`, `alpha = 15`).
pub(super) const ALPHA: f32 = 15.0;

impl Lexicon {
    /// From (word, valence) entries; words are matched lower-cased.
    pub fn new(entries: &[(String, f32)]) -> Self {
        let marker = |m: &'static str| (hash_str(m), m);
        let mut words: HashMap<u64, TokenLex, BuildHasherDefault<IdentityHasher>> =
            HashMap::default();
        if !entries.is_empty() {
            for (w, v) in entries {
                words
                    .entry(hash_str(&w.to_lowercase()))
                    .or_default()
                    .valence = *v;
            }
            for (list, role) in [
                (NEGATORS, NEGATOR),
                (BOOSTERS, BOOSTER),
                (DAMPENERS, DAMPENER),
                (&["but"][..], BUT),
            ] {
                for w in list {
                    words.entry(hash_str(w)).or_default().role |= role;
                }
            }
        }
        Self {
            words,
            markers: [
                marker("<lex+>"),
                marker("<lex->"),
                marker("<lex++>"),
                marker("<lex-->"),
                marker(LEXICON_SCORE),
            ],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// One lookup per word token: what the lexicon says of each token.
    /// Fitting uses it; a fitted featurizer reads the same answers off its
    /// index (see `HashIndex`), and a proptest holds the two together.
    pub(crate) fn annotate(&self, tokens: &[Token], out: &mut Vec<TokenLex>) {
        out.clear();
        if self.is_empty() {
            return;
        }
        out.extend(tokens.iter().map(|t| match t.kind {
            TokenKind::Word => self.words.get(&t.hash).copied().unwrap_or_default(),
            _ => TokenLex::default(),
        }));
    }

    /// The compound score of a tokenized passage in (-1, 1): the sum `s` of
    /// its lexicon words' valences (× −0.74 after a negator, ± 0.733 when
    /// written in capitals, ± 0.293 after an intensifier or dampener, × 0.5
    /// before and × 1.5 after a "but"), squashed as s / √(s² + 15), as
    /// VADER does. `lex` is [`Lexicon::annotate`]'s output for `tokens`.
    pub(crate) fn compound(tokens: &[Token], lex: &[TokenLex], valenced: &[u32]) -> f32 {
        // No word with a valence: the score is 0 / √15 = 0, without
        // walking every token for a "but".
        if valenced.is_empty() {
            return 0.0;
        }
        let mut sum = 0.0f32;
        Self::valence_terms(tokens, lex, valenced, |_, v| sum += v);
        sum / (sum * sum + ALPHA).sqrt()
    }

    /// Each lexicon word's term in [`Lexicon::compound`]'s sum, in token
    /// order: `visit(token, adjusted valence)`. The compound score is
    /// a function of their sum alone, so explanations attribute it to its
    /// words in proportion to these terms.
    #[inline(always)]
    pub(crate) fn valence_terms(
        tokens: &[Token],
        lex: &[TokenLex],
        valenced: &[u32],
        mut visit: impl FnMut(usize, f32),
    ) {
        let but = lex.iter().position(|l| l.role & BUT != 0);
        for i in valenced.iter().map(|&i| i as usize) {
            let (Some(t), Some(l)) = (tokens.get(i), lex.get(i)) else {
                continue;
            };
            let mut v = l.valence;
            if v == 0.0 {
                continue;
            }
            if t.caps {
                v += CAPS_BOOST * v.signum();
            }
            for (distance, p) in lex[i.saturating_sub(WINDOW)..i].iter().rev().enumerate() {
                let decay = 1.0 - BOOST_DECAY * distance as f32;
                if p.role & BOOSTER != 0 {
                    v += BOOST * decay * v.signum();
                } else if p.role & DAMPENER != 0 {
                    v -= BOOST * decay * v.signum();
                }
            }
            if negated(lex, i) {
                v *= NEGATION_SCALE;
            }
            match but {
                Some(b) if i < b => v *= BEFORE_BUT,
                Some(b) if i > b => v *= AFTER_BUT,
                _ => {}
            }
            visit(i, v);
        }
    }

    /// The markers of token `i`, as numbers into `markers`: polarity, and
    /// strength when strong.
    #[inline]
    pub(super) fn polarity(lex: &[TokenLex], i: usize) -> Option<(usize, Option<usize>)> {
        let v = lex.get(i)?.valence;
        if v == 0.0 {
            return None;
        }
        let negative = usize::from((v > 0.0) == negated(lex, i));
        let strong = v.abs() >= STRONG;
        Some((negative, strong.then_some(2 + negative)))
    }
}

/// Whether a negator stands within the three tokens before token `i`.
pub(super) fn negated(lex: &[TokenLex], i: usize) -> bool {
    lex[i.saturating_sub(WINDOW)..i]
        .iter()
        .any(|p| p.role & NEGATOR != 0)
}
