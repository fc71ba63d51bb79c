//! (b) The same packets with mqttrs (no_std codec, default features off).
#[path = "../../common.rs"]
mod common;

use mqttrs::{decode_slice, encode_slice, Connect, ConnectReturnCode, LastWill, Packet, Protocol, Publish, QoS, QosPid};

fn encode(p: &Packet, room: usize) -> Vec<u8> {
    let mut buf = vec![0u8; room + 16];
    match encode_slice(p, &mut buf) {
        Ok(n) => buf.truncate(n),
        Err(e) => common::fail(&format!("encoding: {e:?}")),
    }
    buf
}

fn main() {
    let i = common::inputs();
    let creds = i.creds();
    let connect = Packet::Connect(Connect {
        protocol: Protocol::MQTT311,
        keep_alive: common::KEEP_ALIVE,
        client_id: &i.client_id,
        clean_session: true,
        last_will: Some(LastWill { topic: &i.will_topic, message: &i.will_payload, qos: QoS::AtLeastOnce, retain: true }),
        username: creds.map(|(u, _)| u),
        password: creds.map(|(_, p)| p.as_bytes()),
    });
    let room = i.client_id.len() + i.will_topic.len() + i.will_payload.len() + creds.map_or(0, |(u, p)| u.len() + p.len()) + 16;
    common::out(&encode(&connect, room));
    for retain in [true, false] {
        let publish = Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain, topic_name: &i.topic, payload: &i.payload });
        common::out(&encode(&publish, i.topic.len() + i.payload.len()));
    }
    common::out(&encode(&Packet::Pingreq, 0));
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
