//! Arbitrary bytes → `ModelData::from_bytes`: must answer `Ok` or `Err`,
//! never panic. The input is tried twice: as a whole file, and with its
//! first 56 bytes replaced by a valid header for the rest (magic, version,
//! length and the payload's SHA-256), so mutations reach the postcard
//! decoder and the content checks instead of stopping at the checksum.
//! Whatever loads must compile (`Model::from_data`) or be refused, and a
//! compiled model must score a fixed passage with every head, explaining,
//! without panicking.
//!
//! Seed: `seeds/model_file/fixture.slant` (trained on data/fixtures).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use slant::model::Workspace;
use slant::model::{Model, ModelData, FORMAT_VERSION, HEADER_LEN, MAGIC};

const PASSAGE: &str = "SHOCKING: officials say the économie will NOT recover!! Really?";

fn check(bytes: &[u8]) {
    let path = Path::new("fuzz.slant");
    let Ok((data, id)) = ModelData::from_bytes(bytes, path) else {
        return;
    };
    // What loads re-encodes to a file that loads, and encoding is stable
    // from there (the input itself may use non-canonical encodings).
    let canonical = data.to_bytes().expect("re-encode a loaded model");
    let (again, _) = ModelData::from_bytes(&canonical, path).expect("a re-encoded model must load");
    assert_eq!(
        again.to_bytes().expect("re-encode"),
        canonical,
        "encode(decode(encode(model))) differs from encode(model)"
    );
    let Ok(model) = Model::from_data(data, id, path) else {
        return;
    };
    let mut ws = Workspace::default();
    let scores = model.score(
        PASSAGE,
        &model.every_head(),
        slant::model::Explain::Words(3),
        &mut ws,
    );
    assert_eq!(scores.len(), model.heads().len());
    for s in &scores {
        let head = &model.heads()[s.head];
        assert_eq!(s.probabilities.len(), head.labels.len());
        assert!(s.label < head.labels.len());
        for c in &s.contributions {
            for &(a, b) in &c.spans {
                assert!(a <= b && b as usize <= PASSAGE.len());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= HEADER_LEN {
        let payload = &data[HEADER_LEN..];
        let mut sealed = Vec::with_capacity(data.len());
        sealed.extend_from_slice(&MAGIC);
        sealed.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        sealed.extend_from_slice(&0u32.to_le_bytes());
        sealed.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        sealed.extend_from_slice(&Sha256::digest(payload));
        sealed.extend_from_slice(payload);
        if sealed != data {
            check(&sealed);
        }
    }
});
