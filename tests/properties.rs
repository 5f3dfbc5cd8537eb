//! Property tests over the public API: the tokenizer's and the article
//! splitter's output invariants on arbitrary Unicode, the scores of a model
//! trained on the fixture set for arbitrary passages, and the model file's
//! round trip and refusal of truncated or corrupted files (never a panic).

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use slant::model::{Explain, Workspace};
use slant::model::{Model, ModelData, ModelError, HEADER_LEN};
use slant::text::split::split_article;
use slant::text::{tokenize, TokenKind};
use slant::train::TrainConfig;
use slant::train::{train, Quiet, TrainOptions};

/// Pieces of news-like text: words the fixture model knows, emphasis,
/// sentence and line endings, quotes, numbers and multi-byte characters.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        " ",
        "  ",
        "\n",
        "\n\n",
        "\r\n",
        "\r",
        "\t",
        "\u{a0}",
        "\u{2028}",
        "\u{85}",
        ".",
        "...",
        "!",
        "!!",
        "?",
        "?!",
        "…",
        "。",
        "！",
        "\"",
        "'",
        "’",
        "“",
        "”",
        "«",
        "»",
        " » ",
        "(",
        ")",
        ",",
        ";",
        "—",
        "-",
        "the",
        "you",
        "won't",
        "believe",
        "SHOCKING",
        "news",
        "great",
        "terrible",
        "market",
        "Mr.",
        "U.S.",
        "No.",
        "3.5",
        "42",
        "é",
        "Über",
        "日本",
        "🦀",
        "x\u{301}",
        "ΣΊΣΥΦΟΣ",
        "İ",
    ])
}

fn news_text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..40).prop_map(|v| v.concat())
}

/// Arbitrary Unicode (any scalar value, control characters included) or
/// news-like text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\s\\PC]{0,120}", news_text()]
}

/// The fixture model (data/fixtures/fixture.toml), trained once through
/// the library and loaded from its encoded bytes, with those bytes.
fn fixture() -> &'static (Model, Vec<u8>) {
    static FIXTURE: OnceLock<(Model, Vec<u8>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/fixture.toml");
        let (config, config_bytes) = TrainConfig::load(&config, None).expect("fixture config");
        let trained = train(&config, &config_bytes, &TrainOptions::default(), &mut Quiet)
            .expect("train the fixture model");
        let bytes = trained.model.to_bytes().expect("encode");
        let (data, id) = ModelData::from_bytes(&bytes, Path::new("fixture.slant")).expect("load");
        assert_eq!(data, trained.model, "the file round trip changed the model");
        let model = Model::from_data(data, id, Path::new("fixture.slant")).expect("compile");
        (model, bytes)
    })
}

/// Loads `bytes` as a model file; if it loads, it must compile or be
/// refused, and a compiled model must score without panicking.
/// Its container is intact, so a refusal must come from the decoder or
/// the content checks.
fn load_and_score(bytes: &[u8]) -> bool {
    let (data, id) = match ModelData::from_bytes(bytes, Path::new("m.slant")) {
        Ok(loaded) => loaded,
        Err(e) => {
            assert!(
                matches!(e, ModelError::Decode { .. } | ModelError::Content { .. }),
                "{e}"
            );
            return false;
        }
    };
    let compiled = Model::from_data(data, id, Path::new("m.slant"));
    if let Err(e) = &compiled {
        assert!(matches!(e, ModelError::Content { .. }), "{e}");
    }
    if let Ok(model) = compiled {
        let mut ws = Workspace::default();
        let scores = model.score(
            "You won't BELIEVE this great news!!",
            &model.every_head(),
            Explain::Words(3),
            &mut ws,
        );
        assert_eq!(scores.len(), model.heads().len());
    }
    true
}

/// Why `bytes` is refused as a model file (a test failure if it loads).
fn refusal(bytes: &[u8]) -> ModelError {
    match ModelData::from_bytes(bytes, Path::new("m.slant")) {
        Ok(_) => panic!("{} modified bytes loaded", bytes.len()),
        Err(e) => e,
    }
}

/// The refusal expected when byte `i` of a model file is changed: the
/// header field it falls in, or the checksum for the payload.
fn expected_refusal(i: usize, e: &ModelError) -> bool {
    match i {
        0..8 => matches!(e, ModelError::BadMagic { .. }),
        8..16 => matches!(e, ModelError::UnsupportedVersion { .. }),
        16..24 => matches!(e, ModelError::LengthMismatch { .. }),
        _ => matches!(e, ModelError::Checksum { .. }),
    }
}

/// `bytes` with a valid header for its (possibly modified) payload.
fn reseal(bytes: &mut [u8]) {
    let digest = Sha256::digest(&bytes[HEADER_LEN..]);
    bytes[24..HEADER_LEN].copy_from_slice(&digest);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tokens_are_ascending_ranges_on_char_boundaries(s in text()) {
        let mut tokens = Vec::new();
        tokenize(&s, &mut tokens);
        let mut prev_end = 0;
        for t in &tokens {
            let (start, end) = (t.start as usize, t.end as usize);
            prop_assert!(start < end && end <= s.len(), "{t:?} outside {s:?}");
            prop_assert!(s.is_char_boundary(start) && s.is_char_boundary(end), "{t:?} in {s:?}");
            prop_assert!(start >= prev_end, "{t:?} not ascending in {s:?}");
            prev_end = end;
            let piece = &s[start..end];
            match t.kind {
                TokenKind::Punct => prop_assert!(piece.chars().all(|c| c == '!' || c == '?'), "{piece:?}"),
                _ => prop_assert!(piece.chars().any(char::is_alphanumeric), "{piece:?}"),
            }
        }
    }

    #[test]
    fn article_passages_keep_the_splitter_invariants(
        s in text(),
        limit in prop_oneof![0usize..80, Just(usize::MAX)],
    ) {
        let ranges = split_article(&s, limit);
        let max = limit.max(1);
        let mut prev_end = 0;
        for r in &ranges {
            prop_assert!(r.start < r.end && r.end <= s.len(), "{r:?} in {s:?}");
            prop_assert!(s.is_char_boundary(r.start) && s.is_char_boundary(r.end), "{r:?} in {s:?}");
            prop_assert!(r.start >= prev_end, "{r:?} overlaps or is not ascending in {s:?}");
            prev_end = r.end;
            let p = &s[r.clone()];
            prop_assert_eq!(p.trim(), p, "untrimmed");
            prop_assert!(p.len() <= max || p.chars().count() == 1, "{p:?} over {max} bytes");
        }
        // Exactly the whitespace is left out.
        let mut k = 0;
        for (i, c) in s.char_indices() {
            while k < ranges.len() && ranges[k].end <= i {
                k += 1;
            }
            let inside = k < ranges.len() && ranges[k].start <= i;
            prop_assert!(inside || c.is_whitespace(), "{c:?} at {i} in no passage of {s:?}");
        }
    }

    #[test]
    fn fixture_model_scores_are_distributions_with_spans_in_the_passage(
        passage in text(),
        heads in prop::collection::vec(0usize..2, 0..3),
        explain in 0usize..12,
        raw in proptest::bool::ANY,
    ) {
        let (model, _) = fixture();
        prop_assert_eq!(model.heads().len(), 2);
        let mut ws = Workspace::default();
        let mode = if raw { Explain::Features(explain) } else { Explain::Words(explain) };
        let scores = model.score(&passage, &heads, mode, &mut ws);
        // One score per head asked for, in that order (none for none).
        prop_assert_eq!(scores.len(), heads.len());
        for (i, s) in scores.iter().enumerate() {
            prop_assert_eq!(s.head, heads[i]);
            let head = &model.heads()[s.head];
            prop_assert_eq!(s.probabilities.len(), head.labels.len());
            let sum: f64 = s.probabilities.iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-9, "{:?} sums to {sum}", s.probabilities);
            prop_assert!(s.probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
            prop_assert!(s.label < head.labels.len());
            prop_assert_eq!(s.label, head.decide(&s.probabilities));
            prop_assert!(s.contributions.len() <= explain);
            for c in &s.contributions {
                prop_assert_eq!(c.feature.is_some(), raw);
                prop_assert!(!c.spans.is_empty(), "{:?} has no span", c.feature.map(|j| model.featurizer().term(j)));
                for &(a, b) in &c.spans {
                    let (a, b) = (a as usize, b as usize);
                    prop_assert!(a < b && b <= passage.len(), "span {a}..{b} in {passage:?}");
                    prop_assert!(
                        passage.is_char_boundary(a) && passage.is_char_boundary(b),
                        "span {a}..{b} off a char boundary in {passage:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn flipping_any_byte_is_refused(at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let (_, bytes) = fixture();
        let mut b = bytes.clone();
        let i = at.index(b.len());
        b[i] ^= mask;
        let e = refusal(&b);
        prop_assert!(expected_refusal(i, &e), "flip {mask:#x} at {i}: {e}");
    }

    #[test]
    fn a_resealed_corrupt_payload_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        // A valid checksum over a corrupted payload gets past the container
        // checks to the decoder and the content checks.
        let (_, bytes) = fixture();
        let mut b = bytes.clone();
        for (at, mask) in &flips {
            let i = HEADER_LEN + at.index(b.len() - HEADER_LEN);
            b[i] ^= mask;
        }
        reseal(&mut b);
        load_and_score(&b);
    }
}

#[test]
fn fixture_model_file_round_trips_byte_for_byte() {
    let (model, bytes) = fixture();
    let (data, id) = ModelData::from_bytes(bytes, Path::new("m.slant")).unwrap();
    assert_eq!(&data.to_bytes().unwrap(), bytes);
    assert_eq!(id, model.id());
    assert_eq!(id.len(), 16);
    // The reloaded model scores exactly as the first one.
    let again = Model::from_data(data, id, Path::new("m.slant")).unwrap();
    let (mut a, mut b) = (Workspace::default(), Workspace::default());
    for p in ["You won't believe this!!", "Markets were calm today.", ""] {
        assert_eq!(
            model.score(p, &model.every_head(), Explain::Words(5), &mut a),
            again.score(p, &again.every_head(), Explain::Words(5), &mut b)
        );
    }
}

#[test]
fn truncating_the_file_at_any_length_is_refused() {
    let (_, bytes) = fixture();
    for len in 0..bytes.len() {
        let e = refusal(&bytes[..len]);
        if len < HEADER_LEN {
            assert!(matches!(e, ModelError::TooShort { .. }), "{len}: {e}");
        } else {
            assert!(matches!(e, ModelError::LengthMismatch { .. }), "{len}: {e}");
        }
    }
    // Truncated payloads under a resealed, consistent header: the decoder
    // must refuse them (postcard needs every field), never panic.
    for len in (HEADER_LEN..bytes.len()).step_by(97) {
        let mut b = bytes[..len].to_vec();
        b[16..24].copy_from_slice(&((len - HEADER_LEN) as u64).to_le_bytes());
        reseal(&mut b);
        let e = refusal(&b);
        assert!(matches!(e, ModelError::Decode { .. }), "{len}: {e}");
    }
}

#[test]
fn every_header_byte_flip_is_refused() {
    let (_, bytes) = fixture();
    for i in 0..HEADER_LEN {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let e = refusal(&b);
            assert!(expected_refusal(i, &e), "bit {bit} of header byte {i}: {e}");
        }
    }
}
