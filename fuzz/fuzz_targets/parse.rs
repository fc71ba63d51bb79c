//! `http::parse` on arbitrary bytes: never panics, and its answer is monotone
//! (see `checks::parse`).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::parse(data));
