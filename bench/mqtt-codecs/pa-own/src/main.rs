//! (a) fluxstat's own encoder: src/push/mqtt/codec.rs itself.
#![allow(dead_code)]
#[path = "../../common.rs"]
mod common;

// fluxstat's own codec, the very file the product builds.
#[path = "../../../../src/push/mqtt/codec.rs"]
mod codec;
use codec::{connack, connect, publish, Will, PINGREQ};

fn main() {
    let i = common::inputs();
    let will = Will { topic: &i.will_topic, payload: &i.will_payload };
    common::out(&connect(&i.client_id, common::KEEP_ALIVE, &will, i.creds()));
    common::out(&publish(&i.topic, &i.payload, true));
    common::out(&publish(&i.topic, &i.payload, false));
    common::out(&PINGREQ);
    let ack = common::connack_bytes();
    match connack(&ack) {
        Ok(code) => common::out(&[code]),
        Err(e) => common::fail(&e),
    }
}
