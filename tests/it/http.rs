//! The HTTP/1.1 behaviour of SPEC §3, over real sockets.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxstat::published::{Latest, Published};

use crate::support::{fixed_snapshot, settings, wait_for, Client, TestServer};

#[test]
fn metrics_has_exact_headers_and_json_body() {
    let server = TestServer::fixed(settings());
    let r = server.connect().get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
    assert_eq!(r.header("Cache-Control"), Some("no-cache"));
    let etag = r.header("ETag").expect("ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    let date = r.header("Date").expect("Date");
    assert!(date.ends_with(" GMT") && date.len() == 29, "IMF-fixdate: {date}");
    assert!(!r.has("Access-Control-Allow-Origin"), "CORS is off by default");
    assert_eq!(crate::support::as_u64(crate::support::at(&r.json(), &["system", "uptime"])), 947_578);
}

#[test]
fn answers_without_a_validator_are_no_store() {
    // `no-cache` without an ETag is a body no cache can ever reuse (REDbot warns).
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    for path in ["/health", "/nowhere"] {
        let r = c.get(path);
        assert!(!r.has("ETag"), "{path}");
        assert_eq!(r.header("Cache-Control"), Some("no-store"), "{path}");
    }
    let r = c.get("/metrics");
    assert_eq!((r.header("Cache-Control"), r.has("ETag")), (Some("no-cache"), true));
}

#[test]
fn head_sends_the_same_headers_and_no_body() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    let get = c.get("/metrics");
    c.send(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.read_response(true);
    assert_eq!(head.status, 200);
    for name in ["Content-Type", "Content-Length", "Cache-Control", "ETag"] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    // Had HEAD sent a body, this response would be read from the middle of it.
    let again = c.get("/health");
    assert_eq!(again.status, 200);
}

#[test]
fn query_strings_and_absolute_form_are_accepted() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    let plain = c.get("/metrics");
    assert_eq!(c.get("/metrics?format=json&x").body, plain.body);
    c.send(b"GET http://router.lan:8001/metrics HTTP/1.1\r\nHost: router.lan\r\n\r\n");
    assert_eq!(c.response().body, plain.body);
}

#[test]
fn if_none_match_gives_304_until_the_sample_changes() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    let first = c.get("/metrics");
    let etag = first.header("ETag").expect("ETag").to_owned();
    let req = |tag: &str| format!("GET /metrics HTTP/1.1\r\nHost: t\r\nIf-None-Match: {tag}\r\n\r\n");

    c.send(req(&etag).as_bytes());
    let r = c.response();
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty() && !r.has("Content-Length"));
    assert_eq!(r.header("ETag"), Some(etag.as_str()));

    c.send(req(&format!("W/{etag}, \"other\"")).as_bytes());
    assert_eq!(c.response().status, 304, "weak comparison, lists");

    // A new sample: new tag, and the old one no longer matches.
    let mut next = fixed_snapshot();
    next.taken_at_us += 1_000_000;
    server.latest.store(Published::new(&next, 2, Instant::now()));
    c.send(req(&etag).as_bytes());
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_ne!(r.header("ETag"), Some(etag.as_str()));
    assert!(r.text().contains("\"updated_at\":\"2022-10-01T18:14:40.682011+00:00\""), "{}", r.text());
}

#[test]
fn etag_changes_with_each_real_sample() {
    let mut s = settings();
    s.interval = Duration::from_millis(200);
    let server = TestServer::sampling(s);
    let mut c = server.connect();
    let first = c.get("/metrics").header("ETag").expect("ETag").to_owned();
    wait_for("a new sample", || c.get("/metrics").header("ETag") != Some(first.as_str()));
}

#[test]
fn health_is_200_while_fresh_and_503_when_stale() {
    let server = TestServer::fixed(settings());
    let r = server.connect().get("/health");
    assert_eq!(r.status, 200);
    assert_eq!(crate::support::as_u64(crate::support::at(&r.json(), &["status"])), 200);

    // The last good sample is older than three intervals (3 s here).
    let old = Instant::now().checked_sub(Duration::from_secs(4)).expect("monotonic clock is past 4 s");
    let stale = Arc::new(Latest::new(Published::new(&fixed_snapshot(), 1, old)));
    let server = TestServer::with_latest(stale, settings());
    let r = server.connect().get("/health");
    assert_eq!(r.status, 503);
    let body = r.json();
    assert_eq!(crate::support::as_u64(crate::support::at(&body, &["status"])), 503);
    assert_eq!(crate::support::as_str(crate::support::at(&body, &["updated_at"])), "2022-10-01T18:14:39.682011+00:00");
    assert_eq!(server.connect().get("/metrics").status, 200, "the last sample is still served");
}

#[test]
fn status_table() {
    // (request, status, body, Allow header, connection stays open)
    type Case<'a> = (&'a str, u16, Option<&'a str>, Option<&'a str>, bool);
    let table: &[Case<'_>] = &[
        ("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", 404, Some(r#"{"status":404,"message":"Not found"}"#), None, true),
        ("GET /metrics/ HTTP/1.1\r\nHost: t\r\n\r\n", 404, Some(r#"{"status":404,"message":"Not found"}"#), None, true),
        (
            "DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            405,
            Some(r#"{"status":405,"message":"Method not allowed"}"#),
            Some("GET, HEAD, OPTIONS"),
            true,
        ),
        ("POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, None, Some("GET, HEAD, OPTIONS"), true),
        ("OPTIONS /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 204, Some(""), Some("GET, HEAD, OPTIONS"), true),
        ("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", 204, Some(""), Some("GET, HEAD, OPTIONS"), true),
        ("GET /metrics HTTP/1.1\r\n\r\n", 400, Some(r#"{"status":400,"message":"Bad request"}"#), None, false),
        ("GET /metrics HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400, None, None, false),
        ("GET /metrics HTTP/9.9\r\nHost: t\r\n\r\n", 505, None, None, false),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, None, None, false),
        ("\x16\x03\x01\x00\x25\x01\x00\x00\x21\x03\x03", 400, None, None, false),
        ("GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 413, None, None, false),
        (
            "POST /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            400,
            None,
            None,
            false,
        ),
        ("GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400, None, None, false),
    ];
    let server = TestServer::fixed(settings());
    for &(req, status, body, allow, stays_open) in table {
        let mut c = server.connect();
        c.send(req.as_bytes());
        let r = c.response();
        assert_eq!(r.status, status, "{req:?}");
        if let Some(body) = body {
            assert_eq!(r.text(), body, "{req:?}");
        }
        assert_eq!(r.header("Allow"), allow, "{req:?}");
        if status >= 400 {
            let json = r.json();
            assert!(!crate::support::as_str(crate::support::at(&json, &["message"])).is_empty());
        }
        if stays_open {
            assert_eq!(c.get("/metrics").status, 200, "{req:?}: connection still usable");
        } else {
            assert_eq!(r.header("Connection"), Some("close"), "{req:?}");
            c.expect_closed();
        }
    }
}

#[test]
fn oversized_heads_get_431_and_close() {
    let server = TestServer::fixed(settings());
    let mut too_many = String::from("GET /metrics HTTP/1.1\r\nHost: t\r\n");
    for i in 0..32 {
        too_many.push_str(&format!("X-{i}: y\r\n"));
    }
    too_many.push_str("\r\n");
    let huge = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let endless = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}", "a".repeat(20_000));
    for req in [too_many, huge, endless] {
        let mut c = server.connect();
        c.send(req.as_bytes());
        let r = c.response();
        assert_eq!(r.status, 431, "{}", &req[..40]);
        assert_eq!(r.text(), r#"{"status":431,"message":"Request header fields too large"}"#);
        c.expect_closed();
    }
    // Exactly 32 header lines and a head of exactly 8 KiB are fine.
    let mut ok = String::from("GET /metrics HTTP/1.1\r\nHost: t\r\n");
    for i in 2..32 {
        ok.push_str(&format!("X-{i}: y\r\n"));
    }
    let pad = 8192 - ok.len() - "X-Pad: \r\n\r\n".len();
    ok.push_str(&format!("X-Pad: {}\r\n\r\n", "p".repeat(pad)));
    assert_eq!(ok.len(), 8192);
    let mut c = server.connect();
    c.send(ok.as_bytes());
    assert_eq!(c.response().status, 200);
}

#[test]
fn cors_is_off_by_default_and_configurable() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    c.send(b"OPTIONS /metrics HTTP/1.1\r\nHost: t\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n");
    let r = c.response();
    assert!(!r.has("Access-Control-Allow-Origin") && !r.has("Access-Control-Allow-Methods"));

    let mut any = settings();
    any.cors_origin = Some("*".into());
    let server = TestServer::fixed(any);
    let mut c = server.connect();
    assert_eq!(c.get("/metrics").header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(c.get("/nope").header("Access-Control-Allow-Origin"), Some("*"), "errors are readable too");
    c.send(b"OPTIONS /metrics HTTP/1.1\r\nHost: t\r\nOrigin: http://ha.lan\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(r.header("Access-Control-Allow-Methods"), Some("GET, HEAD, OPTIONS"));
    assert!(r.header("Access-Control-Allow-Headers").is_some_and(|h| h.contains("If-None-Match")));

    let mut one = settings();
    one.cors_origin = Some("http://192.168.1.10:8123".into());
    let server = TestServer::fixed(one);
    let r = server.connect().get("/metrics");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("http://192.168.1.10:8123"));
    assert_eq!(r.header("Vary"), Some("Origin"));
}

#[test]
fn keep_alive_http10_and_connection_close() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    for _ in 0..5 {
        let r = c.get("/metrics");
        assert_eq!(r.status, 200);
        assert!(!r.has("Connection"), "HTTP/1.1 keeps alive silently");
    }

    let mut c = server.connect();
    c.send(b"GET /metrics HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    c.expect_closed();

    let mut c = server.connect();
    c.send(b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response().header("Connection"), Some("keep-alive"));
    c.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response().status, 200);

    let mut c = server.connect();
    c.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    c.expect_closed();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    c.send(
        b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
HEAD /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n\
GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(c.response().status, 200);
    assert_eq!(c.response().status, 404);
    let head = c.read_response(true);
    assert!(head.body.is_empty() && head.has("Content-Length"));
    let last = c.response();
    assert_eq!((last.status, last.header("Connection")), (200, Some("close")));
    assert!(last.text().contains("\"status\":200"));
    c.expect_closed();
}

#[test]
fn a_long_pipeline_is_answered_completely_and_in_order() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    let n = 2_000;
    let mut batch = Vec::new();
    for i in 0..n {
        let path = if i % 3 == 0 { "/health" } else { "/metrics" };
        batch.extend_from_slice(format!("GET {path}?i={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    // Write from another thread: the server answers while we are still sending.
    let mut writer = c.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&batch));
    for i in 0..n {
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.text().contains("\"system\""), i % 3 != 0, "response {i} out of order");
    }
    sender.join().expect("sender thread").expect("sent");
    assert!(server.stats.requests.load(Ordering::Relaxed) >= n);
}

#[test]
fn requests_split_into_single_bytes_work() {
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    let reqs =
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"x\"\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    for b in reqs {
        c.send(std::slice::from_ref(b));
        c.stream.flush().expect("flush");
    }
    assert_eq!(c.response().status, 200);
    assert_eq!(c.response().status, 200);
}

#[test]
fn a_head_not_completed_in_time_gets_408_without_delaying_others() {
    let mut s = settings();
    s.request_timeout = Duration::from_millis(300);
    let server = TestServer::fixed(s);
    let mut slow = server.connect();
    slow.send(b"GET /metrics HTTP/1.1\r\nHo");
    let mut silent = server.connect();
    // Meanwhile, others are served at once.
    let started = Instant::now();
    assert_eq!(server.connect().get("/metrics").status, 200);
    assert!(started.elapsed() < Duration::from_millis(250), "a stuck client delayed another");
    for c in [&mut slow, &mut silent] {
        let r = c.response();
        assert_eq!((r.status, r.header("Connection")), (408, Some("close")));
        assert_eq!(r.text(), r#"{"status":408,"message":"Request timeout"}"#);
        c.expect_closed();
    }
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let mut s = settings();
    s.idle_timeout = Duration::from_millis(200);
    let server = TestServer::fixed(s);
    let mut c = server.connect();
    assert_eq!(c.get("/metrics").status, 200);
    c.expect_closed();
    wait_for("the connection to be forgotten", || server.stats.open.load(Ordering::Relaxed) == 0);
}

#[test]
fn when_full_the_longest_waiting_connection_makes_room() {
    let mut s = settings();
    s.max_connections = 2;
    let server = TestServer::fixed(s);
    let mut idle = server.connect();
    assert_eq!(idle.get("/metrics").status, 200);
    let mut trickling = server.connect();
    trickling.send(b"GET /met");
    wait_for("two open connections", || server.stats.open.load(Ordering::Relaxed) == 2);

    let mut newcomer = server.connect();
    assert_eq!(newcomer.get("/metrics").status, 200);
    idle.expect_closed();
    // The trickling one waited less long and is still there.
    trickling.send(b"rics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(trickling.response().status, 200);
}

#[test]
fn a_client_that_does_not_read_makes_room_like_an_idle_one() {
    let mut s = settings();
    s.max_connections = 1;
    let server = TestServer::fixed(s);
    // A client that sends many requests and never reads the answers holds its
    // slot with fluxstat waiting to write: it is displaced all the same.
    let hog = server.connect();
    let mut writer = hog.stream.try_clone().expect("clone");
    let flood = std::thread::spawn(move || {
        let req = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(200);
        // Ends with an error once the server closes the connection.
        for _ in 0..2_000 {
            if writer.write_all(&req).is_err() {
                break;
            }
        }
    });
    wait_for("the hog to block fluxstat's writes", || server.stats.busy.load(Ordering::Relaxed) == 1);
    let mut c = server.connect();
    assert_eq!(c.get("/metrics").status, 200);
    flood.join().expect("flood thread");
    wait_for("the hog to be gone", || server.stats.busy.load(Ordering::Relaxed) == 0);
    assert_eq!(server.stats.open.load(Ordering::Relaxed), 1);
    drop(hog);
}

#[test]
fn shutdown_closes_idle_connections_and_returns_promptly() {
    let mut server = TestServer::fixed(settings());
    let mut c = server.connect();
    assert_eq!(c.get("/metrics").status, 200);
    let mut half = server.connect();
    half.send(b"GET /metr");
    let took = server.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    c.expect_closed();
    assert!(half.try_response(false).is_none());
    assert!(Client::connect_timeout_refused(server.addr));
}

impl Client {
    /// True when nothing accepts connections at `addr` any more.
    fn connect_timeout_refused(addr: std::net::SocketAddr) -> bool {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
    }
}
