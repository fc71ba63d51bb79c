//! The MQTT pusher: an MQTT 3.1.1 client that only publishes (CONNECT with a
//! last will, PUBLISH at QoS 0, PINGREQ), and the loop that keeps it connected.
//!
//! On each connect it publishes `online` to the availability topic, every
//! discovery config (retained) and the latest state; then the state of each
//! sample it takes, new configs when an entity appears, and an empty retained
//! config when one goes (a disk unmounted, a sensor gone). The will, retained,
//! says `offline`: the broker publishes it when fluxstat stops (the connection
//! is closed without DISCONNECT, on purpose) or the link drops (keep-alive 60 s).
//!
//! While the broker is away only the newest sample is kept (Home Assistant
//! shows current values, not history): the ones it replaces count as dropped.
//! Reconnects back off from 1 s to 60 s.
//!
//! QoS 0 throughout: TCP delivers in order while the connection lives, and every
//! reconnect publishes the configs and state again, which is what QoS 1's
//! redelivery would buy at the cost of tracking acknowledgements.
//!
//! The client runs on its own thread with blocking writes (5 s timeout). What
//! the broker sends (PINGRESP, or the end of the stream when it closes the
//! connection) is read without blocking just before each write: the socket is
//! non-blocking only for that drain. So a closed connection is noticed at the
//! next sample or ping, and a broker that stopped answering pings within two
//! keep-alive periods; between them the thread sleeps on its mailbox.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::net::{self, Backoff, Url};
use super::{ha, Channel, Mailbox};
use crate::snapshot::Snapshot;

/// Keep-alive announced in CONNECT; a PINGREQ goes every half of it.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    /// `USER:PASSWORD` from the credentials file.
    pub credentials: Option<(String, String)>,
    /// Discovery prefix, `homeassistant` by default.
    pub prefix: String,
}

// ---- The encoder -------------------------------------------------------------

/// Appends MQTT's variable-length "remaining length".
fn remaining_length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

/// Appends a length-prefixed string or binary field.
fn field(out: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&data[..usize::from(len)]);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    remaining_length(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// The will of a CONNECT: topic, payload, retained, at QoS 1 (the broker stores
/// and delivers it; nothing for the client to acknowledge).
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
}

/// CONNECT with a clean session, a will, optional user name and password.
pub fn connect(client_id: &str, keep_alive: u16, will: &Will, credentials: Option<(&str, &str)>) -> Vec<u8> {
    let mut flags = 0x02 | 0x04 | (1 << 3) | 0x20; // clean session, will at QoS 1, retained
    if credentials.is_some() {
        flags |= 0x80 | 0x40;
    }
    let mut body = Vec::new();
    field(&mut body, b"MQTT");
    body.push(4); // protocol level: 3.1.1
    body.push(flags);
    body.extend_from_slice(&keep_alive.to_be_bytes());
    field(&mut body, client_id.as_bytes());
    field(&mut body, will.topic.as_bytes());
    field(&mut body, will.payload);
    if let Some((user, password)) = credentials {
        field(&mut body, user.as_bytes());
        field(&mut body, password.as_bytes());
    }
    packet(0x10, &body)
}

/// PUBLISH at QoS 0.
pub fn publish(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 2);
    field(&mut body, topic.as_bytes());
    body.extend_from_slice(payload);
    packet(0x30 | u8::from(retain), &body)
}

pub const PINGREQ: [u8; 2] = [0xc0, 0x00];

/// The return code of a CONNACK (`20 02 flags code`), or why it is not one.
pub fn connack(bytes: &[u8; 4]) -> Result<u8, String> {
    if bytes[0] != 0x20 || bytes[1] != 0x02 {
        return Err(format!("not a CONNACK: {bytes:02x?}"));
    }
    Ok(bytes[3])
}

fn refusal(code: u8) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 => "client identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorised",
        _ => "refused",
    }
}

// ---- The client --------------------------------------------------------------

/// Runs forever on the pusher's thread: keeps a connection and publishes each
/// sample that comes; while the broker is away, the mailbox keeps the newest.
pub fn run(target: &Target, mailbox: &Mailbox, every: Duration, counters: &Channel) {
    // Config topics retained at the broker by this process, kept across
    // reconnects so that an entity that went meanwhile is still removed.
    let mut retained: Vec<String> = Vec::new();
    let mut last: Option<Arc<Snapshot>> = None;
    let mut backoff = Backoff::default();
    let mut failing = false;
    loop {
        if last.is_none() {
            last = mailbox.wait(None).pop();
        }
        let Some(first) = last.clone() else { continue };
        let session = Session { target, every, counters, mailbox };
        let Err(e) = session.run(&first, &mut retained, &mut last, &mut backoff);
        counters.add_failed();
        counters.set_queued(usize::from(last.is_some()));
        let wait = backoff.delay();
        if !failing {
            crate::warn!("MQTT: {e}; reconnecting with back-off");
        } else {
            crate::debug!("MQTT: {e}; reconnecting in {} s", wait.as_secs());
        }
        failing = true;
        std::thread::sleep(wait);
    }
}

struct Session<'a> {
    target: &'a Target,
    every: Duration,
    counters: &'a Channel,
    mailbox: &'a Mailbox,
}

impl Session<'_> {
    /// One connection, until it fails.
    fn run(
        &self,
        first: &Snapshot,
        retained: &mut Vec<String>,
        last: &mut Option<Arc<Snapshot>>,
        backoff: &mut Backoff,
    ) -> io::Result<std::convert::Infallible> {
        let node = ha::node(first);
        let status = format!("fluxstat/{node}/status");
        let mut stream = net::connect(&self.target.url)?;
        let creds = self.target.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let hello = connect(
            &format!("fluxstat-{node}"),
            KEEP_ALIVE.as_secs() as u16,
            &Will { topic: &status, payload: b"offline" },
            creds,
        );
        stream.write_all(&hello).map_err(net::timed_out)?;
        let mut ack = [0u8; 4];
        stream.read_exact(&mut ack).map_err(net::timed_out)?;
        let code = connack(&ack).map_err(io::Error::other)?;
        if code != 0 {
            return Err(io::Error::other(format!("the broker refused the connection: {}", refusal(code))));
        }
        crate::info!("MQTT: connected to {}, publishing under fluxstat/{node}", self.target.url.authority());
        backoff.reset();
        let mut heard = Instant::now();
        let mut out = publish(&status, b"online", true);
        let mut known: Option<Vec<ha::Entity>> = None;
        let expire = (self.every * 3).max(Duration::from_secs(30)).as_secs();
        let mut next_ping = Instant::now() + KEEP_ALIVE / 2;
        // On reconnect, the newest sample is published again even if sent before.
        let mut taken = self.mailbox.wait(Some(Instant::now())).pop().or_else(|| last.clone());
        loop {
            let publishing = taken.is_some();
            if let Some(s) = taken {
                *last = Some(Arc::clone(&s));
                let entities = ha::entities(&s);
                if known.as_ref() != Some(&entities) {
                    // A few dozen topics: a `Vec` is small code, and fast enough.
                    let mut now = Vec::with_capacity(entities.len());
                    for e in &entities {
                        let (topic, json) = ha::config(&s, e, &self.target.prefix, expire);
                        out.extend(publish(&topic, json.as_bytes(), true));
                        now.push(topic);
                    }
                    for gone in retained.iter().filter(|t| !now.contains(t)) {
                        out.extend(publish(gone, b"", true));
                    }
                    *retained = now;
                    known = Some(entities);
                }
                for (topic, json) in ha::states(&s) {
                    out.extend(publish(&format!("fluxstat/{node}/{topic}"), json.as_bytes(), false));
                }
            }
            let ping = Instant::now() >= next_ping;
            if ping || !out.is_empty() {
                drain(&mut stream, &mut heard)?;
            }
            if ping {
                if heard.elapsed() > KEEP_ALIVE {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "the broker stopped answering"));
                }
                out.extend_from_slice(&PINGREQ);
                next_ping = Instant::now() + KEEP_ALIVE / 2;
            }
            if !out.is_empty() {
                stream.write_all(&out).map_err(net::timed_out)?;
                out.clear();
            }
            if publishing {
                self.counters.add_sent(1);
                self.counters.set_queued(0);
            }
            // Asleep until the next sample or ping.
            taken = self.mailbox.wait(Some(next_ping)).pop();
        }
    }
}

/// Reads what the broker sent (a PINGRESP; a publish-only client gets nothing
/// else) without waiting; the end of the stream is the broker closing.
fn drain(stream: &mut TcpStream, heard: &mut Instant) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let mut buf = [0u8; 64];
    // Bounded: a broker that floods cannot keep the pusher here.
    let mut result = Ok(());
    for _ in 0..16 {
        match stream.read(&mut buf) {
            Ok(0) => {
                result = Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the broker closed the connection"));
                break;
            }
            Ok(_) => *heard = Instant::now(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    stream.set_nonblocking(false)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_table() {
        for (n, want) in [
            (0, vec![0]),
            (127, vec![0x7f]),
            (128, vec![0x80, 1]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 1]),
        ] {
            let mut out = Vec::new();
            remaining_length(&mut out, n);
            assert_eq!(out, want, "{n}");
        }
    }

    #[test]
    fn connect_and_publish_bytes() {
        let c = connect("id", 60, &Will { topic: "t/s", payload: b"offline" }, Some(("u", "p")));
        let want: Vec<u8> = [
            &[0x10, 34][..],
            &[0, 4],
            b"MQTT",
            &[4, 0xee, 0, 60],
            &[0, 2],
            b"id",
            &[0, 3],
            b"t/s",
            &[0, 7],
            b"offline",
            &[0, 1],
            b"u",
            &[0, 1],
            b"p",
        ]
        .concat();
        assert_eq!(c, want);
        assert_eq!(publish("a/b", b"xy", true), [0x31, 7, 0, 3, b'a', b'/', b'b', b'x', b'y']);
        assert_eq!(connack(&[0x20, 2, 0, 5]), Ok(5));
        assert!(connack(&[0x30, 2, 0, 0]).is_err());
    }
}
