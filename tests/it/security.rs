//! Issue 6, safe on a LAN: the source allowlist (403 at accept time, IPv4, IPv6
//! and IPv4-mapped peers), the bearer token (401), the Host check against DNS
//! rebinding (421), their command-line errors, and that no answer or log line
//! ever carries the token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use fluxstat::access::{Access, Allowlist, Hosts, Token};
use fluxstat::published::{Latest, Published};

use crate::cli::{fluxstat, Running};
use crate::support::{fixed_snapshot, settings, Client, TestServer};

const FORBIDDEN: &str = r#"{"status":403,"message":"Forbidden"}"#;
const UNAUTHORIZED: &str = r#"{"status":401,"message":"Unauthorized"}"#;
const MISDIRECTED: &str = r#"{"status":421,"message":"Host not allowed"}"#;

fn allow(list: &str) -> fluxstat::server::Settings {
    let mut s = settings();
    s.access.allow = Allowlist::parse(list).expect("allowlist");
    s
}

fn expect_forbidden(c: &mut Client) {
    c.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.header("Connection")), (403, Some("close")));
    assert_eq!(r.text(), FORBIDDEN);
    c.expect_closed();
}

#[test]
fn a_source_outside_the_allowlist_gets_403_and_is_closed() {
    // Loopback is in the default `lan`, so exclude it to see the refusal.
    let server = TestServer::fixed(allow("10.0.0.0/8"));
    expect_forbidden(&mut server.connect());
    // Refused before any parsing: even garbage gets the same answer.
    let mut c = server.connect();
    c.send(b"\x16\x03\x01garbage");
    assert_eq!(c.response().status, 403);
    assert_eq!(server.stats.open.load(std::sync::atomic::Ordering::Relaxed), 0, "no slot was taken");

    for list in ["127.0.0.1", "127.0.0.0/8", "lan", "any", "10.0.0.0/8,127.0.0.1/32", "0.0.0.0/0"] {
        let server = TestServer::fixed(allow(list));
        assert_eq!(server.connect().get("/metrics").status, 200, "{list}");
    }
    for list in ["127.0.0.2/32", "::1", "128.0.0.0/1", "192.168.0.0/16"] {
        let server = TestServer::fixed(allow(list));
        expect_forbidden(&mut server.connect());
    }
}

fn dual_stack_server(list: &str) -> Option<TestServer> {
    let any6: SocketAddr = "[::]:0".parse().expect("addr");
    // Kernels without IPv6 cannot show mapped peers; the IPv4 table covers them.
    let listener = fluxstat::socket::listen(any6, true).ok()?;
    let latest = Arc::new(Latest::new(Published::new(&fixed_snapshot(), 1, Instant::now())));
    Some(TestServer::with_listener(listener, latest, allow(list)))
}

#[test]
fn ipv6_and_ipv4_mapped_peers_of_a_dual_stack_listener() {
    // (allowlist, the IPv4 peer is admitted, the IPv6 peer is admitted)
    let table: &[(&str, bool, bool)] = &[
        ("lan", true, true),
        ("127.0.0.1", true, false),
        ("::ffff:127.0.0.0/104", true, false),
        ("::1", false, true),
        ("::1/128,127.0.0.0/8", true, true),
        ("fe80::/10", false, false),
        ("::/0", true, true),
    ];
    for &(list, v4_ok, v6_ok) in table {
        let Some(server) = dual_stack_server(list) else { return };
        let port = server.addr.port();
        // IPv4 peers reach a dual-stack socket as ::ffff:127.0.0.1.
        let mut v4 = Client::connect(SocketAddr::from(([127, 0, 0, 1], port)));
        if v4_ok {
            assert_eq!(v4.get("/metrics").status, 200, "{list}: 127.0.0.1");
        } else {
            expect_forbidden(&mut v4);
        }
        let Ok(v6) = std::net::TcpStream::connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))) else {
            continue; // no ::1 on this machine
        };
        drop(v6);
        let mut v6 = Client::connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
        if v6_ok {
            assert_eq!(v6.get("/metrics").status, 200, "{list}: ::1");
        } else {
            expect_forbidden(&mut v6);
        }
    }
}

fn with_token(token: &str) -> fluxstat::server::Settings {
    let mut s = settings();
    s.access = Access { token: Some(Token::new(token.as_bytes()).expect("token")), ..Access::default() };
    s
}

#[test]
fn metrics_needs_the_bearer_token_and_health_does_not() {
    let server = TestServer::fixed(with_token("0pen-Sesame"));
    let mut c = server.connect();
    let missing = c.get("/metrics");
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("WWW-Authenticate"), Some("Bearer"));
    assert_eq!(missing.text(), UNAUTHORIZED);
    assert!(!missing.has("Connection"), "the client may retry on the same connection");

    let req = |auth: &str| format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{auth}\r\n");
    for wrong in [
        "Authorization: Bearer 0pen-sesame\r\n",
        "Authorization: Bearer 0pen-Sesam\r\n",
        "Authorization: Basic MDpw\r\n",
    ] {
        c.send(req(wrong).as_bytes());
        let r = c.response();
        assert_eq!((r.status, r.text()), (401, UNAUTHORIZED), "{wrong}");
    }
    c.send(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\n\r\n");
    let head = c.read_response(true);
    assert_eq!((head.status, head.header("WWW-Authenticate")), (401, Some("Bearer")), "no 304 without the token");

    c.send(req("Authorization: Bearer 0pen-Sesame\r\n").as_bytes());
    let ok = c.response();
    assert_eq!(ok.status, 200);
    assert!(ok.text().starts_with("{\"system\":"));
    c.send(req("authorization: bearer   0pen-Sesame  \r\n").as_bytes());
    assert_eq!(c.response().status, 200, "scheme is case-insensitive, spaces trimmed");

    // Liveness probes need no secret; /health shows only freshness.
    assert_eq!(c.get("/health").status, 200);
    assert_eq!(c.get("/nope").status, 404);
    c.send(b"OPTIONS /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().status, 204, "CORS preflights carry no credentials");

    c.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n");
    assert_eq!(c.response().status, 400, "two sets of credentials are ambiguous");
}

#[test]
fn a_foreign_host_name_gets_421_when_a_token_or_cors_is_on() {
    let mut guarded = with_token("t");
    guarded.access.hosts = Some(Hosts::new(&["grafana.lan".into()], Some("fluxbox")));
    let server = TestServer::fixed(guarded);
    let port = server.addr.port();
    let ok_hosts = [
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".into(),
        "LocalHost:8001".into(),
        "fluxbox".into(),
        "fluxbox.local:8001".into(),
        "grafana.lan".into(),
        "192.168.1.2".into(),
    ];
    for host in &ok_hosts {
        let mut c = server.connect();
        c.send(format!("GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert_eq!(c.response().status, 200, "{host}");
    }
    for host in ["rebind.attacker.example", "fluxbox.attacker.example", "grafana.lan.attacker.example", "[::1"] {
        let mut c = server.connect();
        c.send(format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer t\r\n\r\n").as_bytes());
        let r = c.response();
        assert_eq!((r.status, r.header("Connection")), (421, Some("close")), "{host}");
        assert_eq!(r.text(), MISDIRECTED);
        c.expect_closed();
    }

    // CORS alone turns the check on too; with neither, any Host is served.
    let mut cors = settings();
    cors.cors_origin = Some("*".into());
    cors.access.hosts = Some(Hosts::new(&[], None));
    let server = TestServer::fixed(cors);
    let mut c = server.connect();
    c.send(b"GET /metrics HTTP/1.1\r\nHost: evil.example:8001\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 421);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    let server = TestServer::fixed(settings());
    let mut c = server.connect();
    c.send(b"GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    assert_eq!(c.response().status, 200);
}

#[test]
fn allowlist_usage_errors_exit_2_with_one_line() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let table: &[Case<'_>] = &[
        (&["--allow", "10.0.0.0/33"], &[], "--allow: '10.0.0.0/33' is not an address or CIDR"),
        (&["--allow", "10.0.0/8"], &[], "'10.0.0/8' is not an address or CIDR"),
        (&["--allow", "lan,2001:db8::/129"], &[], "'2001:db8::/129' is not an address or CIDR"),
        (&["--allow", "::ffff:10.0.0.0/200"], &[], "'::ffff:10.0.0.0/200' is not an address or CIDR"),
        (&["--allow", "fe80::1%eth0"], &[], "'fe80::1%eth0' is not an address or CIDR"),
        (&["--allow", "lan;any"], &[], "'lan;any' is not an address or CIDR"),
        (&["--allow", ","], &[], "--allow: the list is empty"),
        (&[], &[("FLUXSTAT_ALLOW", "192.168.1.0/24/8")], "FLUXSTAT_ALLOW: '192.168.1.0/24/8' is not"),
        (&["--allow-host", "pi.lan:8001"], &[], "--allow-host: 'pi.lan:8001' is not a host name"),
        (&["--token-file"], &[], "--token-file needs a value"),
    ];
    for (args, env, want) in table {
        crate::cli::expect_usage_error(args, env, want);
    }
}

#[test]
fn an_unusable_token_file_exits_1_naming_the_file() {
    let dir = TempDir::new("token-errors");
    let empty = dir.file("empty", b" \n\n");
    let spaced = dir.file("spaced", b"two words\n");
    let missing = dir.path.join("missing");
    let table: &[(&std::path::Path, &str)] = &[
        (&empty, "is empty"),
        (&spaced, "must hold one token of visible ASCII characters"),
        (&missing, "cannot read token file"),
        (&dir.path, "cannot read token file"),
    ];
    for (path, want) in table {
        let out = fluxstat().args(["--listen", "127.0.0.1:0", "--token-file"]).arg(path).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{path:?}: {stderr}");
        assert!(stderr.contains(want) && stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(!stderr.contains("two words"), "the content is never shown: {stderr}");
    }
}

#[test]
fn the_token_never_appears_in_an_answer_or_a_log_line() {
    let secret = "Zq8-never-shown-7Hk";
    let dir = TempDir::new("token-secret");
    let file = dir.file("token", format!("{secret}\n").as_bytes());
    let mut run = Running::start(
        fluxstat()
            .args(["--listen", "127.0.0.1:0", "--log-level", "debug", "--cors-origin", "*", "--token-file"])
            .arg(&file),
    );
    let addr = run.listening_addr();
    let mut seen = Vec::new();
    let requests = [
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n\r\n"),
        format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {secret}x\r\n\r\n"),
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        "OPTIONS /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        "GET /token HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        format!("GET /metrics HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {secret}\r\n\r\n"),
        format!("GET /metrics HTTP/1.1\r\nAuthorization: Bearer {secret}\r\n\r\n"),
    ];
    let mut statuses = Vec::new();
    for req in &requests {
        let mut c = Client::connect(addr);
        c.send(req.as_bytes());
        let r = c.response();
        statuses.push(r.status);
        seen.push(format!("{:?}{}", r.headers, r.text()));
    }
    assert_eq!(statuses, [200, 401, 401, 200, 204, 404, 421, 400]);
    let out = fluxstat().arg("--help").output().expect("runs");
    seen.push(String::from_utf8_lossy(&out.stdout).into_owned());
    run.signal("TERM");
    assert_eq!(run.wait_exit().0, 0);
    seen.extend(run.all_lines());
    assert!(seen.iter().any(|l| l.contains("bearer token")), "the log says a token is required");
    for text in &seen {
        assert!(!text.contains(secret), "the token leaked: {text}");
    }
}

#[test]
fn refused_connections_are_logged_once_per_window_with_a_count() {
    let mut run = Running::start(fluxstat().args(["--listen", "127.0.0.1:0", "--allow", "10.0.0.0/8,fd00::/8"]));
    let addr = run.listening_addr();
    for _ in 0..5 {
        expect_forbidden(&mut Client::connect(addr));
    }
    run.signal("TERM");
    assert_eq!(run.wait_exit().0, 0);
    let refusals: Vec<String> = run.all_lines().into_iter().filter(|l| l.contains("refused")).collect();
    // The first refusal is logged at once; the next four fall in its 10 s window.
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].contains("WARN refused 1 connection from outside --allow (latest from 127.0.0.1)"),
        "{refusals:?}"
    );
}

/// A directory under the target directory, removed when dropped.
struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }

    fn file(&self, name: &str, content: &[u8]) -> std::path::PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, content).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[test]
fn help_lists_the_access_options() {
    let out = fluxstat().arg("--help").output().expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in
        ["--allow LIST", "[default: lan]", "FLUXSTAT_ALLOW", "--token-file PATH", "FLUXSTAT_TOKEN_FILE", "--allow-host"]
    {
        assert!(help.contains(needle), "help lacks {needle}");
    }
}
