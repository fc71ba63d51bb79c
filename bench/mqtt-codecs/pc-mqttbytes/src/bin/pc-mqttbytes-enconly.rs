//! Encoder-only variant of (c) The same packets with mqttbytes (v4 module: MQTT 3.1.1).: the CONNACK checked by hand, as fluxstat does.
#[path = "../../../common.rs"]
mod common;
#[path = "../encode.rs"]
mod encode;

fn main() {
    let i = common::inputs();
    encode::all(&i);
    common::connack_by_hand(&common::connack_bytes());
}
