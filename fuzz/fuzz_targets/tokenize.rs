//! Arbitrary bytes → UTF-8 text (lossy only where the bytes are not
//! UTF-8) → `slant::text::tokenize`. Every token must be a non-empty byte
//! range inside the text, on char boundaries, after the previous token;
//! emphasis tokens hold only `!`/`?`, and tokenizing is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slant::text::{tokenize, Token, TokenKind};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;
    let mut tokens: Vec<Token> = Vec::new();
    tokenize(text, &mut tokens);
    let mut prev_end = 0usize;
    for t in &tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        assert!(start < end, "empty token {t:?} in {text:?}");
        assert!(end <= text.len(), "token {t:?} past the end of {text:?}");
        assert!(
            text.is_char_boundary(start) && text.is_char_boundary(end),
            "token {t:?} off a char boundary in {text:?}"
        );
        assert!(start >= prev_end, "token {t:?} not ascending in {text:?}");
        prev_end = end;
        let piece = &text[start..end];
        match t.kind {
            TokenKind::Punct => assert!(
                piece.chars().all(|c| c == '!' || c == '?'),
                "emphasis token {piece:?} in {text:?}"
            ),
            TokenKind::Number | TokenKind::Word | TokenKind::Class => assert!(
                piece.chars().any(char::is_alphanumeric),
                "word token {piece:?} without a letter or digit in {text:?}"
            ),
        }
        // Must not panic (slices the passage with the token's offsets).
        let _ = t.normalized(text);
    }
    // The output buffer is cleared first: reuse, even with stale tokens
    // in it, gives the same tokens.
    let mut again: Vec<Token> = tokens.iter().rev().copied().collect();
    tokenize(text, &mut again);
    assert_eq!(tokens, again, "tokenize is not deterministic on {text:?}");
});
