//! Text: tokenizing passages for features, and splitting articles into
//! passages.
//!
//! The tokenizer follows Unicode word boundaries (UAX #29), lower-cases,
//! and keeps the signals that matter for framing as tokens of their own:
//! runs of `!`/`?` become `!`, `!!`, `?`, `??` or `?!`; numbers become
//! `<num>`; ALL-CAPS words are flagged (`caps`) so the featurizer can emit a
//! `<caps>` marker. Every token carries its UTF-8 byte span in the passage
//! and a 64-bit hash of its normalised text, so n-grams are hashed without
//! building strings on the scoring path.

pub mod classes;
pub mod contractions;
pub mod contrast;
pub mod handles;
pub mod split;

use unicode_segmentation::UnicodeSegmentation;

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A word, lower-cased.
    Word,
    /// A number (digits, possibly with `.`/`,` inside): normalised to `<num>`.
    Number,
    /// A run of `!` and `?`: normalised to `!`, `!!`, `?`, `??` or `?!`.
    Punct,
    /// A word replaced by its identity or named-entity class
    /// (`<nationality>`, `<name>`, …; see [`classes`]).
    Class,
}

/// One token of a passage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Byte offset of the first byte in the passage.
    pub start: u32,
    /// Byte offset one past the last byte.
    pub end: u32,
    /// Hash of the normalised text (see [`hash_str`]).
    pub hash: u64,
    pub kind: TokenKind,
    /// Written in capitals (at least two letters, no lower-case letter).
    pub caps: bool,
}

impl Token {
    /// The token's normalised text (allocates; for vocabularies and
    /// explanations, not the scoring path).
    pub fn normalized(&self, passage: &str) -> String {
        match self.kind {
            TokenKind::Number => NUM.to_string(),
            TokenKind::Punct => {
                punct_text(&passage[self.start as usize..self.end as usize]).to_string()
            }
            TokenKind::Word => passage[self.start as usize..self.end as usize].to_lowercase(),
            TokenKind::Class => classes::name(self.hash).unwrap_or("<class>").to_string(),
        }
    }
}

/// The normalised text of numbers.
pub const NUM: &str = "<num>";

/// Seed and multiplier of the token hash: a stable hash across versions
/// and platforms, so a model file's vocabulary hashes the same everywhere.
const HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// One step of the token hash: an 8-byte chunk into the state.
#[inline(always)]
const fn mix(h: u64, chunk: u64) -> u64 {
    (h.rotate_left(5) ^ chunk).wrapping_mul(HASH_MUL)
}

/// A stable 64-bit string hash: the bytes eight at a time (little-endian,
/// the last chunk zero-padded), then the length, then a finaliser for good
/// bits everywhere. Taking whole chunks, not bytes, keeps the tokenizer's
/// per-word hashing to one or two multiplications.
pub const fn hash_str(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut h = HASH_SEED;
    let mut k = 0;
    while k < b.len() {
        let mut chunk = 0u64;
        let mut j = 0;
        while j < 8 && k + j < b.len() {
            chunk |= (b[k + j] as u64) << (8 * j);
            j += 1;
        }
        h = mix(h, chunk);
        k += 8;
    }
    finish(h ^ b.len() as u64)
}

/// SplitMix64's finaliser: spreads the hash's bits over the whole word.
#[inline]
pub const fn finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Eight bytes with ASCII capitals lower-cased and every other byte
/// (including those of multi-byte characters) unchanged.
#[inline(always)]
fn lower8(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = x & !HIGH;
    // Per byte, no carries (low7 ≤ 0x7f): the high bit says ≥ 'A', > 'Z'.
    let from_a = low7.wrapping_add(0x3f3f_3f3f_3f3f_3f3f);
    let past_z = low7.wrapping_add(0x2525_2525_2525_2525);
    let capital = from_a & !past_z & !x & HIGH;
    x | capital >> 2
}

/// The eight bytes of `src` at `at` (zero past its end), little-endian.
#[inline(always)]
fn load8(src: &[u8], at: usize) -> u64 {
    let chunk = |from: usize| src.get(from..).and_then(<[u8]>::first_chunk::<8>);
    if let Some(c) = chunk(at) {
        return u64::from_le_bytes(*c);
    }
    // Past the end: the last eight bytes, shifted down so that `src[at]`
    // comes first; or, for shorter sources, byte by byte.
    let last = src.len().saturating_sub(8);
    match chunk(last) {
        Some(c) if at < src.len() => u64::from_le_bytes(*c) >> (8 * (at - last)),
        _ => src
            .get(at..)
            .unwrap_or(&[])
            .iter()
            .rev()
            .fold(0, |chunk, &b| chunk << 8 | u64::from(b)),
    }
}

/// [`hash_str`] of `src[at..at + len]` with ASCII capitals lower-cased.
#[inline(always)]
fn hash_ascii_lower(src: &[u8], at: usize, len: usize) -> u64 {
    // Most words are one chunk: the loop's first turn, without the loop.
    if (1..=8).contains(&len) {
        let keep = u64::MAX >> (64 - 8 * len);
        return finish(mix(HASH_SEED, lower8(load8(src, at) & keep)) ^ len as u64);
    }
    let mut h = HASH_SEED;
    let mut k = 0;
    while k < len {
        // The bytes of this chunk that belong to the word (1 to 8).
        let keep = u64::MAX >> (64 - 8 * (len - k).min(8));
        h = mix(h, lower8(load8(src, at + k) & keep));
        k += 8;
    }
    finish(h ^ len as u64)
}

/// Hash of `s` lower-cased, without allocating. Equal to
/// `hash_str(&s.to_lowercase())` (a unit test holds it to that).
#[inline]
fn hash_lower(s: &str) -> u64 {
    if s.is_ascii() {
        return hash_ascii_lower(s.as_bytes(), 0, s.len());
    }
    // `str::to_lowercase` special-cases final sigma; follow it exactly
    // by falling back to it for the rare words that contain a sigma.
    if s.contains('Σ') {
        return hash_str(&s.to_lowercase());
    }
    let (mut h, mut chunk, mut len) = (HASH_SEED, 0u64, 0usize);
    let mut buf = [0u8; 4];
    for c in s.chars().flat_map(char::to_lowercase) {
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            chunk |= u64::from(b) << (8 * (len % 8));
            len += 1;
            if len % 8 == 0 {
                h = mix(h, chunk);
                chunk = 0;
            }
        }
    }
    if len % 8 != 0 {
        h = mix(h, chunk);
    }
    finish(h ^ len as u64)
}

/// The normalised texts of `!?` runs, by [`punct_kind`].
const PUNCT: [&str; 5] = ["!", "!!", "?", "??", "?!"];

/// Hashes of the normalised tokens that are not words.
const NUM_HASH: u64 = hash_str(NUM);
const PUNCT_HASHES: [u64; 5] = {
    let mut h = [0u64; 5];
    let mut k = 0;
    while k < 5 {
        h[k] = hash_str(PUNCT[k]);
        k += 1;
    }
    h
};

/// Which of [`PUNCT`] a `!?` run is: whether it has a `!`, a `?`, and more
/// than one character.
#[inline]
fn punct_kind(bang: bool, question: bool, long: bool) -> usize {
    match (bang, question, long) {
        (true, true, _) => 4,
        (true, false, true) => 1,
        (true, false, false) => 0,
        (false, _, true) => 3,
        (false, _, false) => 2,
    }
}

/// [`punct_kind`] of a `!?` run (ASCII, so bytes are characters).
fn punct_kind_of(run: &[u8]) -> usize {
    punct_kind(run.contains(&b'!'), run.contains(&b'?'), run.len() > 1)
}

fn punct_text(run: &str) -> &'static str {
    PUNCT[punct_kind_of(run.as_bytes())]
}

/// A `!?` run's token from its span and [`punct_kind`].
#[inline(always)]
fn punct_token(start: usize, end: usize, kind: usize) -> Token {
    Token {
        start: start as u32,
        end: end as u32,
        hash: PUNCT_HASHES[kind],
        kind: TokenKind::Punct,
        caps: false,
    }
}

fn is_number(word: &str) -> bool {
    word.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && word.chars().all(|c| c.is_numeric() || c == '.' || c == ',')
}

fn is_caps(word: &str) -> bool {
    let mut upper = 0;
    for c in word.chars() {
        if c.is_lowercase() {
            return false;
        }
        if c.is_uppercase() {
            upper += 1;
        }
    }
    upper >= 2
}

/// Tokenizes `passage` into `out` (cleared first). Passages longer than
/// `u32::MAX` bytes are not supported; callers cap passage size far below.
///
/// Text the one-pass tokenizer does not cover (accents, emoji, other
/// scripts) is tokenized by UAX #29 only in the chunk around it: from the
/// last ASCII space before to the first after that is followed by
/// another ASCII character. UAX #29 always breaks there (a space before a
/// character that is neither a space nor an extender) and no rule looks
/// across it, so the chunk's segments are those of the whole passage.
pub fn tokenize(passage: &str, out: &mut Vec<Token>) {
    out.clear();
    let b = passage.as_bytes();
    let mut from = 0;
    while let Err(at) = tokenize_fast(b, from, out) {
        let start = (from + 1..at)
            .rev()
            .find(|&k| chunk_boundary(b, k))
            .unwrap_or(from);
        let end = (at + 1..b.len())
            .find(|&k| chunk_boundary(b, k))
            .unwrap_or(b.len());
        while out.last().is_some_and(|t| t.start as usize >= start) {
            out.pop();
        }
        let Some(chunk) = passage.get(start..end) else {
            // Not reached (both ends follow an ASCII byte or are the
            // passage's ends); if it were, the whole passage by UAX #29.
            out.clear();
            tokenize_segments(passage, 0, out);
            return;
        };
        tokenize_segments(chunk, start, out);
        from = end;
    }
}

/// Whether UAX #29 breaks before byte `k` for a reason no rule looks
/// across: an ASCII space, then an ASCII character other than a space.
#[inline]
fn chunk_boundary(b: &[u8], k: usize) -> bool {
    k > 0 && b[k - 1] == b' ' && b.get(k).is_some_and(|&c| c < 0x80 && c != b' ')
}

/// Whether `b[i..]` starts with one of [`is_fast_extra`]'s characters
/// (all `E2 80 xx` in UTF-8), and whether it is a curly single quote.
#[inline]
fn extra_at(b: &[u8], i: usize) -> Option<bool> {
    match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(0xe2), Some(0x80), Some(0x98 | 0x99)) => Some(true),
        (Some(0xe2), Some(0x80), Some(0x9c | 0x9d | 0x93 | 0x94 | 0xa6)) => Some(false),
        _ => None,
    }
}

// Byte classes for the one-pass ASCII tokenizer.
const WORD: u8 = 1; // letter, digit or `_`
const UPPER: u8 = 2;
const LOWER: u8 = 4;
const DIGIT: u8 = 8;
const ALPHA: u8 = 16;
const NUMERIC: u8 = 32; // digit, `.` or `,`
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if b.is_ascii_alphanumeric() || b == b'_' {
            k |= WORD;
        }
        if b.is_ascii_uppercase() {
            k |= UPPER | ALPHA;
        }
        if b.is_ascii_lowercase() {
            k |= LOWER | ALPHA;
        }
        if b.is_ascii_digit() {
            k |= DIGIT | NUMERIC;
        }
        if b == b'.' || b == b',' {
            k |= NUMERIC;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// The classes a one-byte joiner needs on both sides (0: not a joiner):
/// `.` and `'` between letters or between digits, `:` between letters,
/// `,` and `;` between digits.
const JOINS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'.' as usize] = ALPHA | DIGIT;
    t[b'\'' as usize] = ALPHA | DIGIT;
    t[b':' as usize] = ALPHA;
    t[b',' as usize] = DIGIT;
    t[b';' as usize] = DIGIT;
    t
};

/// Bytes the one-pass tokenizer classifies at once.
const WINDOW: usize = 64;
/// Bytes a window's source holds past the window: word hashing reads
/// eight at a time, and the joiner checks read up to four bytes ahead.
const SLACK: usize = 16;
/// A word is finished inside a window only if its end plus this stays
/// inside, so that the bytes a joiner check reads are classified.
const LOOKAHEAD: usize = 4;

/// One bit per byte of a [`WINDOW`]: bit `k` for byte `k`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Masks {
    /// Letter, digit or `_`.
    word: u64,
    upper: u64,
    lower: u64,
    digit: u64,
    /// Digit, `.` or `,`.
    numeric: u64,
    bang: u64,
    question: u64,
    /// Not ASCII.
    high: u64,
}

impl Masks {
    /// Byte by byte from [`CLASS`]: the definition, and the implementation
    /// where there is no SIMD one.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn scalar(src: &[u8; WINDOW]) -> Self {
        let mut m = Self::default();
        for (k, &c) in src.iter().enumerate() {
            let class = CLASS[c as usize];
            let bit = |yes: bool| u64::from(yes) << k;
            m.word |= bit(class & WORD != 0);
            m.upper |= bit(class & UPPER != 0);
            m.lower |= bit(class & LOWER != 0);
            m.digit |= bit(class & DIGIT != 0);
            m.numeric |= bit(class & NUMERIC != 0);
            m.bang |= bit(c == b'!');
            m.question |= bit(c == b'?');
            m.high |= bit(c >= 0x80);
        }
        m
    }

    /// Sixteen bytes per step with SSE2 (part of every x86_64 CPU).
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn of(src: &[u8; WINDOW]) -> Self {
        use std::arch::x86_64::{
            __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
            _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        let mut m = Self::default();
        for k in 0..WINDOW / 16 {
            // SAFETY: SSE2 is in the x86_64 baseline, so the intrinsics are
            // available; the load reads `src[16k..16k + 16]`, inside `src`
            // (unaligned loads are allowed).
            unsafe {
                let x = _mm_loadu_si128(src.as_ptr().add(16 * k).cast::<__m128i>());
                let set = |c: u8| _mm_set1_epi8(c as i8);
                // Signed comparisons: bytes of 0x80 and up are negative,
                // outside every ASCII range.
                let range = |lo: u8, hi: u8| {
                    _mm_and_si128(
                        _mm_cmpgt_epi8(x, set(lo - 1)),
                        _mm_cmplt_epi8(x, set(hi + 1)),
                    )
                };
                let eq = |c: u8| _mm_cmpeq_epi8(x, set(c));
                let bits = |v: __m128i| u64::from(_mm_movemask_epi8(v) as u16) << (16 * k);
                let (upper, lower, digit) =
                    (range(b'A', b'Z'), range(b'a', b'z'), range(b'0', b'9'));
                let alnum = _mm_or_si128(_mm_or_si128(upper, lower), digit);
                m.word |= bits(_mm_or_si128(alnum, eq(b'_')));
                m.upper |= bits(upper);
                m.lower |= bits(lower);
                m.digit |= bits(digit);
                m.numeric |= bits(_mm_or_si128(digit, _mm_or_si128(eq(b'.'), eq(b','))));
                m.bang |= bits(eq(b'!'));
                m.question |= bits(eq(b'?'));
                m.high |= bits(x);
            }
        }
        m
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    fn of(src: &[u8; WINDOW]) -> Self {
        Self::scalar(src)
    }
}

/// The bits `from..to` (`from < to ≤ from + 64`, `to ≤ 64`).
#[inline(always)]
fn span_bits(from: usize, to: usize) -> u64 {
    (u64::MAX >> (64 - (to - from))) << from
}

/// Whether the word that ends before `src[e]` goes on across a joiner
/// there (UAX #29 WB6/7, WB11/12; see [`AsciiSegments`]): the joiner's
/// width in bytes if so. Bytes past `src` read as zero.
///
/// Computed whole, without a branch on the byte after the word (a space,
/// or a `.` or `,` that joins nothing, at random): only the answer, which
/// is nearly always no, is branched on.
#[inline]
fn joiner_at(src: &[u8], e: usize) -> Option<usize> {
    let byte = |k: usize| src.get(k).copied().unwrap_or(0);
    let c = byte(e);
    // The curly apostrophe, E2 80 98/99, is three bytes wide.
    let curly = (c == 0xe2) & (byte(e + 1) == 0x80) & matches!(byte(e + 2), 0x98 | 0x99);
    let width = if curly { 3 } else { 1 };
    let both = if curly {
        ALPHA | DIGIT
    } else {
        JOINS[c as usize]
    };
    let before = CLASS[e.checked_sub(1).map_or(0, byte) as usize];
    let after = CLASS[byte(e + width) as usize];
    (before & after & both != 0).then_some(width)
}

/// A word token from its span and properties (a number's normalised text
/// is [`NUM`], so `hash` is not called for it).
#[inline(always)]
fn word_token(
    start: usize,
    end: usize,
    numeric: bool,
    caps: bool,
    hash: impl FnOnce() -> u64,
) -> Token {
    if numeric {
        Token {
            start: start as u32,
            end: end as u32,
            hash: NUM_HASH,
            kind: TokenKind::Number,
            caps: false,
        }
    } else {
        Token {
            start: start as u32,
            end: end as u32,
            hash: hash(),
            kind: TokenKind::Word,
            caps,
        }
    }
}

/// [`tokenize`] in one pass for ASCII text plus [`is_fast_extra`]'s
/// characters, from byte `from` (where no word or `!?` run may be open),
/// appending to `out`. It classifies a [`WINDOW`] of bytes at a time into
/// bit masks, and finds words, their ends and their properties with bit
/// operations: no branch per byte. Stops with `Err(position)` at the first
/// other character, having appended the tokens before it. A property test
/// holds it to the segment-based path.
fn tokenize_fast(b: &[u8], from: usize, out: &mut Vec<Token>) -> Result<(), usize> {
    let n = b.len();
    let mut pad = [0u8; WINDOW + SLACK];
    let mut i = from;
    while i < n {
        // The window: from `i` while the passage goes on past it; the
        // passage's last 64 bytes (some already tokenized) once it does
        // not; a zero-padded copy of a passage shorter than a window.
        let (w, src): (usize, &[u8]) = if i + WINDOW < n {
            (i, &b[i..n.min(i + WINDOW + SLACK)])
        } else if n >= WINDOW {
            (n - WINDOW, &b[n - WINDOW..])
        } else {
            pad[..n].copy_from_slice(b);
            (0, &pad)
        };
        let Some(window) = src.first_chunk::<WINDOW>() else {
            return Err(i);
        };
        match window_tokens(window, src, w, i - w, w + WINDOW >= n, out) {
            Ok(next) => i = next,
            Err(Resume::Long(start)) => i = long_token(b, start, out),
            Err(Resume::At(at)) => i = at,
            Err(Resume::Unknown(at)) => return Err(at),
        }
    }
    Ok(())
}

/// Why [`window_tokens`] stopped before its window's end.
enum Resume {
    /// A token starts the window and may not end inside it.
    Long(usize),
    /// A token may not end inside the window: start the next window there.
    At(usize),
    /// A character the one-pass tokenizer does not cover.
    Unknown(usize),
}

/// The tokens of one window of [`tokenize_fast`]: `window` is its bytes
/// (the start of `src`, which may hold up to [`SLACK`] more), `w` where
/// it starts in the passage, `q` the first byte to look at, and `last`
/// whether the passage ends inside it. Returns where the next window
/// starts.
#[inline(always)]
fn window_tokens(
    window: &[u8; WINDOW],
    src: &[u8],
    w: usize,
    mut q: usize,
    last: bool,
    out: &mut Vec<Token>,
) -> Result<usize, Resume> {
    let m = Masks::of(window);
    let starts = m.word | m.bang | m.question | m.high;
    // A token that may go on past the window: start the next window at
    // it, or, if it already starts this one, take it byte by byte.
    let first = q;
    let resume = |s: usize| {
        if s == first {
            Resume::Long(w + s)
        } else {
            Resume::At(w + s)
        }
    };
    loop {
        let rest = if q < WINDOW { starts >> q << q } else { 0 };
        if rest == 0 {
            return Ok(w + q.max(WINDOW));
        }
        let s = rest.trailing_zeros() as usize;
        let bit = 1u64 << s;
        if m.word & bit != 0 {
            let mut e = s + (!(m.word >> s)).trailing_zeros() as usize;
            loop {
                if e + LOOKAHEAD > WINDOW && !last {
                    return Err(resume(s));
                }
                match joiner_at(src, e) {
                    Some(width) => {
                        e += width;
                        e += (!(m.word >> e)).trailing_zeros() as usize;
                    }
                    None => break,
                }
            }
            let run = span_bits(s, e);
            if (m.upper | m.lower | m.digit) & run != 0 {
                // `&`, not `&&`: both halves are cheap, and a short circuit
                // would branch on whether the word starts with a digit or
                // has two capitals, which the CPU cannot guess.
                let numeric = (m.digit & bit != 0) & (run & !m.numeric == 0);
                // Two capitals or more: a bit left once the lowest is
                // cleared (`count_ones` is a dozen instructions on the
                // x86_64 baseline, which has no POPCNT).
                let upper = m.upper & run;
                let caps = (upper & upper.wrapping_sub(1) != 0) & (m.lower & run == 0);
                out.push(word_token(w + s, w + e, numeric, caps, || {
                    hash_ascii_lower(src, s, e - s)
                }));
            }
            q = e;
        } else if (m.bang | m.question) & bit != 0 {
            let e = s + (!((m.bang | m.question) >> s)).trailing_zeros() as usize;
            if e >= WINDOW && !last {
                return Err(resume(s));
            }
            let run = span_bits(s, e);
            let kind = punct_kind(m.bang & run != 0, m.question & run != 0, e - s > 1);
            out.push(punct_token(w + s, w + e, kind));
            q = e;
        } else if extra_at(src, s).is_some() {
            q = s + 3;
        } else {
            return Err(Resume::Unknown(w + s));
        }
    }
}

/// A word or `!?` run from `b[start]` that [`tokenize_fast`]'s window
/// cannot hold, byte by byte; returns where it ends.
#[cold]
fn long_token(b: &[u8], start: usize, out: &mut Vec<Token>) -> usize {
    if matches!(b.get(start), Some(b'!' | b'?')) {
        long_punct(b, start, out)
    } else {
        long_word(b, start, out)
    }
}

/// A word from `b[start]` that [`tokenize_fast`]'s window cannot hold,
/// byte by byte; returns where it ends.
#[cold]
fn long_word(b: &[u8], start: usize, out: &mut Vec<Token>) -> usize {
    let mut end = start;
    loop {
        while b.get(end).is_some_and(|&c| CLASS[c as usize] & WORD != 0) {
            end += 1;
        }
        match joiner_at(b, end) {
            Some(width) => end += width,
            None => break,
        }
    }
    let word = &b[start..end];
    let classes = || word.iter().map(|&c| CLASS[c as usize]);
    if classes().any(|k| k & (ALPHA | DIGIT) != 0) {
        let numeric =
            classes().next().is_some_and(|k| k & DIGIT != 0) && classes().all(|k| k & NUMERIC != 0);
        let caps =
            classes().filter(|k| k & UPPER != 0).count() >= 2 && classes().all(|k| k & LOWER == 0);
        out.push(word_token(start, end, numeric, caps, || {
            hash_ascii_lower(b, start, end - start)
        }));
    }
    end
}

/// A `!?` run from `b[start]` longer than [`tokenize_fast`]'s window;
/// returns where it ends.
#[cold]
fn long_punct(b: &[u8], start: usize, out: &mut Vec<Token>) -> usize {
    let len = b[start..]
        .iter()
        .take_while(|&&c| c == b'!' || c == b'?')
        .count();
    let end = start + len;
    out.push(punct_token(start, end, punct_kind_of(&b[start..end])));
    end
}

/// [`tokenize`] over word-boundary segments: UAX #29 in general, the fast
/// segmenter for text it covers. Appends to `out`, with offsets shifted by
/// `shift` (where `passage` starts in the whole passage).
fn tokenize_segments(passage: &str, shift: usize, out: &mut Vec<Token>) {
    let mut punct_start: Option<usize> = None;
    let mut punct_end = 0usize;
    let flush = |out: &mut Vec<Token>, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            let kind = punct_kind_of(&passage.as_bytes()[s..end]);
            out.push(punct_token(shift + s, shift + end, kind));
        }
    };
    // ASCII passages (most news text) take a hand-written segmenter that
    // yields the same segments as UAX #29 at several times the speed (a
    // property test holds the two together); whitespace may come in other
    // runs, which the loop ignores either way.
    let segments: &mut dyn Iterator<Item = (usize, &str)> = if fast_path(passage) {
        &mut AsciiSegments { s: passage, pos: 0 }
    } else {
        &mut passage.split_word_bound_indices()
    };
    for (offset, seg) in segments {
        if seg == "!" || seg == "?" {
            if punct_start.is_none() || punct_end != offset {
                flush(out, &mut punct_start, punct_end);
                punct_start = Some(offset);
            }
            punct_end = offset + seg.len();
            continue;
        }
        if !seg.chars().any(char::is_alphanumeric) {
            if !seg.chars().all(char::is_whitespace) {
                // Other punctuation ends a `!?` run; whitespace does not
                // ("! !" is still emphasis).
                flush(out, &mut punct_start, punct_end);
            }
            continue;
        }
        flush(out, &mut punct_start, punct_end);
        let end = offset + seg.len();
        out.push(word_token(
            shift + offset,
            shift + end,
            is_number(seg),
            is_caps(seg),
            || hash_lower(seg),
        ));
    }
    flush(out, &mut punct_start, punct_end);
}

/// Non-ASCII characters the fast segmenter knows: typographic quotes,
/// dashes and the ellipsis, which make most non-ASCII news text.
#[inline]
fn is_fast_extra(c: char) -> bool {
    matches!(
        c,
        '\u{2019}' | '\u{2018}' | '\u{201c}' | '\u{201d}' | '\u{2014}' | '\u{2013}' | '\u{2026}'
    )
}

/// Whether [`AsciiSegments`] segments `s` exactly as UAX #29 would.
fn fast_path(s: &str) -> bool {
    s.is_ascii() || s.chars().all(|c| c.is_ascii() || is_fast_extra(c))
}

/// UAX #29 word segmentation restricted to ASCII text plus the characters
/// of [`is_fast_extra`]. Word characters
/// are letters, digits and `_` (ALetter, Numeric, ExtendNumLet), which all
/// join (WB5, WB8–WB10, WB13a/b); `.`, `:` and `'` join two letters
/// (WB6/7); `.`, `,`, `;` and `'` join two digits (WB11/12); the curly
/// single quotes `‘` `’` (MidNumLet) join both. Every other character is a
/// segment of its own.
struct AsciiSegments<'a> {
    s: &'a str,
    pos: usize,
}

#[inline]
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Iterator for AsciiSegments<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let &first = bytes.get(start)?;
        let mut end = start + 1;
        if is_word_byte(first) {
            while let Some(&b) = bytes.get(end) {
                if is_word_byte(b) {
                    end += 1;
                    continue;
                }
                // A curly single quote is 3 bytes: E2 80 98/99.
                let curly = b == 0xe2
                    && bytes.get(end + 1) == Some(&0x80)
                    && matches!(bytes.get(end + 2), Some(0x98 | 0x99));
                let width = if curly { 3 } else { 1 };
                let (prev, next) = (bytes[end - 1], bytes.get(end + width).copied().unwrap_or(0));
                let letters = prev.is_ascii_alphabetic()
                    && next.is_ascii_alphabetic()
                    && (curly || matches!(b, b'.' | b':' | b'\''));
                let digits = prev.is_ascii_digit()
                    && next.is_ascii_digit()
                    && (curly || matches!(b, b'.' | b',' | b';' | b'\''));
                if letters || digits {
                    end += width + 1;
                } else {
                    break;
                }
            }
        } else if first >= 0x80 {
            // A whole (multi-byte) character: its UTF-8 length from the lead byte.
            end = start
                + if first >= 0xf0 {
                    4
                } else if first >= 0xe0 {
                    3
                } else {
                    2
                };
        }
        self.pos = end;
        Some((start, self.s.get(start..end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<(String, &str, TokenKind, bool)> {
        let mut out = Vec::new();
        tokenize(s, &mut out);
        out.iter()
            .map(|t| {
                (
                    t.normalized(s),
                    &s[t.start as usize..t.end as usize],
                    t.kind,
                    t.caps,
                )
            })
            .collect()
    }

    #[test]
    fn words_numbers_and_emphasis_with_offsets() {
        let s = "SHOCKING: 17 things you won't believe!!! Really?!";
        let t = toks(s);
        let norm: Vec<&str> = t.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            norm,
            ["shocking", "<num>", "things", "you", "won't", "believe", "!!", "really", "?!"]
        );
        assert_eq!(t[0].1, "SHOCKING");
        assert!(t[0].3, "all-caps flagged");
        assert!(!t[2].3);
        assert_eq!(t[6].1, "!!!");
        assert_eq!(t[8].1, "?!");
        assert_eq!(t[1].2, TokenKind::Number);
    }

    #[test]
    fn unicode_offsets_are_byte_offsets_on_char_boundaries() {
        let s = "Ça coûte 3,5 € — «Incroyable» ΣΊΣΥΦΟΣ 東京";
        let mut out = Vec::new();
        tokenize(s, &mut out);
        for t in &out {
            assert!(s.is_char_boundary(t.start as usize) && s.is_char_boundary(t.end as usize));
        }
        let t = toks(s);
        let norm: Vec<&str> = t.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            norm,
            ["ça", "coûte", "<num>", "incroyable", "σίσυφος", "東", "京"]
        );
        assert_eq!(t[4].1, "ΣΊΣΥΦΟΣ");
        assert!(t[4].3);
    }

    #[test]
    fn hash_lower_matches_lowercase_then_hash() {
        for w in [
            "Hello",
            "WORLD",
            "Çà",
            "ΣΊΣΥΦΟΣ",
            "İstanbul",
            "straße",
            "ǅ",
            "EightChr",
            "Hippopotamus",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "Straßenbahnhaltestelle",
            "ÇÀÇÀÇÀÇÀÇÀÇÀ",
            "Donaudampfschiffahrtsgesellschaftskapitän",
        ] {
            assert_eq!(hash_lower(w), hash_str(&w.to_lowercase()), "{w}");
        }
    }

    /// The one-pass tokenizer covers `s` and gives the segment-based
    /// path's tokens.
    fn one_pass_matches_segments(s: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let (mut fused, mut segmented) = (Vec::new(), Vec::new());
        proptest::prop_assert!(tokenize_fast(s.as_bytes(), 0, &mut fused).is_ok());
        tokenize_segments(s, 0, &mut segmented);
        proptest::prop_assert_eq!(fused, segmented);
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn one_pass_tokenizer_agrees_with_segments(s in "[a-cA-C0-9_.:;,'!? \t\n\"()\u{2019}\u{2018}\u{201c}\u{201d}\u{2014}\u{2013}\u{2026}-]{0,40}") {
            one_pass_matches_segments(&s)?;
        }

        #[test]
        fn windows_agree_with_segments_on_long_passages(s in "([a-cA-C0-9_.:;,'!? \n\u{2019}\u{2014}-]{1,8}|[aB0.'_]{40,90}|[!?]{55,70}|\u{2026}){0,40}") {
            one_pass_matches_segments(&s)?;
        }

        #[test]
        fn simd_masks_match_the_scalar_definition(bytes in proptest::collection::vec(proptest::num::u8::ANY, WINDOW)) {
            let Some(window) = bytes.first_chunk::<WINDOW>() else {
                return Err(proptest::test_runner::TestCaseError::fail("64 bytes"));
            };
            proptest::prop_assert_eq!(Masks::of(window), Masks::scalar(window));
        }

        #[test]
        fn chunked_fallback_agrees_with_uax29_on_the_whole_passage(s in "[a-cA-C0-9_.:;,'!? \t\n\u{2019}\u{2014}éÉΣ東\u{301}\u{200b}\u{200d}\u{2063}\u{fe0f}\u{1f4cd}\u{1f1fa}\u{1f1f8}\u{3000}\u{a0}-]{0,40}") {
            let (mut chunked, mut whole) = (Vec::new(), Vec::new());
            tokenize(&s, &mut chunked);
            tokenize_segments(&s, 0, &mut whole);
            proptest::prop_assert_eq!(chunked, whole);
        }

        #[test]
        fn ascii_segmenter_agrees_with_uax29(s in "[a-cA-C0-9_.:;,'!? \t\r\n\"()\u{2019}\u{2018}\u{201c}\u{201d}\u{2014}\u{2013}\u{2026}-]{0,40}") {
            proptest::prop_assert!(fast_path(&s));
            let ours: Vec<(usize, &str)> =
                AsciiSegments { s: &s, pos: 0 }.filter(|(_, w)| !w.trim().is_empty()).collect();
            let uax: Vec<(usize, &str)> =
                s.split_word_bound_indices().filter(|(_, w)| !w.trim().is_empty()).collect();
            proptest::prop_assert_eq!(ours, uax);
        }

        #[test]
        fn tokens_lie_inside_the_passage_on_boundaries(s in "\\PC{0,60}") {
            let mut out = Vec::new();
            tokenize(&s, &mut out);
            let mut last = 0;
            for t in &out {
                proptest::prop_assert!(t.start < t.end && t.end as usize <= s.len());
                proptest::prop_assert!(s.is_char_boundary(t.start as usize) && s.is_char_boundary(t.end as usize));
                proptest::prop_assert!(t.start as usize >= last);
                last = t.end as usize;
            }
        }
    }

    #[test]
    fn punctuation_runs_split_by_other_punctuation() {
        let norm: Vec<String> = toks("why? ... why??").into_iter().map(|x| x.0).collect();
        assert_eq!(norm, ["why", "?", "why", "??"]);
        assert!(toks("").is_empty());
        assert!(toks("  \n\t ").is_empty());
    }
}
