//! Arbitrary bytes as a Redis server's replies, read as the relay reads
//! them: decoded from a growing buffer cut into reads. Whatever comes, the
//! decoder never panics, never claims more bytes than it was given, and a
//! reply it decodes encodes back to the very bytes it used.
#![no_main]

use duplex::resp::{decode, encode_value, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let limits = Limits { bulk: 4096, elements: 256, depth: 6, line: 256 };
    let mut buffer = Vec::new();
    for piece in bytes.chunks(step) {
        buffer.extend_from_slice(piece);
        loop {
            match decode(&buffer, &limits) {
                Ok(Some((value, used))) => {
                    assert!(used > 0 && used <= buffer.len());
                    let mut again = Vec::new();
                    encode_value(&mut again, &value);
                    // Numbers have one spelling on the way out (`:007` is
                    // read as 7), so compare values, not bytes.
                    let (back, n) = decode(&again, &limits).unwrap().unwrap();
                    assert_eq!((back, n), (value, again.len()));
                    buffer.drain(..used);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
