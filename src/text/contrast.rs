//! What follows a contrast: the words after a passage's last "but".
//!
//! "I thought the flight would be good, but it was bad." says the flight
//! was bad; "I used to hate it, but now I like it." that it is liked. A bag
//! of words reads both halves alike, and the sentiment head called most
//! such sentences neutral (the behaviour suite's contrast and temporal
//! tests failed in 45–92% of cases, where VADER, which weighs the words
//! after a "but" up and those before it down, fails none). A mixture's
//! expert can be set to read only what follows the last "but" (see
//! `Mixture::after_contrast`); this module finds where that is.
//!
//! A "but" that means "except" or "and also" is no contrast: after
//! "anything", "nothing", "all", "none", "everyone", "everybody",
//! "everything" or "nobody" ("anything but good" is not praise), or before
//! "also" ("not only cheap but also good").

use super::{hash_str, Token, TokenKind};

const BUT: u64 = hash_str("but");
const ALSO: u64 = hash_str("also");
/// Words after which "but" means "except".
const EXCEPT_AFTER: [u64; 8] = [
    hash_str("anything"),
    hash_str("nothing"),
    hash_str("all"),
    hash_str("none"),
    hash_str("everyone"),
    hash_str("everybody"),
    hash_str("everything"),
    hash_str("nobody"),
];

/// The index of the passage's last contrasting "but" among `tokens` (its
/// tokens, in order), if it has one. Every scored passage is asked, so the
/// loop that runs over all its tokens compares hashes alone; a "but" found
/// is then checked.
pub fn last(tokens: &[Token]) -> Option<usize> {
    let is_word = |k: usize, h: u64| {
        tokens
            .get(k)
            .is_some_and(|t| t.kind == TokenKind::Word && t.hash == h)
    };
    let mut end = tokens.len();
    while let Some(k) = tokens.get(..end)?.iter().rposition(|t| t.hash == BUT) {
        let except = k
            .checked_sub(1)
            .and_then(|p| tokens.get(p))
            .is_some_and(|t| t.kind == TokenKind::Word && EXCEPT_AFTER.contains(&t.hash));
        if is_word(k, BUT) && !is_word(k + 1, ALSO) && !except {
            return Some(k);
        }
        end = k;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    /// The words after the passage's last contrast, if it has one.
    fn after(passage: &str) -> Option<Vec<String>> {
        let mut tokens = Vec::new();
        tokenize(passage, &mut tokens);
        let k = last(&tokens)?;
        Some(
            tokens[k + 1..]
                .iter()
                .map(|t| t.normalized(passage))
                .collect(),
        )
    }

    #[test]
    fn the_words_after_the_last_but_are_kept() {
        assert_eq!(
            after("I thought the flight would be good, but it was bad."),
            Some(vec!["it".into(), "was".into(), "bad".into()])
        );
        assert_eq!(
            after("Cheap but slow. But the staff, BUT ALSO the food: superb!"),
            Some(vec![
                "the".into(),
                "staff".into(),
                "but".into(),
                "also".into(),
                "the".into(),
                "food".into(),
                "superb".into(),
                "!".into()
            ])
        );
        assert_eq!(after("It was good, but"), Some(vec![]));
    }

    #[test]
    fn no_contrast_leaves_the_tokens_alone() {
        for passage in [
            "The hotel was good.",
            "The film was anything but good.",
            "Nothing but praise for the crew.",
            "Not only cheap but also good.",
            "The butler did it; a butt of jokes.",
            "",
        ] {
            assert_eq!(after(passage), None, "{passage:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, the contrast found is a "but" with none
        /// after it; with none found, every "but" is one of the exceptions.
        #[test]
        fn the_last_contrast_is_found(passage in "(but|But|also|all|good|bad|, |\\. | ){0,14}") {
            let mut tokens = Vec::new();
            tokenize(&passage, &mut tokens);
            match last(&tokens) {
                Some(k) => {
                    proptest::prop_assert_eq!(tokens[k].hash, BUT);
                    proptest::prop_assert_eq!(last(&tokens[k + 1..]), None);
                }
                None => {
                    for (k, t) in tokens.iter().enumerate().filter(|(_, t)| t.hash == BUT) {
                        let also = tokens.get(k + 1).is_some_and(|n| n.hash == ALSO);
                        let except = k > 0 && EXCEPT_AFTER.contains(&tokens[k - 1].hash);
                        proptest::prop_assert!(also || except, "{:?} at {}", t, k);
                    }
                }
            }
        }
    }
}
