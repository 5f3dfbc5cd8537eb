//! Client: programs that call a running slant server, as other services
//! would. [`bench_grpc`] is the closed-loop load generator behind
//! `slant bench grpc` (over gRPC or the JSON API); [`RawCodec`] sends and receives message bytes as
//! they are (the generator encodes each request once; tests use it to send
//! what no well-behaved client would).

mod load;

pub use load::{bench_grpc, BenchProtocol, BenchReport, BenchRpc, LoadError, LoadSpec, RawCodec};
