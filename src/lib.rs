//! # slant
//!
//! Scores news passages for sentiment, sensational framing, clickbait and
//! misinformation, and trains, evaluates and serves the models that do it.
//!
//! # Layout
//! - [`text`]: tokenizer (Unicode words, emphasis and number tokens, byte
//!   spans, hashes) and the article → passages splitter.
//! - [`features`]: TF-IDF featurizer, its vocabulary and scratch space.
//! - [`learn`]: sparse logistic regression behind linfa's traits.
//! - [`proto`]: the generated `slant.v1` gRPC types.
pub mod features;
pub mod learn;
pub mod text;

pub mod proto {
    tonic::include_proto!("slant.v1");
}
