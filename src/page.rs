//! The device page at `GET /`: one self-contained HTML document (inline style and
//! script, no other resource) whose script polls `/metrics` and, for the LAN
//! overview, other fluxstat hosts. The device does nothing for it but send
//! static bytes: the readable source is `src/page/index.html`; `build.rs`
//! minifies it (`build/page.rs`) into the binary and computes the hashes below,
//! and this module renders the response head once, at start.
//!
//! Headers, and why:
//! - `Content-Security-Policy`: `default-src 'none'`; the one inline `<style>` and
//!   `<script>` are allowed by their SHA-256 only (no `'unsafe-inline'`), so an
//!   injected element would not run; `frame-ancestors 'none'` forbids framing
//!   (clickjacking), `base-uri` and `form-action` are `'none'`; `img-src data:`
//!   covers the empty `data:` favicon that keeps browsers from asking for
//!   `/favicon.ico`. `connect-src http: https:` lets the script fetch any host:
//!   the overview's hosts are typed by the user at run time (a field kept in
//!   localStorage, or `?hosts=`), so no list can be written into a header that is
//!   rendered once, and rendering it per request from the query would make the
//!   responder parse and allocate. The page writes every value with `textContent`
//!   (never as markup), so nothing a host sends can run; what the wide
//!   `connect-src` gives up is a limit on where a hypothetical injected script
//!   could send data, which the hash-only `script-src` already prevents.
//! - `Cache-Control: no-cache` with a strong `ETag` of the version and the page's
//!   hash: the browser keeps the page and revalidates it on each load with
//!   `If-None-Match`, which costs a 304 with no body; a new fluxstat version (or
//!   page) has a new tag, so nobody keeps an old page after an upgrade, which a
//!   `max-age` on an unversioned URL could not promise.
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (the
//!   overview's list of hosts in `?hosts=` is not sent to the hosts it polls).
//!
//! The page holds no figures, so `--token-file` does not guard it; the source
//! allowlist and the Host check apply as to every path. `--page off` turns it into
//! the usual 404.

pub mod inflate;

/// The served document, gzipped: `src/page/index.html`, minified at build time.
pub const GZIP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/page.html.gz"));
/// The length of the document decoded.
const LEN: &str = env!("FLUXSTAT_PAGE_LEN");
/// The policy with the hashes of the served style and script.
pub const CSP: &str = env!("FLUXSTAT_PAGE_CSP");
/// `<version>-<first 16 hex digits of the page's SHA-256>`, the entity tag's text.
const TAG: &str = env!("FLUXSTAT_PAGE_ETAG");
/// gzip's fixed header, which `build/page.rs` writes, and its trailer.
const GZIP_HEADER: usize = 10;
const GZIP_TRAILER: usize = 8;

/// One representation of the page: its heads, rendered once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Every header line of a 200 (and HEAD) answer.
    pub headers: Vec<u8>,
    /// `Cache-Control`, `ETag` and `Vary`, for a 304.
    pub validators: Vec<u8>,
    /// The quoted entity tag.
    pub etag: Vec<u8>,
}

impl Variant {
    fn new(len: &str, etag: String, encoding: &str) -> Variant {
        let validators = format!("Cache-Control: no-cache\r\nETag: {etag}\r\nVary: Accept-Encoding\r\n");
        let headers = format!(
            "Content-Type: text/html; charset=utf-8\r\n{encoding}Content-Length: {len}\r\n{validators}\
Content-Security-Policy: {CSP}\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
        );
        Variant { headers: headers.into_bytes(), validators: validators.into_bytes(), etag: etag.into_bytes() }
    }
}

/// The page's two representations: gzip for browsers (all send
/// `Accept-Encoding: gzip`), identity for the rest, each with its own strong tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub gzip: Variant,
    pub identity: Variant,
}

impl Page {
    pub fn new() -> Page {
        Page {
            gzip: Variant::new(&GZIP.len().to_string(), format!("\"{TAG}-gz\""), "Content-Encoding: gzip\r\n"),
            identity: Variant::new(LEN, format!("\"{TAG}\""), ""),
        }
    }
}

impl Default for Page {
    fn default() -> Page {
        Page::new()
    }
}

/// Appends the decoded page to `out`: a handful of microseconds, for the
/// clients that do not take gzip; the binary keeps no second copy.
pub fn write_identity(out: &mut Vec<u8>) {
    let deflate = GZIP.get(GZIP_HEADER..GZIP.len().saturating_sub(GZIP_TRAILER)).unwrap_or_default();
    // The stream is this build's own output, tested to decode (`tests::decodes`).
    let _ = inflate::inflate(deflate, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        let mut out = b"head".to_vec();
        write_identity(&mut out);
        assert_eq!(out.len(), 4 + LEN.parse::<usize>().expect("a length"));
        assert!(out[4..].starts_with(b"<!doctype html>"));
        assert!(out.ends_with(b"</script>\n"));
    }

    #[test]
    fn a_truncated_or_foreign_stream_is_refused_without_panic() {
        let deflate = &GZIP[GZIP_HEADER..GZIP.len() - GZIP_TRAILER];
        for cut in (0..deflate.len()).step_by(97) {
            assert_eq!(inflate::inflate(&deflate[..cut], &mut Vec::new()), None, "cut at {cut}");
        }
        for bad in [&b"\xff\xff\xff"[..], b"\x07", b"\x01\x05\x00\x00\x00abc", b"\x01\x02\x00\xfe\xffab"] {
            assert_eq!(inflate::inflate(bad, &mut Vec::new()), None, "{bad:?}");
        }
        let mut out = Vec::new();
        assert_eq!(inflate::inflate(b"\x01\x03\x00\xfc\xffabc", &mut out), Some(()));
        assert_eq!(out, b"abc");
    }
}
