//! The integration tests: one binary, real sockets on 127.0.0.1, raw bytes out,
//! real parsing of what comes back.

mod cli;
mod connections;
mod edges;
mod fixtures;
#[path = "../../fuzz/checks.rs"]
mod fuzz_checks;
mod fuzz_corpus;
mod http;
mod metrics;
mod process;
mod properties;
mod push;
mod robustness;
mod sampling;
mod security;
mod soak;
mod support;
