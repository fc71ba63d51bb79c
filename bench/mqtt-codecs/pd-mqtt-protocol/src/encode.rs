//! The packets of (d) encoded and written out: shared by the program and its
//! encoder-only variant (`src/bin/`).
use crate::common;

use mqtt::packet::{ConnectPacket, PingreqPacket, PublishPacket, QoSWithPacketIdentifier};
use mqtt::{Encodable, TopicName};

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

pub fn all(i: &common::Inputs) {
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
}
