//! (c) The same packets with mqttbytes (v4 module: MQTT 3.1.1).
#[path = "../../common.rs"]
mod common;
mod encode;

use bytes::BytesMut;
use mqttbytes::v4::{self, Packet};

fn main() {
    let i = common::inputs();
    encode::all(&i);
    let ack = common::connack_bytes();
    let mut stream = BytesMut::from(&ack[..]);
    match v4::read(&mut stream, 1024) {
        Ok(Packet::ConnAck(c)) => common::out(&[c.code as u8]),
        Ok(_) => common::fail(&format!("not a CONNACK: {ack:02x?}")),
        Err(e) => common::fail(&format!("not a CONNACK: {e:?}")),
    }
}
