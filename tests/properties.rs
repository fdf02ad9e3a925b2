//! Property tests for the sans-IO codecs: whatever the bytes and however
//! they are split, the parsers never panic, and what one side encodes the
//! other decodes unchanged.

use duplex::client::encode_client_frame;
use duplex::http::{HeadLimits, RequestReader};
use duplex::line::{encode_line, LineCodec, LineEnd, LineEvent};
use duplex::ws::decoder::MessageKind;
use duplex::ws::{Decoder, Event, Limits, Opcode, Role};
use proptest::prelude::*;

/// Feeds `bytes` to a decoder in pieces cut at `cuts`; collects events as
/// owned values, or the first error.
fn decode_in_pieces(
    decoder: &mut Decoder,
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut events = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    for end in points {
        let mut piece = bytes[start..end].to_vec();
        start = end;
        let mut pos = 0;
        loop {
            let (used, event) = decoder.decode(&mut piece[pos..]).map_err(|e| e.to_string())?;
            pos += used;
            match event {
                Some(Event::Message(MessageKind::Text, p)) => events.push((1, p.to_vec())),
                Some(Event::Message(MessageKind::Binary, p)) => events.push((2, p.to_vec())),
                Some(Event::Ping(p)) => events.push((9, p.to_vec())),
                Some(Event::Pong(p)) => events.push((10, p.to_vec())),
                Some(Event::Close(_)) => events.push((8, Vec::new())),
                None => break,
            }
        }
    }
    Ok(events)
}

/// A message: text or binary, its payload, and how to fragment it.
fn message() -> impl Strategy<Value = (bool, Vec<u8>, Vec<usize>, bool)> {
    (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::collection::vec(1usize..700, 0..6),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random messages, fragmented at random sizes with pings between the
    /// fragments, split into reads at random points: each comes out whole
    /// and unchanged, in order.
    #[test]
    fn messages_survive_any_framing_and_any_split(
        messages in prop::collection::vec(message(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (text, payload, fragments, ping_between) in &messages {
            // Text must be valid UTF-8: use the lossy form of the bytes.
            let payload = if *text { String::from_utf8_lossy(payload).into_owned().into_bytes() } else { payload.clone() };
            let mut rest: &[u8] = &payload;
            let mut first = true;
            for size in fragments {
                if rest.len() <= *size {
                    break;
                }
                // Cut on a character boundary is not required: UTF-8 is
                // checked across fragments.
                let (head, tail) = rest.split_at(*size);
                let opcode = if first { if *text { Opcode::Text } else { Opcode::Binary } } else { Opcode::Continuation };
                encode_client_frame(&mut wire, false, opcode, head);
                if *ping_between {
                    encode_client_frame(&mut wire, true, Opcode::Ping, b"between");
                    expected.push((9, b"between".to_vec()));
                }
                first = false;
                rest = tail;
            }
            let opcode = if first { if *text { Opcode::Text } else { Opcode::Binary } } else { Opcode::Continuation };
            encode_client_frame(&mut wire, true, opcode, rest);
            expected.push((if *text { 1 } else { 2 }, payload.clone()));
        }
        let mut decoder = Decoder::new(Role::Server, Limits::default());
        let events = decode_in_pieces(&mut decoder, &wire, &cuts).unwrap();
        prop_assert_eq!(events, expected);
    }

    /// Arbitrary bytes never panic the frame decoder, in either role.
    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4000), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        for role in [Role::Server, Role::Client] {
            let limits = Limits { max_message: 1000, max_fragments: 10 };
            let _ = decode_in_pieces(&mut Decoder::new(role, limits), &bytes, &cuts);
        }
    }

    /// A valid stream with a few bytes flipped: an error or events, never
    /// a panic.
    #[test]
    fn mutated_streams_never_panic(
        payload in prop::collection::vec(any::<u8>(), 0..2000),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut wire = Vec::new();
        encode_client_frame(&mut wire, false, Opcode::Text, b"hello ");
        encode_client_frame(&mut wire, true, Opcode::Ping, b"x");
        encode_client_frame(&mut wire, true, Opcode::Continuation, &payload);
        encode_client_frame(&mut wire, true, Opcode::Close, &[0x03, 0xE8]);
        for (at, value) in flips {
            let i = at % wire.len();
            wire[i] ^= value;
        }
        let _ = decode_in_pieces(&mut Decoder::new(Role::Server, Limits::default()), &wire, &[7, 50, 300]);
    }

    /// Arbitrary bytes never panic the HTTP request reader, however split,
    /// and it never holds more than its head limit.
    #[test]
    fn request_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..3000), step in 1usize..600) {
        let limits = HeadLimits { max_head: 1024, max_headers: 16, max_body: 512 };
        let mut reader = RequestReader::new(limits);
        for piece in bytes.chunks(step) {
            let mut pos = 0;
            while pos < piece.len() {
                match reader.read(&piece[pos..]) {
                    Ok((used, _)) => pos += used,
                    Err(_) => return Ok(()),
                }
            }
        }
    }

    /// Valid requests split anywhere parse the same as in one piece.
    #[test]
    fn requests_parse_the_same_however_split(path in "/[a-z]{0,20}", value in "[ -~]{0,100}", cut in any::<usize>()) {
        let text = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Test: {value}\r\n\r\n");
        let limits = HeadLimits { max_head: 8192, max_headers: 64, max_body: 0 };
        let whole = RequestReader::new(limits).read(text.as_bytes()).unwrap().1.unwrap();
        let cut = cut % text.len();
        let mut reader = RequestReader::new(limits);
        let (used, none) = reader.read(&text.as_bytes()[..cut]).unwrap();
        prop_assert!(none.is_none());
        prop_assert_eq!(used, cut);
        let (_, split) = reader.read(&text.as_bytes()[cut..]).unwrap();
        prop_assert_eq!(split.unwrap(), whole);
    }

    /// Arbitrary bytes never panic the line codec, and no line it returns
    /// is longer than the limit or contains a line end or IAC.
    #[test]
    fn line_codec_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..3000), step in 1usize..500) {
        let mut codec = LineCodec::new(100);
        for piece in bytes.chunks(step) {
            let mut pos = 0;
            loop {
                let (used, event) = codec.decode(&piece[pos..]);
                pos += used;
                match event {
                    Some(LineEvent::Line(line, _)) => {
                        prop_assert!(line.len() <= 100);
                        prop_assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
                    }
                    Some(LineEvent::TooLong { .. } | LineEvent::Command { .. }) => {}
                    None => break,
                }
            }
            prop_assert_eq!(pos, piece.len());
        }
    }

    /// Lines of any bytes but CR and LF (255 among them), each ended in
    /// one of the four telnet ways, with telnet commands before and inside
    /// them, split into reads anywhere: each line comes out whole, each
    /// command in its place with its answer; and the echo of each line,
    /// escaped by `encode_line`, decodes to the same line again with no
    /// command in it (a data 255 went out as IAC IAC).
    #[test]
    fn lines_and_commands_round_trip_through_the_codec(
        typed in prop::collection::vec(typed_line(), 1..20),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // What the client sends, and what the codec should make of it.
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, (data, commands, end)) in typed.iter().enumerate() {
            let mut at = 0;
            let mut commands = commands.clone();
            commands.sort_by_key(|(pos, _)| pos % (data.len() + 1));
            for (pos, command) in &commands {
                let pos = pos % (data.len() + 1);
                for &byte in &data[at..pos] {
                    wire.push(byte);
                    if byte == 255 {
                        wire.push(255);
                    }
                }
                at = pos;
                wire.extend_from_slice(&command.0);
                expected.push(Seen::Command(command.1.clone()));
            }
            for &byte in &data[at..] {
                wire.push(byte);
                if byte == 255 {
                    wire.push(255);
                }
            }
            // A lone CR is only a line end if what follows is not LF or
            // NUL (which would make it CR LF or CR NUL): fall back to CR
            // NUL where the next line starts with one.
            let next = typed.get(i + 1).and_then(|(d, c, _)| if c.iter().any(|(p, _)| p % (d.len() + 1) == 0) { None } else { d.first().copied() });
            let end = if *end == 3 && matches!(next, Some(b'\n' | 0) | None) { 2 } else { *end };
            wire.extend_from_slice(match end {
                0 => &b"\n"[..],
                1 => b"\r\n",
                2 => b"\r\0",
                _ => b"\r",
            });
            expected.push(Seen::Line(data.clone(), if end == 0 { LineEnd::Lf } else { LineEnd::Cr }));
        }
        let mut codec = LineCodec::new(1 << 20);
        let seen = decode_all(&mut codec, &wire, &cuts);
        prop_assert_eq!(&seen, &expected);

        // The echo: every line escaped and ended as the codec would want.
        let mut echo = Vec::new();
        for event in &seen {
            if let Seen::Line(line, end) = event {
                encode_line(&mut echo, line, *end);
            }
        }
        let lines: Vec<Seen> = expected.into_iter().filter(|e| matches!(e, Seen::Line(..))).collect();
        let mut codec = LineCodec::new(1 << 20);
        prop_assert_eq!(decode_all(&mut codec, &echo, &cuts), lines);
    }
}

/// A decoded event, owned: a line and its end, or a command's answer.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Line(Vec<u8>, LineEnd),
    Command(Option<Vec<u8>>),
}

/// Decodes `bytes` cut into reads at `cuts`.
fn decode_all(codec: &mut LineCodec, bytes: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    let mut seen = Vec::new();
    let mut start = 0;
    for end in points {
        let piece = &bytes[start..end];
        start = end;
        let mut pos = 0;
        loop {
            let (used, event) = codec.decode(&piece[pos..]);
            pos += used;
            match event {
                Some(LineEvent::Line(line, end)) => seen.push(Seen::Line(line.to_vec(), end)),
                Some(LineEvent::Command { answer, .. }) => {
                    seen.push(Seen::Command(answer.map(|a| a.bytes().to_vec())))
                }
                Some(LineEvent::TooLong { .. }) => panic!("no line here is too long"),
                None => break,
            }
        }
    }
    seen
}

/// A telnet command and the answer RFC 854/860 call for: negotiation of
/// any option, or a two-byte command that leaves the line alone (EC and
/// EL edit it, and have unit tests of their own).
fn telnet_command() -> impl Strategy<Value = (Vec<u8>, Option<Vec<u8>>)> {
    let negotiation = (251u8..=254, any::<u8>()).prop_map(|(verb, option)| {
        let answer = match (verb, option) {
            (253, 6) => Some(vec![255, 251, 6]),
            (253, _) => Some(vec![255, 252, option]),
            (251, _) => Some(vec![255, 254, option]),
            _ => None,
        };
        (vec![255, verb, option], answer)
    });
    let two_byte = prop::sample::select(vec![241u8, 242, 243, 244, 245, 246, 249]).prop_map(|byte| {
        let answer = (byte == 246).then(|| duplex::line::ARE_YOU_THERE_ANSWER.as_bytes().to_vec());
        (vec![255, byte], answer)
    });
    prop_oneof![negotiation, two_byte]
}

/// One typed line: its data (no CR or LF; 255 and NUL welcome), commands
/// at positions within it, and its end (LF, CR LF, CR NUL, lone CR).
#[allow(clippy::type_complexity)]
fn typed_line() -> impl Strategy<Value = (Vec<u8>, Vec<(usize, (Vec<u8>, Option<Vec<u8>>))>, u8)> {
    let byte = prop_oneof![
        Just(255u8),
        Just(0u8),
        any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n')
    ];
    (
        prop::collection::vec(byte, 0..40),
        prop::collection::vec((any::<usize>(), telnet_command()), 0..3),
        0u8..4,
    )
}
