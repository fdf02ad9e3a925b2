//! Arbitrary bytes as a socket.io client's polling POST body, read as the
//! server reads it: split into Engine.IO packets (at most a bound of them),
//! and each message packet read as a Socket.IO packet under a depth bound.
//! Whatever comes, nothing panics, no bound is passed, and an accepted
//! packet's JSON nests no deeper than the bound.
#![no_main]

use duplex::engineio::{self, Packet, PacketType};
use duplex::socketio::{self, DecodeError};
use libfuzzer_sys::fuzz_target;

const MAX_PACKETS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, body)) = data.split_first() else { return };
    let max_depth = usize::from(depth % 40) + 1;
    let Ok(packets) = engineio::decode_payload(body, MAX_PACKETS) else { return };
    assert!(packets.len() <= MAX_PACKETS);
    for packet in packets {
        let Packet::Text(PacketType::Message, text) = packet else { continue };
        match socketio::decode(text, max_depth) {
            Ok(packet) => {
                if let Some(json) = &packet.data {
                    assert!(json_depth(json) <= max_depth);
                }
                assert!(packet.namespace.starts_with('/'));
                assert!(packet.id.is_none_or(|id| id < 1 << 53));
            }
            Err(DecodeError::TooDeep(limit)) => assert_eq!(limit, max_depth),
            Err(_) => {}
        }
    }
});

/// How deep a parsed JSON value nests (a scalar is 0, `[]` is 1), without
/// recursion, so a deep value cannot overflow the fuzzer's stack instead.
fn json_depth(value: &serde_json::Value) -> usize {
    // Each entry: a value, and how many containers enclose it.
    let mut deepest = 0;
    let mut stack = vec![(value, 0)];
    while let Some((value, enclosing)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        deepest = deepest.max(enclosing + 1);
        stack.extend(children.map(|v| (v, enclosing + 1)));
    }
    deepest
}
