//! (b) The same packets with mqttrs (no_std codec, default features off).
#[path = "../../common.rs"]
mod common;
mod encode;

use mqttrs::{decode_slice, ConnectReturnCode, Packet};

fn main() {
    let i = common::inputs();
    encode::all(&i);
    let ack = common::connack_bytes();
    match decode_slice(&ack) {
        Ok(Some(Packet::Connack(c))) => {
            let code = match c.code {
                ConnectReturnCode::Accepted => 0,
                ConnectReturnCode::RefusedProtocolVersion => 1,
                ConnectReturnCode::RefusedIdentifierRejected => 2,
                ConnectReturnCode::ServerUnavailable => 3,
                ConnectReturnCode::BadUsernamePassword => 4,
                ConnectReturnCode::NotAuthorized => 5,
            };
            common::out(&[code]);
        }
        Ok(_) => common::fail(&format!("not a CONNACK: {ack:02x?}")),
        Err(e) => common::fail(&format!("not a CONNACK: {e:?}")),
    }
}
