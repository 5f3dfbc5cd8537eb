//! # slant
//!
//! Scores news passages for sentiment, sensational framing, clickbait and
//! misinformation, and trains, evaluates and serves the models that do it.
//!
//! # Layout
//! - [`text`]: tokenizer (Unicode words, emphasis and number tokens, byte
//!   spans, hashes) and the article → passages splitter.
//! - [`features`]: TF-IDF featurizer, its vocabulary and scratch space.
//! - [`data`]: reading labeled files (JSONL/CSV/TSV) and passages to score.
//! - [`learn`]: sparse logistic regression behind linfa's traits.
//! - [`model`]: the model file format and the compiled scorer.
//! - [`eval`]: metrics and evaluation of a head on labeled data.
//! - [`train`]: training every head of a [`config`] into model data.
//! - [`config`]: the TOML training config.
//! - [`bench`]: single-thread scoring throughput over the peers' corpus.
//! - [`service`]: the slant.v1 gRPC server (health, reflection, limits, hot
//!   reload, metrics), as a library.
//! - [`client`]: programs that call a server: the load generator.
//! - [`cli`]: the command line; `main.rs` only parses and reports errors.
//! - [`proto`]: the generated `slant.v1` gRPC types.
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod data;
pub mod eval;
pub mod features;
pub mod learn;
pub mod model;
pub mod service;
pub mod text;
pub mod train;

pub mod proto {
    tonic::include_proto!("slant.v1");
}
