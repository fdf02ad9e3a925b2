//! Arbitrary bytes through the HTTP request reader and, for requests that
//! parse, the WebSocket handshake checks.
#![no_main]

use duplex::http::{HeadLimits, RequestReader};
use duplex::ws::handshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let limits = HeadLimits { max_head: 2048, max_headers: 32, max_body: 1024 };
    let mut reader = RequestReader::new(limits);
    for piece in bytes.chunks(step) {
        let mut pos = 0;
        while pos < piece.len() {
            match reader.read(&piece[pos..]) {
                Ok((used, request)) => {
                    pos += used;
                    if let Some(request) = request {
                        let _ = handshake::is_upgrade(&request);
                        let _ = handshake::validate(&request);
                        let _ = handshake::select_protocol(&request, &["chat", "echo-protocol"]);
                        let _ = request.query_param("room");
                    }
                }
                Err(_) => return,
            }
        }
    }
});
