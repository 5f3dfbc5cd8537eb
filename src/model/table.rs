//! The scorer's feature tables: each feature's row placed by a perfect
//! hash of the feature's hash, with that hash in the row. A lookup reads
//! one cache line, found or not, and that line's address is known as soon
//! as the hash is: no index slot has to arrive first to say where the row
//! is. (The featurizer's own [`HashIndex`](crate::features) costs a line
//! for the slot and another for the row.)

use crate::features::{prefetch, Lookup, NO_FEATURE};

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

/// One feature's row, `W` lanes in two blocks (`W` a multiple of 8, at
/// least the number of score columns plus two), 64-byte aligned: its
/// lanes sit at fixed places, so reading them needs no bounds checks.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<const W: usize> {
    /// Every head's weights side by side, zeros, and in the last two lanes
    /// ([`Row::KEY`]) the feature's hash, low half first.
    pub weights: [f32; W],
    /// A word's character contribution to every column, zeros, its
    /// squared norm ([`Row::SQ`]) and its idf ([`Row::IDF`]): 0 for a word
    /// that only the lexicon knows, with the sign bit set for any word the
    /// lexicon knows.
    pub chars: [f32; W],
}

impl<const W: usize> Row<W> {
    pub const KEY: usize = W - 2;
    pub const SQ: usize = W - 2;
    pub const IDF: usize = W - 1;
    const ZERO: Self = Self {
        weights: [0.0; W],
        chars: [0.0; W],
    };

    /// The feature's 64-bit hash, kept as the bit patterns of two f32
    /// lanes (low half first) so that it shares the weights' cache line.
    #[inline(always)]
    fn key(&self) -> u64 {
        u64::from(self.weights[Self::KEY].to_bits())
            | u64::from(self.weights[Self::KEY + 1].to_bits()) << 32
    }

    fn set_key(&mut self, h: u64) {
        self.weights[Self::KEY] = f32::from_bits(h as u32);
        self.weights[Self::KEY + 1] = f32::from_bits((h >> 32) as u32);
    }

    /// The idf, whatever the lexicon's mark.
    #[inline(always)]
    pub fn idf(&self) -> f32 {
        self.chars[Self::IDF].abs()
    }

    /// Sets the idf lane: `idf` (0 for a word only the lexicon knows), its
    /// sign bit set when the lexicon knows the word. An idf is never
    /// negative, so its sign bit is free to carry that mark, and a lookup
    /// learns both from the one lane it reads anyway.
    pub(super) fn set_idf(&mut self, idf: f32, in_lexicon: bool) {
        self.chars[Self::IDF] = if in_lexicon { -idf } else { idf };
    }

    /// Whether the lexicon knows this row's word (see [`Row::set_idf`]).
    #[inline(always)]
    fn in_lexicon(&self) -> bool {
        self.chars[Self::IDF].is_sign_negative()
    }
}

/// Features' rows, one per position of a [`PerfectHash`] of their hashes.
/// A position no feature took holds a hash that does not lead there, so
/// nothing is ever found in it.
#[derive(Debug, Clone)]
pub(super) struct Table<const W: usize> {
    hash: PerfectHash,
    /// Position `p`'s row is `rows[base + p]`: `base` rows of padding put
    /// row 0 on a huge-page boundary (see [`huge_pages`]).
    rows: Vec<Row<W>>,
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
fn huge_pages<const W: usize>(rows: &mut Vec<Row<W>>, n: usize) -> usize {
    let size = std::mem::size_of::<Row<W>>();
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

impl<const W: usize> Table<W> {
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
    pub(super) fn row(&self, p: u32) -> Option<&Row<W>> {
        self.rows.get(self.base + p as usize)
    }

    pub(super) fn row_mut(&mut self, p: u32) -> Option<&mut Row<W>> {
        self.rows.get_mut(self.base + p as usize)
    }
}

impl<const W: usize> Lookup for Table<W> {
    /// The position of `h`, its row prefetched.
    #[inline(always)]
    fn start(&self, h: u64) -> u32 {
        let p = self.hash.position(h) as u32;
        if let Some(row) = self.row(p) {
            prefetch(row);
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
        for n in [0usize, 1, 2, 3, 10, 1000, 20_000] {
            let keys: Vec<u64> = (0..n as u64).map(|i| finish(i + 1)).collect();
            let (table, placed) = Table::<8>::new(&keys).unwrap();
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

    #[test]
    fn the_same_keys_give_the_same_table() {
        let keys: Vec<u64> = (0..5000u64).map(|i| finish(i * 7 + 3)).collect();
        let (a, pa) = Table::<8>::new(&keys).unwrap();
        let (b, pb) = Table::<8>::new(&keys).unwrap();
        assert_eq!(pa, pb);
        assert_eq!(a.hash.pilots, b.hash.pilots);
    }
}
