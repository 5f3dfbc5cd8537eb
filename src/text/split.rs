//! Splitting an article into passages.
//!
//! [`split_article`] turns an article into a list of passages, each a byte
//! range into the original text. The rule, applied in three stages:
//!
//! # 1. Blocks (paragraphs and headline lines)
//!
//! The text is cut into lines. A line ends at `\n`, `\r\n`, a lone `\r`,
//! U+000B, U+000C, U+0085, U+2028 or U+2029. A line is *blank* when it
//! contains only whitespace ([`char::is_whitespace`]).
//!
//! * Blank lines separate paragraphs.
//! * A non-blank line that *looks like a headline or byline* ends its block
//!   of its own: it lacks sentence-final punctuation (after dropping trailing
//!   whitespace and closing quotes/brackets, its last character is not a
//!   terminator, see below) and does not end with `,` or `;`, and the next
//!   line starts with a character that can start a sentence (anything but a
//!   lowercase letter). So `Senate passes bill\nWASHINGTON — The...` gives a
//!   passage `Senate passes bill`.
//! * Otherwise a single line break inside a paragraph is ordinary whitespace
//!   (hard-wrapped text). Known limitation: a hard-wrapped line that ends
//!   mid-sentence without punctuation and whose next line starts with a
//!   capital letter, digit or symbol is treated as a headline line.
//!
//! # 2. Sentences inside a block
//!
//! *Terminators* are `.`, `!`, `?`, `…` and the ideographic `。`, `！`, `？`.
//! *Closers* are `"` `'` `”` `“` `’` `‘` `)` `]` `}` `»` `«` `›` `‹` `」`
//! `』` `）` `》` `〉` `】` (both directions of typographic quotes, because
//! e.g. German closes with `“` and `«`).
//!
//! A sentence ending is a maximal run of terminators (so `?!` and `...` are
//! one ending), followed by any closers directly after it. If the run is
//! followed by whitespace and then a lone `»` or `›` that is itself followed
//! by whitespace or the end of the block (French spacing, `parti. » Puis`),
//! that guillemet belongs to the ending too. There is a sentence boundary
//! after the ending when:
//!
//! * the run contains an ideographic terminator (`。！？`) and any
//!   non-whitespace character follows (no whitespace needed); or
//! * whitespace follows, and the next non-whitespace character can start a
//!   sentence, i.e. it is not a lowercase letter (uppercase and uncased
//!   letters, digits, opening quotes/brackets, dashes and other symbols all
//!   can), and none of these exceptions applies. The exceptions are checked
//!   only when the run is a single `.` with no closers after it. Let *word*
//!   be the non-whitespace text just before the `.`, with leading
//!   non-alphanumeric characters (such as `(` or `"`) removed:
//!   * *word* is one of the abbreviations `Mr Mrs Ms Dr Prof Sr Jr St Gen Gov
//!     Sen Rep Lt Col Capt Sgt Mt vs etc e.g i.e Inc Ltd Co Corp Jan Feb Mar
//!     Apr Jun Jul Aug Sep Sept Oct Nov Dec` (ASCII case-insensitive);
//!   * *word* is `No` (case-insensitive) and the next character is an ASCII
//!     digit (`No. 5`; a plain "no." still ends a sentence);
//!   * the part of *word* after its last `.` is a single uppercase letter:
//!     an initial (`J. Smith`) or a dotted acronym (`U.S. Senate`, `U.K.`).
//!
//! Consequences: no boundary inside a number (`3.5`) or a domain name
//! (`example.com`), since no whitespace follows the `.`; no boundary before a
//! lowercase word, so `"Stop!" he said.` stays one sentence, while
//! `Wait... what?! No way.` gives `Wait... what?!` and `No way.`.
//!
//! # 3. Length limit
//!
//! A sentence longer than `max_passage_bytes` (0 is treated as 1) is cut
//! repeatedly: each piece ends at the last whitespace that keeps the piece
//! within the limit; if there is none, at the last char boundary within the
//! limit; if even the first character is longer than the limit, the piece
//! is that single character.
//!
//! # Output
//!
//! Every passage is a non-empty byte range on char boundaries with no
//! leading or trailing whitespace; passages are ascending and disjoint, and
//! every non-whitespace character of the text is in exactly one passage.
//! Empty or whitespace-only text gives no passages.

use std::ops::Range;

/// Splits an article into passages: byte ranges into `text`.
///
/// See the [module documentation](self) for the exact rule. Passages are
/// trimmed, ascending, disjoint, cover every non-whitespace character, and
/// are at most `max_passage_bytes` long (0 counts as 1) unless a single
/// character is longer.
pub fn split_article(text: &str, max_passage_bytes: usize) -> Vec<Range<usize>> {
    let max = max_passage_bytes.max(1);
    let mut out = Vec::new();
    for_each_block(text, |block| {
        for_each_sentence(text, block, |sentence| {
            push_limited(text, sentence, max, &mut out);
        });
    });
    out
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "gen", "gov", "sen", "rep", "lt", "col",
    "capt", "sgt", "mt", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co", "corp", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…') || is_ideographic_terminator(c)
}

fn is_ideographic_terminator(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | '”'
            | '“'
            | '’'
            | '‘'
            | ')'
            | ']'
            | '}'
            | '»'
            | '«'
            | '›'
            | '‹'
            | '」'
            | '』'
            | '）'
            | '》'
            | '〉'
            | '】'
    )
}

/// Guillemets that close a quote even when separated by whitespace (French).
fn is_spaced_closer(c: char) -> bool {
    matches!(c, '»' | '›')
}

fn can_start_sentence(c: char) -> bool {
    !c.is_lowercase()
}

/// Line terminators other than `\r` (which needs a look at the next byte).
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Whether a trimmed, non-empty line lacks sentence-final punctuation and
/// does not end in `,`/`;`, i.e. could be a headline or byline.
fn looks_like_headline(line: &str) -> bool {
    let last = line
        .chars()
        .rev()
        .find(|&c| !is_closer(c) && !c.is_whitespace());
    match last {
        Some(c) => !is_terminator(c) && !matches!(c, ',' | ';'),
        None => true,
    }
}

/// Calls `f` with each block (paragraph or headline line), trimmed.
fn for_each_block(text: &str, mut f: impl FnMut(Range<usize>)) {
    let bytes = text.as_bytes();
    let mut block: Option<Range<usize>> = None;
    let mut prev_headline = false;
    // Current line: first non-whitespace char and end of last one.
    let mut first: Option<(usize, char)> = None;
    let mut last_end = 0;
    let mut chars = text.char_indices();
    loop {
        let next = chars.next();
        let line_ends = match next {
            None => true,
            Some((i, '\r')) => bytes.get(i + 1) != Some(&b'\n'),
            Some((_, c)) => is_line_break(c),
        };
        if !line_ends {
            if let Some((i, c)) = next.filter(|&(_, c)| !c.is_whitespace()) {
                first.get_or_insert((i, c));
                last_end = i + c.len_utf8();
            }
            continue;
        }
        match first.take() {
            None => {
                if let Some(b) = block.take() {
                    f(b);
                }
            }
            Some((start, c)) => {
                match block.as_mut() {
                    Some(b) if !(prev_headline && can_start_sentence(c)) => b.end = last_end,
                    _ => {
                        if let Some(b) = block.replace(start..last_end) {
                            f(b);
                        }
                    }
                }
                prev_headline = looks_like_headline(&text[start..last_end]);
            }
        }
        if next.is_none() {
            break;
        }
    }
    if let Some(b) = block {
        f(b);
    }
}

/// Whether a single `.` at `dot` does not end a sentence because of an
/// abbreviation or initial; `next` is the first character after the gap.
fn is_abbreviation(text: &str, block_start: usize, dot: usize, next: char) -> bool {
    let before = &text[block_start..dot];
    let word_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = before[word_start..].trim_start_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() {
        return false;
    }
    let last_part = word.rsplit('.').next().unwrap_or(word);
    let mut last_chars = last_part.chars();
    let initial = matches!(
        (last_chars.next(), last_chars.next()),
        (Some(c), None) if c.is_uppercase()
    );
    if initial {
        return true;
    }
    if word.eq_ignore_ascii_case("no") {
        return next.is_ascii_digit();
    }
    ABBREVIATIONS.iter().any(|a| word.eq_ignore_ascii_case(a))
}

/// Calls `f` with each sentence of the trimmed `block`, trimmed.
fn for_each_sentence(text: &str, block: Range<usize>, mut f: impl FnMut(Range<usize>)) {
    let base = block.start;
    let mut sentence_start = block.start;
    let mut it = text[block.clone()].char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if !is_terminator(c) {
            continue;
        }
        let mut single_period = c == '.';
        let mut ideographic = is_ideographic_terminator(c);
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = it.peek() {
            if !is_terminator(d) {
                break;
            }
            single_period = false;
            ideographic |= is_ideographic_terminator(d);
            end = j + d.len_utf8();
            it.next();
        }
        while let Some(&(j, d)) = it.peek() {
            if !is_closer(d) {
                break;
            }
            single_period = false;
            end = j + d.len_utf8();
            it.next();
        }
        // Look past the whitespace after the ending.
        let mut ahead = it.clone();
        let mut gap = false;
        while ahead.next_if(|&(_, d)| d.is_whitespace()).is_some() {
            gap = true;
        }
        let spaced = if gap { ahead.peek().copied() } else { None };
        if let Some((j, d)) = spaced.filter(|&(_, d)| is_spaced_closer(d)) {
            let mut after = ahead.clone();
            after.next();
            if after.peek().is_none_or(|&(_, e)| e.is_whitespace()) {
                single_period = false;
                end = j + d.len_utf8();
                ahead = after;
                while ahead.next_if(|&(_, d)| d.is_whitespace()).is_some() {}
            }
        }
        let Some(&(k, next)) = ahead.peek() else {
            break;
        };
        let boundary = ideographic
            || (gap
                && can_start_sentence(next)
                && !(single_period && is_abbreviation(text, base, base + i, next)));
        if boundary {
            f(sentence_start..base + end);
            sentence_start = base + k;
            it = ahead;
        }
    }
    f(sentence_start..block.end);
}

/// Largest char boundary of `text` that is `<= i` (`i <= text.len()`).
fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Pushes the trimmed `range` in pieces of at most `max` bytes.
fn push_limited(text: &str, range: Range<usize>, max: usize, out: &mut Vec<Range<usize>>) {
    let mut start = range.start;
    let end = range.end;
    while end - start > max {
        let limit = floor_boundary(text, start + max);
        let window = &text[start..limit];
        let at_limit = text[limit..]
            .chars()
            .next()
            .is_some_and(char::is_whitespace);
        let cut = if at_limit {
            Some(limit)
        } else {
            window
                .char_indices()
                .rev()
                .find(|&(_, c)| c.is_whitespace())
                .map(|(i, _)| start + i)
        };
        let piece_end = match cut {
            Some(cut) => start + text[start..cut].trim_end().len(),
            None if limit > start => limit,
            None => start + text[start..].chars().next().map_or(1, char::len_utf8),
        };
        if piece_end > start {
            out.push(start..piece_end);
        }
        let rest = &text[piece_end..end];
        start = end - rest.trim_start().len();
    }
    if end > start {
        out.push(start..end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BIG: usize = usize::MAX;

    fn passages(text: &str, max: usize) -> Vec<&str> {
        let ranges = split_article(text, max);
        check_invariants(text, max, &ranges);
        ranges.into_iter().map(|r| &text[r]).collect()
    }

    fn check_invariants(text: &str, max: usize, ranges: &[Range<usize>]) {
        let max = max.max(1);
        let mut prev_end = 0;
        for r in ranges {
            assert!(r.start < r.end, "empty range {r:?}");
            assert!(r.end <= text.len());
            assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
            assert!(r.start >= prev_end, "overlap or not ascending at {r:?}");
            prev_end = r.end;
            let s = &text[r.clone()];
            assert_eq!(s.trim().len(), s.len(), "untrimmed {s:?}");
            assert!(
                s.len() <= max || s.chars().count() == 1,
                "too long ({} > {max}): {s:?}",
                s.len()
            );
        }
        // Every char is whitespace iff it lies outside all ranges.
        let mut k = 0;
        for (i, c) in text.char_indices() {
            while k < ranges.len() && ranges[k].end <= i {
                k += 1;
            }
            let inside = k < ranges.len() && ranges[k].start <= i;
            if !inside {
                assert!(c.is_whitespace(), "{c:?} at {i} not covered");
            }
        }
        // No passage spans a blank line.
        for r in ranges {
            let lines: Vec<&str> = text[r.clone()].lines().collect();
            assert!(
                lines.iter().all(|l| !l.trim().is_empty()),
                "passage spans a blank line: {:?}",
                &text[r.clone()]
            );
        }
    }

    #[test]
    fn empty_and_whitespace() {
        assert!(split_article("", 100).is_empty());
        assert!(split_article("   \n\r\n\t \u{2028}\u{a0}", 100).is_empty());
        assert!(split_article(" \n", 0).is_empty());
    }

    #[test]
    fn quote_with_inner_terminator_is_one_sentence() {
        let text = "\"Stop!\" he said. Then he left.";
        assert_eq!(passages(text, BIG), ["\"Stop!\" he said.", "Then he left."]);
    }

    #[test]
    fn abbreviation_title() {
        let text = "Mr. Smith went to Washington. He said no.";
        let ranges = split_article(text, BIG);
        assert_eq!(ranges, [0..29, 30..41]);
        assert_eq!(
            passages(text, BIG),
            ["Mr. Smith went to Washington.", "He said no."]
        );
    }

    #[test]
    fn dotted_acronym() {
        let text = "The U.S. Senate voted. It passed.";
        assert_eq!(
            passages(text, BIG),
            ["The U.S. Senate voted.", "It passed."]
        );
        assert_eq!(
            passages("U.S. officials and J. Smith met. They talked.", BIG),
            ["U.S. officials and J. Smith met.", "They talked."]
        );
    }

    #[test]
    fn more_abbreviations() {
        assert_eq!(
            passages("Apples, pears, etc. Were sold by Acme Inc. Today.", BIG),
            ["Apples, pears, etc. Were sold by Acme Inc. Today."]
        );
        assert_eq!(
            passages("See No. 5 on the list. He said no. Then left.", BIG),
            ["See No. 5 on the list.", "He said no.", "Then left."]
        );
        assert_eq!(
            passages("It was Dec. 5. (e.g. Smith) Later, DR. WHO came.", BIG),
            ["It was Dec. 5.", "(e.g. Smith) Later, DR. WHO came."]
        );
        assert_eq!(
            passages("He works at Acme Inc.) Then he left.", BIG),
            ["He works at Acme Inc.)", "Then he left."]
        );
    }

    #[test]
    fn numbers_and_domains() {
        assert_eq!(
            passages("Growth was 3.5 percent. See example.com for more.", BIG),
            ["Growth was 3.5 percent.", "See example.com for more."]
        );
        assert_eq!(
            passages("It ended in 2019. 2020 was worse.", BIG),
            ["It ended in 2019.", "2020 was worse."]
        );
    }

    #[test]
    fn headline_then_paragraph() {
        let text = "Senate passes budget bill\nBy Jane Doe\nWASHINGTON — The Senate voted on \
                    Tuesday. It passed.";
        assert_eq!(
            passages(text, BIG),
            [
                "Senate passes budget bill",
                "By Jane Doe",
                "WASHINGTON — The Senate voted on Tuesday.",
                "It passed."
            ]
        );
    }

    #[test]
    fn headline_in_the_middle_and_at_end() {
        let text = "First part ends here.\nA subheading\nMore text follows.\nThe end";
        assert_eq!(
            passages(text, BIG),
            [
                "First part ends here.",
                "A subheading",
                "More text follows.",
                "The end"
            ]
        );
    }

    #[test]
    fn hard_wrapped_text_is_joined() {
        let text = "The senator said that the\nbill would pass,\nAlice agreed with him.\n\
                    Next sentence.";
        assert_eq!(
            passages(text, BIG),
            [
                "The senator said that the\nbill would pass,\nAlice agreed with him.",
                "Next sentence."
            ]
        );
        // Documented limitation: an unpunctuated line followed by a capital.
        assert_eq!(
            passages("He met with\nAlice today.", BIG),
            ["He met with", "Alice today."]
        );
    }

    #[test]
    fn multiple_paragraphs() {
        let text = "\n  First paragraph. Two sentences.\n\nSecond paragraph\nwraps here.\n \t\n\
                    third one starts lowercase.  \n";
        assert_eq!(
            passages(text, BIG),
            [
                "First paragraph.",
                "Two sentences.",
                "Second paragraph\nwraps here.",
                "third one starts lowercase."
            ]
        );
    }

    #[test]
    fn paragraph_break_without_punctuation() {
        assert_eq!(
            passages("no period here\n\nand here", BIG),
            ["no period here", "and here"]
        );
    }

    #[test]
    fn ellipsis_and_combined_terminators() {
        assert_eq!(
            passages("Wait... what?! No way.", BIG),
            ["Wait... what?!", "No way."]
        );
        assert_eq!(
            passages("Really… Yes! “Why?” she asked. (Fine.) Done", BIG),
            ["Really…", "Yes!", "“Why?” she asked.", "(Fine.)", "Done"]
        );
    }

    #[test]
    fn closing_quote_ends_sentence() {
        assert_eq!(
            passages("He said, \"It is over.\" She left. 'OK.' — Then", BIG),
            ["He said, \"It is over.\"", "She left.", "'OK.'", "— Then"]
        );
    }

    #[test]
    fn german_and_french() {
        assert_eq!(
            passages("„Er ist weg.“ Dann ging sie. Über Nacht schneite es.", BIG),
            ["„Er ist weg.“", "Dann ging sie.", "Über Nacht schneite es."]
        );
        assert_eq!(
            passages("»Komm!« rief er. »Warum?« Sie lachte.", BIG),
            ["»Komm!« rief er.", "»Warum?«", "Sie lachte."]
        );
        assert_eq!(
            passages(
                "« Il est parti. » Puis il est revenu. « Vraiment ? » demanda-t-elle.",
                BIG
            ),
            [
                "« Il est parti. »",
                "Puis il est revenu.",
                "« Vraiment ? » demanda-t-elle."
            ]
        );
        assert_eq!(
            passages("Élodie a dit : « Non. » Éric répond.", BIG),
            ["Élodie a dit : « Non. »", "Éric répond."]
        );
    }

    #[test]
    fn cjk_and_uncased_scripts() {
        assert_eq!(
            passages("今日は晴れです。明日は雨でしょう！本当？", BIG),
            ["今日は晴れです。", "明日は雨でしょう！", "本当？"]
        );
        assert_eq!(
            passages("「行こう。」彼は言った。", BIG),
            ["「行こう。」", "彼は言った。"]
        );
        assert_eq!(
            passages("Привет. Как дела? хорошо.", BIG),
            ["Привет.", "Как дела? хорошо."]
        );
        assert_eq!(passages("مرحبا. كيف حالك", BIG), ["مرحبا.", "كيف حالك"]);
    }

    #[test]
    fn windows_newlines() {
        let text = "Headline here\r\nBody starts. Second one.\r\n\r\nNew para\r\nwraps.\r\n";
        assert_eq!(
            passages(text, BIG),
            [
                "Headline here",
                "Body starts.",
                "Second one.",
                "New para\r\nwraps."
            ]
        );
        // Old Mac and Unicode separators.
        assert_eq!(
            passages("One.\r\rTwo\u{2029}\u{2029}three", BIG),
            ["One.", "Two", "three"]
        );
    }

    #[test]
    fn long_sentence_is_split_at_whitespace() {
        let text = "aaa bbb ccc ddd.";
        assert_eq!(passages(text, 8), ["aaa bbb", "ccc ddd."]);
        assert_eq!(passages(text, 7), ["aaa bbb", "ccc", "ddd."]);
        assert_eq!(passages(text, 3), ["aaa", "bbb", "ccc", "ddd", "."]);
        assert_eq!(passages("abcdefgh ij", 3), ["abc", "def", "gh", "ij"]);
        assert_eq!(passages("a   b", 2), ["a", "b"]);
    }

    #[test]
    fn long_chars_and_zero_limit() {
        assert_eq!(passages("é🦀x", 1), ["é", "🦀", "x"]);
        assert_eq!(passages("é🦀x", 0), ["é", "🦀", "x"]);
        assert_eq!(passages("ab", 0), ["a", "b"]);
        assert_eq!(passages("🦀🦀 🦀", 9), ["🦀🦀", "🦀"]);
        assert_eq!(passages("日本語", 7), ["日本", "語"]);
    }

    #[test]
    fn pathological_inputs_do_not_panic() {
        for text in [
            ".",
            "...",
            "?!",
            "\"",
            "» ",
            " »",
            ". » ",
            "a. »",
            "Mr.",
            ".A",
            "A.",
            "..A",
            "\r",
            "\r\n",
            "\n\r",
            "「」。",
            "。",
            "No.",
            "no. 5",
            "U.S.",
            "'.'",
            "\u{85}",
        ] {
            for max in [0, 1, 2, 3, BIG] {
                passages(text, max);
            }
        }
    }

    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            " ", "  ", "\n", "\n\n", "\r\n", "\r", "\t", "\u{a0}", "\u{3000}", "\u{2028}",
            "\u{85}", ".", "...", "!", "?", "?!", "…", "。", "！", "\"", "'", "”", "“", "’", "«",
            "»", " » ", "„", "(", ")", "[", "]", "「", "」", ",", ";", "—", "-", "a", "the",
            "word", "A", "He", "Mr", "Mr.", "U.S.", "J.", "No.", "no", "etc.", "e.g.", "3.5", "42",
            "é", "Über", "日本", "🦀", "x\u{301}",
        ])
    }

    fn article() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..120).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn invariants_on_articles(text in article(), max in 0usize..64) {
            check_invariants(&text, max, &split_article(&text, max));
        }

        #[test]
        fn invariants_on_articles_unlimited(text in article()) {
            check_invariants(&text, BIG, &split_article(&text, BIG));
        }

        #[test]
        fn invariants_on_arbitrary_unicode(text in any::<String>(), max in 0usize..64) {
            check_invariants(&text, max, &split_article(&text, max));
        }

        #[test]
        fn invariants_on_whitespace_heavy_unicode(
            text in "[\\s\\PC.!?\"'”»«\n]{0,200}",
            max in 0usize..64,
        ) {
            check_invariants(&text, max, &split_article(&text, max));
        }
    }
}
