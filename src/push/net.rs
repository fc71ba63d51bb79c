//! The pushers' network plumbing: their URLs, name lookups, connects with
//! deadlines, and back-off. Everything here blocks the calling pusher's thread.
//!
//! A name is looked up with the standard library's blocking resolver (the C
//! library's `getaddrinfo`) on the pusher's own thread: a lookup that hangs
//! stalls only that pusher, until the resolver gives up by itself (its own
//! timeouts, `/etc/resolv.conf`). An IP literal needs no lookup, and a
//! kept-alive connection none either.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a connect, or one request and its answer together, may take (the
/// InfluxDB pusher holds each write and read to the time left; MQTT's writes
/// and its CONNACK each get it).
pub const DEADLINE: Duration = Duration::from_secs(5);

/// `scheme://host[:port][/path?query]`, split. `user:password@` is refused:
/// credentials come from files only, never from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// `/` when the URL has none.
    pub path_and_query: String,
}

impl Url {
    pub fn parse(text: &str, scheme: &str, default_port: u16) -> Result<Url, String> {
        let rest = text
            .strip_prefix(scheme)
            .and_then(|r| r.strip_prefix("://"))
            .ok_or_else(|| format!("'{text}' does not start with {scheme}://"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("'{text}': credentials do not belong in the URL; put them in a file (see --help)"));
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (literal, after) = inner.split_once(']').ok_or_else(|| format!("'{text}': unclosed ["))?;
            literal.parse::<std::net::Ipv6Addr>().map_err(|_| format!("'{text}': not an IPv6 address in []"))?;
            (literal.to_owned(), after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() || !host.bytes().all(|c| c.is_ascii_alphanumeric() || b".-_:".contains(&c)) {
            return Err(format!("'{text}': no host name or address"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|c| c.is_ascii_digit()) => n,
                _ => return Err(format!("'{text}': the port must be a number from 1 to 65535")),
            },
        };
        if path.bytes().any(|c| c <= b' ' || c == 0x7f) {
            return Err(format!("'{text}': spaces or control characters in the path"));
        }
        let path_and_query = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
        Ok(Url { host, port, path_and_query })
    }

    /// `host:port` as a `Host` header wants it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The addresses of `url`'s host (an IP literal is not looked up).
pub fn resolve(url: &Url) -> io::Result<Vec<SocketAddr>> {
    match (url.host.as_str(), url.port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", url.host)))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", url.host))),
    }
}

/// Connects to the first address of `url` that answers, each within the
/// deadline; reads and writes on the connection then time out after it too.
pub fn connect(url: &Url) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in resolve(url)? {
        match TcpStream::connect_timeout(&addr, DEADLINE) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                s.set_read_timeout(Some(DEADLINE))?;
                s.set_write_timeout(Some(DEADLINE))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A socket's timeout as `TimedOut` (Unix reports it as `WouldBlock`).
pub fn timed_out(e: io::Error) -> io::Error {
    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
        io::Error::new(io::ErrorKind::TimedOut, "no answer within 5 s")
    } else {
        e
    }
}

/// Doubling delays from 1 s to 60 s; `reset` after a success.
#[derive(Debug, Default)]
pub struct Backoff(u32);

impl Backoff {
    pub fn delay(&mut self) -> Duration {
        let d = Duration::from_secs(1u64 << self.0.min(6)).min(Duration::from_secs(60));
        self.0 = self.0.saturating_add(1);
        d
    }

    pub fn reset(&mut self) {
        self.0 = 0;
    }

    /// Whether a delay was taken since the last reset.
    pub fn is_raised(&self) -> bool {
        self.0 > 0
    }
}

/// Reads a credentials file: its content, trimmed; empty is an error.
pub fn read_secret(path: &std::path::Path, what: &str) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4097).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: the {what} is not UTF-8", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() || secret.len() > 4096 || secret.contains(['\r', '\n']) {
        return Err(format!("{}: the {what} must be one non-empty line", path.display()));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://192.168.1.5:8086/write?db=home", "http", 80).expect("ok");
        assert_eq!((u.host.as_str(), u.port, u.path_and_query.as_str()), ("192.168.1.5", 8086, "/write?db=home"));
        let u = Url::parse("mqtt://[fd00::1]", "mqtt", 1883).expect("ok");
        assert_eq!((u.host.as_str(), u.port, u.authority()), ("fd00::1", 1883, "[fd00::1]:1883".to_owned()));
        let u = Url::parse("http://db?x", "http", 80).expect("ok");
        assert_eq!(u.path_and_query, "/?x");
        for bad in ["https://h/", "http://u:p@h/", "http://h:0/", "http://h:99999/", "http:///x", "http://h/a b"] {
            assert!(Url::parse(bad, "http", 80).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let mut b = Backoff::default();
        let d: Vec<u64> = (0..9).map(|_| b.delay().as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.delay().as_secs(), 1);
    }
}
