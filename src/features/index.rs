//! The featurizer's hash index (feature hash → feature index, with what
//! the lexicon says of the word beside it), the [`Lookup`] trait the scan
//! looks features up through, and a cache prefetch hint.

use std::hash::Hasher;

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
pub(crate) struct HashIndex {
    slots: Vec<Slot>,
    mask: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) hash: u64,
    pub(super) value: u32,
    /// What the lexicon says of the word with this hash.
    pub(super) lex: PackedLex,
}

pub(super) const EMPTY: u32 = u32::MAX;

/// What the lexicon says of a word, as an index slot keeps it in 32 bits:
/// the role bits ([`TokenLex`](super::lexicon::TokenLex)'s) in the top 8,
/// and the number of its valence in `Featurizer::valences` in the low 24
/// (0: no valence). All zero: the lexicon does not know the word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PackedLex(u32);

impl PackedLex {
    pub(super) const NONE: Self = Self(0);
    const ROLE_SHIFT: u32 = 24;
    /// Valence numbers must be below this.
    pub(super) const VALENCES: u32 = 1 << Self::ROLE_SHIFT;

    /// `None` when `valence` does not fit in 24 bits.
    pub(super) fn new(role: u8, valence: u32) -> Option<Self> {
        (valence < Self::VALENCES).then_some(Self(u32::from(role) << Self::ROLE_SHIFT | valence))
    }
    #[inline]
    pub(super) fn role(self) -> u8 {
        (self.0 >> Self::ROLE_SHIFT) as u8
    }
    /// The valence's number in `Featurizer::valences`.
    #[inline]
    pub(super) fn valence(self) -> usize {
        (self.0 & (Self::VALENCES - 1)) as usize
    }
    #[inline]
    pub(super) fn is_known(self) -> bool {
        self != Self::NONE
    }
}
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
        self.slot(h).map(|s| (s.value, s.lex.is_known()))
    }
}

impl HashIndex {
    /// Room for `n` keys at a load between 1/6 and 1/3: most probes end
    /// at their first slot, so the probe loop's branch predicts well.
    pub(super) fn with_capacity(n: usize) -> Self {
        let size = (3 * n.max(1)).next_power_of_two();
        Self {
            slots: vec![
                Slot {
                    hash: 0,
                    value: EMPTY,
                    lex: PackedLex::NONE,
                };
                size
            ],
            mask: size - 1,
        }
    }

    /// The slot of `h`, inserted (as `NO_FEATURE`, no lexicon) if new.
    pub(super) fn entry(&mut self, h: u64) -> &mut Slot {
        let mut i = (h as usize) & self.mask;
        while self.slots[i].value != EMPTY && self.slots[i].hash != h {
            i = (i + 1) & self.mask;
        }
        let slot = &mut self.slots[i];
        if slot.value == EMPTY {
            *slot = Slot {
                hash: h,
                value: NO_FEATURE,
                lex: PackedLex::NONE,
            };
        }
        slot
    }

    /// Inserts, returning the index already stored under `h`, if any.
    pub(super) fn insert(&mut self, h: u64, value: u32) -> Option<u32> {
        let slot = self.entry(h);
        if slot.value != NO_FEATURE {
            return Some(slot.value);
        }
        slot.value = value;
        None
    }

    /// Asks the CPU to fetch the slot where a lookup of `h` starts.
    #[inline]
    pub(super) fn prefetch(&self, h: u64) {
        if let Some(slot) = self.slots.get((h as usize) & self.mask) {
            prefetch(slot);
        }
    }

    /// The slot of `h`, feature or lexicon word.
    #[inline]
    pub(super) fn slot(&self, h: u64) -> Option<&Slot> {
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
    pub(super) fn keys(&self) -> impl Iterator<Item = (u64, u32, bool)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.value != EMPTY)
            .map(|s| (s.hash, s.value, s.lex.is_known()))
    }

    /// The feature index of `h`.
    #[inline]
    pub(super) fn get(&self, h: u64) -> Option<u32> {
        self.slot(h).map(|s| s.value).filter(|&v| v != NO_FEATURE)
    }
}

/// A hint that `value`'s cache line will be read soon. It never faults and
/// changes no result; on other targets it does nothing.
#[inline(always)]
fn prefetch<T: ?Sized>(value: &T) {
    prefetch_at((value as *const T).cast::<u8>());
}

/// A hint that the cache line at `at` will be read soon: any address, as
/// a prefetch is never a read (it neither faults nor changes a result).
/// Callers that compute an address need no bounds check to ask.
#[inline(always)]
pub(crate) fn prefetch_at(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; it only
    // hints the cache and never dereferences its address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
