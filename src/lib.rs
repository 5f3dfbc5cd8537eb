//! # slant
//!
//! Scores news passages for sentiment, sensational framing, clickbait and
//! misinformation, and trains, evaluates and serves the models that do it.
//!
//! # Layout
//! - [`text`]: tokenizer (Unicode words, emphasis and number tokens, byte
//!   spans, hashes), identity word classes, negative contractions split
//!   in two, @handles left out, what follows a contrasting "but", and the
//!   article → passages splitter.
//! - [`features`]: the TF-IDF featurizer: settings, what a feature is, the
//!   hash index, the lexicon, the context features, fitting, the scan that
//!   looks a passage's features up, the reference vector with its spans
//!   and word shares, and misspellings read as the words meant.
//! - [`model`]: the model file format, the link functions, the compiled
//!   scorer (perfect-hash tables of weight rows) and explanations in the
//!   passage's words.
//! - [`train`]: the training config, sparse logistic regression (linfa
//!   traits, L-BFGS over an objective summed in a fixed order) and the run
//!   that trains every head into model data.
//! - [`data`]: reading labeled files (JSONL/CSV/TSV) and passages to score.
//! - [`eval`]: metrics and evaluation of a head on labeled data, and
//!   behaviour suites (template sentences by capability).
//! - [`bench`]: single-thread scoring throughput over the peers' corpus,
//!   alone or against the peers in the same rounds (medians of ratios).
//! - [`service`]: the slant.v1 server, as a library: gRPC (health,
//!   reflection), gRPC-Web, the JSON API and the page on one port; limits,
//!   hot reload, keys, versions, metrics.
//! - [`client`]: programs that call a server: the load generator (gRPC or
//!   JSON).
//! - [`cli`]: the command line, one file per command; `main.rs` only parses
//!   and reports errors.
//! - [`proto`]: the generated `slant.v1` gRPC types, their proto3 JSON
//!   (serde) impls, and the conversion from the model's scores to them.
pub mod bench;
pub mod cli;
pub mod client;
pub mod data;
pub mod eval;
pub mod features;
pub mod model;
pub mod proto;
pub mod service;
pub mod text;
pub mod train;

#[cfg(test)]
mod testing;
