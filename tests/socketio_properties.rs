//! Property tests for socket.io's two sans-IO codecs (`duplex::engineio`,
//! `duplex::socketio`): whatever the bytes, they never panic and never let
//! through what their bounds refuse; what the server encodes, a decoder
//! reads back unchanged.

use duplex::engineio::{self, Packet, PacketType};
use duplex::socketio::{self, DecodeError};
use proptest::prelude::*;

/// Text that looks like socket.io often enough to reach deep: digits,
/// slashes, commas, brackets, braces, quotes and backslashes among letters.
fn socketio_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('0'),
            Just('2'),
            Just('4'),
            Just('5'),
            Just('-'),
            Just('/'),
            Just(','),
            Just('['),
            Just(']'),
            Just('{'),
            Just('}'),
            Just('"'),
            Just('\\'),
            Just(':'),
            any::<char>(),
        ],
        0..200,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #[test]
    fn engineio_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(packets) = engineio::decode_payload(&body, 16) {
            prop_assert!(packets.len() <= 16);
        }
        let _ = engineio::decode_packet(&body);
    }

    #[test]
    fn socketio_packets_never_panic_and_keep_their_depth(text in socketio_like(), depth in 1usize..8) {
        match socketio::decode(&text, depth) {
            Ok(packet) => {
                // Whatever was accepted parsed within the depth bound.
                if let Some(data) = &packet.data {
                    prop_assert!(json_depth(data) <= depth);
                }
            }
            Err(DecodeError::TooDeep(limit)) => prop_assert_eq!(limit, depth),
            Err(_) => {}
        }
    }

    #[test]
    fn what_the_server_sends_reads_back(name in "[a-z]{1,12}", text in any::<String>(), id in 0u64..(1 << 53)) {
        let event = socketio::event(&name, &text);
        let packet = socketio::decode(&event, socketio::MAX_DEPTH).unwrap();
        let (got, args) = packet.event().unwrap();
        prop_assert_eq!(got, name.as_str());
        prop_assert_eq!(args, &[serde_json::Value::String(text.clone())][..]);
        let ack = socketio::ack("/", id, &[serde_json::Value::String(text)]);
        prop_assert_eq!(socketio::decode(&ack, socketio::MAX_DEPTH).unwrap().id, Some(id));
        // Wrapped in Engine.IO and joined into a polling body, it splits back.
        let mut one = Vec::new();
        engineio::encode_packet(&mut one, PacketType::Message, &event);
        let mut body = Vec::new();
        engineio::encode_payload(&mut body, [&one[..], &b"2"[..]]);
        let packets = engineio::decode_payload(&body, 16).unwrap();
        prop_assert_eq!(packets.len(), 2);
        prop_assert_eq!(&packets[0], &Packet::Text(PacketType::Message, event.as_str()));
    }
}

/// How deep a parsed JSON value nests (a scalar is 0, `[]` is 1).
fn json_depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        serde_json::Value::Object(fields) => 1 + fields.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}
