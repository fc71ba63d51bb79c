//! Build step of the device page (`src/page.rs`): minifies `src/page/index.html`,
//! gzips it into `$OUT_DIR/page.html.gz` (the only copy in the binary) and
//! computes, from the bytes served, the Content-Security-Policy hashes of its
//! inline style and script, its length and its ETag.
//!
//! Also decides the platform once, for every `cfg` in the crate (`platform`).

#[path = "build/page.rs"]
mod page;

use std::path::PathBuf;

fn main() {
    platform();
    println!("cargo:rerun-if-changed=src/page/index.html");
    println!("cargo:rerun-if-changed=build/page.rs");
    let source = match std::fs::read_to_string("src/page/index.html") {
        Ok(s) => s,
        Err(e) => panic!("src/page/index.html: {e}"),
    };
    let served = page::minify(&source);
    let (Some(style), Some(script)) = (page::element(&served, "style"), page::element(&served, "script")) else {
        panic!("src/page/index.html needs one <style> and one <script> element");
    };
    let csp = format!(
        "default-src 'none'; style-src {}; script-src {}; connect-src http: https:; img-src data:; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        page::csp_hash(style),
        page::csp_hash(script)
    );
    let digest = page::hex(&page::sha256(served.as_bytes()));
    let etag = format!("{}-{}", std::env::var("CARGO_PKG_VERSION").unwrap_or_default(), &digest[..16]);
    let gz = page::gzip(served.as_bytes(), &miniz_oxide::deflate::compress_to_vec(served.as_bytes(), 10));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("page.html.gz");
    if let Err(e) = std::fs::write(&out, gz) {
        panic!("{}: {e}", out.display());
    }
    println!("cargo:rustc-env=FLUXSTAT_PAGE_LEN={}", served.len());
    println!("cargo:rustc-env=FLUXSTAT_PAGE_CSP={csp}");
    println!("cargo:rustc-env=FLUXSTAT_PAGE_ETAG={etag}");
}

/// `cfg(procfs)` where the machine is read from `/proc` and `/sys` (Linux, Android
/// and the other systems with a Linux-style procfs); not on Windows or Apple's
/// systems, which have their own readers (`src/sample/windows/`, `src/sample/macos.rs`).
fn platform() {
    println!("cargo::rustc-check-cfg=cfg(procfs)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let vendor = std::env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    if os != "windows" && vendor != "apple" {
        println!("cargo::rustc-cfg=procfs");
    }
}
