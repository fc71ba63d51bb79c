//! Who may talk to fluxstat: the source-address allowlist checked once per
//! connection at accept time, the optional bearer token for `/metrics`, the
//! Host-header check against DNS rebinding, and the rate limit of the log line
//! about refused connections.
//!
//! Everything here is pure: parsers and matchers over plain values, tested with
//! literal tables. Reading the token file is the one exception, kept in
//! `read_token`. Nothing here may ever put a token into a log line or a `Debug`
//! string. Matching allocates nothing, because the token and Host checks run
//! once per request.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

/// The ranges `lan` stands for (SPEC: loopback, RFC 1918, CGNAT, link-local, ULA).
pub const LAN: &[&str] = &[
    "127.0.0.0/8",    // loopback
    "::1/128",        // loopback
    "10.0.0.0/8",     // RFC 1918
    "172.16.0.0/12",  // RFC 1918
    "192.168.0.0/16", // RFC 1918
    "100.64.0.0/10",  // RFC 6598 carrier-grade NAT (and Tailscale)
    "169.254.0.0/16", // RFC 3927 IPv4 link-local
    "fc00::/7",       // RFC 4193 unique local
    "fe80::/10",      // RFC 4291 link-local
];

/// One CIDR block. IPv4 blocks are kept as their IPv4-mapped IPv6 form
/// (`::ffff:a.b.c.d/96+n`), so one comparison covers IPv4 peers and the mapped
/// peers a dual-stack listener reports for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    bits: u128,
    prefix: u8,
}

impl Net {
    /// `192.168.1.0/24`, `fd00::/8`, or a single address (a /32 or /128).
    /// Host bits below the prefix are ignored, as `ip route` does.
    pub fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                (a, Some(p.parse::<u8>().ok()?))
            }
            None => (s, None),
        };
        let (bits, prefix) = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => {
                let p = prefix.unwrap_or(32);
                if p > 32 {
                    return None;
                }
                (u128::from(v4.to_ipv6_mapped()), 96 + p)
            }
            IpAddr::V6(v6) => {
                let p = prefix.unwrap_or(128);
                if p > 128 {
                    return None;
                }
                (u128::from(v6), p)
            }
        };
        Some(Net { bits: bits & mask(prefix), prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        as_v6_bits(ip) & mask(self.prefix) == self.bits
    }
}

fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

fn as_v6_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Which source addresses may connect (`--allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowlist {
    /// `any`: no check.
    Any,
    /// Connections from anywhere else are refused with 403.
    Nets(Vec<Net>),
}

impl Default for Allowlist {
    /// `lan`.
    fn default() -> Allowlist {
        Allowlist::Nets(LAN.iter().filter_map(|s| Net::parse(s)).collect())
    }
}

impl Allowlist {
    /// A comma-separated list of CIDRs, single addresses, `lan` and `any`.
    pub fn parse(list: &str) -> Result<Allowlist, String> {
        let mut nets = Vec::new();
        let mut any = false;
        let mut empty = true;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            empty = false;
            if item.eq_ignore_ascii_case("any") {
                any = true;
            } else if item.eq_ignore_ascii_case("lan") {
                if let Allowlist::Nets(lan) = Allowlist::default() {
                    nets.extend(lan);
                }
            } else {
                let net = Net::parse(item).ok_or_else(|| {
                    format!("'{item}' is not an address or CIDR (e.g. 192.168.1.0/24, fd00::/8), lan or any")
                })?;
                nets.push(net);
            }
        }
        if empty {
            return Err("the list is empty (use 'any' to admit every address)".into());
        }
        Ok(if any { Allowlist::Any } else { Allowlist::Nets(nets) })
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        match self {
            Allowlist::Any => true,
            Allowlist::Nets(nets) => nets.iter().any(|n| n.contains(ip)),
        }
    }
}

/// The secret of `--token-file`. Its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Box<[u8]>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// Token files larger than this are refused: a token is one short line.
const MAX_TOKEN_FILE: u64 = 4096;

impl Token {
    /// The file content, trimmed: one non-empty run of visible ASCII, so that a
    /// client can send it verbatim as `Authorization: Bearer <token>`. The error
    /// never quotes the content.
    pub fn new(content: &[u8]) -> Result<Token, &'static str> {
        let start = content.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(content.len());
        let end = content.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
        let token = &content[start..end];
        if token.is_empty() {
            return Err("is empty");
        }
        if !token.iter().all(|c| c.is_ascii_graphic()) {
            return Err("must hold one token of visible ASCII characters, without spaces or line breaks");
        }
        Ok(Token(token.into()))
    }

    /// Compares in time that depends only on the token's length, not on where
    /// the first differing byte is, so the token cannot be guessed byte by byte.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let mut diff = self.0.len() ^ presented.len();
        for (i, &b) in self.0.iter().enumerate() {
            let p = presented.get(i).copied().unwrap_or(0);
            diff |= usize::from(std::hint::black_box(b ^ p));
        }
        diff == 0
    }
}

/// Reads the token for `--token-file`. Failures are runtime errors (exit 1):
/// the option was well-formed, the file on disk is not usable.
pub fn read_token(path: &Path) -> Result<Token, String> {
    use std::io::Read;
    let shown = path.display();
    let mut content = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_FILE + 1).read_to_end(&mut content))
        .map_err(|e| format!("cannot read token file {shown}: {e}"))?;
    if content.len() as u64 > MAX_TOKEN_FILE {
        return Err(format!("token file {shown} is larger than {MAX_TOKEN_FILE} bytes"));
    }
    Token::new(&content).map_err(|why| format!("token file {shown} {why}"))
}

/// Host names a request may carry in `Host` when the DNS-rebinding check is on.
/// IP literals of any form and `localhost` are always accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// Lower case, without a trailing dot.
    names: Vec<Box<[u8]>>,
}

impl Hosts {
    /// `allowed` from `--allow-host`; `hostname` is this machine's name, accepted
    /// as is and, when it has no dot, with the suffixes that only a local
    /// resolver answers for (mDNS `.local`, `.lan`, RFC 8375 `.home.arpa`).
    pub fn new(allowed: &[String], hostname: Option<&str>) -> Hosts {
        let mut names: Vec<String> = vec!["localhost".into()];
        if let Some(h) = hostname.map(str::trim).filter(|h| !h.is_empty()) {
            names.push(h.into());
            if !h.contains('.') {
                for suffix in [".local", ".lan", ".home.arpa"] {
                    names.push(format!("{h}{suffix}"));
                }
            }
        }
        names.extend(allowed.iter().cloned());
        let names = names
            .into_iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase().into_bytes().into_boxed_slice())
            .filter(|n| !n.is_empty())
            .collect();
        Hosts { names }
    }

    /// Whether a `Host` value names this server: port stripped, case-insensitive.
    pub fn allows(&self, host: &[u8]) -> bool {
        let host = trim(host);
        if let Some(rest) = host.strip_prefix(b"[") {
            // An IPv6 literal (RFC 3986 §3.2.2), optionally with a port.
            let Some(close) = rest.iter().position(|&c| c == b']') else { return false };
            let literal = std::str::from_utf8(&rest[..close]).ok().and_then(|s| s.parse::<Ipv6Addr>().ok());
            return literal.is_some() && is_port_suffix(&rest[close + 1..]);
        }
        let name = match host.iter().rposition(|&c| c == b':') {
            Some(colon) if is_port_suffix(&host[colon..]) => &host[..colon],
            Some(_) => return false,
            None => host,
        };
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.is_empty() || name.contains(&b':') {
            return false;
        }
        if std::str::from_utf8(name).ok().and_then(|s| s.parse::<Ipv4Addr>().ok()).is_some() {
            return true;
        }
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Empty, or `:` and digits.
fn is_port_suffix(s: &[u8]) -> bool {
    s.is_empty() || (s[0] == b':' && s[1..].iter().all(u8::is_ascii_digit))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Checks an `--allow-host` list: host names only (letters, digits, `.-_`).
pub fn parse_host_list(list: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    match names.iter().find(|n| !n.bytes().all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c))) {
        Some(bad) => Err(format!("'{bad}' is not a host name (IP addresses are always allowed; no ports)")),
        None => Ok(names),
    }
}

/// This machine's host name, from the kernel.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The access policy the responder enforces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    /// Checked once per connection, at accept time.
    pub allow: Allowlist,
    /// Required on `GET`/`HEAD /metrics` when set.
    pub token: Option<Token>,
    /// The Host check; on only when a token or CORS is configured, since only then
    /// can a page that a LAN user visits (DNS rebinding) gain anything by it.
    pub hosts: Option<Hosts>,
}

/// Counts refused connections and decides when to log them: the first refusal
/// at once, then at most one line per `window` with the count since the last.
#[derive(Debug)]
pub struct Refusals {
    window: Duration,
    last_report: Option<Instant>,
    unreported: u64,
    latest: Option<IpAddr>,
}

/// A line to log: this many refusals since the last line, the latest from `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub count: u64,
    pub latest: IpAddr,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.count == 1 { "" } else { "s" };
        write!(
            f,
            "refused {} connection{s} from outside --allow (latest from {}); at most one such line per 10 s",
            self.count, self.latest
        )
    }
}

/// The log rate of refused connections.
pub const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(10);

impl Refusals {
    pub fn new(window: Duration) -> Refusals {
        Refusals { window, last_report: None, unreported: 0, latest: None }
    }

    /// Notes one refusal; returns a report when one is due now.
    pub fn record(&mut self, now: Instant, peer: IpAddr) -> Option<Report> {
        self.unreported += 1;
        self.latest = Some(peer);
        self.flush(now)
    }

    /// Returns the pending report if the window since the last one has passed.
    pub fn flush(&mut self, now: Instant) -> Option<Report> {
        let due = self.last_report.is_none_or(|t| now.duration_since(t) >= self.window);
        match self.latest {
            Some(latest) if due && self.unreported > 0 => {
                let report = Report { count: self.unreported, latest };
                self.unreported = 0;
                self.last_report = Some(now);
                Some(report)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn lan_table() {
        let lan = Allowlist::default();
        let table: &[(&str, bool)] = &[
            ("127.0.0.1", true),
            ("127.255.255.254", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.1", true),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("9.255.255.255", false),
            ("172.16.0.0", true),
            ("172.31.255.255", true),
            ("172.15.255.255", false),
            ("172.32.0.0", false),
            ("192.168.1.10", true),
            ("::ffff:192.168.1.10", true),
            ("192.169.0.1", false),
            ("100.64.0.1", true),
            ("100.127.255.255", true),
            ("100.128.0.0", false),
            ("100.63.255.255", false),
            ("169.254.1.1", true),
            ("169.253.1.1", false),
            ("fd12:3456::1", true),
            ("fc00::", true),
            ("fbff:ffff::1", false),
            ("fe80::1", true),
            ("febf:ffff::1", true),
            ("fec0::1", false),
            ("8.8.8.8", false),
            ("::ffff:8.8.8.8", false),
            ("2001:db8::1", false),
            ("0.0.0.0", false),
            ("::", false),
            // The IPv4-compatible form (deprecated) is not the mapped one.
            ("::127.0.0.1", false),
        ];
        for &(addr, want) in table {
            assert_eq!(lan.allows(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn list_table() {
        // (list, address, allowed)
        let table: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "127.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "::1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("192.168.1.7/32", "192.168.1.7", true),
            ("192.168.1.0/24", "192.168.1.255", true),
            ("192.168.1.0/24", "192.168.2.0", false),
            ("192.168.1.77/24", "192.168.1.1", true),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::ffff:203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "203.0.113.9", true),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("2001:db8::1/128", "2001:db8::1", true),
            ("2001:db8::1/127", "2001:db8::", true),
            ("2001:db8::1/127", "2001:db8::2", false),
            ("::ffff:10.0.0.0/104", "10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "11.0.0.0", false),
            ("lan, 203.0.113.0/24", "203.0.113.200", true),
            ("lan, 203.0.113.0/24", "192.168.0.1", true),
            ("lan, 203.0.113.0/24", "198.51.100.1", false),
            ("LAN", "10.0.0.1", true),
            ("any", "203.0.113.9", true),
            ("10.0.0.0/8,any", "2001:db8::1", true),
            ("127.0.0.1,", "127.0.0.1", true),
        ];
        for &(list, addr, want) in table {
            let a = Allowlist::parse(list).unwrap_or_else(|e| panic!("{list}: {e}"));
            assert_eq!(a.allows(ip(addr)), want, "{list} ∋ {addr}");
        }
    }

    #[test]
    fn malformed_lists() {
        for list in [
            "",
            " , ",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/8x",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
            "256.0.0.0/8",
            "fe80::1%eth0",
            "fe80::/10/1",
            "lan2",
            "localhost",
            "10.0.0.0 /8",
        ] {
            assert!(Allowlist::parse(list).is_err(), "{list:?} parsed");
        }
        let e = Allowlist::parse("lan,10.0.0.0/33").expect_err("bad prefix");
        assert!(e.contains("'10.0.0.0/33' is not an address or CIDR"), "{e}");
    }

    #[test]
    fn token_table() {
        let t = Token::new(b"  s3cret-token_42\n").expect("token");
        assert!(t.matches(b"s3cret-token_42"));
        for wrong in [&b""[..], b"s3cret-token_4", b"s3cret-token_421", b"S3cret-token_42", b"s3cret-token_43"] {
            assert!(!t.matches(wrong), "{:?}", String::from_utf8_lossy(wrong));
        }
        assert_eq!(Token::new(b" \n\t "), Err("is empty"));
        assert_eq!(Token::new(b""), Err("is empty"));
        assert!(Token::new(b"two words").is_err());
        assert!(Token::new(b"line\nbreak").is_err());
        assert!(Token::new("ünïcode".as_bytes()).is_err());
        assert_eq!(format!("{t:?}"), "Token(redacted)");
    }

    #[test]
    fn host_table() {
        let hosts = Hosts::new(&["metrics.example.lan".into(), "Grafana-Box".into()], Some("pi"));
        let table: &[(&str, bool)] = &[
            ("localhost", true),
            ("LOCALHOST:8001", true),
            ("localhost.", true),
            ("pi", true),
            ("Pi:8001", true),
            ("pi.local", true),
            ("pi.lan:80", true),
            ("pi.home.arpa", true),
            ("metrics.example.lan", true),
            ("grafana-box:8001", true),
            ("192.168.1.10", true),
            ("192.168.1.10:8001", true),
            ("[::1]", true),
            ("[::1]:8001", true),
            ("[fe80::1]:8001", true),
            ("[::ffff:10.0.0.1]", true),
            (" pi ", true),
            ("evil.example", false),
            ("pi.evil.example", false),
            ("localhost.evil.example", false),
            ("example.lan", false),
            ("", false),
            (":8001", false),
            ("::1", false),
            ("[::1", false),
            ("[nope]:80", false),
            ("[::1]x", false),
            ("pi:80x", false),
            ("pi:80:80", false),
            ("1.2.3.4.5", false),
        ];
        for &(host, want) in table {
            assert_eq!(hosts.allows(host.as_bytes()), want, "{host:?}");
        }
        let dotted = Hosts::new(&[], Some("box.example.org"));
        assert!(dotted.allows(b"box.example.org") && !dotted.allows(b"box.example.org.local"));
        assert!(Hosts::new(&[], None).allows(b"localhost"));
    }

    #[test]
    fn host_lists() {
        assert_eq!(parse_host_list(" a.lan, b ,"), Ok(vec!["a.lan".to_owned(), "b".to_owned()]));
        assert_eq!(parse_host_list(""), Ok(vec![]));
        for bad in ["a b", "a:80", "*.lan", "http://a", "a/b"] {
            assert!(parse_host_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut r = Refusals::new(Duration::from_secs(10));
        let a = ip("203.0.113.1");
        let b = ip("203.0.113.2");
        assert_eq!(r.record(at(0), a), Some(Report { count: 1, latest: a }), "the first one at once");
        assert_eq!(r.record(at(1), a), None);
        assert_eq!(r.record(at(5_000), b), None);
        assert_eq!(r.flush(at(9_999)), None);
        assert_eq!(r.flush(at(10_000)), Some(Report { count: 2, latest: b }));
        assert_eq!(r.flush(at(30_000)), None, "nothing new, nothing to say");
        assert_eq!(r.record(at(30_001), a), Some(Report { count: 1, latest: a }));
        let line = Report { count: 3, latest: b }.to_string();
        assert!(line.contains("refused 3 connections") && line.contains("203.0.113.2"), "{line}");
    }
}
