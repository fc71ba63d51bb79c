//! (d) The same packets with mqtt-protocol (crate `mqtt`).
#[path = "../../common.rs"]
mod common;

use mqtt::control::ConnectReturnCode;
use mqtt::packet::{ConnectPacket, PingreqPacket, PublishPacket, QoSWithPacketIdentifier, VariablePacket};
use mqtt::{Decodable, Encodable, TopicName};

fn encoded<E: Encodable>(p: &E) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Err(e) = p.encode(&mut buf) {
        common::fail(&format!("encoding: {e}"));
    }
    buf
}

fn topic(t: &str) -> TopicName {
    match TopicName::new(t) {
        Ok(t) => t,
        Err(e) => common::fail(&format!("bad topic: {e}")),
    }
}

fn main() {
    let i = common::inputs();
    let mut connect = ConnectPacket::new(i.client_id.as_str());
    connect.set_clean_session(true);
    connect.set_keep_alive(common::KEEP_ALIVE);
    connect.set_will(Some((topic(&i.will_topic), i.will_payload.clone())));
    connect.set_will_qos(1);
    connect.set_will_retain(true);
    if let Some((u, p)) = i.creds() {
        connect.set_user_name(Some(u.to_owned()));
        connect.set_password(Some(p.to_owned()));
    }
    common::out(&encoded(&connect));
    for retain in [true, false] {
        let mut publish = PublishPacket::new(topic(&i.topic), QoSWithPacketIdentifier::Level0, i.payload.clone());
        publish.set_retain(retain);
        common::out(&encoded(&publish));
    }
    common::out(&encoded(&PingreqPacket::new()));
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
