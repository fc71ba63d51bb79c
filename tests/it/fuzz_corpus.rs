//! The fuzz targets' checks (`fuzz/checks.rs`) over the seed corpus, on the
//! stable toolchain, so that every test run covers what `fuzz/run.sh` fuzzes.
//! Inputs that once broke a check are added to the corpus and stay there.

use std::path::{Path, PathBuf};

use crate::fuzz_checks;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("the seed corpus").map(|e| e.expect("directory entry").path()).collect();
    files.sort();
    assert!(files.len() >= 20, "{} seeds in {dir:?}", files.len());
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("seed file"))).collect()
}

#[test]
fn parse_target_over_the_seed_corpus() {
    for (path, data) in corpus("parse") {
        // Each seed also as every cut: prefixes are exercised inside the check.
        let outcome = std::panic::catch_unwind(|| fuzz_checks::parse(&data));
        assert!(outcome.is_ok(), "parse check failed on {path:?}");
    }
}

#[test]
fn exchange_target_over_the_seed_corpus() {
    for (path, data) in corpus("exchange") {
        let outcome = std::panic::catch_unwind(|| fuzz_checks::exchange(&data));
        assert!(outcome.is_ok(), "exchange check failed on {path:?}");
    }
}
