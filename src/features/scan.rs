//! The scan: a passage tokenized and its word-block features, lexicon
//! annotations and out-of-vocabulary character n-grams looked up, with
//! the lookups started early so that their cache misses overlap.
//!
//! Its stages run in one order, which the types enforce: each consumes the
//! one before and hands out only what is ready by then.
//!
//! 1. [`Featurizer::scan`]: tokens; every word-block lookup started and the
//!    tokens' own finished (unigram features, which words the lexicon
//!    knows); with a character index, the character n-gram lookups of the
//!    words outside the vocabulary started too.
//! 2. [`Scan::words`] → [`WordHits`]: what the lexicon says of each word and
//!    its markers' features; the longer n-grams', `<caps>`, first-word and
//!    market markers' lookups finished (the market markers counted in
//!    stage 1, looked up here once each).
//! 3. [`WordHits::group`] → [`Words`]: the hits grouped into distinct
//!    features with their counts (the scorer takes each count's term
//!    frequency as it sums), and the lexicon's compound score.
//! 4. [`Words::chars`] → [`OovChars`]: the character n-gram lookups
//!    finished, by word.
//!
//! The scorer does its own work between stages (summing the word block
//! before it finishes the character lookups), which gives the farthest
//! fetches the most time. [`Scratch`] holds every buffer; its fields are
//! private to this module.

use super::define::*;
use super::index::*;
use super::lexicon::*;
use super::settings::tf_of;
use super::*;
use crate::text::{finish, Token, TokenKind};

/// The featurizer's scratch buffers, reused across passages so that a scan
/// allocates nothing once they have grown. Filled by a scan or by
/// [`Featurizer::transform`]; read through them.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(super) tokens: Vec<Token>,
    pub(super) grams: GramScratch,
    /// Word-block features, one per occurrence, in no particular order.
    pub(super) hits: Vec<u32>,
    /// Occurrences of each of `distinct`.
    counts: Vec<u32>,
    /// Distinct features of `hits`, in first-seen order.
    distinct: Vec<u32>,
    /// How many of `hits` come first as the tokens' unigrams (their own or
    /// a word meant's): the only hits whose rows may hold characters.
    word_hits: usize,
    /// How many of `distinct` come first from those hits.
    word_features: usize,
    /// Per token: what the lexicon says of it.
    pub(super) lex: Vec<TokenLex>,
    /// The tokens with a valence (see `valenced`).
    pub(super) valenced: Vec<u32>,
    /// Per token: its unigram feature index, or `u32::MAX`.
    unigrams: Vec<u32>,
    /// Word tokens the index does not know, to be asked of the typo
    /// aliases.
    unknown: Vec<u32>,
    /// Misspelt words read as a word meant that is a feature (see
    /// `typos`): (token, the word meant's hash), in token order.
    pub(super) aliased: Vec<(u32, u64)>,
    /// Tokens made by splitting contractions whose hash is not their text
    /// as written (see `text::contractions`), in token order.
    pub(super) made: Vec<u32>,
    /// A word respelt with fewer repeated letters (see `typos`).
    respelt: Vec<u8>,
    /// Word-block feature hashes of the passage, each with its lookup's
    /// ticket (see [`Lookup`]) and its token when it is a unigram
    /// (`u32::MAX` otherwise).
    keys: Vec<(u64, u32, u32)>,
    /// How many of `keys` come first as the tokens' own.
    token_keys: usize,
    /// The first-word feature's hash and lookup ticket: outside `keys`,
    /// as it is outside the word block's norm (see `first_word`).
    first_key: Option<(u64, u32)>,
    /// Its feature, once found.
    pub(super) first: Option<u32>,
    /// How many market markers the passage has: down, up (see
    /// `market_words`).
    market_counts: [u32; 2],
    /// Their features (in the scan's numbering) with those counts, once
    /// found: outside the word block's norm, as the first word is.
    pub(super) market: [Option<(u32, u32)>; 2],
    /// Words the lexicon knows: (hash, token), their annotations fetched.
    known: Vec<(u64, u32)>,
    /// Character n-gram hashes of out-of-vocabulary words, each with its
    /// lookup's ticket and its token.
    gram_keys: Vec<(u64, u32, u32)>,
    /// Every known character n-gram occurrence of out-of-vocabulary words
    /// as a [`GramHit`], sorted: by word, then feature.
    gram_hits: Vec<GramHit>,
    /// One word's character-block vector (see `Featurizer::word_chars`).
    pub(super) word_vec: Vec<(u32, f32)>,
    pub(super) char_acc: Vec<(u32, f32)>,
    /// The last transformed passage's features: (feature index, value),
    /// sorted by index.
    pub(super) vector: Vec<(u32, f32)>,
    /// What a scan does with a contrast (see `text::contrast`).
    pub(crate) contrast: Contrast,
    /// Whether the last scanned passage has a contrast (always false
    /// under [`Contrast::Ignore`]).
    pub(crate) contrasted: bool,
    /// The tokens after it, kept by a [`Contrast::Find`] scan that found
    /// one, for a [`Contrast::Kept`] scan of the same passage.
    after: Vec<Token>,
}

/// What a scan does with a passage's last contrasting "but" (see
/// `text::contrast`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Contrast {
    /// Nothing.
    #[default]
    Ignore,
    /// Notes whether there is one (in [`Scratch::contrasted`]), and keeps
    /// the tokens after it.
    Find,
    /// Reads only what follows it: the tokens the last [`Contrast::Find`]
    /// scan kept, which must have been of the same passage and found one.
    Kept,
}

impl Scratch {
    /// The vector [`Featurizer::transform`] left: (feature index, value),
    /// sorted by index.
    pub fn vector(&self) -> &[(u32, f32)] {
        &self.vector
    }
}

/// A character n-gram occurrence of an out-of-vocabulary word: its token in
/// the high 32 bits, its feature in the low 32, so that sorting compares
/// one word and orders by token, then feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct GramHit(u64);

impl GramHit {
    #[inline(always)]
    fn new(token: u32, feature: u32) -> Self {
        Self(u64::from(token) << 32 | u64::from(feature))
    }
    #[inline(always)]
    fn token(self) -> u32 {
        (self.0 >> 32) as u32
    }
    #[inline(always)]
    fn feature(self) -> u32 {
        self.0 as u32
    }
}

/// Stage 1 of a scan (see the module comment): made by [`Featurizer::scan`].
pub(crate) struct Scan<'a, L> {
    fz: &'a Featurizer,
    index: &'a L,
    chars: Option<&'a L>,
    s: &'a mut Scratch,
}

/// Stage 2: every word-block feature found, one per occurrence.
pub(crate) struct WordHits<'a, L> {
    scan: Scan<'a, L>,
}

/// Stage 3: the word block grouped into distinct features.
pub(crate) struct Words<'a, L> {
    scan: Scan<'a, L>,
}

/// Stage 4: the character n-grams of the words outside the vocabulary.
pub(crate) struct OovChars<'a> {
    hits: &'a [GramHit],
}

impl Featurizer {
    /// Starts a scan of `passage` into `scratch` (stage 1, see the module
    /// comment). Features are numbered as `index` numbers them: the
    /// featurizer's own (vocabulary order, as training and explanations
    /// need) or a scorer's table. With `chars`, the character n-grams of
    /// every word without a unigram feature are hashed and their lookups
    /// in `chars` started, to be finished by [`Words::chars`].
    ///
    /// The n-gram hashes are gathered first, each lookup started (its
    /// memory prefetched) as its hash is made, then finished: the lookups
    /// are cache misses into a table of megabytes, and issued together they
    /// overlap instead of waiting one after another. The keys are those of
    /// `for_each_word_feature`, made n-gram length by length (a property
    /// test holds the two together).
    #[inline(always)]
    pub(crate) fn scan<'a, L: Lookup>(
        &'a self,
        index: &'a L,
        chars: Option<&'a L>,
        passage: &str,
        scratch: &'a mut Scratch,
    ) -> Scan<'a, L> {
        let mut scan = Scan {
            fz: self,
            index,
            chars,
            s: scratch,
        };
        scan.token_hits(passage);
        scan.s.gram_keys.clear();
        if let Some(chars) = chars {
            scan.oov_char_keys(chars, passage);
        }
        scan
    }

    /// The features of the lexicon's markers in the featurizer's own
    /// numbering (see [`Scan::words`]).
    pub(crate) fn markers(&self) -> &[u32; 4] {
        &self.markers
    }

    /// What the lexicon says of a word, from its index slot's `lex`.
    #[inline]
    pub(super) fn lex_of(&self, packed: PackedLex) -> TokenLex {
        TokenLex {
            valence: self.valences.get(packed.valence()).copied().unwrap_or(0.0),
            role: packed.role(),
        }
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
}

impl<'a, L: Lookup> Scan<'a, L> {
    /// Stage 1's word block: tokens, every lookup started, the tokens' own
    /// finished. The character n-grams' lookups start after this, before
    /// [`Scan::words`] finishes the rest (the n-grams' rows are the ones
    /// that come from farther away, and get the most time).
    #[inline(always)]
    fn token_hits(&mut self, passage: &str) {
        let (fz, index) = (self.fz, self.index);
        let s = &mut *self.s;
        if s.contrast == Contrast::Kept {
            s.tokens.clear();
            s.tokens.extend_from_slice(&s.after);
        } else {
            tokens_of(&fz.vocab.settings, passage, &mut s.tokens);
            if fz.skip_handles {
                crate::text::handles::remove(passage, &mut s.tokens);
            }
            // Before contractions are split: `made` counts tokens from here.
            let found = match s.contrast {
                Contrast::Find => crate::text::contrast::last(&s.tokens),
                Contrast::Ignore | Contrast::Kept => None,
            };
            if let Some(k) = found {
                s.after.clear();
                s.after
                    .extend_from_slice(s.tokens.get(k + 1..).unwrap_or_default());
            }
            s.contrasted = found.is_some();
        }
        self.s.made.clear();
        if fz.contractions {
            crate::text::contractions::split(passage, &mut self.s.tokens, &mut self.s.made);
        }
        let Scratch {
            tokens,
            hits,
            unigrams,
            unknown,
            aliased,
            made,
            respelt,
            lex,
            keys,
            token_keys,
            known: known_words,
            first_key,
            market_counts,
            ..
        } = &mut *self.s;
        keys.clear();
        *first_key = None;
        *market_counts = [0; 2];
        known_words.clear();
        // The keys of `for_each_word_feature`, n-gram length by length: a
        // loop per length runs without branches on where an n-gram ends,
        // and the unigram and bigram loops write their keys with no
        // capacity check each. Each lookup starts as soon as its hash is
        // known: the fetches spread over the hashing instead of queueing
        // in a burst.
        let settings = &fz.vocab.settings;
        let [lo, hi] = settings.word_ngrams.map(usize::from);
        // A lexicon word's slot is under its token's hash, so every token's
        // own hash is looked up: as its unigram, or, without unigrams among
        // the n-grams, here (where it finds what the lexicon says, no feature).
        if lo == 1 || !fz.lexicon.is_empty() {
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
        super::context::for_each_context_feature(settings, passage, tokens, |h, occ| match occ {
            Occurrence::First { .. } => *first_key = Some((h, index.start(h))),
            // Counted; looked up once each in `words`.
            Occurrence::Market { up, .. } => market_counts[usize::from(up)] += 1,
            _ => keys.push((h, index.start(h), u32::MAX)),
        });
        hits.clear();
        unigrams.clear();
        unigrams.resize(tokens.len(), u32::MAX);
        // A word's unigram lookup also says what the lexicon knows of it.
        lex.clear();
        if !fz.lexicon.is_empty() {
            lex.resize(tokens.len(), TokenLex::default());
        }
        unknown.clear();
        let aliases = fz.aliases.as_ref();
        for &(h, ticket, unigram) in keys.get(..*token_keys).unwrap_or_default() {
            let word = || {
                tokens
                    .get(unigram as usize)
                    .is_some_and(|t| t.kind == TokenKind::Word)
            };
            let Some((value, known)) = index.find(h, ticket) else {
                // A contraction's made word ("not" for "n't") is no slip.
                if aliases.is_some() && word() && !made.contains(&unigram) {
                    unknown.push(unigram);
                }
                continue;
            };
            if value != NO_FEATURE {
                hits.push(value);
                if let Some(u) = unigrams.get_mut(unigram as usize) {
                    *u = value;
                }
            }
            if known && word() {
                // Asked below, once the fetch has had time.
                fz.lex_index.prefetch(h);
                known_words.push((h, unigram));
            }
        }
        // A contraction's made words are read as the words meant, as a
        // misspelling is: the reference path finds their text in `aliased`.
        aliased.clear();
        for &t in made.iter() {
            if let Some(&tok) = tokens.get(t as usize) {
                if unigrams.get(t as usize).is_some_and(|&u| u != u32::MAX) {
                    aliased.push((t, tok.hash));
                }
            }
        }
        let contracted = aliased.len();
        // A word the index does not know may be a misspelling: then its
        // unigram, lexicon entry and (when it is a feature) characters are
        // the word meant's (rare enough that the lookup need not be started
        // early). Its context features keep the word as written.
        for &t in unknown.iter() {
            let Some(meant) = tokens.get(t as usize).and_then(|tok| {
                let word = passage.get(tok.start as usize..tok.end as usize)?;
                let meant = aliases?.get(tok.hash, word, respelt)?;
                // Names and addresses are not misspellings.
                let name = capitalised(word) && !super::context::opens_sentence(passage, tok.start);
                (!name && !super::context::in_handle_or_link(passage, tok.start)).then_some(meant)
            }) else {
                continue;
            };
            let Some((value, known)) = index.find(meant, index.start(meant)) else {
                continue;
            };
            if value != NO_FEATURE {
                hits.push(value);
                if let Some(u) = unigrams.get_mut(t as usize) {
                    *u = value;
                }
                aliased.push((t, meant));
            }
            if known {
                fz.lex_index.prefetch(meant);
                known_words.push((meant, t));
            }
        }
        if contracted > 0 && aliased.len() > contracted {
            aliased.sort_unstable_by_key(|&(t, _)| t);
        }
        self.s.word_hits = self.s.hits.len();
    }

    /// Stage 1's character n-grams: the hashes of those of every word token
    /// without a unigram feature, each with its token, their lookups in
    /// `index` started.
    #[inline(always)]
    fn oov_char_keys(&mut self, index: &L, passage: &str) {
        let fz = self.fz;
        let Scratch {
            tokens,
            grams,
            unigrams,
            gram_keys,
            ..
        } = &mut *self.s;
        let Some(range) = fz.vocab.settings.char_range() else {
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

    /// Stage 2: what the lexicon says of each word it knows and its
    /// markers' features (`markers`: their features in the scan's
    /// numbering, which need no lookup; [`NO_FEATURE`] for one the
    /// vocabulary lacks), and the lookups of longer n-grams and `<caps>`
    /// markers finished.
    #[inline(always)]
    pub(crate) fn words(self, markers: &[u32; 4]) -> WordHits<'a, L> {
        let fz = self.fz;
        let Scratch {
            hits,
            lex,
            valenced: with_valence,
            known: known_words,
            ..
        } = &mut *self.s;
        for &(h, t) in known_words.iter() {
            if let (Some(slot), Some(l)) = (fz.lex_index.slot(h), lex.get_mut(t as usize)) {
                *l = fz.lex_of(slot.lex);
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
        let index = self.index;
        let Scratch {
            hits,
            keys,
            token_keys,
            first_key,
            first,
            market_counts,
            market,
            ..
        } = &mut *self.s;
        for &(h, ticket, _) in keys.get(*token_keys..).unwrap_or_default() {
            if let Some((value, _)) = index.find(h, ticket).filter(|&(v, _)| v != NO_FEATURE) {
                hits.push(value);
            }
        }
        *first = first_key
            .and_then(|(h, ticket)| index.find(h, ticket))
            .map(|(value, _)| value)
            .filter(|&v| v != NO_FEATURE);
        *market = [None; 2];
        if *market_counts != [0; 2] {
            for ((m, &count), &h) in market
                .iter_mut()
                .zip(market_counts.iter())
                .zip(&super::context::MARKET_HASHES)
            {
                *m = (count > 0)
                    .then(|| index.find(h, index.start(h)))
                    .flatten()
                    .map(|(value, _)| value)
                    .filter(|&v| v != NO_FEATURE)
                    .map(|value| (value, count));
            }
        }
        WordHits { scan: self }
    }
}

impl<'a, L: Lookup> WordHits<'a, L> {
    /// Stage 3: the hits grouped into distinct features, with their counts.
    #[inline(always)]
    pub(crate) fn group(self) -> Words<'a, L> {
        let Scratch {
            hits,
            distinct,
            counts,
            word_hits,
            word_features,
            ..
        } = &mut *self.scan.s;
        *word_features = group(hits, *word_hits, distinct, counts);
        Words { scan: self.scan }
    }
}

impl<'a, L: Lookup> Words<'a, L> {
    /// The distinct word-block features, in first-seen order.
    pub(crate) fn distinct(&self) -> &[u32] {
        &self.scan.s.distinct
    }

    /// How many of [`Words::distinct`] come first as words (unigrams):
    /// the others' rows hold no characters (see `Model::sum_words`).
    pub(crate) fn word_features(&self) -> usize {
        self.scan.s.word_features
    }

    /// The occurrences of each of [`Words::distinct`].
    pub(crate) fn counts(&self) -> &[u32] {
        &self.scan.s.counts
    }

    /// The lexicon score feature (in the featurizer's own numbering) and
    /// its value, when the vocabulary has it.
    #[inline]
    pub(crate) fn lexicon_score(&self) -> Option<(u32, f32)> {
        self.scan.fz.lexicon_score(self.scan.s)
    }

    /// The passage's first-word feature (in the scan's numbering), when
    /// the vocabulary has it: its value is
    /// [`super::context::FIRST_WORD_VALUE`], outside
    /// the word block's norm.
    #[inline]
    pub(crate) fn first_word(&self) -> Option<u32> {
        self.scan.s.first
    }

    /// The passage's market markers (in the scan's numbering), each with
    /// its count: valued by the count's term frequency, outside the word
    /// block's norm.
    #[inline]
    pub(crate) fn market(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.scan.s.market.iter().flatten().copied()
    }

    /// Whether the passage has a market marker the vocabulary knows (most
    /// have none: the scorer then skips [`Words::market`]).
    #[inline]
    pub(crate) fn has_market(&self) -> bool {
        self.scan.s.market != [None; 2]
    }

    /// Stage 4: the character n-gram lookups that [`Featurizer::scan`]
    /// started finished (none without its character index).
    #[inline(always)]
    pub(crate) fn chars(self) -> OovChars<'a> {
        let Scan { chars, s, .. } = self.scan;
        let Scratch {
            gram_keys,
            gram_hits,
            ..
        } = s;
        gram_hits.clear();
        if let Some(index) = chars {
            for &(h, ticket, t) in gram_keys.iter() {
                if let Some((g, _)) = index.find(h, ticket) {
                    gram_hits.push(GramHit::new(t, g));
                }
            }
            gram_hits.sort_unstable();
        }
        OovChars { hits: gram_hits }
    }
}

impl<'a> OovChars<'a> {
    /// The known character n-gram occurrences found.
    pub(crate) fn len(&self) -> usize {
        self.hits.len()
    }

    /// Each out-of-vocabulary word's known character n-grams, word by word:
    /// (feature, count) in feature order.
    #[inline(always)]
    pub(crate) fn words(
        &self,
    ) -> impl Iterator<Item = impl Iterator<Item = (u32, usize)> + 'a> + 'a {
        self.hits
            .chunk_by(|a, b| a.token() == b.token())
            .map(|word| {
                word.chunk_by(|a, b| a == b)
                    .map(|run| (run[0].feature(), run.len()))
            })
    }
}

/// Whether `word` is written with a capital first letter and a lower-case
/// one after it ("Martins"): inside a sentence, a name more often than a
/// misspelling, so typo aliases leave it be.
fn capitalised(word: &str) -> bool {
    let mut letters = word.chars();
    letters.next().is_some_and(char::is_uppercase) && letters.any(char::is_lowercase)
}

/// log2 of the number of [`group`]'s buckets.
const GROUP_BITS: u32 = 10;
/// 2^32 / φ, odd: multiplying by it spreads consecutive features apart.
const FIBONACCI: u32 = 0x9e37_79b1;

/// Groups the repeated features of `hits` into `distinct` and their
/// occurrences into `counts`, and returns how many of `distinct` come
/// first from `hits[..first]` (all of them when the hits are sorted).
///
/// A 1024-bucket table (open addressing) remembers where each distinct
/// feature sits, so a repeat is found at once, with no sort. (256 buckets,
/// shared four times as often, were 3% slower; scanning every distinct
/// feature when a bucket was taken cost 3% of scoring.) Its byte-sized
/// entries hold 254 features at most: longer passages, which have
/// more occurrences than that, are sorted instead.
fn group(hits: &mut [u32], first: usize, distinct: &mut Vec<u32>, counts: &mut Vec<u32>) -> usize {
    distinct.clear();
    counts.clear();
    if hits.len() < usize::from(u8::MAX) {
        let mut at = [0u8; 1 << GROUP_BITS];
        // Written by index, not pushed: a push loads, checks and stores
        // the length each time.
        distinct.resize(hits.len(), 0);
        counts.resize(hits.len(), 0);
        let mut n = 0;
        // The first hits, then the rest: two loops, not a test per hit.
        let (head, tail) = hits.split_at(first.min(hits.len()));
        for &j in head {
            group_one(j, &mut at, distinct, counts, &mut n);
        }
        let from_first = n;
        for &j in tail {
            group_one(j, &mut at, distinct, counts, &mut n);
        }
        distinct.truncate(n);
        counts.truncate(n);
        from_first
    } else {
        hits.sort_unstable();
        for run in hits.chunk_by(|a, b| a == b) {
            distinct.push(run[0]);
            counts.push(run.len() as u32);
        }
        distinct.len()
    }
}

/// One hit into [`group`]'s table: a new feature (the `n`th), or one more
/// of a feature seen. `distinct` and `counts` hold a place for every hit.
#[inline(always)]
fn group_one(
    j: u32,
    at: &mut [u8; 1 << GROUP_BITS],
    distinct: &mut [u32],
    counts: &mut [u32],
    n: &mut usize,
) {
    // Fibonacci hashing: the top GROUP_BITS bits of j × 2^32/φ.
    let mut bucket = (j.wrapping_mul(FIBONACCI) >> (32 - GROUP_BITS)) as usize;
    // At most 254 of the 1024 buckets are taken: a free one comes.
    loop {
        let p = usize::from(at[bucket]);
        if p == 0 {
            if let (Some(d), Some(c)) = (distinct.get_mut(*n), counts.get_mut(*n)) {
                (*d, *c) = (j, 1);
            }
            *n += 1;
            at[bucket] = *n as u8;
            return;
        }
        if distinct.get(p - 1) == Some(&j) {
            if let Some(count) = counts.get_mut(p - 1) {
                *count += 1;
            }
            return;
        }
        bucket = (bucket + 1) % at.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::ParamGuard;
    use std::collections::BTreeMap;

    #[test]
    fn grouping_counts_each_feature_once_whatever_the_length() {
        // 97 features, so buckets are shared; lengths on both sides of
        // the table's limit.
        for n in [0u32, 1, 10, 200, 254, 255, 1000] {
            let mut hits: Vec<u32> = (0..n).map(|i| (i * 7919 % 97) * 1031).collect();
            let mut expected = BTreeMap::new();
            for &j in &hits {
                *expected.entry(j).or_insert(0u32) += 1;
            }
            let (mut distinct, mut counts) = (vec![7], vec![7]);
            let all = hits.len();
            assert_eq!(
                group(&mut hits, all, &mut distinct, &mut counts),
                distinct.len()
            );
            assert_eq!(distinct.len(), expected.len(), "{n} hits");
            let got: BTreeMap<u32, u32> = distinct.into_iter().zip(counts).collect();
            assert_eq!(got, expected, "{n} hits");
        }
    }

    #[test]
    fn grouping_says_how_many_features_come_from_the_first_hits() {
        // Repeats of the first hits after them, and features of their own.
        let mut hits = vec![5, 9, 5, 2, 9, 40, 2, 41, 5];
        let (mut distinct, mut counts) = (Vec::new(), Vec::new());
        for (first, from_first) in [(0, 0), (1, 1), (3, 2), (4, 3), (8, 5), (9, 5), (20, 5)] {
            let got = group(&mut hits, first, &mut distinct, &mut counts);
            assert_eq!(got, from_first, "first {first}");
            assert_eq!(distinct, [5, 9, 2, 40, 41]);
            assert_eq!(counts, [3, 2, 2, 1, 1]);
        }
        // Sorted (too many hits for the table): every feature may be one.
        let mut many: Vec<u32> = (0..300).collect();
        assert_eq!(group(&mut many, 3, &mut distinct, &mut counts), 300);
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
            let mut ws = Scratch::default();
            f.scan(&f.index, None, &passage, &mut ws).words(&f.markers);
            let mut expected = Vec::new();
            f.lexicon.annotate(&ws.tokens, &mut expected);
            proptest::prop_assert_eq!(&ws.lex, &expected);
            let mut reference = Vec::new();
            let score = f.lexicon.markers[4].0;
            for_each_word_feature(&f.vocab.settings, &ws.tokens, |h, _| reference.extend(f.index.get(h)));
            super::super::context::for_each_context_feature(&f.vocab.settings, &passage, &ws.tokens, |h, _| reference.extend(f.index.get(h)));
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
