//! Test helpers shared by the unit tests of several modules: one seeded
//! generator for every test that needs pseudo-random numbers.

/// Deterministic numbers in [0, 1) from `seed` (xorshift64).
pub(crate) fn uniform(mut state: u64) -> impl FnMut() -> f64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}
