//! The MQTT 3.1.1 packets a client that only publishes needs: CONNECT with a
//! last will, PUBLISH at QoS 0, PINGREQ, the CONNACK's return code, and for
//! reading back this node's retained discovery configs at connect, SUBSCRIBE,
//! UNSUBSCRIBE and a reader of what the broker sends.
//!
//! Standalone (std only) and pure, so that `bench/mqtt-codecs/` builds this very
//! file next to the codec crates it was measured against: CONNECT, PUBLISH,
//! PINGREQ and the CONNACK check cost 920 bytes on ARMv7 there, the crates 6.8 to
//! 10.2 KB (BENCHMARKS.md).

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

/// What a CONNACK's return code means.
pub fn refusal(code: u8) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 => "client identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorised",
        _ => "refused",
    }
}

/// SUBSCRIBE to one topic filter at QoS 0.
pub fn subscribe(id: u16, filter: &str) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    field(&mut body, filter.as_bytes());
    body.push(0); // requested QoS
    packet(0x82, &body)
}

/// UNSUBSCRIBE from one topic filter.
pub fn unsubscribe(id: u16, filter: &str) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    field(&mut body, filter.as_bytes());
    packet(0xa2, &body)
}

/// A packet from the broker, as far as this client cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A PUBLISH: its topic, the retain flag, its payload.
    Publish { topic: &'a [u8], retained: bool, payload: &'a [u8] },
    /// A SUBACK: whether the (one) subscription was granted.
    SubAck { granted: bool },
    /// Anything else (PINGRESP, UNSUBACK, ...).
    Other,
}

/// The first whole packet at the start of `buf` and its length in bytes;
/// `Ok(None)` while it is incomplete, `Err` when it cannot be MQTT.
pub fn next_packet(buf: &[u8]) -> Result<Option<(Incoming<'_>, usize)>, &'static str> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let mut len = 0usize;
    let mut at = 1;
    loop {
        let Some(&b) = buf.get(at) else { return Ok(None) };
        len |= usize::from(b & 0x7f) << (7 * (at - 1));
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at == 5 {
            return Err("a remaining length of over four bytes");
        }
    }
    let Some(body) = buf.get(at..at + len) else { return Ok(None) };
    let packet = match first >> 4 {
        3 => {
            let qos = (first >> 1) & 3;
            let topic_len = match body {
                [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => return Err("a PUBLISH without a topic"),
            };
            let payload_at = 2 + topic_len + if qos > 0 { 2 } else { 0 };
            let (Some(topic), true) = (body.get(2..2 + topic_len), payload_at <= body.len()) else {
                return Err("a PUBLISH shorter than its topic");
            };
            Incoming::Publish { topic, retained: first & 1 == 1, payload: &body[payload_at..] }
        }
        9 => Incoming::SubAck { granted: body.get(2).is_some_and(|&code| code != 0x80) },
        _ => Incoming::Other,
    };
    Ok(Some((packet, at + len)))
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
    fn subscribe_bytes_and_what_the_broker_sends() {
        assert_eq!(subscribe(1, "h/+/c"), [0x82, 10, 0, 1, 0, 5, b'h', b'/', b'+', b'/', b'c', 0]);
        assert_eq!(unsubscribe(2, "h/+/c"), [0xa2, 9, 0, 2, 0, 5, b'h', b'/', b'+', b'/', b'c']);
        let suback = [0x90, 3, 0, 1, 0];
        assert_eq!(next_packet(&suback), Ok(Some((Incoming::SubAck { granted: true }, 5))));
        assert_eq!(next_packet(&[0x90, 3, 0, 1, 0x80]), Ok(Some((Incoming::SubAck { granted: false }, 5))));
        // A retained PUBLISH with a payload, then one at QoS 1 (a packet id) without.
        let mut two = publish("a/b", b"{}", true);
        two.extend([0x33, 7, 0, 3, b'a', b'/', b'c', 0, 9]);
        let (p, n) = next_packet(&two).expect("valid").expect("whole");
        assert_eq!((p, n), (Incoming::Publish { topic: b"a/b", retained: true, payload: b"{}" }, 9));
        assert_eq!(
            next_packet(&two[n..]),
            Ok(Some((Incoming::Publish { topic: b"a/c", retained: true, payload: b"" }, 9)))
        );
        // Incomplete: every proper prefix waits for more.
        for end in 0..two.len().min(9) {
            assert_eq!(next_packet(&two[..end]), Ok(None), "{end} bytes");
        }
        assert_eq!(next_packet(&[0xd0, 0]), Ok(Some((Incoming::Other, 2))));
        // A long remaining length (two bytes) and a malformed one (five).
        let long = publish("t", &[b'x'; 200], false);
        assert_eq!(next_packet(&long).map(|p| p.map(|p| p.1)), Ok(Some(long.len())));
        assert!(next_packet(&[0x30, 0x80, 0x80, 0x80, 0x80, 1]).is_err());
        assert!(next_packet(&[0x30, 3, 0, 9, b'a']).is_err(), "topic longer than the packet");
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
