//! Arbitrary bytes → (limit, text) → `slant::text::split::split_article`.
//! The first byte picks `max_passage_bytes` (0..=255, or unlimited for
//! 255), the rest is the text (lossy UTF-8 only where it is not UTF-8).
//! Checks the splitter's documented output invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slant::text::split::split_article;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max = if first == u8::MAX {
        usize::MAX
    } else {
        usize::from(first)
    };
    let text = String::from_utf8_lossy(rest);
    let text: &str = &text;
    let ranges = split_article(text, max);
    let limit = max.max(1);
    let mut prev_end = 0usize;
    for r in &ranges {
        assert!(r.start < r.end, "empty passage {r:?} in {text:?}");
        assert!(
            r.end <= text.len(),
            "passage {r:?} past the end of {text:?}"
        );
        assert!(
            text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
            "passage {r:?} off a char boundary in {text:?}"
        );
        assert!(
            r.start >= prev_end,
            "passage {r:?} overlaps or is not ascending in {text:?}"
        );
        prev_end = r.end;
        let s = &text[r.clone()];
        assert_eq!(s.trim(), s, "untrimmed passage {r:?} in {text:?}");
        assert!(
            s.len() <= limit || s.chars().count() == 1,
            "passage {r:?} ({} bytes) over the {limit}-byte limit in {text:?}",
            s.len()
        );
        // No passage spans a blank line (blank lines separate paragraphs).
        assert!(
            s.lines().all(|l| !l.trim().is_empty()),
            "passage {r:?} spans a blank line in {text:?}"
        );
    }
    // Every non-whitespace character is inside a passage.
    let mut k = 0;
    for (i, c) in text.char_indices() {
        while k < ranges.len() && ranges[k].end <= i {
            k += 1;
        }
        let inside = k < ranges.len() && ranges[k].start <= i;
        assert!(
            inside || c.is_whitespace(),
            "{c:?} at byte {i} is in no passage of {text:?}"
        );
    }
});
