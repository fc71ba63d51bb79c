//! The MQTT pusher: an MQTT 3.1.1 client that only publishes (CONNECT with a
//! last will, PUBLISH at QoS 0, PINGREQ), and the loop that keeps it connected.
//!
//! On each connect it reads back the discovery configs the broker holds for this
//! node (`earlier_configs`), then publishes `online` to the availability topic,
//! every discovery config (retained), an empty retained config for each one read
//! back that is no longer an entity (gone while fluxstat was down), and the latest
//! state; then the state of each sample it takes, new configs when an entity
//! appears, and an empty retained config when one goes (a disk unmounted, a sensor
//! gone). The will, retained,
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

mod codec;

pub use codec::{connack, connect, publish, Will, PINGREQ};
use codec::{refusal, Incoming};

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
        let filter = format!("{}/sensor/{node}/+/config", self.target.prefix);
        for topic in earlier_configs(&mut stream, &filter)? {
            if !retained.contains(&topic) {
                retained.push(topic);
            }
        }
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

/// The discovery configs the broker holds retained for this node, from this
/// process or an earlier one: subscribe to them, collect what the broker sends at
/// once, unsubscribe. Added to the configs to compare against, they let the first
/// publish empty the config of an entity that went while fluxstat was down (a disk
/// unplugged before a reboot), which Home Assistant would otherwise keep as
/// "unavailable" for good. Bounded: 2 s at most (the retained messages follow the
/// SUBACK at once; a quarter second of quiet ends them), 256 KiB read, 1,024
/// topics. A broker that refuses the subscription (an ACL) sends none.
fn earlier_configs(stream: &mut TcpStream, filter: &str) -> io::Result<Vec<String>> {
    const QUIET: Duration = Duration::from_millis(250);
    stream.write_all(&codec::subscribe(1, filter)).map_err(net::timed_out)?;
    let started = Instant::now();
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 2048]);
    let mut topics = Vec::new();
    let mut subscribed = false;
    while buf.len() < 256 * 1024 {
        let left = Duration::from_secs(2).saturating_sub(started.elapsed());
        let wait = if subscribed { QUIET.min(left) } else { left };
        if wait.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the broker closed the connection")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let mut at = 0;
        while let Some((packet, len)) = codec::next_packet(&buf[at..]).map_err(io::Error::other)? {
            match packet {
                Incoming::SubAck => subscribed = true,
                Incoming::Publish { topic, retained: true, empty: false } if topics.len() < 1024 => {
                    if let Ok(t) = std::str::from_utf8(topic) {
                        topics.push(t.to_owned());
                    }
                }
                _ => {}
            }
            at += len;
        }
        buf.drain(..at);
    }
    stream.set_read_timeout(Some(net::DEADLINE))?;
    // Its UNSUBACK, and anything after the quiet, the next drain reads and drops.
    stream.write_all(&codec::unsubscribe(2, filter)).map_err(net::timed_out)?;
    Ok(topics)
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
