//! The scorer's feature tables: each feature's row placed by a perfect
//! hash of the feature's hash, with that hash in the row. A lookup reads
//! one cache line, found or not, and that line's address is known as soon
//! as the hash is: no index slot has to arrive first to say where the row
//! is. (The featurizer's own [`HashIndex`](crate::features) costs a line
//! for the slot and another for the row.)

use crate::features::{prefetch_at, Lookup, NO_FEATURE};

/// A perfect hash of distinct 64-bit keys, PTHash-style: keys fall into
/// buckets, and each bucket has a one-byte pilot that sends all its keys
/// to positions no other key takes. A lookup reads its bucket's pilot from
/// a table of a few tens of kilobytes, which stays in cache, and computes
/// the position. Keys that are not in the set get some position too: the
/// caller checks what it finds there.
#[derive(Debug, Clone)]
pub(super) struct PerfectHash {
    pilots: Vec<u8>,
    buckets: u64,
    positions: u64,
    seed: u64,
}

/// Keys per bucket, on average. Fewer make the pilot table larger; more
/// make one-byte pilots hard to find.
const KEYS_PER_BUCKET: f64 = 3.0;
/// Keys per position on the attempts in turn (with a new seed each):
/// 0.8 succeeds at once on the default model; lower loads are a fallback
/// that always succeeds in practice.
const LOADS: [f64; 8] = [0.8, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4, 0.3];
const PILOT_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const MIX: u64 = 0xbf58_476d_1ce4_e5b9;
const SEED_MUL: u64 = 0x2545_f491_4f6c_dd1d;

/// `x` scaled from [0, 2^64) to [0, n): its high bits choose.
#[inline(always)]
fn scale(x: u64, n: u64) -> usize {
    ((u128::from(x) * u128::from(n)) >> 64) as usize
}

/// Where `pilot` sends `h`. A multiplication and a shift mix all of the
/// key's bits into the high ones that [`scale`] reads: keys of one bucket
/// share their high bits, and must still scatter differently per pilot.
#[inline(always)]
fn place(h: u64, seed: u64, pilot: u8, positions: u64) -> usize {
    let x = (h ^ seed ^ u64::from(pilot).wrapping_mul(PILOT_MUL)).wrapping_mul(MIX);
    scale(x ^ (x >> 28), positions)
}

impl PerfectHash {
    /// A perfect hash of `keys` (distinct), and each key's position.
    /// Deterministic: the same keys in the same order give the same hash.
    /// `None` only if every attempt fails, which distinct keys make
    /// vanishingly unlikely.
    pub(super) fn build(keys: &[u64]) -> Option<(Self, Vec<u32>)> {
        let n = keys.len();
        LOADS.iter().enumerate().find_map(|(attempt, &load)| {
            // Two positions at least, so that an empty one can be given
            // a hash that leads elsewhere.
            let positions = ((n as f64 / load).ceil() as u64).max(2);
            let buckets = ((n as f64 / KEYS_PER_BUCKET).ceil() as u64).max(1);
            let seed = (attempt as u64).wrapping_mul(SEED_MUL);
            Self::attempt(keys, seed, buckets, positions)
        })
    }

    fn attempt(keys: &[u64], seed: u64, buckets: u64, positions: u64) -> Option<(Self, Vec<u32>)> {
        // Positions are u32s with the top bit free (see `Model::at`).
        if positions > 1 << 31 {
            return None;
        }
        let nb = buckets as usize;
        // Keys grouped by bucket: a counting sort.
        let mut start = vec![0usize; nb + 1];
        for &h in keys {
            start[scale(h, buckets) + 1] += 1;
        }
        for b in 0..nb {
            start[b + 1] += start[b];
        }
        let mut next = start.clone();
        let mut grouped = vec![0u32; keys.len()];
        for (k, &h) in keys.iter().enumerate() {
            let b = scale(h, buckets);
            grouped[next[b]] = k as u32;
            next[b] += 1;
        }
        // The largest buckets first, while most positions are free.
        let mut order: Vec<usize> = (0..nb).filter(|&b| start[b + 1] > start[b]).collect();
        order.sort_by_key(|&b| (std::cmp::Reverse(start[b + 1] - start[b]), b));
        let mut taken = vec![false; positions as usize];
        let mut pilots = vec![0u8; nb];
        let mut placed = vec![0u32; keys.len()];
        let mut tried = Vec::new();
        for b in order {
            let members = &grouped[start[b]..start[b + 1]];
            let fits = |pilot: u8, tried: &mut Vec<usize>| {
                tried.clear();
                members.iter().all(|&k| {
                    let q = place(keys[k as usize], seed, pilot, positions);
                    let free = !taken[q] && !tried.contains(&q);
                    tried.push(q);
                    free
                })
            };
            pilots[b] = (0..=u8::MAX).find(|&p| fits(p, &mut tried))?;
            for (&k, &q) in members.iter().zip(&tried) {
                taken[q] = true;
                placed[k as usize] = q as u32;
            }
        }
        let hash = Self {
            pilots,
            buckets,
            positions,
            seed,
        };
        Some((hash, placed))
    }

    /// Number of positions (at least two, and at least the number of keys).
    pub(super) fn positions(&self) -> usize {
        self.positions as usize
    }

    /// The position of `h`: its own if it is a key, some position if not.
    #[inline(always)]
    pub(super) fn position(&self, h: u64) -> usize {
        let pilot = self
            .pilots
            .get(scale(h, self.buckets))
            .copied()
            .unwrap_or(0);
        place(h, self.seed, pilot, self.positions)
    }
}

/// What a row's lanes hold weights as. `f32` lanes hold them as they
/// are. `i16` lanes hold each weight divided by its column's scale (see
/// `Scales` in the scorer) and rounded: half the bytes, so that twice the
/// columns fit a cache line.
pub(super) trait Lane: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// Lanes one 32-bit value takes (the key takes two such values).
    const PER_WORD: usize = 4 / std::mem::size_of::<Self>();
    /// Whether weights are stored divided by a scale (and rounded).
    const SCALED: bool;
    const ZERO: Self;
    /// The lane as a number (for `i16`, the scaled integer).
    fn value(self) -> f32;
    /// A value already divided by its scale, as a lane.
    fn store(x: f32) -> Self;
    fn bits(self) -> u32;
    fn from_bits(bits: u32) -> Self;
}

impl Lane for f32 {
    const SCALED: bool = false;
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
    fn store(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn bits(self) -> u32 {
        self.to_bits()
    }
    fn from_bits(bits: u32) -> Self {
        f32::from_bits(bits)
    }
}

impl Lane for i16 {
    const SCALED: bool = true;
    const ZERO: Self = 0;
    #[inline(always)]
    fn value(self) -> f32 {
        f32::from(self)
    }
    fn store(x: f32) -> Self {
        // Scales map each column's largest magnitude to `i16::MAX`; the
        // clamp only guards rounding at that end.
        x.round().clamp(-f32::from(i16::MAX), f32::from(i16::MAX)) as i16
    }
    #[inline(always)]
    fn bits(self) -> u32 {
        u32::from(self as u16)
    }
    fn from_bits(bits: u32) -> Self {
        bits as u16 as i16
    }
}

/// One feature's row, `W` lanes of `T` in two blocks (`W` a multiple of
/// 8, at least the number of score columns plus two 32-bit values' worth
/// of lanes), 64-byte aligned: its lanes sit at fixed places, so reading
/// them needs no bounds checks.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<T, const W: usize> {
    /// Every head's weights side by side, zeros, and in the last lanes
    /// (from [`Row::COLUMNS`]) the feature's hash, low half first.
    pub weights: [T; W],
    /// A word's character contribution to every column, zeros, then (from
    /// [`Row::COLUMNS`]) its squared norm and its idf as `f32` bits: 0 for
    /// a word that only the lexicon knows, with the sign bit set for any
    /// word the lexicon knows.
    pub chars: [T; W],
}

impl<T: Lane, const W: usize> Row<T, W> {
    /// Score columns a row has room for.
    pub const COLUMNS: usize = W - 2 * T::PER_WORD;
    /// The lane of a scorer's `[f32; W]` sums that adds up squared norms.
    pub const SQ: usize = W - 2;
    const IDF: usize = Self::COLUMNS + T::PER_WORD;
    const ZERO: Self = Self {
        weights: [T::ZERO; W],
        chars: [T::ZERO; W],
    };

    /// The 32-bit value in `lanes` from lane `at` (low bits first).
    #[inline(always)]
    fn word(lanes: &[T; W], at: usize) -> u32 {
        let width = 32 / T::PER_WORD;
        (0..T::PER_WORD).fold(0, |acc, k| acc | lanes[at + k].bits() << (width * k))
    }

    fn set_word(lanes: &mut [T; W], at: usize, bits: u32) {
        let width = 32 / T::PER_WORD;
        for k in 0..T::PER_WORD {
            lanes[at + k] = T::from_bits(bits >> (width * k));
        }
    }

    /// The feature's 64-bit hash, kept in the weights' last lanes so that
    /// it shares their cache line.
    #[inline(always)]
    fn key(&self) -> u64 {
        u64::from(Self::word(&self.weights, Self::COLUMNS))
            | u64::from(Self::word(&self.weights, Self::COLUMNS + T::PER_WORD)) << 32
    }

    fn set_key(&mut self, h: u64) {
        Self::set_word(&mut self.weights, Self::COLUMNS, h as u32);
        Self::set_word(
            &mut self.weights,
            Self::COLUMNS + T::PER_WORD,
            (h >> 32) as u32,
        );
    }

    /// The word's squared character norm (see [`Row::chars`]).
    #[inline(always)]
    pub fn sq(&self) -> f32 {
        f32::from_bits(Self::word(&self.chars, Self::COLUMNS))
    }

    pub(super) fn set_sq(&mut self, sq: f32) {
        Self::set_word(&mut self.chars, Self::COLUMNS, sq.to_bits());
    }

    #[inline(always)]
    fn signed_idf(&self) -> f32 {
        f32::from_bits(Self::word(&self.chars, Self::IDF))
    }

    /// The idf, whatever the lexicon's mark.
    #[inline(always)]
    pub fn idf(&self) -> f32 {
        self.signed_idf().abs()
    }

    /// Sets the idf lane: `idf` (0 for a word only the lexicon knows), its
    /// sign bit set when the lexicon knows the word. An idf is never
    /// negative, so its sign bit is free to carry that mark, and a lookup
    /// learns both from the one lane it reads anyway.
    pub(super) fn set_idf(&mut self, idf: f32, in_lexicon: bool) {
        let signed = if in_lexicon { -idf } else { idf };
        Self::set_word(&mut self.chars, Self::IDF, signed.to_bits());
    }

    /// Whether the lexicon knows this row's word (see [`Row::set_idf`]).
    #[inline(always)]
    fn in_lexicon(&self) -> bool {
        self.signed_idf().is_sign_negative()
    }
}

/// Features' rows, one per position of a [`PerfectHash`] of their hashes.
/// A position no feature took holds a hash that does not lead there, so
/// nothing is ever found in it.
#[derive(Debug, Clone)]
pub(super) struct Table<T, const W: usize> {
    hash: PerfectHash,
    /// Position `p`'s row is `rows[base + p]`: `base` rows of padding put
    /// row 0 on a huge-page boundary (see [`huge_pages`]).
    rows: Vec<Row<T, W>>,
    base: usize,
}

/// Size of a transparent huge page on x86-64 Linux.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the memory of `rows`' spare capacity from
/// `base` on with transparent huge pages, and returns `base`: the first
/// row on a huge-page boundary. A table of megabytes read at random costs
/// a TLB miss per lookup on 4 KiB pages, and the kernel's default
/// (`madvise`) gives huge pages only to memory that asks. Elsewhere, or if
/// the kernel refuses, nothing changes but the speed.
fn huge_pages<T, const W: usize>(rows: &mut Vec<Row<T, W>>, n: usize) -> usize {
    let size = std::mem::size_of::<Row<T, W>>();
    if n * size < HUGE_PAGE {
        return 0;
    }
    rows.reserve_exact(n + HUGE_PAGE / size);
    let start = rows.as_ptr();
    let base = start.align_offset(HUGE_PAGE).min(HUGE_PAGE / size);
    #[cfg(target_os = "linux")]
    // SAFETY: the range lies inside `rows`' allocation (its capacity is
    // `base + n` rows at least), and MADV_HUGEPAGE only changes how the
    // kernel backs those pages, never what they hold.
    unsafe {
        let from = start.wrapping_add(base).cast_mut().cast::<libc::c_void>();
        libc::madvise(from, n * size, libc::MADV_HUGEPAGE);
    }
    base
}

impl<T: Lane, const W: usize> Table<T, W> {
    /// A table for `keys` (distinct) with zeroed rows, and each key's
    /// position; `None` if no perfect hash was found.
    pub(super) fn new(keys: &[u64]) -> Option<(Self, Vec<u32>)> {
        let (hash, placed) = PerfectHash::build(keys)?;
        let n = hash.positions();
        let mut rows = Vec::new();
        let base = huge_pages(&mut rows, n);
        rows.resize(base + n, Row::ZERO);
        let mut used = vec![false; n];
        for &p in &placed {
            used[p as usize] = true;
        }
        for (p, row) in rows[base..].iter_mut().enumerate() {
            if !used[p] {
                row.set_key((0..1 << 16).find(|&h| hash.position(h) != p)?);
            }
        }
        for (&h, &p) in keys.iter().zip(&placed) {
            rows[base + p as usize].set_key(h);
        }
        Some((Self { hash, rows, base }, placed))
    }

    /// The row at position `p`.
    #[inline(always)]
    pub(super) fn row(&self, p: u32) -> Option<&Row<T, W>> {
        self.rows.get(self.base + p as usize)
    }

    pub(super) fn row_mut(&mut self, p: u32) -> Option<&mut Row<T, W>> {
        self.rows.get_mut(self.base + p as usize)
    }
}

impl<T: Lane, const W: usize> Lookup for Table<T, W> {
    /// The position of `h`, its row prefetched (every cache line of it:
    /// a wide row's key can sit in its second line). The row's address is
    /// computed, not looked up: a prefetch needs no bounds check (a
    /// position is always inside the table anyway), which saved 0.4% of
    /// scoring's instructions (cachegrind).
    #[inline(always)]
    fn start(&self, h: u64) -> u32 {
        let p = self.hash.position(h) as u32;
        let row = self.rows.as_ptr().wrapping_add(self.base + p as usize);
        for line in 0..std::mem::size_of::<Row<T, W>>() / 64 {
            prefetch_at(row.cast::<u8>().wrapping_add(64 * line));
        }
        p
    }

    /// The position of `h` as its feature (or [`NO_FEATURE`]), and
    /// whether the lexicon knows it.
    #[inline(always)]
    fn find(&self, h: u64, p: u32) -> Option<(u32, bool)> {
        let row = self.row(p).filter(|row| row.key() == h)?;
        let feature = if row.idf() == 0.0 { NO_FEATURE } else { p };
        Some((feature, row.in_lexicon()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::finish;

    #[test]
    fn every_key_gets_its_own_position_and_strangers_find_nothing() {
        keys_and_strangers::<f32, 8>();
        keys_and_strangers::<i16, 16>();
    }

    fn keys_and_strangers<T: Lane, const W: usize>() {
        for n in [0usize, 1, 2, 3, 10, 1000, 20_000] {
            let keys: Vec<u64> = (0..n as u64).map(|i| finish(i + 1)).collect();
            let (table, placed) = Table::<T, W>::new(&keys).unwrap();
            let mut seen = vec![false; table.hash.positions()];
            for (&h, &p) in keys.iter().zip(&placed) {
                assert_eq!(table.hash.position(h), p as usize);
                assert!(
                    !std::mem::replace(&mut seen[p as usize], true),
                    "{n} keys: {p} twice"
                );
                assert_eq!(table.find(h, table.start(h)), Some((NO_FEATURE, false)));
            }
            for i in 0..2000u64 {
                let stranger = finish(i + 1 + n as u64);
                assert_eq!(table.find(stranger, table.start(stranger)), None);
            }
            // Small hashes are what empty positions hold: not found either.
            for h in 0..64u64 {
                if !keys.contains(&h) {
                    assert_eq!(table.find(h, table.start(h)), None);
                }
            }
        }
    }

    /// A row's key, squared norm, idf and lexicon mark sit beside its
    /// weights without touching them, whatever its lanes.
    #[test]
    fn rows_keep_their_fields_apart() {
        fn check<T: Lane, const W: usize>(weight: T) {
            assert_eq!(std::mem::size_of::<Row<T, W>>(), 64);
            let mut row = Row::<T, W>::ZERO;
            for l in 0..Row::<T, W>::COLUMNS {
                row.weights[l] = weight;
                row.chars[l] = weight;
            }
            let key = 0x8123_4567_89ab_cdef;
            row.set_key(key);
            row.set_sq(12.5);
            row.set_idf(3.25, true);
            assert_eq!(row.key(), key);
            assert_eq!(row.sq(), 12.5);
            assert_eq!(row.idf(), 3.25);
            assert!(row.in_lexicon());
            row.set_idf(0.5, false);
            assert_eq!(row.idf(), 0.5);
            assert!(!row.in_lexicon());
            for l in 0..Row::<T, W>::COLUMNS {
                assert_eq!(row.weights[l].value(), weight.value());
                assert_eq!(row.chars[l].value(), weight.value());
            }
        }
        check::<f32, 8>(-1.5);
        check::<i16, 16>(-1234);
        assert_eq!(Row::<f32, 8>::COLUMNS, 6);
        assert_eq!(Row::<i16, 16>::COLUMNS, 12);
        // An i16 lane stores a value rounded, within ±i16::MAX.
        assert_eq!(i16::store(-1234.4).value(), -1234.0);
        assert_eq!(i16::store(32767.4).value(), 32767.0);
        assert_eq!(i16::store(-1e12).value(), -32767.0);
    }

    #[test]
    fn the_same_keys_give_the_same_table() {
        let keys: Vec<u64> = (0..5000u64).map(|i| finish(i * 7 + 3)).collect();
        let (a, pa) = Table::<f32, 8>::new(&keys).unwrap();
        let (b, pb) = Table::<f32, 8>::new(&keys).unwrap();
        assert_eq!(pa, pb);
        assert_eq!(a.hash.pilots, b.hash.pilots);
    }
}
