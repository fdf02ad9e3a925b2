//! Property tests for the RESP codec: any reply a server encodes is
//! decoded unchanged however it is cut into reads, and any bytes at all
//! are either a reply, a request for more, or an error, never a panic.

use duplex::resp::{decode, encode_value, Limits, Value};
use proptest::prelude::*;

/// Any RESP2 value, nested a few levels.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        "[^\r\n]{0,20}".prop_map(Value::Simple),
        "[^\r\n]{0,20}".prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)).prop_map(Value::Bulk),
        Just(Value::Array(None)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop::collection::vec(inner, 0..8).prop_map(|items| Value::Array(Some(items)))
    })
}

proptest! {
    #[test]
    fn what_is_encoded_is_decoded_in_any_pieces(
        values in prop::collection::vec(value(), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut bytes = Vec::new();
        for v in &values {
            encode_value(&mut bytes, v);
        }
        // Feed the bytes as reads arrive: a growing buffer, decoded from
        // its start each time, consumed reply by reply.
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.push(bytes.len());
        points.sort_unstable();
        let limits = Limits::default();
        let mut buffer = Vec::new();
        let mut got = Vec::new();
        let mut start = 0;
        for end in points {
            buffer.extend_from_slice(&bytes[start..end]);
            start = end;
            while let Some((v, used)) = decode(&buffer, &limits).expect("valid RESP") {
                got.push(v);
                buffer.drain(..used);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(got, values);
    }

    #[test]
    fn any_bytes_are_a_reply_more_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let limits = Limits { bulk: 64, elements: 16, depth: 3, line: 32 };
        if let Ok(Some((_, used))) = decode(&bytes, &limits) {
            prop_assert!(used <= bytes.len());
        }
    }
}
