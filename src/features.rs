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
//!   n-gram, and keeps the block linear in per-word quantities.
//!
//! So a model can precompute each vocabulary word's character contribution
//! (its n-grams' weights) and squared norm, and score without touching a
//! single character n-gram (see `model`). Feature
//! hashes come from the token hashes: no strings on the scoring path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use crate::text::{finish, hash_str, tokenize, Token, TokenKind};

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

/// Where a feature occurs: enough to rebuild its text and its span.
#[derive(Debug, Clone, Copy)]
enum Occurrence {
    /// Tokens `first .. first + n`.
    Words { first: usize, n: usize },
    /// The `<caps>` marker on token `token`.
    Caps { token: usize },
    /// A lexicon marker (`<lex+>`, `<lex-->`, …) on token `token`.
    Lexicon { token: usize, marker: &'static str },
    /// Character n-gram number `index` (of length `n`) of token `token`,
    /// counted over the word padded with one boundary mark on each side.
    Chars {
        token: usize,
        index: usize,
        n: usize,
    },
}

const CAPS: &str = "<caps>";
const CAPS_HASH: u64 = hash_str(CAPS);
/// Marks a word boundary in character n-gram terms (`_sho`, `ing_`).
const BOUNDARY: char = '_';
const CHAR_SEED: u64 = 0x6368_6172_5f6e_6772; // "char_ngr"
/// How a character n-gram's term starts (`ch:_sho`).
const CHAR_PREFIX: &str = "ch:";

/// The hash [`for_each_char_gram`] gives the character n-gram `gram`.
fn char_gram_hash(gram: &str) -> u64 {
    finish(gram.chars().fold(CHAR_SEED, char_step))
}

/// One character into a character n-gram's running hash: a multiply and
/// a rotation, no finaliser. The n-grams from one start share the steps
/// and each is finished on its own ([`char_gram_hash`]), so the chain of
/// dependent multiplications per character is one long, not three.
#[inline(always)]
fn char_step(h: u64, c: char) -> u64 {
    (h ^ u64::from(u32::from(c)))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(26)
}

#[inline]
fn combine(a: u64, b: u64) -> u64 {
    finish(a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b)
}

/// Scratch buffers reused across passages so that scoring allocates nothing
/// once they have grown.
#[derive(Debug, Default)]
pub struct Workspace {
    pub tokens: Vec<Token>,
    grams: GramScratch,
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
    keys: Vec<(u64, u32, u32)>,
    /// How many of `keys` come first as the tokens' own.
    token_keys: usize,
    /// Words the lexicon knows: (hash, token), their annotations fetched.
    known: Vec<(u64, u32)>,
    /// Character n-gram hashes of out-of-vocabulary words, each with its
    /// lookup's ticket and its token (see `oov_char_hits`).
    gram_keys: Vec<(u64, u32, u32)>,
    /// (token, feature) for every known character n-gram occurrence of
    /// out-of-vocabulary words, sorted.
    /// Each as `token << 32 | feature`, so that sorting compares one word.
    pub(crate) gram_hits: Vec<u64>,
    /// One word's character-block vector (see `word_chars`).
    pub(crate) word_vec: Vec<(u32, f32)>,
    char_acc: Vec<(u32, f32)>,
    /// The last passage's features: (feature index, value), sorted by index.
    pub vector: Vec<(u32, f32)>,
    /// Raw head scores, reused by the model.
    pub(crate) scores: Vec<f32>,
    /// Every head's probabilities, after `Model::classify`.
    pub probabilities: Vec<f64>,
    /// Every head's decided label, after `Model::classify`.
    pub labels: Vec<usize>,
}

/// Walks every feature occurrence of a tokenized passage, calling
/// `visit(hash, occurrence)`. The single definition of what a feature is,
/// shared by fitting and explaining; scoring makes the same hashes in
/// another order (`Featurizer::word_hits`, and `char_grams_by_length`
/// directly), and a property test holds the word block to this.
#[allow(clippy::too_many_arguments)]
fn for_each_feature(
    settings: &FeatureSettings,
    lexicon: &Lexicon,
    lex: &[TokenLex],
    with_chars: bool,
    passage: &str,
    tokens: &[Token],
    grams: &mut GramScratch,
    mut visit: impl FnMut(u64, Occurrence),
) {
    for_each_word_feature(settings, tokens, &mut visit);
    for_each_lexicon_feature(lexicon, lex, 0..lex.len(), &mut visit);
    if with_chars && settings.char_range().is_some() {
        for (i, t) in tokens.iter().enumerate() {
            if t.kind == TokenKind::Word {
                for_each_char_gram(
                    settings,
                    &passage[t.start as usize..t.end as usize],
                    grams,
                    |h, index, n| visit(h, Occurrence::Chars { token: i, index, n }),
                );
            }
        }
    }
}

/// The word n-grams and `<caps>` markers of [`for_each_feature`].
#[inline]
fn for_each_word_feature(
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

/// The tokens with a valence, in order: what the lexicon's passes walk
/// (most tokens have none, and skipping them one by one mispredicts).
fn valenced(lex: &[TokenLex], out: &mut Vec<u32>) {
    out.clear();
    out.resize(lex.len(), 0);
    let mut n = 0;
    for (i, l) in lex.iter().enumerate() {
        out[n] = i as u32;
        n += usize::from(l.valence != 0.0);
    }
    out.truncate(n);
}

/// The lexicon markers of [`for_each_feature`], for the tokens `tokens`
/// (tokens without a valence have none: the scorer passes only those with
/// one, see [`valenced`]).
#[inline]
fn for_each_lexicon_feature(
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
fn padded_lower(word: &str, chars: &mut Vec<char>) {
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
    chars: Vec<char>,
    levels: Vec<u64>,
}

/// Visits each character n-gram of one word: `visit(hash, index, n)`.
fn for_each_char_gram(
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
fn char_grams_by_length(
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

fn occurrence_text(passage: &str, tokens: &[Token], occ: Occurrence) -> String {
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
        Occurrence::Chars { token, index, n } => {
            let t = tokens[token];
            let mut word = Vec::new();
            padded_lower(&passage[t.start as usize..t.end as usize], &mut word);
            let gram: String = word[index..index + n].iter().collect();
            format!("{CHAR_PREFIX}{gram}")
        }
    }
}

fn occurrence_span(tokens: &[Token], occ: Occurrence) -> (u32, u32) {
    match occ {
        Occurrence::Words { first, n } => (tokens[first].start, tokens[first + n - 1].end),
        Occurrence::Caps { token }
        | Occurrence::Lexicon { token, .. }
        | Occurrence::Chars { token, .. } => (tokens[token].start, tokens[token].end),
    }
}

/// The term frequency of a feature seen `count` times: 1 + ln(count) with
/// sublinear tf, else `count` (either way exactly 1 for one occurrence).
fn tf_of(settings: &FeatureSettings, count: usize) -> f32 {
    if settings.sublinear_tf {
        1.0 + (count as f32).ln()
    } else {
        count as f32
    }
}

/// Pass-through hasher: feature hashes are already well mixed.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Feature hash → feature index: open addressing with linear probing over
/// (hash, index) slots, at most a third full. Hashes are already well
/// mixed, so a slot is found from the hash's bits directly, and the key
/// sits beside the value: a lookup usually costs one cache line, hit or
/// miss. A slot also carries what the lexicon says of the word with that
/// hash (see [`Featurizer::lex_of`]), so a word's unigram lookup answers
/// for the lexicon too; lexicon words that are not features get slots of
/// their own, whose value is [`NO_FEATURE`].
#[derive(Debug, Clone, Default)]
struct HashIndex {
    slots: Vec<Slot>,
    mask: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    value: u32,
    /// Packed [`TokenLex`]: role << 24 | the valence's number in
    /// `Featurizer::valences` (0: none).
    lex: u32,
}

const EMPTY: u32 = u32::MAX;
/// The value of a slot that holds only lexicon knowledge.
pub(crate) const NO_FEATURE: u32 = u32::MAX - 1;

/// Where feature lookups go: the featurizer's own [`HashIndex`] (features
/// numbered as in the vocabulary), or a scorer's table (numbered as it
/// lays them out). A lookup is started (its memory fetched) as soon as
/// the hash is known and finished later, when the fetch has had time.
pub(crate) trait Lookup {
    /// Starts looking up `h`; the ticket goes to [`Lookup::find`].
    fn start(&self, h: u64) -> u32;
    /// The feature of `h` (or [`NO_FEATURE`] for a word only the lexicon
    /// knows) and whether the lexicon knows it; `None` if `h` is unknown.
    fn find(&self, h: u64, ticket: u32) -> Option<(u32, bool)>;
}

impl Lookup for HashIndex {
    #[inline(always)]
    fn start(&self, h: u64) -> u32 {
        self.prefetch(h);
        0
    }
    #[inline(always)]
    fn find(&self, h: u64, _: u32) -> Option<(u32, bool)> {
        self.slot(h).map(|s| (s.value, s.lex != 0))
    }
}

impl HashIndex {
    /// Room for `n` keys at a load between 1/6 and 1/3: most probes end
    /// at their first slot, so the probe loop's branch predicts well.
    fn with_capacity(n: usize) -> Self {
        let size = (3 * n.max(1)).next_power_of_two();
        Self {
            slots: vec![
                Slot {
                    hash: 0,
                    value: EMPTY,
                    lex: 0,
                };
                size
            ],
            mask: size - 1,
        }
    }

    /// The slot of `h`, inserted (as `NO_FEATURE`, no lexicon) if new.
    fn entry(&mut self, h: u64) -> &mut Slot {
        let mut i = (h as usize) & self.mask;
        while self.slots[i].value != EMPTY && self.slots[i].hash != h {
            i = (i + 1) & self.mask;
        }
        let slot = &mut self.slots[i];
        if slot.value == EMPTY {
            *slot = Slot {
                hash: h,
                value: NO_FEATURE,
                lex: 0,
            };
        }
        slot
    }

    /// Inserts, returning the index already stored under `h`, if any.
    fn insert(&mut self, h: u64, value: u32) -> Option<u32> {
        let slot = self.entry(h);
        if slot.value != NO_FEATURE {
            return Some(slot.value);
        }
        slot.value = value;
        None
    }

    /// Asks the CPU to fetch the slot where a lookup of `h` starts.
    #[inline]
    fn prefetch(&self, h: u64) {
        if let Some(slot) = self.slots.get((h as usize) & self.mask) {
            prefetch(slot);
        }
    }

    /// The slot of `h`, feature or lexicon word.
    #[inline]
    fn slot(&self, h: u64) -> Option<&Slot> {
        let mut i = (h as usize) & self.mask;
        loop {
            let slot = self.slots.get(i)?;
            if slot.value == EMPTY {
                return None;
            }
            if slot.hash == h {
                return Some(slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// (hash, value, whether the lexicon knows it) of every key, in slot
    /// order.
    fn keys(&self) -> impl Iterator<Item = (u64, u32, bool)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.value != EMPTY)
            .map(|s| (s.hash, s.value, s.lex != 0))
    }

    /// The feature index of `h`.
    #[inline]
    fn get(&self, h: u64) -> Option<u32> {
        self.slot(h).map(|s| s.value).filter(|&v| v != NO_FEATURE)
    }
}

/// A hint that `value`'s cache line will be read soon. It never faults and
/// changes no result; on other targets it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; it only
    // hints the cache and never dereferences, and the address comes from
    // a reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Words that flip the polarity of a lexicon word up to three tokens later.
const NEGATORS: &[&str] = &[
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
];
/// VADER's intensifiers: each adds 0.293 to a following lexicon word's
/// magnitude (DAMPENERS take it away), less by 5% per word of distance.
const BOOSTERS: &[&str] = &[
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
const DAMPENERS: &[&str] = &[
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
const BOOST: f32 = 0.293;
/// Valence at or beyond which a lexicon word also gets a strong marker.
const STRONG: f32 = 2.0;
type Marker = (u64, &'static str);

/// A sentiment lexicon as features: each word in it emits `<lex+>` or
/// `<lex->` (flipped after a negator within three tokens), and `<lex++>` or
/// `<lex-->` too when its valence is at least 2 in magnitude. The markers
/// are ordinary word-block features, so their weights are learned; they
/// carry the lexicon's knowledge to words the training data never showed.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    /// Every word the lexicon knows something about, by token hash.
    words: HashMap<u64, TokenLex, BuildHasherDefault<IdentityHasher>>,
    markers: [Marker; 5],
}

/// What the lexicon says of one token: its valence (0 when none) and its
/// role (negator, booster, dampener, "but").
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TokenLex {
    valence: f32,
    role: u8,
}

const NEGATOR: u8 = 1;
const BOOSTER: u8 = 2;
const DAMPENER: u8 = 4;
const BUT: u8 = 8;

/// The dense lexicon feature: a VADER-style compound score of the passage.
pub const LEXICON_SCORE: &str = "<lexscore>";
/// VADER's damping of a negated word's valence.
const NEGATION_SCALE: f32 = -0.74;
/// VADER's boost for an ALL-CAPS lexicon word.
const CAPS_BOOST: f32 = 0.733;

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
            for (distance, p) in lex[i.saturating_sub(3)..i].iter().rev().enumerate() {
                let decay = 1.0 - 0.05 * distance as f32;
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
                Some(b) if i < b => v *= 0.5,
                Some(b) if i > b => v *= 1.5,
                _ => {}
            }
            sum += v;
        }
        sum / (sum * sum + 15.0).sqrt()
    }

    /// The markers of token `i`, as numbers into `markers`: polarity, and
    /// strength when strong.
    #[inline]
    fn polarity(lex: &[TokenLex], i: usize) -> Option<(usize, Option<usize>)> {
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
fn negated(lex: &[TokenLex], i: usize) -> bool {
    lex[i.saturating_sub(3)..i]
        .iter()
        .any(|p| p.role & NEGATOR != 0)
}

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
}

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
            tokenize(passage, &mut tokens);
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
        Self::from_vocabulary(vocab)
    }

    /// Rebuilds the lookup index from a stored vocabulary, checking it.
    pub fn from_vocabulary(vocab: Vocabulary) -> Result<Self, FeatureError> {
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
            if number >= 1 << 24 {
                return Err(FeatureError::InvalidVocabulary(format!(
                    "{} distinct lexicon valences (at most {})",
                    numbers.len(),
                    (1 << 24) - 1
                )));
            }
            let packed = u32::from(l.role) << 24 | number;
            index.entry(h).lex = packed;
            lex_index.entry(h).lex = packed;
        }
        let tf_small = std::array::from_fn(|count| tf_of(&vocab.settings, count));
        let markers =
            std::array::from_fn(|k| index.get(lexicon.markers[k].0).unwrap_or(NO_FEATURE));
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
        })
    }

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
    fn lex_of(&self, packed: u32) -> TokenLex {
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

    /// One word's character n-gram vector into `ws.word_vec`: each known
    /// n-gram of `_word_`, count × idf. Returns its squared norm.
    pub(crate) fn word_chars(&self, word: &str, ws: &mut Workspace) -> f32 {
        let Workspace {
            grams, word_vec, ..
        } = ws;
        word_vec.clear();
        let index = &self.char_index;
        for_each_char_gram(&self.vocab.settings, word, grams, |h, _, _| {
            if let Some(i) = index.get(h) {
                word_vec.push((i, 1.0));
            }
        });
        word_vec.sort_unstable_by_key(|&(j, _)| j);
        // Each n-gram once, with its count, then × idf.
        word_vec.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1 += next.1;
            }
            same
        });
        let mut norm = 0.0f32;
        for (j, v) in word_vec.iter_mut() {
            *v *= self.vocab.idf[*j as usize];
            norm += *v * *v;
        }
        norm
    }

    /// The lexicon score feature and its value for the tokens in `ws`.
    #[inline]
    pub(crate) fn lexicon_score(&self, ws: &Workspace) -> Option<(u32, f32)> {
        let j = self.lexicon_score?;
        Some((
            j,
            self.vocab.settings.lexicon_weight
                * Lexicon::compound(&ws.tokens, &ws.lex, &ws.valenced),
        ))
    }

    /// Tokenizes `passage` and leaves its vector in `ws.vector` (sorted by
    /// feature index): the reference definition of a passage's vector
    /// (training and explanations use it; the model's fast path must agree
    /// with it).
    pub fn transform(&self, passage: &str, ws: &mut Workspace) {
        self.word_hits(&self.index, &self.markers, passage, ws);
        ws.hits.sort_unstable();
        let mut vector = std::mem::take(&mut ws.vector);
        vector.clear();
        let mut norm = 0.0f32;
        for run in ws.hits.chunk_by(|a, b| a == b) {
            let j = run[0];
            let v = self.tf(run.len()) * self.vocab.idf[j as usize];
            norm += v * v;
            vector.push((j, v));
        }
        if norm > 0.0 {
            let inv = norm.sqrt().recip();
            vector.iter_mut().for_each(|(_, v)| *v *= inv);
        }
        if let Some((j, v)) = self.lexicon_score(ws) {
            if v != 0.0 {
                vector.push((j, v));
                vector.sort_by_key(|&(j, _)| j);
            }
        }
        if self.vocab.settings.char_range().is_some() {
            let words: Vec<(usize, usize)> = ws
                .tokens
                .iter()
                .filter(|t| t.kind == TokenKind::Word)
                .map(|t| (t.start as usize, t.end as usize))
                .collect();
            let mut acc = std::mem::take(&mut ws.char_acc);
            acc.clear();
            let mut total = 0.0f32;
            for &(a, b) in &words {
                total += self.word_chars(&passage[a..b], ws);
                acc.extend_from_slice(&ws.word_vec);
            }
            if total > 0.0 {
                let scale = self.vocab.settings.char_weight / total.sqrt();
                acc.sort_by_key(|&(j, _)| j);
                for run in acc.chunk_by(|a, b| a.0 == b.0) {
                    let sum: f32 = run.iter().map(|&(_, v)| v).sum();
                    vector.push((run[0].0, sum * scale));
                }
                vector.sort_by_key(|&(j, _)| j);
            }
            ws.char_acc = acc;
        }
        ws.vector = vector;
    }

    /// Byte spans in `passage` of each feature index in `wanted` (sorted,
    /// deduplicated spans per feature), from the tokens in `ws.tokens`.
    pub fn spans(&self, passage: &str, ws: &mut Workspace, wanted: &[u32]) -> Vec<Vec<(u32, u32)>> {
        let mut out = vec![Vec::new(); wanted.len()];
        let Workspace {
            tokens, grams, lex, ..
        } = ws;
        for_each_feature(
            &self.vocab.settings,
            &self.lexicon,
            lex,
            true,
            passage,
            tokens,
            grams,
            |h, occ| {
                let index = match occ {
                    Occurrence::Chars { .. } => &self.char_index,
                    _ => &self.index,
                };
                if let Some(i) = index.get(h) {
                    if let Some(slot) = wanted.iter().position(|&w| w == i) {
                        out[slot].push(occurrence_span(tokens, occ));
                    }
                }
            },
        );
        for spans in &mut out {
            spans.sort_unstable();
            spans.dedup();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(settings: FeatureSettings, corpus: &[&str]) -> Featurizer {
        let checked = FeatureParams(settings).check().unwrap();
        Featurizer::fit(&checked, corpus.iter().copied(), || {}).unwrap()
    }

    fn index_of(f: &Featurizer, term: &str) -> u32 {
        f.vocabulary().terms.iter().position(|t| t == term).unwrap() as u32
    }

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
    fn tfidf_matches_hand_computation() {
        // Unigrams only, 3 documents.
        let s = FeatureSettings {
            word_ngrams: [1, 1],
            caps_marker: false,
            ..Default::default()
        };
        let f = fitted(s, &["a b", "a c", "a a d"]);
        assert_eq!(f.vocabulary().terms, ["a", "b", "c", "d"]);
        // smooth idf = ln((1 + n) / (1 + df)) + 1
        let idf = |df: f64| ((4.0 / (1.0 + df)).ln() + 1.0) as f32;
        assert!((f.vocabulary().idf[0] - idf(3.0)).abs() < 1e-6);
        assert!((f.vocabulary().idf[3] - idf(1.0)).abs() < 1e-6);
        let mut ws = Workspace::default();
        f.transform("a a d", &mut ws);
        // sublinear tf: a -> 1 + ln 2, d -> 1
        let va = (1.0 + 2f32.ln()) * idf(3.0);
        let vd = idf(1.0);
        let norm = (va * va + vd * vd).sqrt();
        assert_eq!(ws.vector.len(), 2);
        assert_eq!(ws.vector[0].0, 0);
        assert!((ws.vector[0].1 - va / norm).abs() < 1e-6);
        assert_eq!(ws.vector[1].0, 3);
        assert!((ws.vector[1].1 - vd / norm).abs() < 1e-6);
        // unknown words contribute nothing; empty vector stays empty
        f.transform("zzz", &mut ws);
        assert!(ws.vector.is_empty());
    }

    #[test]
    fn bigrams_markers_and_spans() {
        let f = fitted(
            FeatureSettings::default(),
            &["You WON'T believe this!!", "believe this"],
        );
        let terms = &f.vocabulary().terms;
        for t in ["believe this", "this !!", "<caps>", "won't believe", "you"] {
            assert!(terms.iter().any(|x| x == t), "{t} missing from {terms:?}");
        }
        let passage = "I believe this, and I BELIEVE THIS";
        let mut ws = Workspace::default();
        f.transform(passage, &mut ws);
        let bt = index_of(&f, "believe this");
        let caps = index_of(&f, "<caps>");
        let spans = f.spans(passage, &mut ws, &[bt, caps]);
        let text: Vec<&str> = spans[0]
            .iter()
            .map(|&(s, e)| &passage[s as usize..e as usize])
            .collect();
        assert_eq!(text, ["believe this", "BELIEVE THIS"]);
        assert_eq!(spans[1].len(), 2);
    }

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
