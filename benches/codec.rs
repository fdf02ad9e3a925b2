//! How fast the frame codec moves bytes, next to the fastest possible move.
//!
//! ```text
//! cargo bench --bench codec
//! ```
//!
//! Every receive path in a WebSocket server touches each payload byte at
//! least once: a client's frames are masked (RFC 6455 §5.3), so the server
//! must XOR them before it can look at them. A plain `copy_from_slice` of the
//! same size is the yardstick: an unmasking loop that runs near memcpy speed
//! is as good as it can get without SIMD, and the decoder should cost little
//! more than the unmasking inside it.
//!
//! Criterion reports bytes per second for each case (`throughput`), so the
//! sizes can be compared directly:
//!
//! * `unmask/*`: the copy, `apply_mask` alone, and the server-side
//!   [`Decoder`] fed one whole masked binary frame (in place, no copy) or a
//!   text frame (plus the UTF-8 check). 32 B is dominated by per-frame
//!   overhead, 4 KiB by the XOR loop, 1 MiB by memory bandwidth.
//! * `unmask_split/1MiB`: the same 1 MiB frame arriving in 64 KiB reads, as
//!   the server's default read buffer delivers it: the payload is copied
//!   into the decoder's buffer and unmasked there.
//! * `encode/*`: a server frame (unmasked) appended to a reused buffer, as
//!   the echo endpoint does for every answer.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use duplex::ws::{apply_mask, encode_frame, Decoder, Event, Limits, Opcode, Role};
use std::time::Duration;

const SIZES: [(usize, &str); 3] = [(32, "32B"), (4 << 10, "4KiB"), (1 << 20, "1MiB")];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// ASCII payload, so the text case is valid UTF-8.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// One complete client frame, masked.
fn masked_frame(opcode: Opcode, len: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(len + 14);
    encode_frame(&mut frame, true, opcode, &payload(len), Some(KEY));
    frame
}

/// Decodes one whole frame and returns the message length.
fn decode_one(decoder: &mut Decoder, input: &mut [u8]) -> usize {
    match decoder.decode(input) {
        Ok((_, Some(Event::Message(_, message)))) => message.len(),
        other => panic!("expected one message, got {other:?}"),
    }
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for (len, name) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));

        let src = payload(len);
        let mut dst = vec![0u8; len];
        group.bench_function(format!("copy/{name}"), |b| {
            b.iter(|| dst.copy_from_slice(black_box(&src)))
        });

        let mut data = payload(len);
        group.bench_function(format!("apply_mask/{name}"), |b| {
            b.iter(|| apply_mask(black_box(&mut data), KEY, 0))
        });

        // Binary: unmasking in place toggles the payload between masked and
        // clear, and the decoder does not look inside binary payloads, so
        // the same buffer can be decoded again and again with no setup.
        let mut frame = masked_frame(Opcode::Binary, len);
        let mut decoder = Decoder::new(Role::Server, Limits::default());
        group.bench_function(format!("decoder_binary/{name}"), |b| {
            b.iter(|| decode_one(&mut decoder, black_box(&mut frame)))
        });

        // Text must be valid UTF-8 after unmasking, so each iteration gets a
        // fresh masked copy (made outside the measured time).
        let frame = masked_frame(Opcode::Text, len);
        let mut decoder = Decoder::new(Role::Server, Limits::default());
        let batch = if len > 64 << 10 {
            BatchSize::LargeInput
        } else {
            BatchSize::SmallInput
        };
        group.bench_function(format!("decoder_text/{name}"), |b| {
            b.iter_batched_ref(|| frame.clone(), |input| decode_one(&mut decoder, input), batch)
        });
    }
    group.finish();
}

fn unmask_split(c: &mut Criterion) {
    const READ: usize = 64 << 10;
    let len = 1 << 20;
    let mut group = c.benchmark_group("unmask_split");
    group.throughput(Throughput::Bytes(len as u64));
    // Reads leave the input masked (the payload is copied out before it is
    // unmasked), so the same frame can be fed again.
    let mut frame = masked_frame(Opcode::Binary, len);
    let mut decoder = Decoder::new(Role::Server, Limits::default());
    group.bench_function("decoder_binary_64KiB_reads/1MiB", |b| {
        b.iter(|| {
            let mut got = 0;
            for chunk in frame.chunks_mut(READ) {
                let mut pos = 0;
                while pos < chunk.len() {
                    let (used, event) = decoder.decode(&mut chunk[pos..]).expect("valid frame");
                    if let Some(Event::Message(_, message)) = event {
                        got += message.len();
                    }
                    pos += used;
                }
            }
            assert_eq!(got, len);
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (len, name) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        let data = payload(len);
        let mut out = Vec::with_capacity(len + 14);
        group.bench_function(format!("server_frame/{name}"), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, true, Opcode::Text, black_box(&data), None);
                out.len()
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // 17 cases at about 3 s each keeps the whole run under a minute.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = codec;
    config = config();
    targets = unmask, unmask_split, encode
}
criterion_main!(codec);
