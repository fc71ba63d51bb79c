//! The packets of (b) encoded and written out: shared by the program and its
//! encoder-only variant (`src/bin/`).
use crate::common;

use mqttrs::{encode_slice, Connect, LastWill, Packet, Protocol, Publish, QoS, QosPid};

fn encode(p: &Packet, room: usize) -> Vec<u8> {
    let mut buf = vec![0u8; room + 16];
    match encode_slice(p, &mut buf) {
        Ok(n) => buf.truncate(n),
        Err(e) => common::fail(&format!("encoding: {e:?}")),
    }
    buf
}

pub fn all(i: &common::Inputs) {
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
}
