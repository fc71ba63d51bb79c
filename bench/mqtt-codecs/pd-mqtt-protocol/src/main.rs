//! (d) The same packets with mqtt-protocol (crate `mqtt`).
#[path = "../../common.rs"]
mod common;
mod encode;

use mqtt::control::ConnectReturnCode;
use mqtt::packet::VariablePacket;
use mqtt::Decodable;

fn main() {
    let i = common::inputs();
    encode::all(&i);
    let ack = common::connack_bytes();
    // VariablePacket checks the packet type; ConnackPacket::decode alone does not
    // (it takes `30 02 00 00` for a CONNACK).
    match VariablePacket::decode(&mut &ack[..]) {
        Ok(VariablePacket::ConnackPacket(c)) => {
            let code = match c.connect_return_code() {
                ConnectReturnCode::ConnectionAccepted => 0,
                other => other.to_u8(),
            };
            common::out(&[code]);
        }
        Ok(_) => common::fail(&format!("not a CONNACK: {ack:02x?}")),
        Err(e) => common::fail(&format!("not a CONNACK: {e}")),
    }
}
