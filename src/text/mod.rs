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
        }
    }
}

/// The normalised text of numbers.
pub const NUM: &str = "<num>";

/// FNV-1a offset basis and prime: a stable hash across versions and
/// platforms, so a model file's vocabulary hashes the same everywhere.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A stable 64-bit string hash (FNV-1a, then a finaliser for good high bits).
pub fn hash_str(s: &str) -> u64 {
    finish(s.bytes().fold(FNV_OFFSET, fnv_byte))
}

#[inline]
fn fnv_byte(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

/// SplitMix64's finaliser: spreads FNV's bits over the whole word.
#[inline]
pub fn finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of `s` lower-cased, without allocating. Equal to
/// `hash_str(&s.to_lowercase())` (a unit test holds it to that).
#[inline]
fn hash_lower(s: &str) -> u64 {
    let mut h = FNV_OFFSET;
    if s.is_ascii() {
        for b in s.bytes() {
            h = fnv_byte(h, b.to_ascii_lowercase());
        }
    } else {
        // `str::to_lowercase` special-cases final sigma; follow it exactly
        // by falling back to it for the rare words that contain a sigma.
        if s.contains('Σ') {
            return hash_str(&s.to_lowercase());
        }
        let mut buf = [0u8; 4];
        for c in s.chars().flat_map(char::to_lowercase) {
            for &b in c.encode_utf8(&mut buf).as_bytes() {
                h = fnv_byte(h, b);
            }
        }
    }
    finish(h)
}

fn punct_text(run: &str) -> &'static str {
    let bang = run.contains('!');
    let question = run.contains('?');
    let long = run.chars().count() > 1;
    match (bang, question, long) {
        (true, true, _) => "?!",
        (true, false, true) => "!!",
        (true, false, false) => "!",
        (false, _, true) => "??",
        (false, _, false) => "?",
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

/// Per byte: its lower-case form (low byte) and its [`CLASS`] (high byte),
/// so that the word loop reads both with one load.
const LOWER_CLASS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).to_ascii_lowercase() as u16 | (CLASS[c] as u16) << 8;
        c += 1;
    }
    t
};

/// [`LOWER_CLASS`] of `b[i]` (of a zero byte past the end).
#[inline]
fn lower_class(b: &[u8], i: usize) -> u16 {
    LOWER_CLASS[b.get(i).copied().unwrap_or(0) as usize]
}

/// [`tokenize`] in one pass for ASCII text plus [`is_fast_extra`]'s
/// characters: segments (as [`AsciiSegments`]), classifies and hashes each
/// word as it goes, from byte `from` (where no word or `!?` run may be
/// open), appending to `out`. Stops with `Err(position)` at the first
/// other character, having appended the tokens before it. A property test
/// holds it to the segment-based path.
fn tokenize_fast(b: &[u8], from: usize, out: &mut Vec<Token>) -> Result<(), usize> {
    let n = b.len();
    let mut i = from;
    while i < n {
        let c = b[i];
        if is_word_byte(c) {
            let start = i;
            let mut h = FNV_OFFSET;
            let (mut upper, mut any, mut all) = (0u32, 0u8, NUMERIC);
            // The current byte's lower-case form and class, carried from
            // one iteration to the next.
            let mut e = LOWER_CLASS[c as usize];
            loop {
                let class = (e >> 8) as u8;
                h = fnv_byte(h, e as u8);
                upper += u32::from(class & UPPER);
                any |= class;
                all &= class;
                i += 1;
                let Some(&next) = b.get(i) else { break };
                e = LOWER_CLASS[next as usize];
                if (e >> 8) as u8 & WORD != 0 {
                    continue;
                }
                if extra_at(b, i) == Some(true) {
                    // A curly single quote (MidNumLet) joins like `'`.
                    let after = CLASS[b.get(i + 3).copied().unwrap_or(0) as usize];
                    if class & after & (ALPHA | DIGIT) == 0 {
                        break;
                    }
                    for &q in &b[i..i + 3] {
                        h = fnv_byte(h, q);
                    }
                    all = 0;
                    i += 3;
                    e = lower_class(b, i);
                    continue;
                }
                let after = CLASS[b.get(i + 1).copied().unwrap_or(0) as usize];
                let joins = match next {
                    b'.' | b'\'' => class & after & (ALPHA | DIGIT) != 0,
                    b':' => class & after & ALPHA != 0,
                    b',' | b';' => class & after & DIGIT != 0,
                    _ => false,
                };
                if !joins {
                    break;
                }
                h = fnv_byte(h, next);
                all &= CLASS[next as usize];
                i += 1;
                e = lower_class(b, i);
            }
            // A number starts with a digit and has only digits, `.` and `,`.
            let numeric = CLASS[b[start] as usize] & DIGIT != 0 && all & NUMERIC != 0;
            let alnum = any & (ALPHA | DIGIT) != 0;
            let lower = any & LOWER != 0;
            if !alnum {
                continue;
            }
            out.push(if numeric {
                Token {
                    start: start as u32,
                    end: i as u32,
                    hash: hash_str(NUM),
                    kind: TokenKind::Number,
                    caps: false,
                }
            } else {
                Token {
                    start: start as u32,
                    end: i as u32,
                    hash: finish(h),
                    kind: TokenKind::Word,
                    caps: upper >= 2 * u32::from(UPPER) && !lower,
                }
            });
        } else if c == b'!' || c == b'?' {
            let start = i;
            while i < n && (b[i] == b'!' || b[i] == b'?') {
                i += 1;
            }
            // SAFETY of the slice: ASCII bytes are char boundaries.
            let run = std::str::from_utf8(&b[start..i]).unwrap_or("!");
            out.push(Token {
                start: start as u32,
                end: i as u32,
                hash: hash_str(punct_text(run)),
                kind: TokenKind::Punct,
                caps: false,
            });
        } else if c < 0x80 {
            i += 1;
        } else if extra_at(b, i).is_some() {
            i += 3;
        } else {
            return Err(i);
        }
    }
    Ok(())
}

/// [`tokenize`] over word-boundary segments: UAX #29 in general, the fast
/// segmenter for text it covers. Appends to `out`, with offsets shifted by
/// `shift` (where `passage` starts in the whole passage).
fn tokenize_segments(passage: &str, shift: usize, out: &mut Vec<Token>) {
    let mut punct_start: Option<usize> = None;
    let mut punct_end = 0usize;
    let flush = |out: &mut Vec<Token>, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            out.push(Token {
                start: (shift + s) as u32,
                end: (shift + end) as u32,
                hash: hash_str(punct_text(&passage[s..end])),
                kind: TokenKind::Punct,
                caps: false,
            });
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
        if is_number(seg) {
            out.push(Token {
                start: (shift + offset) as u32,
                end: (shift + end) as u32,
                hash: hash_str(NUM),
                kind: TokenKind::Number,
                caps: false,
            });
        } else {
            out.push(Token {
                start: (shift + offset) as u32,
                end: (shift + end) as u32,
                hash: hash_lower(seg),
                kind: TokenKind::Word,
                caps: is_caps(seg),
            });
        }
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
        for w in ["Hello", "WORLD", "Çà", "ΣΊΣΥΦΟΣ", "İstanbul", "straße", "ǅ"] {
            assert_eq!(hash_lower(w), hash_str(&w.to_lowercase()), "{w}");
        }
    }

    proptest::proptest! {
        #[test]
        fn one_pass_tokenizer_agrees_with_segments(s in "[a-cA-C0-9_.:;,'!? \t\n\"()\u{2019}\u{2018}\u{201c}\u{201d}\u{2014}\u{2013}\u{2026}-]{0,40}") {
            let (mut fused, mut segmented) = (Vec::new(), Vec::new());
            proptest::prop_assert!(tokenize_fast(s.as_bytes(), 0, &mut fused).is_ok());
            tokenize_segments(&s, 0, &mut segmented);
            proptest::prop_assert_eq!(fused, segmented);
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
