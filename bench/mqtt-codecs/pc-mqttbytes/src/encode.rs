//! The packets of (c) encoded and written out: shared by the program and its
//! encoder-only variant (`src/bin/`).
use crate::common;

use bytes::BytesMut;
use mqttbytes::v4::{Connect, LastWill, PingReq, Publish};
use mqttbytes::QoS;

pub fn all(i: &common::Inputs) {
    let mut connect = Connect::new(i.client_id.as_str());
    connect.keep_alive = common::KEEP_ALIVE;
    connect.clean_session = true;
    connect.last_will = Some(LastWill::new(i.will_topic.as_str(), i.will_payload.clone(), QoS::AtLeastOnce, true));
    if let Some((u, p)) = i.creds() {
        connect.set_login(u, p);
    }
    // One buffer per packet: Connect::write patches its flags at an index
    // counted from the start of the buffer.
    let mut buf = BytesMut::new();
    if let Err(e) = connect.write(&mut buf) {
        common::fail(&format!("encoding: {e:?}"));
    }
    common::out(&buf);
    for retain in [true, false] {
        let mut publish = Publish::new(i.topic.as_str(), QoS::AtMostOnce, i.payload.clone());
        publish.retain = retain;
        let mut buf = BytesMut::new();
        if let Err(e) = publish.write(&mut buf) {
            common::fail(&format!("encoding: {e:?}"));
        }
        common::out(&buf);
    }
    let mut buf = BytesMut::new();
    if let Err(e) = PingReq.write(&mut buf) {
        common::fail(&format!("encoding: {e:?}"));
    }
    common::out(&buf);
}
