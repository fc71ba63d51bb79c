//! The integration tests: one binary, real sockets on 127.0.0.1, raw bytes out,
//! real parsing of what comes back.

mod cli;
mod http;
mod metrics;
mod process;
mod robustness;

mod security;
mod support;
