//! @handles left out when scoring (`skip_handles`).
//!
//! A handle names an account, as a name names a person: "@united", or the
//! random "@xK9_q2" of a test. Written out, it is a word (or a string of
//! unknown characters) with whatever weight training gave it, and an
//! `@handle` appended to a sentence changed the sentiment head's label in
//! about one case of ten in the behaviour suite. Left out, a handle
//! changes no score.
//!
//! A handle is a whitespace-separated chunk that starts with `@` (as
//! `features::context` reads handles); every token in it is left out. An
//! address such as "jo@example.com" is not one.

use super::Token;

/// Removes the tokens of every `@handle` in `passage` from `tokens` (its
/// tokens, in order).
pub fn remove(passage: &str, tokens: &mut Vec<Token>) {
    let b = passage.as_bytes();
    // Most passages have no "@": one SIMD sweep rules them out.
    let Some(first) = memchr::memchr(b'@', b) else {
        return;
    };
    // Each handle's byte range, from its "@" to the next whitespace, in
    // order, found as the tokens are walked (no list is built: this runs
    // for every passage with an "@" that is scored).
    let mut handles = memchr::memchr_iter(b'@', b.get(first..).unwrap_or_default())
        .map(|k| k + first)
        .filter(|&at| {
            passage
                .get(..at)
                .is_some_and(|before| before.chars().next_back().is_none_or(char::is_whitespace))
        })
        .map(|at| {
            let rest = passage.get(at..).unwrap_or_default();
            let end = at + rest.find(char::is_whitespace).unwrap_or(rest.len());
            (at as u32, end as u32)
        })
        .peekable();
    if handles.peek().is_none() {
        return;
    }
    tokens.retain(|t| {
        while handles.next_if(|&(_, end)| end <= t.start).is_some() {}
        handles.peek().is_none_or(|&(at, _)| at > t.start)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    fn words(passage: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        tokenize(passage, &mut tokens);
        remove(passage, &mut tokens);
        tokens.iter().map(|t| t.normalized(passage)).collect()
    }

    #[test]
    fn handles_are_left_out() {
        assert_eq!(
            words("Great flight @united thanks"),
            ["great", "flight", "thanks"]
        );
        assert_eq!(
            words("@xK9_q2: the hotel was good @a @b"),
            ["the", "hotel", "was", "good"]
        );
        assert_eq!(
            words("so good\u{a0}@someone.else!! ok"),
            ["so", "good", "ok"]
        );
    }

    #[test]
    fn an_at_sign_inside_a_chunk_is_no_handle() {
        for passage in [
            "mail jo@example.com now",
            "(@user) said",
            "the @ sign",
            "a@b@c",
            "",
        ] {
            let mut tokens = Vec::new();
            tokenize(passage, &mut tokens);
            let before = tokens.clone();
            remove(passage, &mut tokens);
            assert_eq!(tokens, before, "{passage:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, the tokens left are the tokens outside every
        /// handle, in order.
        #[test]
        fn only_handle_tokens_go(passage in "(@|@ab|ab|é|\u{a0}|\\.|:|_| ){0,16}") {
            let mut tokens = Vec::new();
            tokenize(&passage, &mut tokens);
            let all = tokens.clone();
            remove(&passage, &mut tokens);
            let in_handle = |t: &Token| {
                let before = &passage[..t.start as usize];
                let chunk = before.rsplit(char::is_whitespace).next().unwrap_or(before);
                chunk.starts_with('@')
            };
            let kept: Vec<Token> = all.into_iter().filter(|t| !in_handle(t)).collect();
            proptest::prop_assert_eq!(tokens, kept);
        }
    }
}
