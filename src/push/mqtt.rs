//! The MQTT pusher: an MQTT 3.1.1 client that publishes (CONNECT with a last
//! will, PUBLISH at QoS 0, PINGREQ) and at each connect briefly subscribes to its
//! own node's discovery configs, and the loop that keeps it connected.
//!
//! On each connect it reads back the discovery configs the broker holds for this
//! node (`earlier_configs`), then publishes `online` to the availability topic,
//! every discovery config (retained), an empty retained config for each one read
//! back that is no longer an entity (gone while fluxstat was down), and the latest
//! state; then the state of each sample it takes, new configs when an entity
//! appears, and an empty retained config when one goes (a disk unmounted, a sensor
//! gone). The will, retained, says `offline`: the broker publishes it when
//! fluxstat stops (the connection is closed without DISCONNECT, on purpose) or the
//! link drops (keep-alive 60 s).
//!
//! While the broker is away only the newest sample is kept (Home Assistant
//! shows current values, not history): the ones it replaces count as dropped.
//! Reconnects back off from 1 s to 60 s; the back-off (and the one warning) start
//! over only once a connection outlives a publish.
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
    let mut kept = Kept { read_back: true, ..Kept::default() };
    loop {
        if kept.last.is_none() {
            kept.last = mailbox.wait(None).pop();
        }
        let Some(first) = kept.last.clone() else { continue };
        let session = Session { target, every, counters, mailbox };
        let Err(e) = session.run(&first, &mut kept);
        counters.add_failed();
        counters.set_queued(usize::from(kept.last.is_some()));
        let wait = kept.backoff.delay();
        if !kept.failing {
            crate::warn!("MQTT: {e}; reconnecting with back-off");
        } else {
            crate::debug!("MQTT: {e}; reconnecting in {} s", wait.as_secs());
        }
        kept.failing = true;
        std::thread::sleep(wait);
    }
}

/// What the pusher keeps across connections.
#[derive(Default)]
struct Kept {
    /// Config topics retained at the broker by this process (or read back from
    /// it), so that an entity that went meanwhile is still removed.
    retained: Vec<String>,
    /// The newest sample taken: published again on reconnect.
    last: Option<Arc<Snapshot>>,
    backoff: Backoff,
    /// Since the last failure, nothing was published: warn once, then debug.
    failing: bool,
    /// Whether to read back the node's retained configs at connect; off for the
    /// run once the broker dropped the client before answering its SUBSCRIBE (an
    /// ACL that drops subscribers), so that publishing still works there.
    read_back: bool,
}

struct Session<'a> {
    target: &'a Target,
    every: Duration,
    counters: &'a Channel,
    mailbox: &'a Mailbox,
}

impl Session<'_> {
    /// One connection, until it fails.
    fn run(&self, first: &Snapshot, kept: &mut Kept) -> io::Result<std::convert::Infallible> {
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
        if kept.read_back {
            match earlier_configs(&mut stream, &self.target.prefix, &node) {
                Ok(topics) => {
                    for topic in topics {
                        if !kept.retained.contains(&topic) {
                            kept.retained.push(topic);
                        }
                    }
                }
                Err(e) => {
                    // Dropped for subscribing: never again in this run. Anything
                    // else (a restart, a reset) is tried again on the next connect.
                    if e.kind() == io::ErrorKind::PermissionDenied {
                        kept.read_back = false;
                    }
                    return Err(e);
                }
            }
        }
        let mut heard = Instant::now();
        let mut out = publish(&status, b"online", true);
        let mut known: Option<Vec<ha::Entity>> = None;
        let expire = (self.every * 3).max(Duration::from_secs(30)).as_secs();
        let mut next_ping = Instant::now() + KEEP_ALIVE / 2;
        // On reconnect, the newest sample is published again even if sent before.
        let mut taken = self.mailbox.wait(Some(Instant::now())).pop().or_else(|| kept.last.clone());
        // Set once something was written, and cleared once the connection is seen
        // to outlive it (a later drain finds it open): only then do back-off and
        // warning start over, so a broker that drops the client after each
        // publish (an ACL) still sees the delays grow and one warning.
        let mut unconfirmed = false;
        loop {
            let publishing = taken.is_some();
            if let Some(s) = taken {
                kept.last = Some(Arc::clone(&s));
                let entities = ha::entities(&s);
                if known.as_ref() != Some(&entities) {
                    // A few dozen topics: a `Vec` is small code, and fast enough.
                    let mut now = Vec::with_capacity(entities.len());
                    for e in &entities {
                        let (topic, json) = ha::config(&s, e, &self.target.prefix, expire);
                        out.extend(publish(&topic, json.as_bytes(), true));
                        now.push(topic);
                    }
                    for gone in kept.retained.iter().filter(|t| !now.contains(t)) {
                        out.extend(publish(gone, b"", true));
                    }
                    kept.retained = now;
                    known = Some(entities);
                }
                for (topic, json) in ha::states(&s) {
                    out.extend(publish(&format!("fluxstat/{node}/{topic}"), json.as_bytes(), false));
                }
            }
            let ping = Instant::now() >= next_ping;
            if ping || !out.is_empty() {
                drain(&mut stream, &mut heard)?;
                if unconfirmed {
                    unconfirmed = false;
                    kept.backoff.reset();
                    kept.failing = false;
                }
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
                unconfirmed |= kept.failing || kept.backoff.is_raised();
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

/// Why the read-back stops for good: the run's one warning says it.
const DROPPED: &str = "the broker closed the connection on SUBSCRIBE to this node's discovery configs \
                       (its ACL?): publishing without reading them back from now on, so an entity removed \
                       while fluxstat was down keeps its config";

/// The discovery configs the broker holds retained for this node, from this
/// process or an earlier one: subscribe to them, collect what the broker sends at
/// once, unsubscribe. Added to the configs to compare against, they let the first
/// publish empty the config of an entity that went while fluxstat was down (a disk
/// unplugged before a reboot), which Home Assistant would otherwise keep as
/// "unavailable" for good.
///
/// Only fluxstat's own are taken: an object id of the shape fluxstat writes, and a
/// config naming this device (`"identifiers":["fluxstat_<node>"]`) with the
/// `unique_id` fluxstat gives that object id, so another program's sensors under
/// the same node id, or added to this device, are left alone. Bounded: 2 s at most
/// (the retained messages follow the SUBACK at once; a quarter second of quiet ends
/// them), 256 KiB read in all (which bounds what is kept too), 1,024 topics. A
/// refused subscription (SUBACK 0x80) ends it at once with none and without an
/// UNSUBSCRIBE. The connection closed before any SUBACK is `PermissionDenied` (a
/// broker that drops subscribers); any other error, the connection broke meanwhile.
fn earlier_configs(stream: &mut TcpStream, prefix: &str, node: &str) -> io::Result<Vec<String>> {
    const QUIET: Duration = Duration::from_millis(250);
    const MAX_READ: usize = 256 * 1024;
    let filter = format!("{prefix}/sensor/{node}/+/config");
    let head = format!("{prefix}/sensor/{node}/");
    let device = format!("\"identifiers\":[\"fluxstat_{node}\"]");
    let has = |payload: &[u8], needle: &str| payload.windows(needle.len()).any(|w| w == needle.as_bytes());
    let own = |topic: &str, payload: &[u8]| {
        let id = topic.strip_prefix(head.as_str()).and_then(|t| t.strip_suffix("/config")).unwrap_or("");
        !id.is_empty()
            && id.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            && has(payload, &device)
            && has(payload, &format!("\"unique_id\":\"{node}_{id}\""))
    };
    stream.write_all(&codec::subscribe(1, &filter)).map_err(net::timed_out)?;
    let started = Instant::now();
    let (mut buf, mut chunk, mut read) = (Vec::new(), [0u8; 2048], 0);
    let mut topics = Vec::new();
    let (mut subscribed, mut refused) = (false, false);
    'reading: while read < MAX_READ {
        let left = Duration::from_secs(2).saturating_sub(started.elapsed());
        let wait = if subscribed { QUIET.min(left) } else { left };
        if wait.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut chunk) {
            // Before any SUBACK: the broker dropped the client for subscribing.
            Ok(0) if !subscribed => return Err(io::Error::new(io::ErrorKind::PermissionDenied, DROPPED)),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the broker closed the connection")),
            Ok(n) => {
                read += n;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let mut at = 0;
        while let Some((packet, len)) = codec::next_packet(&buf[at..]).map_err(io::Error::other)? {
            at += len;
            match packet {
                Incoming::SubAck { granted: false } => {
                    refused = true;
                    break 'reading;
                }
                Incoming::SubAck { granted: true } => subscribed = true,
                Incoming::Publish { topic, retained: true, payload } if topics.len() < 1024 => {
                    match std::str::from_utf8(topic) {
                        Ok(t) if own(t, payload) => topics.push(t.to_owned()),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        buf.drain(..at);
    }
    stream.set_read_timeout(Some(net::DEADLINE))?;
    if !refused {
        // Its UNSUBACK, and anything after the quiet, the next drain reads and drops.
        stream.write_all(&codec::unsubscribe(2, &filter)).map_err(net::timed_out)?;
    }
    Ok(topics)
}

/// Reads what the broker sent (PINGRESPs, the UNSUBACK and any retained config
/// that came after `earlier_configs` stopped listening; nothing else is
/// subscribed to) without waiting, and drops it; the end of the stream is the
/// broker closing.
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
    use std::net::TcpListener;

    /// A broker on 127.0.0.1 that reads the SUBSCRIBE and then does `act` on its
    /// side of the connection; `earlier_configs` runs against it.
    fn against(act: impl FnOnce(&mut TcpStream) + Send + 'static) -> (io::Result<Vec<String>>, Duration) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let broker = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut subscribe = [0u8; 64];
            let n = s.read(&mut subscribe).expect("SUBSCRIBE");
            assert_eq!(subscribe[0], 0x82, "{:02x?}", &subscribe[..n]);
            act(&mut s);
        });
        let mut client = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        let got = earlier_configs(&mut client, "homeassistant", "pi");
        let took = started.elapsed();
        drop(client);
        broker.join().expect("the fake broker");
        (got, took)
    }

    /// A retained config as fluxstat on `node` writes it for `object_id`, under pi's topics.
    fn config(object_id: &str, node: &str) -> Vec<u8> {
        let payload = format!(
            "{{\"name\":\"x\",\"unique_id\":\"{node}_{object_id}\",\"device\":{{\"identifiers\":[\"fluxstat_{node}\"],\"name\":\"pi\"}}}}"
        );
        publish(&format!("homeassistant/sensor/pi/{object_id}/config"), payload.as_bytes(), true)
    }

    #[test]
    fn only_fluxstats_own_retained_configs_are_taken() {
        let (got, _) = against(|s| {
            let mut out = vec![0x90, 3, 0, 1, 0];
            out.extend(config("disk_usb_1234abcd_free", "pi"));
            // Another program's sensor under the same node id, one of another
            // fluxstat device, one of a shape fluxstat never writes, and an
            // emptied (deleted) one.
            out.extend(publish("homeassistant/sensor/pi/othertool_cpu/config", b"{\"name\":\"cpu\"}", true));
            out.extend(config("cpu", "router"));
            out.extend(config("Disk-Free", "pi"));
            // A sensor a script added to fluxstat's device: its identifiers, not its unique_id.
            let added = b"{\"unique_id\":\"myscript_fan\",\"device\":{\"identifiers\":[\"fluxstat_pi\"]}}";
            out.extend(publish("homeassistant/sensor/pi/fan/config", added, true));
            out.extend(publish("homeassistant/sensor/pi/load_1/config", b"", true));
            // Not retained: a live message is not what the broker holds.
            let mut live = config("uptime", "pi");
            live[0] = 0x30;
            out.extend(live);
            s.write_all(&out).expect("write");
            let _ = s.read(&mut [0u8; 64]); // the UNSUBSCRIBE
        });
        assert_eq!(got.expect("read back"), ["homeassistant/sensor/pi/disk_usb_1234abcd_free/config"]);
    }

    #[test]
    fn a_refused_or_unanswered_subscription_gives_none_in_bounded_time() {
        let (got, took) = against(|s| {
            // Refused, then (wrongly) a retained config of ours: not taken, and no
            // UNSUBSCRIBE follows: the client closes without another packet.
            let mut out = vec![0x90, 3, 0, 1, 0x80];
            out.extend(config("cpu", "pi"));
            s.write_all(&out).expect("SUBACK");
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            assert!(rest.is_empty(), "sent after a refused SUBSCRIBE: {rest:02x?}");
        });
        assert!(got.expect("refused is not an error").is_empty());
        assert!(took < Duration::from_millis(1500), "a refused SUBSCRIBE ends it at once: {took:?}");

        let (got, took) = against(|s| {
            let _ = s.read(&mut [0u8; 64]); // silent until the client unsubscribes
        });
        assert!(got.expect("silence is not an error").is_empty());
        assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn a_broker_closing_on_subscribe_is_an_error() {
        // Before any SUBACK: dropped for subscribing, the read-back stops for good.
        let (got, _) = against(|s| {
            let _ = s.shutdown(std::net::Shutdown::Both);
        });
        assert_eq!(got.map_err(|e| e.kind()).err(), Some(io::ErrorKind::PermissionDenied));
        // After it: the connection broke; the next connect tries again.
        let (got, _) = against(|s| {
            let _ = s.write_all(&[0x90, 3, 0, 1, 0]);
            let _ = s.shutdown(std::net::Shutdown::Both);
        });
        assert_eq!(got.map_err(|e| e.kind()).err(), Some(io::ErrorKind::ConnectionAborted));
    }

    #[test]
    fn a_flood_of_retained_messages_is_cut_off() {
        let (got, took) = against(|s| {
            let _ = s.write_all(&[0x90, 3, 0, 1, 0]);
            // 60 KB topics of fluxstat's own shape, far more of them than the client reads.
            let one = config(&"a".repeat(60_000), "pi");
            for _ in 0..2_000 {
                if s.write_all(&one).is_err() {
                    break;
                }
            }
        });
        assert!(took < Duration::from_secs(3), "{took:?}");
        let topics = got.expect("cut off, not failed");
        assert!(!topics.is_empty(), "the flood's configs are of fluxstat's own shape");
        assert!(topics.iter().map(String::len).sum::<usize>() <= 256 * 1024, "{} topics", topics.len());
    }
}
