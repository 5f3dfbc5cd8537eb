//! The compiled scorer: every head's weights laid out in cache-line rows
//! beside each feature's key, found by a perfect hash, and the fast path
//! that scores a passage without building its vector.

use std::borrow::Cow;
use std::path::Path;

use super::format::{Expert, HeadData, InvalidModel, ModelData, ModelError, Scope, MAX_COLUMNS};
#[cfg(target_arch = "x86_64")]
use super::has_avx2;
use super::link::{add_share, kept, Links};
use super::table::{Lane, Row, Table};
use crate::features::{Contrast, FeatureError, Featurizer, Scratch, NO_FEATURE};

/// Row widths, by the columns a model keeps (see [`kept`]). Up to 6,
/// `f32` rows of 8 lanes: with the key, or the squared norm and idf, in
/// two lanes of each block, a row is 64 bytes, one cache line. From 7 to
/// 12, `i16` rows of 16 lanes (see [`Scales`]): still one cache line. From
/// 13 to 28 (a mixture head), `i16` rows of two lines; beyond, of as many
/// as the most columns a model may have need.
///
/// Measured with `slant bench score` (10 alternating runs, medians), the
/// default config (then 6 columns) against it plus a 3-class head (9):
/// 609k passages/s for 6 columns; for 9, 506k with `f32` rows of two lines
/// and 562k with `i16` rows of one (12 columns: 560k). So what a wider row
/// costs is mostly its second cache line; the tables' size is not it (a
/// model with a quarter of the features looks its words up no faster).
/// What `i16` rows still cost is converting lanes. bf16 lanes (an `f32`'s
/// high half) would save one instruction per vector (593k), but they moved
/// 10 of 31,915 head decisions on dev sets, where `i16` moved none
/// (probabilities within 2e-4 of `f32` rows). For a 19-column mixture,
/// `i8` rows would keep one line (24 columns) and scored ~5% faster than
/// `i16` rows of two (426k against 404k, 8 alternating runs), but they
/// moved 113 of 25,532 decisions on dev passages, where `i16` moved none:
/// not worth it.
const NARROW: usize = 8;
/// 16 lanes of `i16`: 12 columns in a 64-byte row (see [`Scales`]).
const PACKED: usize = 16;
/// 32 lanes of `i16`: 28 columns in a row of two cache lines.
const DOUBLE: usize = 32;
/// `i16` lanes for every column a model may have, and the key's and
/// norm's four: 48, rows of three cache lines.
const WIDEST: usize = (MAX_COLUMNS + 4).div_ceil(8) * 8;

/// `acc += v · weights` over the row's columns (the weight block's last
/// lanes hold its key, not weights).
#[inline(always)]
fn add_weights<T: Lane, const W: usize>(acc: &mut [f32; W], v: f32, row: &Row<T, W>) {
    let n = Row::<T, W>::COLUMNS;
    for (a, w) in acc[..n].iter_mut().zip(&row.weights[..n]) {
        *a += v * w.value();
    }
}

/// `acc += v · chars` over the row's columns, and `v ·` its squared norm
/// into `sq` (which the caller puts in lane [`Row::SQ`] at the end). `f32`
/// rows add every lane instead, which is the same (their squared norm
/// sits in that lane, and the idf lane's sum is never read) in whole
/// vectors, and leave `sq` alone.
///
/// `sq` is a scalar of its own because, as a lane of `acc`, it was kept
/// on the stack (the other lanes are whole vectors in registers): each
/// row then read and wrote it, a store-to-load chain through the loop.
#[inline(always)]
fn add_chars<T: Lane, const W: usize>(acc: &mut [f32; W], sq: &mut f32, v: f32, row: &Row<T, W>) {
    if T::PER_WORD > 1 {
        let n = Row::<T, W>::COLUMNS;
        for (a, c) in acc[..n].iter_mut().zip(&row.chars[..n]) {
            *a += v * c.value();
        }
        *sq += v * row.sq();
    } else {
        for (a, c) in acc.iter_mut().zip(&row.chars) {
            *a += v * c.value();
        }
    }
}

/// The word block's sums over its distinct features (`counts` their
/// occurrences, `tf` a count's term frequency): Σ v·weights and Σ v² with
/// v = tf·idf, and Σ count·chars (a word's row holds its characters'
/// contribution, once per occurrence, and its squared norm; other rows
/// hold zeros there; the idf lane is summed too, and never read).
///
/// Only the first `words_first` features can be words (see
/// `Words::word_features`): the rest (n-grams, markers) skip the
/// characters, whose zeros would change no sum (the sums start at +0 and
/// never become −0, and x + 0 is x for any other x).
///
/// Each build (baseline, AVX2) is a function of its own, not inlined, and
/// without calls: inside the scorer, whose later calls clobber every vector
/// register, the sums were kept on the stack, and each row read and wrote
/// them there. `AVX2` picks the AVX2 build, [`sum_words_avx2`]: only
/// callers that checked the CPU for AVX2 may pass true.
#[inline(always)]
fn sum_words<T: Lane, const W: usize, const AVX2: bool>(
    words: &Table<T, W>,
    distinct: &[u32],
    counts: &[u32],
    tf: impl Fn(u32) -> f32,
    words_first: usize,
) -> ([f32; W], [f32; W], f32) {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: with `AVX2`, only called where the CPU has AVX2.
        return unsafe { sum_words_avx2(words, distinct, counts, tf, words_first) };
    }
    sum_words_baseline(words, distinct, counts, tf, words_first)
}

/// [`sum_words`] for the x86_64 baseline (SSE2) or other targets.
#[inline(never)]
fn sum_words_baseline<T: Lane, const W: usize>(
    words: &Table<T, W>,
    distinct: &[u32],
    counts: &[u32],
    tf: impl Fn(u32) -> f32,
    words_first: usize,
) -> ([f32; W], [f32; W], f32) {
    sum_words_body(words, distinct, counts, tf, words_first)
}

/// [`sum_words`] compiled for AVX2: eight `f32` lanes a step, and the
/// `i16` lanes widened eight at a time. The same operations on every lane
/// in the same order (Rust never fuses a multiply and an add on its own),
/// so the same sums, bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
fn sum_words_avx2<T: Lane, const W: usize>(
    words: &Table<T, W>,
    distinct: &[u32],
    counts: &[u32],
    tf: impl Fn(u32) -> f32,
    words_first: usize,
) -> ([f32; W], [f32; W], f32) {
    sum_words_body(words, distinct, counts, tf, words_first)
}

#[inline(always)]
fn sum_words_body<T: Lane, const W: usize>(
    words: &Table<T, W>,
    distinct: &[u32],
    counts: &[u32],
    tf: impl Fn(u32) -> f32,
    words_first: usize,
) -> ([f32; W], [f32; W], f32) {
    let (mut word, mut chars, mut norm, mut sq) = ([0f32; W], [0f32; W], 0.0f32, 0.0f32);
    let split = words_first.min(distinct.len());
    let (first, rest) = distinct.split_at(split);
    let (first_counts, rest_counts) = counts.split_at(split.min(counts.len()));
    // A feature's weights and its share of the norm; its row, if it has one.
    let mut add = |p: u32, count: u32| {
        let row = words.row(p)?;
        let v = tf(count) * row.idf();
        norm += v * v;
        add_weights(&mut word, v, row);
        Some(row)
    };
    for (&p, &count) in first.iter().zip(first_counts) {
        if let Some(row) = add(p, count) {
            add_chars(&mut chars, &mut sq, count as f32, row);
        }
    }
    for (&p, &count) in rest.iter().zip(rest_counts) {
        add(p, count);
    }
    if T::PER_WORD > 1 {
        // The same sum as adding into the lane from its 0 (0 + x is x).
        chars[Row::<T, W>::SQ] = sq;
    }
    (word, chars, norm)
}

/// A head as the scorer sees it.
#[derive(Debug, Clone)]
pub struct Head {
    pub name: String,
    /// What the head is meant to read (headline-scope heads score an
    /// article's title only).
    pub scope: Scope,
    pub labels: Vec<String>,
    pub threshold: Option<f64>,
    /// First column of this head's own (joint) model in the interleaved
    /// weight rows; `None` for a mixture without one (joint weight 0).
    pub(super) column: Option<usize>,
    /// Its own model's columns there, [`kept`] of its labels (none when
    /// `column` is `None`; then the number marks a two-class head).
    pub(super) outputs: usize,
    /// Where this head's probabilities start in `Workspace::probabilities`.
    pub offset: usize,
    /// A mixture's gate and experts (see [`super::Mixture`]).
    pub(super) mixture: Option<Blend>,
    /// Where this head's linear models' probabilities start among every
    /// head's (see [`Model::links`]).
    linked: usize,
}

/// A mixture as the scorer sees it: where its gate's and experts' scores
/// are.
#[derive(Debug, Clone)]
pub(super) struct Blend {
    joint_weight: f64,
    /// The gate's first column; its labels are the sources.
    gate: usize,
    sources: usize,
    experts: Vec<Answer>,
    /// The first column of the expert that reads only what follows a
    /// passage's contrast (see [`super::Mixture::after_contrast`]).
    after_contrast: Option<usize>,
}

/// What a mixture's expert answers.
#[derive(Debug, Clone)]
enum Answer {
    /// The probabilities of a linear model whose scores start at this column.
    Column(usize),
    Constant(Vec<f64>),
}

/// A linear model's weights (features × `classes` scores, or one for two
/// classes, as stored in the model file) and intercepts as the scorer
/// keeps them (see [`kept`]).
fn shift<'a>(
    weights: &'a [f32],
    intercept: &'a [f32],
    classes: usize,
) -> (Cow<'a, [f32]>, Cow<'a, [f32]>) {
    if classes <= 2 {
        return (Cow::Borrowed(weights), Cow::Borrowed(intercept));
    }
    fn minus_first(row: &[f32]) -> impl Iterator<Item = f32> + '_ {
        let first = row.first().copied().unwrap_or(0.0);
        row.iter().skip(1).map(move |&w| w - first)
    }
    (
        weights
            .chunks_exact(classes)
            .flat_map(minus_first)
            .collect(),
        minus_first(intercept).collect(),
    )
}

impl Head {
    /// This head's linear models' probabilities among every head's
    /// (`linked`, see [`Model::links`]): its own model's (`None` for a
    /// mixture without one), then a mixture's gate's, then its linear
    /// experts' in turn (empty for a plain head).
    #[inline(always)]
    fn models<'a>(&self, linked: &'a [f64]) -> (Option<&'a [f64]>, &'a [f64], &'a [f64]) {
        let rest = linked.get(self.linked..).unwrap_or_default();
        let (own, rest) = match self
            .column
            .and_then(|_| rest.split_at_checked(self.labels.len()))
        {
            Some((own, rest)) => (Some(own), rest),
            None => (None, rest),
        };
        match &self.mixture {
            Some(b) => {
                let (gate, experts) = rest.split_at_checked(b.sources).unwrap_or_default();
                (own, gate, experts)
            }
            None => (own, &[], &[]),
        }
    }

    /// The linear models whose contributions an explanation folds
    /// together, as (first column, share): the head's own alone for a
    /// plain head; for a mixture, its joint model's λ and each linear
    /// expert's (1 − λ)·gate weight on the passage [`Model::classify`]
    /// last scored into `ws`.
    pub(super) fn parts(&self, ws: &Workspace) -> Vec<(usize, f64)> {
        let Some(b) = &self.mixture else {
            return self.column.map(|c| (c, 1.0)).into_iter().collect();
        };
        let (_, g, _) = self.models(&ws.linked);
        let mut parts: Vec<(usize, f64)> = self
            .column
            .map(|c| (c, b.joint_weight))
            .into_iter()
            .collect();
        for (answer, &gs) in b.experts.iter().zip(g) {
            if let Answer::Column(c) = answer {
                parts.push((*c, (1.0 - b.joint_weight) * gs));
            }
        }
        parts
    }

    /// The first column of the expert that reads only what follows a
    /// passage's contrast, if the head has one.
    pub(super) fn after_contrast(&self) -> Option<usize> {
        self.mixture.as_ref()?.after_contrast
    }

    /// The decision: threshold on `labels[1]` for two classes, else argmax.
    pub fn decide(&self, probs: &[f64]) -> usize {
        decide(self.threshold, probs)
    }
}

/// A head's decision rule: `labels[1]` when its probability reaches the
/// threshold (two classes), else the most probable label.
pub fn decide(threshold: Option<f64>, probs: &[f64]) -> usize {
    match threshold {
        Some(t) if probs.len() == 2 => usize::from(probs[1] >= t),
        _ => argmax(probs),
    }
}

/// The first index of the largest value (NaN never wins). The running
/// best is kept with selects, not a branch: which class leads is what the
/// CPU cannot guess.
pub fn argmax(v: &[f64]) -> usize {
    let Some(&first) = v.first() else {
        return 0;
    };
    let (mut best, mut top) = (0, first);
    for (i, &x) in v.iter().enumerate().skip(1) {
        let above = x > top;
        best = if above { i } else { best };
        top = if above { x } else { top };
    }
    best
}

/// Scratch space for scoring, reused across passages so that scoring
/// allocates nothing once it has grown: the featurizer's scan buffers and
/// every head's outputs.
#[derive(Debug, Default)]
pub struct Workspace {
    /// The featurizer's buffers (the scan, and the vector explanations use).
    pub(super) scan: Scratch,
    /// Raw scores, every column.
    pub(super) scores: Vec<f32>,
    /// Raw scores of what follows a passage's contrast, for the experts
    /// that read only that (see [`Model::classify`]).
    after: Vec<f32>,
    /// Every head's probabilities, after [`Model::classify`]: head `h`'s
    /// at [`Head::offset`], one per label.
    pub probabilities: Vec<f64>,
    /// Every head's decided label, after [`Model::classify`].
    pub labels: Vec<usize>,
    /// Every head's linear models' probabilities (see [`Model::links`]),
    /// and the exponentials they come from.
    linked: Vec<f64>,
    exps: Vec<f64>,
}

impl Workspace {
    /// Head `head`'s probabilities (one per label) and decided label from
    /// the last [`Model::classify`] with `model`.
    pub fn head(&self, model: &Model, head: usize) -> Option<(&[f64], usize)> {
        let h = model.heads.get(head)?;
        let probabilities = self
            .probabilities
            .get(h.offset..h.offset + h.labels.len())?;
        Some((probabilities, *self.labels.get(head)?))
    }
}

/// A loaded model, ready to score.
#[derive(Debug)]
pub struct Model {
    /// Metadata as stored, with the vocabulary moved into `featurizer` and
    /// the per-head weights into the tables.
    data: ModelData,
    id: String,
    pub(super) featurizer: Featurizer,
    pub(super) heads: Vec<Head>,
    /// Every feature's row (see [`Row`]), in rows as wide as the model's
    /// columns need.
    tables: Tables,
    /// Each vocabulary feature's position: in the character table with
    /// [`IN_CHARS`] set, else in the word table.
    at: Vec<u32>,
    intercepts: Vec<f32>,
    columns: usize,
    with_chars: bool,
    /// The lexicon markers' positions in the word table, as
    /// [`Featurizer::word_hits`] takes them.
    markers: [u32; 4],
    /// The links of every head's linear models, head by head: its own
    /// (joint) model, then a mixture's gate and linear experts. Scoring
    /// turns all their scores into probabilities at once.
    links: Links,
    /// Every head's labels, counted: the length of
    /// [`Workspace::probabilities`].
    labels: usize,
    /// The columns (first, count) of the experts that read only what
    /// follows a passage's last contrast; empty when none does.
    after_contrast: Vec<(usize, usize)>,
}

/// Marks a position in [`Model::at`] as one in the character table.
const IN_CHARS: u32 = 1 << 31;

/// The word block's table (its features and the words only the lexicon
/// knows) and the character n-grams' table. A word's row also holds its
/// character n-grams' contribution, so that scoring reads one row per word
/// in the vocabulary, and the character table only for other words.
#[derive(Debug, Clone)]
struct Pair<T, const W: usize> {
    words: Table<T, W>,
    chars: Table<T, W>,
    /// What each column's stored values are multiplied by (empty for
    /// `f32` rows, which store weights as they are).
    scales: Scales,
}

/// Per column, what an `i16` row's values stand for: value × scale. Each
/// kind of value has its own scale, the column's largest magnitude over
/// `i16::MAX`, so that rounding errs by at most 1/65534 of that largest
/// value: the word table's weights, the words' character contributions,
/// and the character table's weights.
#[derive(Debug, Clone, Default)]
struct Scales {
    words: Vec<f32>,
    chars: Vec<f32>,
    grams: Vec<f32>,
}

/// Column `l`'s scale in `scales` (1 where there is none: `f32` rows).
#[inline(always)]
fn scale(scales: &[f32], l: usize) -> f32 {
    scales.get(l).copied().unwrap_or(1.0)
}

/// Scales that map each column's largest magnitude in `max` to `i16::MAX`.
fn scales_for(max: &[f32]) -> Vec<f32> {
    max.iter()
        .map(|&m| {
            if m > 0.0 {
                m / f32::from(i16::MAX)
            } else {
                1.0
            }
        })
        .collect()
}

/// Row widths by column count: up to 6 columns, `f32` rows of one cache
/// line; up to 12, `i16` rows of one; up to 28, of two; beyond, of three.
#[derive(Debug, Clone)]
enum Tables {
    Narrow(Pair<f32, NARROW>),
    Packed(Pair<i16, PACKED>),
    Double(Pair<i16, DOUBLE>),
    Widest(Pair<i16, WIDEST>),
}

/// Runs `$body` with `$t` bound to the model's [`Pair`], whatever its width.
macro_rules! with_tables {
    ($tables:expr, $t:ident => $body:expr) => {
        match $tables {
            Tables::Narrow($t) => $body,
            Tables::Packed($t) => $body,
            Tables::Double($t) => $body,
            Tables::Widest($t) => $body,
        }
    };
}

impl<T: Lane, const W: usize> Pair<T, W> {
    /// Tables for the featurizer's keys, with idf and lexicon marks and no
    /// weights yet; fills `at`. The two tables are built side by side.
    fn new(fz: &Featurizer, at: &mut [u32]) -> Result<Self, InvalidModel> {
        let table = |keys: Vec<(u64, u32, bool)>| {
            let hashes: Vec<u64> = keys.iter().map(|k| k.0).collect();
            let (mut table, placed) = Table::<T, W>::new(&hashes)
                .ok_or(InvalidModel::NoPerfectHash { keys: keys.len() })?;
            let mut positions = Vec::with_capacity(keys.len());
            for (&(_, j, known), &p) in keys.iter().zip(&placed) {
                let idf = if j == NO_FEATURE { 0.0 } else { fz.idf(j) };
                if let Some(row) = table.row_mut(p) {
                    row.set_idf(idf, known);
                }
                positions.push((j, p));
            }
            Ok::<_, InvalidModel>((table, positions))
        };
        let (words, chars) = rayon::join(
            || table(fz.word_keys().collect()),
            || table(fz.char_keys().collect()),
        );
        let ((words, word_positions), (chars, char_positions)) = (words?, chars?);
        for (positions, flag) in [(word_positions, 0), (char_positions, IN_CHARS)] {
            for (j, p) in positions {
                if let Some(a) = at.get_mut(j as usize) {
                    *a = p | flag;
                }
            }
        }
        Ok(Self {
            words,
            chars,
            scales: Scales::default(),
        })
    }

    /// Feature `j`'s table and position there, from `at[j]`.
    fn locate(at: &[u32], j: u32) -> Option<(bool, u32)> {
        let p = *at.get(j as usize)?;
        Some((p & IN_CHARS != 0, p & !IN_CHARS))
    }

    /// Feature `j`'s row, by its position `at[j]`.
    fn row(&self, at: &[u32], j: u32) -> Option<&Row<T, W>> {
        let (chars, p) = Self::locate(at, j)?;
        if chars { &self.chars } else { &self.words }.row(p)
    }

    /// Feature `j`'s weight in `column`, as the scorer reads it.
    fn weight(&self, at: &[u32], j: u32, column: usize) -> Option<f32> {
        let (chars, p) = Self::locate(at, j)?;
        let (table, scales) = if chars {
            (&self.chars, &self.scales.grams)
        } else {
            (&self.words, &self.scales.words)
        };
        let w = table.row(p)?.weights.get(column)?.value();
        (column < Row::<T, W>::COLUMNS).then(|| w * scale(scales, column))
    }

    /// Puts head weights (`outputs` per feature) in at `column`, divided
    /// by their scales (for `f32` rows, as they are). A head's columns are
    /// its own, so its weights alone set their scales.
    fn set_weights(&mut self, at: &[u32], column: usize, outputs: usize, weights: &[f32]) {
        if T::SCALED {
            let (mut words, mut grams) = (vec![0f32; outputs], vec![0f32; outputs]);
            for (j, w) in weights.chunks_exact(outputs).enumerate() {
                if let Some((chars, _)) = Self::locate(at, j as u32) {
                    let max = if chars { &mut grams } else { &mut words };
                    for (m, x) in max.iter_mut().zip(w) {
                        *m = m.max(x.abs());
                    }
                }
            }
            for (scales, max) in [
                (&mut self.scales.words, words),
                (&mut self.scales.grams, grams),
            ] {
                scales.resize(column, 1.0);
                scales.extend(scales_for(&max));
            }
        }
        for (j, w) in weights.chunks_exact(outputs).enumerate() {
            let Some((chars, p)) = Self::locate(at, j as u32) else {
                continue;
            };
            let (table, scales) = if chars {
                (&mut self.chars, &self.scales.grams)
            } else {
                (&mut self.words, &self.scales.words)
            };
            if let Some(row) = table.row_mut(p) {
                for (k, &x) in w.iter().enumerate() {
                    let l = column + k;
                    row.weights[l] = T::store(x / scale(scales, l));
                }
            }
        }
    }

    /// For every single-word term, its character block's contribution to
    /// every column (Σ_g e_g · W_g over its character n-grams) and squared
    /// norm, into its row: scoring then reads one row per word in the
    /// vocabulary.
    fn precompute_word_chars(&mut self, fz: &Featurizer, at: &[u32], columns: usize) {
        use rayon::prelude::*;
        // Worked out on every core in chunks of terms (each term's sums in
        // the same order as on one core, so the result does not depend on
        // the number of cores), then written into the rows.
        const CHUNK: usize = 8192;
        let stride = columns + 1;
        let this = &*self;
        let chunks: Vec<(Vec<u32>, Vec<f32>)> = (0..fz.len().div_ceil(CHUNK))
            .into_par_iter()
            .map_init(
                || (Scratch::default(), Vec::new()),
                |(scratch, tokens), c| {
                    let (mut terms, mut sums) = (Vec::new(), Vec::new());
                    for j in c * CHUNK..((c + 1) * CHUNK).min(fz.len()) {
                        let term = fz.term(j as u32);
                        // Word n-grams (spaces), character n-grams and
                        // markers are never single words: most terms are
                        // ruled out without tokenizing them.
                        if term.contains(' ') || term.starts_with(['<', '!', '?']) || term.contains(':') {
                            continue;
                        }
                        crate::text::tokenize(term, tokens);
                        let single_word = matches!(tokens.as_slice(), [t] if t.kind == crate::text::TokenKind::Word
                            && t.start == 0 && t.end as usize == term.len()
                            && t.hash == fz.vocabulary().hashes[j]);
                        if !single_word {
                            continue;
                        }
                        let (sq, grams) = fz.word_chars(term, scratch);
                        let mut acc = [0f32; W];
                        let scales = &this.scales.grams;
                        for &(g, v) in grams {
                            if let Some(row) = this.row(at, g) {
                                acc[..columns]
                                    .iter_mut()
                                    .zip(&row.weights)
                                    .enumerate()
                                    .for_each(|(l, (a, w))| *a += v * (w.value() * scale(scales, l)));
                            }
                        }
                        terms.push(j as u32);
                        sums.extend_from_slice(&acc[..columns]);
                        sums.push(sq);
                    }
                    (terms, sums)
                },
            )
            .collect();
        if T::SCALED {
            let mut max = vec![0f32; columns];
            for (_, sums) in &chunks {
                for sum in sums.chunks_exact(stride) {
                    for (m, x) in max.iter_mut().zip(sum) {
                        *m = m.max(x.abs());
                    }
                }
            }
            self.scales.chars = scales_for(&max);
        }
        for (terms, sums) in chunks {
            for (&j, sum) in terms.iter().zip(sums.chunks_exact(stride)) {
                let scales = &self.scales.chars;
                let Some((false, p)) = Self::locate(at, j) else {
                    continue;
                };
                if let Some(row) = self.words.row_mut(p) {
                    for (l, &x) in sum[..columns].iter().enumerate() {
                        row.chars[l] = T::store(x / scale(scales, l));
                    }
                    row.set_sq(sum[columns]);
                }
            }
        }
    }
}

impl Model {
    /// Loads and checks a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let (data, id) = ModelData::load(path)?;
        Self::from_data(data, id, path)
    }

    /// Loads and checks a model file unless its id is `unless`: `None`
    /// then, after reading and checksumming the file but before decoding
    /// and compiling it, so that reloading unchanged content holds no
    /// second model in memory.
    pub fn load_unless(path: &Path, unless: Option<&str>) -> Result<Option<Self>, ModelError> {
        let bytes = super::open::read_model_file(path)?;
        let (payload, id) = ModelData::checked_payload(&bytes, path)?;
        if unless == Some(id.as_str()) {
            return Ok(None);
        }
        let (data, id) = ModelData::decode(payload, id, path)?;
        // The file's bytes go before the tables are built.
        drop(bytes);
        Self::from_data(data, id, path).map(Some)
    }

    /// Compiles checked model data; `path` names it in errors.
    pub fn from_data(mut data: ModelData, id: String, path: &Path) -> Result<Self, ModelError> {
        let invalid = |source: InvalidModel| ModelError::Content {
            path: path.to_path_buf(),
            source,
        };
        let vocab = std::mem::take(&mut data.vocabulary);
        let featurizer =
            Featurizer::from_vocabulary(vocab).map_err(|e: FeatureError| invalid(e.into()))?;
        let columns: usize = data.heads.iter().map(HeadData::columns).sum();
        let with_chars = featurizer.settings().char_range().is_some();
        let mut at = vec![0u32; featurizer.len()];
        let mut tables = match columns {
            c if c <= Row::<f32, NARROW>::COLUMNS => {
                Pair::new(&featurizer, &mut at).map(Tables::Narrow)
            }
            c if c <= Row::<i16, PACKED>::COLUMNS => {
                Pair::new(&featurizer, &mut at).map(Tables::Packed)
            }
            c if c <= Row::<i16, DOUBLE>::COLUMNS => {
                Pair::new(&featurizer, &mut at).map(Tables::Double)
            }
            _ => Pair::new(&featurizer, &mut at).map(Tables::Widest),
        }
        .map_err(invalid)?;
        let mut intercepts = Vec::with_capacity(columns);
        let mut heads = Vec::with_capacity(data.heads.len());
        let (mut column, mut offset) = (0, 0);
        let mut linear = Vec::new();
        for h in &mut data.heads {
            let k = kept(h.labels.len());
            // The head's own (joint) model, then a mixture's gate and its
            // linear experts, each in the next columns. Their weights
            // live in the tables from then on.
            let mut put = |weights: &mut Vec<f32>, intercept: &[f32], classes: usize| {
                let (kept_weights, kept_intercept) = shift(weights, intercept, classes);
                let n = kept(classes);
                with_tables!(&mut tables, t => t.set_weights(&at, column, n, &kept_weights));
                intercepts.extend_from_slice(&kept_intercept);
                *weights = Vec::new();
                column += n;
                column - n
            };
            let labels = h.labels.len();
            let own = h
                .has_joint()
                .then(|| put(&mut h.weights, &h.intercept, labels));
            let mixture = h.mixture.as_mut().map(|m| {
                let sources = m.sources.len();
                let gate = put(&mut m.gate.weights, &m.gate.intercept, sources);
                let experts: Vec<Answer> = m
                    .experts
                    .iter_mut()
                    .map(|e| match e {
                        Expert::Linear(l) => {
                            Answer::Column(put(&mut l.weights, &l.intercept, labels))
                        }
                        Expert::Constant(p) => Answer::Constant(p.clone()),
                    })
                    .collect();
                // Validated: a linear expert's.
                let after_contrast = m
                    .after_contrast
                    .and_then(|e| match experts.get(e as usize) {
                        Some(Answer::Column(c)) => Some(*c),
                        _ => None,
                    });
                Blend {
                    joint_weight: m.joint_weight,
                    gate,
                    sources,
                    experts,
                    after_contrast,
                }
            });
            // The head's linear models, in the order `classify` reads
            // their probabilities.
            let linked = linear.iter().map(|&(_, classes)| classes).sum();
            linear.extend(own.map(|c| (c, labels)));
            if let Some(b) = &mixture {
                linear.push((b.gate, b.sources));
                linear.extend(b.experts.iter().filter_map(|e| match e {
                    Answer::Column(c) => Some((*c, labels)),
                    Answer::Constant(_) => None,
                }));
            }
            heads.push(Head {
                name: h.name.clone(),
                scope: h.scope,
                labels: h.labels.clone(),
                threshold: h.threshold,
                column: own,
                outputs: k,
                offset,
                mixture,
                linked,
            });
            offset += h.labels.len();
        }
        if with_chars {
            with_tables!(&mut tables, t => t.precompute_word_chars(&featurizer, &at, columns));
        }
        let after_contrast = heads
            .iter()
            .filter_map(|h| Some((h.mixture.as_ref()?.after_contrast?, h.outputs)))
            .collect();
        // The markers' positions in the word table (their features are
        // word-block ones).
        let markers = featurizer
            .markers()
            .map(|j| at.get(j as usize).map_or(NO_FEATURE, |&p| p & !IN_CHARS));
        Ok(Self {
            data,
            id,
            featurizer,
            heads,
            tables,
            at,
            intercepts,
            columns,
            with_chars,
            markers,
            links: Links::new(&linear),
            labels: offset,
            after_contrast,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn heads(&self) -> &[Head] {
        &self.heads
    }

    /// Every head's index, in the model's order: what [`Model::score`]
    /// takes to score with all of them.
    pub fn every_head(&self) -> Vec<usize> {
        (0..self.heads.len()).collect()
    }
    /// Stored metadata, without the vocabulary (see [`Model::featurizer`])
    /// and the head weights (compiled into the scorer).
    pub fn data(&self) -> &ModelData {
        &self.data
    }
    pub fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }
    pub fn head_index(&self, name: &str) -> Option<usize> {
        self.heads.iter().position(|h| h.name == name)
    }

    /// Feature `j`'s weight in `column` (0 for no such feature or column).
    pub(super) fn weight(&self, j: u32, column: usize) -> f32 {
        with_tables!(&self.tables, t => t.weight(&self.at, j, column)).unwrap_or(0.0)
    }

    /// Every head's raw scores (log-odds or class scores) for the passage,
    /// into `scores` (one per column). Tokenizes once, and never
    /// builds the passage's vector: each word-block feature adds
    /// tf·idf·W (normalised at the end), and each word adds its
    /// precomputed character contribution (computed on the spot only for
    /// words outside the vocabulary).
    fn raw_scores(&self, passage: &str, scratch: &mut Scratch, scores: &mut Vec<f32>) {
        match &self.tables {
            Tables::Narrow(t) => self.raw_scores_in::<_, _, false>(t, passage, scratch, scores),
            // `i16` rows, each kind compiled on its own, so that the
            // narrow rows' code (the default model's) is laid out as it
            // was without them.
            Tables::Packed(t) => self.raw_scores_wide(t, passage, scratch, scores),
            Tables::Double(t) => self.raw_scores_wide(t, passage, scratch, scores),
            Tables::Widest(t) => self.raw_scores_wide(t, passage, scratch, scores),
        }
    }

    /// [`Model::raw_scores`] for `i16` rows: in its AVX2 build where the
    /// CPU has AVX2 (see [`sum_words_avx2`]). Runtime dispatch rather
    /// than a build for AVX2 CPUs only, so that the one binary runs on any
    /// x86_64. Measured with `slant bench score` (alternating runs, medians,
    /// identical output): `data/mixture.toml`'s model (then 48-lane rows) went
    /// from 320k to 363k passages/s (7 runs). For `f32` rows of eight
    /// lanes (the default model's), a whole AVX2 build was no faster, and
    /// their code is left as it was (596k before, 597k after, 15 runs).
    #[inline(never)]
    fn raw_scores_wide<const W: usize>(
        &self,
        t: &Pair<i16, W>,
        passage: &str,
        scratch: &mut Scratch,
        scores: &mut Vec<f32>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: this CPU has AVX2.
            unsafe { self.raw_scores_avx2(t, passage, scratch, scores) };
            return;
        }
        self.raw_scores_in::<_, _, false>(t, passage, scratch, scores);
    }

    /// [`Model::raw_scores_wide`]'s AVX2 build.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn raw_scores_avx2<const W: usize>(
        &self,
        t: &Pair<i16, W>,
        passage: &str,
        scratch: &mut Scratch,
        scores: &mut Vec<f32>,
    ) {
        self.raw_scores_in::<_, _, true>(t, passage, scratch, scores);
    }

    /// [`Model::raw_scores`] with the tables' rows `W` lanes wide. `AVX2`
    /// true calls AVX2 code: only [`Model::raw_scores_avx2`] (and a test
    /// that checks for AVX2 first) may pass it, so that the word sums run
    /// in their AVX2 build too.
    #[inline(always)]
    fn raw_scores_in<T: Lane, const W: usize, const AVX2: bool>(
        &self,
        t: &Pair<T, W>,
        passage: &str,
        scratch: &mut Scratch,
        scores: &mut Vec<f32>,
    ) {
        let fz = &self.featurizer;
        // Features are numbered by their positions in the tables, whose
        // rows are fetched as their lookups start. The character n-grams
        // of words outside the vocabulary are hashed and their lookups
        // started as soon as the unigrams say which words those are, and
        // finished after the word block's sums, which hides the wait.
        let chars_index = self.with_chars.then_some(&t.chars);
        let words = fz
            .scan(&t.words, chars_index, passage, scratch)
            .words(&self.markers)
            .group();
        let c = self.columns;
        let (word, mut chars, norm) = sum_words::<_, _, AVX2>(
            &t.words,
            words.distinct(),
            words.counts(),
            |count| fz.tf(count as usize),
            words.word_features(),
        );
        scores.clear();
        scores.extend_from_slice(&self.intercepts);
        // A feature outside the word block's norm (the lexicon's compound
        // score, the first word, the market markers): `v` times its row.
        let sc = &t.scales.words;
        let outside_norm = |scores: &mut Vec<f32>, v: f32, row: &Row<T, W>| {
            scores
                .iter_mut()
                .zip(&row.weights[..c])
                .enumerate()
                .for_each(|(l, (s, w))| *s += v * (w.value() * scale(sc, l)));
        };
        if let Some((row, v)) = words
            .lexicon_score()
            .and_then(|(j, v)| Some((t.row(&self.at, j)?, v)))
        {
            outside_norm(scores, v, row);
        }
        if let Some(row) = words.first_word().and_then(|p| t.words.row(p)) {
            outside_norm(scores, crate::features::FIRST_WORD_VALUE, row);
        }
        if words.has_market() {
            for (p, count) in words.market() {
                if let Some(row) = t.words.row(p) {
                    outside_norm(scores, fz.tf(count as usize), row);
                }
            }
        }
        if norm > 0.0 {
            let inv = norm.sqrt().recip();
            let sc = &t.scales.words;
            scores
                .iter_mut()
                .zip(word.iter())
                .enumerate()
                .for_each(|(l, (s, a))| *s += a * (inv * scale(sc, l)));
        }
        if self.with_chars {
            let oov = words.chars();
            // Lanes 0..c sum the words' character contributions, lane SQ
            // their squared norms. Words in the vocabulary were added with
            // their rows above; here, the n-grams of each word outside it,
            // count × idf each, as `Featurizer::word_chars`: into the same
            // sums for `f32` rows, into their own for `i16` rows (whose
            // character table has scales of its own).
            let mut own = [0f32; W];
            let grams_sums = if T::SCALED { &mut own } else { &mut chars };
            for grams in oov.words() {
                let mut sq = 0.0f32;
                for (g, count) in grams {
                    let Some(row) = t.chars.row(g) else {
                        continue;
                    };
                    let v = count as f32 * row.idf();
                    sq += v * v;
                    add_weights(grams_sums, v, row);
                }
                grams_sums[Row::<T, W>::SQ] += sq;
            }
            let total = chars[Row::<T, W>::SQ] + own[Row::<T, W>::SQ];
            if total > 0.0 {
                let factor = fz.settings().char_weight / total.sqrt();
                let Scales {
                    chars: sc,
                    grams: sg,
                    ..
                } = &t.scales;
                scores
                    .iter_mut()
                    .zip(chars.iter().zip(&own))
                    .enumerate()
                    .for_each(|(l, (s, (a, b)))| {
                        *s += (a * scale(sc, l) + b * scale(sg, l)) * factor
                    });
            }
        }
    }

    /// Scoring's scan alone, for `bench score --stages`: the word block's
    /// lookups and grouping, and with `chars` the character n-grams' of
    /// words outside the vocabulary. Returns the number of features found.
    pub(crate) fn lookups(&self, passage: &str, ws: &mut Workspace, chars: bool) -> usize {
        let fz = &self.featurizer;
        with_tables!(&self.tables, t => {
            let chars_index = (chars && self.with_chars).then_some(&t.chars);
            let words = fz
                .scan(&t.words, chars_index, passage, &mut ws.scan)
                .words(&self.markers)
                .group();
            let n = words.distinct().len();
            if chars_index.is_some() {
                n + words.chars().len()
            } else {
                n
            }
        })
    }

    /// Scores one passage with every head, without allocating: each head's
    /// probabilities land in `ws.probabilities` (head `h` at
    /// `Head::offset`) and its decided label in `ws.labels[h]`.
    pub fn classify(&self, passage: &str, ws: &mut Workspace) {
        let Workspace {
            scan,
            scores,
            after,
            probabilities,
            labels,
            linked,
            exps,
        } = ws;
        scan.contrast = if self.after_contrast.is_empty() {
            Contrast::Ignore
        } else {
            Contrast::Find
        };
        self.raw_scores(passage, scan, scores);
        if scan.contrasted {
            // The experts that read what follows the contrast take their
            // columns from a second pass over that alone, from the tokens
            // the first kept. Its rows were fetched by the first pass: the
            // second waits on no memory.
            scan.contrast = Contrast::Kept;
            self.raw_scores(passage, scan, after);
            for &(c, n) in &self.after_contrast {
                if let (Some(dst), Some(src)) = (scores.get_mut(c..c + n), after.get(c..c + n)) {
                    dst.copy_from_slice(src);
                }
            }
            scan.contrast = Contrast::Find;
        }
        self.links.run(scores, exps, linked);
        // Sized once (the first passage); later passages overwrite.
        probabilities.resize(self.labels, 0.0);
        labels.resize(self.heads.len(), 0);
        for (head, label) in self.heads.iter().zip(labels.iter_mut()) {
            let n = head.labels.len();
            let Some(p) = probabilities.get_mut(head.offset..head.offset + n) else {
                continue;
            };
            let (own, g, mut experts) = head.models(linked);
            match (own, &head.mixture) {
                (Some(own), mixture) => {
                    copy_small(p, own);
                    // A mixture's joint model weighs λ.
                    if let Some(b) = mixture {
                        p.iter_mut().for_each(|x| *x *= b.joint_weight);
                    }
                }
                // A mixture without a joint model: its experts alone.
                (None, _) => p.fill(0.0),
            }
            if let Some(b) = &head.mixture {
                for (answer, &gs) in b.experts.iter().zip(g) {
                    let share = (1.0 - b.joint_weight) * gs;
                    match answer {
                        Answer::Column(_) => {
                            let (q, rest) = experts.split_at_checked(n).unwrap_or_default();
                            add_share(p, share, q);
                            experts = rest;
                        }
                        Answer::Constant(c) => add_share(p, share, c),
                    }
                }
            }
            *label = head.decide(p);
        }
    }
}

/// `dst.copy_from_slice(src)` for the two or three probabilities of a
/// head, without the call to `memcpy` that a copy of unknown length
/// compiles to (1% of scoring, measured with perf).
#[inline(always)]
fn copy_small(dst: &mut [f64], src: &[f64]) {
    match (dst, src) {
        ([a, b], [x, y]) => (*a, *b) = (*x, *y),
        ([a, b, c], [x, y, z]) => (*a, *b, *c) = (*x, *y, *z),
        (dst, src) => dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s),
    }
}

#[cfg(test)]
mod tests {
    use super::super::link::link;
    use super::super::tiny;
    use super::*;
    use crate::features::{FeatureParams, FeatureSettings};
    use linfa::ParamGuard;

    /// settings leave no vocabulary.
    fn model_with(settings: FeatureSettings, lexicon: bool, extra_heads: usize) -> Option<Model> {
        let data = data_with(settings, lexicon, extra_heads)?;
        Some(Model::from_data(data, "t".into(), Path::new("t")).unwrap())
    }

    /// The model data [`model_with`] compiles.
    fn data_with(
        settings: FeatureSettings,
        lexicon: bool,
        extra_heads: usize,
    ) -> Option<ModelData> {
        data_repeated(settings, lexicon, extra_heads, 1)
    }

    /// [`data_with`] fitted on its corpus `repeats` times over (so that
    /// every word's document frequency is `repeats` times higher).
    fn data_repeated(
        settings: FeatureSettings,
        lexicon: bool,
        extra_heads: usize,
        repeats: usize,
    ) -> Option<ModelData> {
        let settings = FeatureParams(settings).check().unwrap();
        let corpus = [
            "Shocking news: the senator lied!!",
            "Markets rally as rates fall",
            "Über café naïve résumé",
            "GOOD news, not bad: the rally is very good",
            "ΟΔΟΣ οδος 東京 3.5 rates fall?? but awful",
            "It does n't rally With The French in Paris, John",
            "Muslim news Of The rally: not good With rates",
        ];
        let words: Vec<(String, f32)> =
            [("good", 1.9), ("bad", -2.5), ("awful", -2.0), ("café", 0.7)]
                .iter()
                .filter(|_| lexicon)
                .map(|&(w, v)| (w.to_string(), v))
                .collect();
        let corpus = corpus.iter().copied().cycle().take(corpus.len() * repeats);
        let f = Featurizer::fit_with_lexicon(&settings, &words, corpus, || {}).ok()?;
        let mut data = tiny();
        let n = f.len();
        data.vocabulary = f.vocabulary().clone();
        let mut unit = crate::testing::uniform(0x2545_f491_4f6c_dd1d);
        let mut rnd = move || (unit() * 2.0 - 1.0) as f32;
        data.heads[0].weights = (0..n * 3).map(|_| rnd()).collect();
        data.heads[1].weights = (0..n).map(|_| rnd()).collect();
        for k in 0..extra_heads {
            let mut head = data.heads[0].clone();
            head.name = format!("extra{k}");
            head.weights = (0..n * 3).map(|_| rnd()).collect();
            data.heads.push(head);
        }
        Some(data)
    }

    /// [`model_with`] character 2–4-grams, every word a feature, no lexicon.
    fn with_chars(extra_heads: usize) -> Model {
        let settings = FeatureSettings {
            char_weight: 0.7,
            ..char_settings()
        };
        model_with(settings, false, extra_heads).unwrap()
    }

    /// Character 2–4-grams, every word a feature.
    fn char_settings() -> FeatureSettings {
        FeatureSettings {
            char_ngrams: [2, 4],
            min_df: 1,
            ..Default::default()
        }
    }

    /// Raw scores from the reference vector (`Featurizer::transform`):
    /// what the fast path must agree with.
    fn reference_scores(m: &Model, passage: &str, ws: &mut Scratch) -> Vec<f32> {
        let vector = m.featurizer.transform(passage, ws);
        let mut reference = m.intercepts.clone();
        for &(j, v) in vector {
            for (l, r) in reference.iter_mut().enumerate() {
                *r += v * m.weight(j, l);
            }
        }
        reference
    }

    /// The fast path's raw scores against [`reference_scores`]; `case`
    /// names the case in a failure.
    fn fast_matches_reference(
        m: &Model,
        passage: &str,
        case: &dyn std::fmt::Debug,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut ws = Scratch::default();
        let mut fast = Vec::new();
        m.raw_scores(passage, &mut ws, &mut fast);
        let reference = reference_scores(m, passage, &mut ws);
        // `i16` rows round each word's character contribution to 1/65534
        // of its column's largest (the reference reads the same rounded
        // weights, but sums a word's n-grams itself).
        let tolerance = match m.tables {
            Tables::Narrow(_) => 1e-4,
            _ => 1e-3,
        };
        for (a, b) in fast.iter().zip(&reference) {
            proptest::prop_assert!((a - b).abs() < tolerance, "{} vs {} for {:?}", a, b, case);
        }
        Ok(())
    }

    proptest::prop_compose! {
        /// Feature settings across what `FeatureSettings::validate` allows,
        /// with the lexicon on or off.
        fn any_settings()(
            word_ngrams in proptest::sample::select(vec![[1u8, 1], [1, 2], [1, 3], [2, 2], [2, 3], [3, 5]]),
            char_ngrams in proptest::sample::select(vec![[0u8, 0], [1, 1], [2, 4], [3, 5], [5, 8]]),
            caps_marker in proptest::bool::ANY,
            sublinear_tf in proptest::bool::ANY,
            min_df in 1u32..=3,
            max_features in proptest::sample::select(vec![0usize, 5, 40]),
            weight in proptest::sample::select(vec![1.0f32, 0.3, 2.5]),
            lexicon in proptest::bool::ANY,
            negation_scope in proptest::bool::ANY,
            title_marker in proptest::bool::ANY,
            first_word in proptest::bool::ANY,
            identity_classes in proptest::bool::ANY,
            typo_aliases in proptest::bool::ANY,
            expand_contractions in proptest::bool::ANY,
            skip_handles in proptest::bool::ANY,
            market_words in proptest::bool::ANY,
        ) -> (FeatureSettings, bool) {
            let settings = FeatureSettings {
                word_ngrams,
                char_ngrams,
                caps_marker,
                sublinear_tf,
                min_df,
                max_features,
                char_weight: weight,
                lexicon_weight: weight,
                negation_scope,
                title_marker,
                first_word,
                identity_classes,
                typo_aliases,
                expand_contractions,
                skip_handles,
                market_words,
            };
            (settings, lexicon)
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_scores_equal_the_reference_vector(passage in "(shocking|news|the|senator|lied|rally|zebra|Über|café|!!|LIED|[a-z]{1,6}| |, ){0,12}", extra_heads in 0usize..8) {
            fast_matches_reference(&with_chars(extra_heads), &passage, &passage)?;
        }

        /// With first words read: the row the scorer adds outside the norm
        /// (every head's random weights on it are not zero) is what the
        /// reference vector holds, after leading handles and links too.
        #[test]
        fn fast_scores_equal_the_reference_with_first_words(
            passage in "(@user1 |https://t\\.co/x1 |!! |  )?(Shocking|shocking|Markets|Über|GOOD|good|It|Muslim|zebra)( (news|rally|the|senator|lied|café|!!|[a-z]{1,6})){0,8}",
            extra_heads in 0usize..4,
        ) {
            let settings = FeatureSettings {
                first_word: true,
                char_weight: 0.7,
                ..char_settings()
            };
            let m = model_with(settings, true, extra_heads).unwrap();
            // Every corpus passage's opening is a feature (min_df 1).
            proptest::prop_assert_eq!(m.featurizer.first_word_features().count(), 7);
            fast_matches_reference(&m, &passage, &passage)?;
        }

        /// The same under every kind of feature settings: what each path
        /// reads from the settings must agree.
        #[test]
        fn fast_scores_equal_the_reference_under_any_settings(
            (settings, lexicon) in any_settings(),
            passage in "(good|GOOD|bad|not|n't|isn't|ISN’T|doesn't|can't|won't|never|very|but|awful|café|CAFÉ|news|rally|fell|surged|With|The|Of|French|french|Muslim|Paris|paris|John|ΟΔΟΣ|οδος|東京|3.5|!!|\\?\\?|ogod|AWFLU|rlaly|sentor|nwes|@rlaly|goood|raally|@news|@x_1:|[a-z]{1,6}| |, |\\. ){0,14}",
            extra_heads in proptest::sample::select(vec![0usize, 2, 4, 12, 16]),
        ) {
            if let Some(m) = model_with(settings.clone(), lexicon, extra_heads) {
                fast_matches_reference(&m, &passage, &(&passage, &settings))?;
            }
        }
    }

    /// With `typo_aliases`, a misspelt word (or one with a letter held
    /// down) alone scores as the word meant
    /// (its unigram, lexicon entry and characters; alone, it has no
    /// n-grams with other words), in the fast path and the reference; a
    /// handle and a link do not.
    #[test]
    fn a_misspelt_word_scores_as_the_word_meant() {
        let settings = FeatureSettings {
            typo_aliases: true,
            char_weight: 0.7,
            ..char_settings()
        };
        let off = FeatureSettings {
            typo_aliases: false,
            ..settings.clone()
        };
        // Words seen in 20 documents (`typos::MIN_DF`), and not in 19.
        let compile = |settings, repeats| {
            let data = data_repeated(settings, true, 2, repeats).unwrap();
            Model::from_data(data, "t".into(), Path::new("t")).unwrap()
        };
        let (m, off, rare) = (
            compile(settings.clone(), 20),
            compile(off, 20),
            compile(settings, 19),
        );
        let scores = checked_scores;
        for (written, meant) in [
            ("shcoking", "shocking"),
            ("snator", "senator"),
            ("AWFLU", "AWFUL"),
            ("ogod", "good"),
            ("goooood", "good"),
            ("AWFULLL", "AWFUL"),
            ("shockkking", "shocking"),
        ] {
            assert_eq!(scores(&m, written), scores(&m, meant), "{written}");
            assert_ne!(scores(&off, written), scores(&off, meant), "{written}");
        }
        // The lexicon's words whatever their frequency; others only when
        // common enough.
        assert_eq!(scores(&rare, "awflu"), scores(&rare, "awful"));
        assert_ne!(scores(&rare, "snator"), scores(&rare, "senator"));
        // Handles, links and capitalised words inside a passage (names,
        // more often than slips) are not read as other words; a passage's
        // first word and a word in capitals are.
        for passage in ["@snator", "https://t.co/snator", "the Snator"] {
            assert_eq!(scores(&m, passage), scores(&off, passage), "{passage}");
        }
        assert_eq!(scores(&m, "Snator"), scores(&m, "Senator"));
        assert_eq!(scores(&m, "rates SNATOR"), scores(&m, "rates SENATOR"));
    }

    /// The fast path's raw scores of `passage`, checked against the
    /// reference.
    fn checked_scores(m: &Model, passage: &str) -> Vec<f32> {
        fast_matches_reference(m, passage, &passage).unwrap();
        let (mut ws, mut out) = (Scratch::default(), Vec::new());
        m.raw_scores(passage, &mut ws, &mut out);
        out
    }

    /// Models of [`data_with`] under `on` (a scoring-time reading set)
    /// and under `on` with `unset` applied, after checking that each pair
    /// of passages scores the same with the reading and differently
    /// without it.
    fn read_alike(
        on: FeatureSettings,
        unset: impl FnOnce(&mut FeatureSettings),
        pairs: &[(&str, &str)],
    ) -> (Model, Model) {
        let mut off = on.clone();
        unset(&mut off);
        let compile = |settings| {
            let data = data_with(settings, true, 2).unwrap();
            Model::from_data(data, "t".into(), Path::new("t")).unwrap()
        };
        let (m, off) = (compile(on), compile(off));
        for &(a, b) in pairs {
            assert_eq!(checked_scores(&m, a), checked_scores(&m, b), "{a}");
            assert_ne!(checked_scores(&off, a), checked_scores(&off, b), "{a}");
        }
        (m, off)
    }

    /// With `expand_contractions`, a negative contraction scores as its
    /// two words written out, in the fast path and the reference; without
    /// it, as a word of its own.
    #[test]
    fn a_contracted_negation_scores_as_its_two_words() {
        let on = FeatureSettings {
            expand_contractions: true,
            negation_scope: true,
            char_weight: 0.7,
            ..char_settings()
        };
        let (m, off) = read_alike(
            on,
            |s| s.expand_contractions = false,
            &[
                ("the rally isn't good", "the rally is not good"),
                ("the rally ISN’T good", "the rally IS not good"),
                ("It doesn't rally", "It does not rally"),
            ],
        );
        // A detached "n't" (Penn Treebank tokens) is read as written.
        assert_eq!(
            checked_scores(&m, "It does n't rally"),
            checked_scores(&off, "It does n't rally")
        );
    }

    /// With `skip_handles`, a passage with handles scores as it does
    /// without them, in the fast path and the reference; without the
    /// setting, a handle's word counts.
    #[test]
    fn handles_are_left_out_when_scoring() {
        let on = FeatureSettings {
            skip_handles: true,
            negation_scope: true,
            first_word: true,
            char_weight: 0.7,
            ..char_settings()
        };
        read_alike(
            on,
            |s| s.skip_handles = false,
            &[
                ("the rally is good @news", "the rally is good"),
                ("@rally: Shocking news", "Shocking news"),
                (
                    "rates fall @senator @zq9x_ but awful",
                    "rates fall but awful",
                ),
            ],
        );
    }

    proptest::proptest! {
        /// With typo aliases and words common enough to be read (every
        /// corpus passage 20 times over), misspelt and stretched words
        /// among them, the fast path and the reference agree.
        #[test]
        fn fast_scores_equal_the_reference_with_typo_aliases(
            passage in "(Shocking|shcoking|snator|Snator|rlaly|RLALY|nwes|sentor|goooood|@rlaly|https://t\\.co/nwes|not|isn't|doesn’t|can't|rally|news|the|\\. |, |[a-z]{1,6}| ){0,14}",
            lexicon in proptest::bool::ANY,
            expand_contractions in proptest::bool::ANY,
        ) {
            let settings = FeatureSettings {
                typo_aliases: true,
                expand_contractions,
                negation_scope: true,
                first_word: true,
                char_weight: 0.7,
                ..char_settings()
            };
            let data = data_repeated(settings, lexicon, 2, 20).unwrap();
            let m = Model::from_data(data, "t".into(), Path::new("t")).unwrap();
            fast_matches_reference(&m, &passage, &passage)?;
        }
    }

    /// The probabilities of a model over `classes` classes whose kept
    /// scores start at column `c` of `raw`: the log-odds for two, else 0
    /// then the others.
    fn column_probs(raw: &[f32], c: usize, classes: usize) -> Vec<f64> {
        let mut z: Vec<f64> = raw[c..c + kept(classes)]
            .iter()
            .map(|&s| f64::from(s))
            .collect();
        if classes > 2 {
            z.insert(0, 0.0);
        }
        let mut p = vec![0.0; classes];
        link(&z, &mut p);
        p
    }

    /// A mixture's probabilities are its joint model's and its experts'
    /// (linear or constant) blended by its gate, each from its own columns
    /// of the raw scores.
    #[test]
    fn a_mixture_blends_its_experts_by_the_gate() {
        let mut data = data_with(char_settings(), true, 0).unwrap();
        super::super::make_mixture(&mut data, 0, 7, 0.3);
        // The second without a joint model (joint weight 0).
        super::super::make_mixture(&mut data, 1, 11, 0.0);
        let m = Model::from_data(data, "t".into(), Path::new("t")).unwrap();
        // Kept columns: 2 + 2 (a gate over 3 sources) + 2 × 2, and
        // 2 + 2 × 1.
        assert_eq!(m.columns, 12);
        let mut ws = Workspace::default();
        let mut scratch = Scratch::default();
        for passage in [
            "Shocking news: the senator lied!!",
            "Markets rally as rates fall",
            "zebra",
        ] {
            m.classify(passage, &mut ws);
            let raw = reference_scores(&m, passage, &mut scratch);
            let probs = |c: usize, classes: usize| column_probs(&raw, c, classes);
            let mut start = 0;
            for (i, head) in m.heads.iter().enumerate() {
                let labels = head.labels.len();
                let k = head.outputs;
                // The joint model's columns, if it has one; then the
                // gate's, then the two linear experts'.
                let (lambda, joint, own) = match head.column {
                    Some(c) => (0.3, probs(c, labels), k),
                    None => (0.0, vec![0.0; labels], 0),
                };
                assert_eq!(head.column.unwrap_or(start), start);
                let gate = probs(start + own, 3);
                let first = probs(start + own + 2, labels);
                let second = probs(start + own + k + 2, labels);
                start += own + 2 + 2 * k;
                let constant = super::super::constant_answer(labels);
                let expected: Vec<f64> = (0..labels)
                    .map(|l| {
                        lambda * joint[l]
                            + (1.0 - lambda)
                                * (gate[0] * first[l] + gate[1] * constant[l] + gate[2] * second[l])
                    })
                    .collect();
                let (p, label) = ws.head(&m, i).unwrap();
                for (a, b) in p.iter().zip(&expected) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{passage:?} {}: {p:?} vs {expected:?}",
                        head.name
                    );
                }
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                assert_eq!(label, head.decide(p));
            }
        }
    }

    /// An expert set to read only what follows a contrast scores a passage
    /// with a contrasting "but" as it scores the words after it alone; the
    /// joint model, the gate and the other experts read the whole passage.
    #[test]
    fn an_expert_after_a_contrast_reads_what_follows_it() {
        let mut data = data_with(char_settings(), true, 0).unwrap();
        super::super::make_mixture(&mut data, 0, 7, 0.3);
        if let Some(m) = data.heads[0].mixture.as_mut() {
            m.after_contrast = Some(2);
        }
        let m = Model::from_data(data, "t".into(), Path::new("t")).unwrap();
        let head = &m.heads[0];
        let (labels, k) = (head.labels.len(), head.outputs);
        let second = head.after_contrast().unwrap();
        assert_eq!(second, k + 2 + k);
        let mut ws = Workspace::default();
        let mut scratch = Scratch::default();
        let probs = column_probs;
        for (passage, after) in [
            (
                "Shocking news, but the senator lied!!",
                "the senator lied!!",
            ),
            ("Markets rally but rates fall. But zebra", "zebra"),
            ("Markets rally as rates fall", "Markets rally as rates fall"),
            ("nothing but shocking news", "nothing but shocking news"),
            ("not only news but also lies", "not only news but also lies"),
        ] {
            m.classify(passage, &mut ws);
            assert_eq!(ws.scan.contrasted, passage != after, "{passage:?}");
            let whole = reference_scores(&m, passage, &mut scratch);
            let tail = reference_scores(&m, after, &mut scratch);
            let gate = probs(&whole, k, 3);
            let constant = super::super::constant_answer(labels);
            let (joint, first, last) = (
                probs(&whole, 0, labels),
                probs(&whole, k + 2, labels),
                probs(&tail, second, labels),
            );
            let (p, _) = ws.head(&m, 0).unwrap();
            for l in 0..labels {
                let expected = 0.3 * joint[l]
                    + 0.7 * (gate[0] * first[l] + gate[1] * constant[l] + gate[2] * last[l]);
                assert!((p[l] - expected).abs() < 1e-5, "{passage:?}: {p:?}");
            }
            // The other heads read the whole passage.
            let other = &m.heads[1];
            let expected = probs(&whole, other.column.unwrap(), other.labels.len());
            let (q, _) = ws.head(&m, 1).unwrap();
            for (a, b) in q.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-5, "{passage:?}: {q:?} vs {expected:?}");
            }
        }
    }

    /// The AVX2 build of the `i16` rows' sums gives the same bits as the
    /// baseline build, for every width.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_sums_the_same_bits() {
        if !has_avx2() {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let mut scratch = Scratch::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut widths = Vec::new();
        for extra in [4, 10, 18] {
            let m = with_chars(extra);
            for passage in [
                "Shocking news: the senator LIED!! not good, but awful",
                "zebra café Über 3.5 With The French rally",
                "",
            ] {
                fn row_bytes<T, const W: usize>(_: &Pair<T, W>) -> usize {
                    std::mem::size_of::<Row<T, W>>()
                }
                with_tables!(&m.tables, t => {
                    widths.push(row_bytes(t));
                    m.raw_scores_in::<_, _, false>(t, passage, &mut scratch, &mut a);
                    // This CPU has AVX2 (checked above).
                    m.raw_scores_in::<_, _, true>(t, passage, &mut scratch, &mut b);
                });
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{passage:?} with {extra} extra heads");
            }
        }
        widths.dedup();
        assert_eq!(widths.len(), 3, "{widths:?}");
    }

    /// Each column count gets the narrowest rows that hold it: `f32` in
    /// one cache line up to 6, `i16` in one line up to 12, in two up to 28.
    #[test]
    fn rows_are_as_narrow_as_the_columns_allow() {
        // The tiny model keeps 3 columns; each extra three-class head 2.
        let kind = |extra| match with_chars(extra).tables {
            Tables::Narrow(_) => "narrow",
            Tables::Packed(_) => "packed",
            Tables::Double(_) => "double",
            Tables::Widest(_) => "widest",
        };
        assert_eq!(
            [0, 1, 2, 5, 12, 13].map(kind),
            ["narrow", "narrow", "packed", "double", "double", "widest"]
        );
    }

    /// `i16` rows keep every weight within half a step of its column's
    /// scale, whatever the column's magnitude: what the scorer reads is the
    /// trained model, not only self-consistent.
    #[test]
    fn i16_rows_keep_each_weight_to_its_column_scale() {
        let mut data = data_with(char_settings(), true, 2).unwrap();
        // Columns of very different sizes: 2 + 1 + 2 + 2 = 7 kept, in
        // i16 rows.
        for (head, factor) in data.heads.iter_mut().zip([1.0f32, 0.01, 40.0, 1e-4]) {
            head.weights.iter_mut().for_each(|w| *w *= factor);
        }
        let heads = data.heads.clone();
        let m = Model::from_data(data, "t".into(), Path::new("t")).unwrap();
        assert!(matches!(m.tables, Tables::Packed(_)));
        let mut column = 0;
        for head in &heads {
            // As kept: a three-class head's weights minus its first class's.
            let outputs = head.outputs();
            let k = kept(head.labels.len());
            for c in 0..k {
                let original = |j: usize| {
                    let w = &head.weights[j * outputs..(j + 1) * outputs];
                    if outputs == 1 {
                        w[0]
                    } else {
                        w[c + 1] - w[0]
                    }
                };
                let n = head.weights.len() / outputs;
                let largest = (0..n).map(|j| original(j).abs()).fold(0f32, f32::max);
                // Half a step, and f32's rounding of the quotient (under
                // 1/256 of a step below 2^15).
                let bound = largest / f32::from(i16::MAX) * 0.51;
                for j in 0..n {
                    let read = m.weight(j as u32, column + c);
                    assert!(
                        (read - original(j)).abs() <= bound,
                        "{}: feature {j} column {c}: {read} for {}",
                        head.name,
                        original(j)
                    );
                }
            }
            column += k;
        }
    }

    #[test]
    fn repeats_among_hundreds_of_distinct_features_are_counted() {
        // Some 800 distinct features: many share a grouping bucket, and
        // most sit beyond what a bucket's one-byte position can name; each
        // word twice and some thrice.
        let settings = FeatureParams(FeatureSettings {
            min_df: 1,
            ..Default::default()
        })
        .check()
        .unwrap();
        let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let corpus = [words.join(" ")];
        let f = Featurizer::fit(&settings, corpus.iter().map(String::as_str), || {}).unwrap();
        let mut data = tiny();
        let n = f.len();
        data.vocabulary = f.vocabulary().clone();
        data.heads[0].weights = (0..n * 3).map(|i| (i % 7) as f32 / 7.0 - 0.4).collect();
        data.heads[1].weights = (0..n).map(|i| (i % 5) as f32 / 5.0 - 0.3).collect();
        let m = Model::from_data(data, "t".into(), Path::new("t")).unwrap();
        let passage = format!(
            "{} {} {}",
            words.join(" "),
            words.join(" "),
            words[..90].join(" ")
        );
        let mut ws = Scratch::default();
        let mut fast = Vec::new();
        m.raw_scores(&passage, &mut ws, &mut fast);
        let reference = reference_scores(&m, &passage, &mut ws);
        let distinct = ws.vector().len();
        assert!(distinct > 300, "{distinct} distinct");
        for (a, b) in fast.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn char_block_matches_hand_computation() {
        // One word "ab", char 2-grams of "_ab_": "_a", "ab", "b_"; with
        // idf a, b, c its block is (a, b, c) / ‖(a, b, c)‖ · char_weight.
        let settings = FeatureParams(FeatureSettings {
            word_ngrams: [1, 1],
            char_ngrams: [2, 2],
            caps_marker: false,
            char_weight: 0.5,
            ..Default::default()
        })
        .check()
        .unwrap();
        let f = Featurizer::fit(&settings, ["ab", "ab b"], || {}).unwrap();
        let mut ws = Scratch::default();
        f.transform("ab", &mut ws);
        let idx = |t: &str| f.vocabulary().terms.iter().position(|x| x == t).unwrap() as u32;
        let grams = ["ch:_a", "ch:ab", "ch:b_"];
        let idf: Vec<f32> = grams.iter().map(|g| f.idf(idx(g))).collect();
        let norm = idf.iter().map(|v| v * v).sum::<f32>().sqrt();
        for (g, i) in grams.iter().zip(&idf) {
            let v = ws.vector().iter().find(|(j, _)| *j == idx(g)).unwrap().1;
            assert!((v - 0.5 * i / norm).abs() < 1e-6, "{g}");
        }
        // The word block is the unigram alone, normalised to 1.
        assert!((ws.vector().iter().find(|(j, _)| *j == idx("ab")).unwrap().1 - 1.0).abs() < 1e-6);
    }
}
