//! Encoder-only variant of (b) The same packets with mqttrs (no_std codec, default features off).: the CONNACK checked by hand, as fluxstat does.
#[path = "../../../common.rs"]
mod common;
#[path = "../encode.rs"]
mod encode;

fn main() {
    let i = common::inputs();
    encode::all(&i);
    common::connack_by_hand(&common::connack_bytes());
}
