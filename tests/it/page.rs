//! Issue 12, the device page at `/`: its bytes (the repo's readable source,
//! minified; gzip for browsers, identity for the rest), the headers of a page
//! (a Content-Security-Policy whose hashes match the inline style and script,
//! nosniff, no framing, a versioned ETag with `no-cache`), 304s, HEAD, and the
//! access rules (`--page off`, the token does not guard it, the allowlist does).
//! The browser side is tests/browser/ (headless Chromium).

use fluxstat::access::{Access, Allowlist, Token};
use fluxstat::page::inflate::inflate;

use crate::build_page;
use crate::cli::{fluxstat, Running};
use crate::support::{settings, Client, TestServer};

const NOT_FOUND: &str = r#"{"status":404,"message":"Not found"}"#;

fn source() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/page/index.html");
    build_page::minify(&std::fs::read_to_string(path).expect("the page's source"))
}

fn get(c: &mut Client, extra: &str) -> crate::support::Response {
    c.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
    c.response()
}

#[test]
fn sha256_and_base64_match_known_vectors() {
    // FIPS 180-4 examples; the CSP hashes below are only as good as this.
    let table: &[(&str, &str)] = &[
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for &(input, want) in table {
        assert_eq!(build_page::hex(&build_page::sha256(input.as_bytes())), want, "{input:?}");
    }
    assert_eq!(build_page::sha256(&[b'a'; 1_000_000])[..4], [0xcd, 0xc7, 0x6e, 0x5c]);
    assert_eq!(build_page::base64(b"fo"), "Zm8=");
    assert_eq!(build_page::base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(build_page::crc32(b"123456789"), 0xcbf4_3926);
}

#[test]
fn the_page_is_the_readable_source_with_a_policy_that_admits_only_its_own_script_and_style() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    let r = get(&mut c, "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(!r.has("Content-Encoding"), "no gzip for a client that did not ask");
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
    let page = r.text();
    assert_eq!(page, source(), "the served page is src/page/index.html, minified");
    assert!(page.starts_with("<!doctype html>"));
    // Self-contained: nothing is loaded from anywhere (the browser test checks the requests).
    for outside in ["src=", "@import", "url(", "href=\"http", "<link rel=\"stylesheet\""] {
        assert!(!page.contains(outside), "{outside}");
    }

    let csp = r.header("Content-Security-Policy").expect("a policy");
    let style = build_page::element(page, "style").expect("<style>");
    let script = build_page::element(page, "script").expect("<script>");
    for want in [
        "default-src 'none'".to_owned(),
        format!("style-src {}", build_page::csp_hash(style)),
        format!("script-src {}", build_page::csp_hash(script)),
        "frame-ancestors 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'none'".to_owned(),
        "connect-src http: https:".to_owned(),
    ] {
        assert!(csp.split("; ").any(|d| d == want), "{want:?} not in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.matches("<script").count(), 1, "one script, the hashed one");
    assert_eq!(page.matches("<style").count(), 1, "one style, the hashed one");
    assert!(!page.contains(" style=\""), "inline style attributes would be blocked");
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
    assert_eq!(r.header("Cache-Control"), Some("no-cache"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    let etag = r.header("ETag").expect("ETag");
    assert!(etag.starts_with(&format!("\"{}-", env!("CARGO_PKG_VERSION"))), "versioned: {etag}");
}

#[test]
fn browsers_get_it_gzipped_with_its_own_tag_and_both_revalidate_to_304() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    let plain = get(&mut c, "");
    let gz = get(&mut c, "Accept-Encoding: gzip, deflate, br\r\n");
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("Content-Encoding"), Some("gzip"));
    assert_eq!(gz.header("Content-Length"), Some(gz.body.len().to_string().as_str()));
    assert!(gz.body.len() * 2 < plain.body.len(), "{} gzipped vs {}", gz.body.len(), plain.body.len());
    assert_eq!(gz.body[..3], [0x1f, 0x8b, 8], "a gzip member");
    let mut decoded = Vec::new();
    inflate(&gz.body[10..gz.body.len() - 8], &mut decoded).expect("valid deflate");
    assert_eq!(decoded, plain.body);
    let trailer = &gz.body[gz.body.len() - 8..];
    assert_eq!(trailer[..4], build_page::crc32(&decoded).to_le_bytes());
    assert_eq!(trailer[4..], (decoded.len() as u32).to_le_bytes());
    for name in ["Content-Security-Policy", "Content-Type", "Cache-Control", "Vary", "X-Content-Type-Options"] {
        assert_eq!(gz.header(name), plain.header(name), "{name}");
    }
    let (tag, gz_tag) = (plain.header("ETag").expect("tag"), gz.header("ETag").expect("tag"));
    assert_ne!(tag, gz_tag, "two representations, two strong tags");

    for (ae, tag) in [("", tag), ("Accept-Encoding: gzip\r\n", gz_tag)] {
        let r = get(&mut c, &format!("If-None-Match: {tag}\r\n{ae}"));
        assert_eq!((r.status, r.body.len()), (304, 0), "{ae:?}");
        assert_eq!((r.header("ETag"), r.header("Cache-Control")), (Some(tag), Some("no-cache")));
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    }
    // The other representation's tag does not validate this one.
    assert_eq!(get(&mut c, &format!("If-None-Match: {gz_tag}\r\n")).status, 200);

    c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let head = c.read_response(true);
    assert_eq!((head.status, head.header("Content-Length")), (200, gz.header("Content-Length")));
    // Had HEAD sent a body, this answer would be read from the middle of it.
    assert_eq!(c.get("/health").status, 200);
}

#[test]
fn page_off_is_404_and_the_query_is_ignored_when_on() {
    let mut off = settings();
    off.page = false;
    let server = TestServer::fixed(off);
    let r = server.connect().get("/");
    assert_eq!((r.status, r.text()), (404, NOT_FOUND));
    let server = TestServer::fixed(settings());
    let r = server.connect().get("/?hosts=192.168.1.1,pi.local:8001");
    assert_eq!((r.status, r.header("Content-Type")), (200, Some("text/html; charset=utf-8")));
    assert_eq!(server.connect().get("/index.html").status, 404);
}

#[test]
fn the_page_option_and_its_variable_reach_the_server() {
    for (args, env, want) in [(&["--page", "off"][..], None, 404), (&[][..], Some("off"), 404), (&[][..], None, 200)] {
        let mut cmd = fluxstat();
        cmd.args(["--listen", "127.0.0.1:0"]).args(args);
        if let Some(v) = env {
            cmd.env("FLUXSTAT_PAGE", v);
        }
        let mut run = Running::start(&mut cmd);
        let addr = run.listening_addr();
        assert_eq!(Client::connect(addr).get("/").status, want, "{args:?} {env:?}");
        run.signal("TERM");
        run.wait_exit();
    }
}

#[test]
fn the_token_does_not_guard_the_page_and_the_allowlist_does() {
    let mut guarded = settings();
    guarded.access = Access { token: Some(Token::new(b"t0k").expect("token")), ..Access::default() };
    let server = TestServer::fixed(guarded);
    let mut c = server.connect();
    assert_eq!(c.get("/").status, 200, "the page holds no figures");
    assert_eq!(c.get("/metrics").status, 401);

    let mut outside = settings();
    outside.access.allow = Allowlist::parse("10.0.0.0/8").expect("allowlist");
    let server = TestServer::fixed(outside);
    let r = server.connect().get("/");
    assert_eq!(r.status, 403);
}
