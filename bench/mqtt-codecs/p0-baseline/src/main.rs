//! (0) Baseline: the same inputs and I/O, encodes nothing.
#[path = "../../common.rs"]
mod common;

fn main() {
    let i = common::inputs();
    let mut buf = Vec::new();
    buf.extend_from_slice(i.client_id.as_bytes());
    buf.extend_from_slice(&common::KEEP_ALIVE.to_be_bytes());
    buf.extend_from_slice(i.will_topic.as_bytes());
    buf.extend_from_slice(&i.will_payload);
    if let Some((u, p)) = i.creds() {
        buf.extend_from_slice(u.as_bytes());
        buf.extend_from_slice(p.as_bytes());
    }
    buf.extend_from_slice(i.topic.as_bytes());
    buf.extend_from_slice(&i.payload);
    common::out(&buf);
    let ack = common::connack_bytes();
    common::out(&ack[3..]);
}
