#![allow(dead_code)] // each program uses its own part of the harness
// Shared harness of all programs (included with #[path]): the inputs come from
// argv/env/stdin and every result goes to stdout, so nothing can be constant-folded.
//   prog CLIENT_ID WILL_TOPIC WILL_PAYLOAD TOPIC PAYLOAD   (MQTT_USER, MQTT_PASSWORD in env)
//   stdin: the 4 bytes of a CONNACK
use std::io::{Read, Write};

pub const KEEP_ALIVE: u16 = 60; // fluxstat: KEEP_ALIVE.as_secs() as u16

pub struct Inputs {
    pub client_id: String,
    pub will_topic: String,
    pub will_payload: Vec<u8>,
    pub credentials: Option<(String, String)>,
    pub topic: String,
    pub payload: Vec<u8>,
}

impl Inputs {
    pub fn creds(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }
}

pub fn inputs() -> Inputs {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: {} CLIENT_ID WILL_TOPIC WILL_PAYLOAD TOPIC PAYLOAD", args.first().map_or("prog", |s| s.as_str()));
        std::process::exit(2);
    }
    let credentials = match (std::env::var("MQTT_USER"), std::env::var("MQTT_PASSWORD")) {
        (Ok(u), Ok(p)) => Some((u, p)),
        _ => None,
    };
    let mut it = args.into_iter().skip(1);
    let mut next = || it.next().unwrap_or_default();
    Inputs {
        client_id: next(),
        will_topic: next(),
        will_payload: next().into_bytes(),
        topic: next(),
        payload: next().into_bytes(),
        credentials,
    }
}

pub fn connack_bytes() -> [u8; 4] {
    let mut ack = [0u8; 4];
    if let Err(e) = std::io::stdin().read_exact(&mut ack) {
        eprintln!("reading the CONNACK: {e}");
        std::process::exit(1);
    }
    ack
}

pub fn out(bytes: &[u8]) {
    if let Err(e) = std::io::stdout().write_all(bytes) {
        eprintln!("writing: {e}");
        std::process::exit(1);
    }
}

pub fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}

/// The CONNACK's return code, checked by hand (`20 02 flags code`) as fluxstat does.
pub fn connack_by_hand(ack: &[u8; 4]) {
    if ack[0] != 0x20 || ack[1] != 0x02 {
        fail(&format!("not a CONNACK: {ack:02x?}"));
    }
    out(&ack[3..]);
}
