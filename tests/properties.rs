//! Property tests for the sans-IO codecs. Two kinds of claim, each
//! asserted: what one side encodes the other decodes unchanged, however
//! the bytes are framed and split into reads, in both directions (a
//! client's masked frames into the server's decoder, the server's unmasked
//! frames into a client's decoder, lines into the line codec); and
//! whatever the bytes, the parsers never panic and what they hand out
//! stays within their limits.

use duplex::http::{HeadLimits, RequestReader};
use duplex::line::{encode_line, LineCodec, LineEnd, LineEvent};
use duplex::ws::close::close_payload;
use duplex::ws::decoder::MessageKind;
use duplex::ws::{encode_frame, CloseCode, Decoder, Event, Limits, Opcode, ProtocolError, Role};
use proptest::prelude::*;

/// An event as an owned value: the opcode it came as and its payload (for
/// a close, the code in network byte order and the reason).
type Owned = (u8, Vec<u8>);

/// Feeds `bytes` to a decoder in pieces cut at `cuts`; collects events as
/// owned values, or the first error.
fn decode_in_pieces(
    decoder: &mut Decoder,
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<Owned>, ProtocolError> {
    let (events, outcome) = decode_until_error(decoder, bytes, cuts);
    outcome.map(|()| events)
}

/// Like [`decode_in_pieces`], but also returns the events handed out
/// before an error.
fn decode_until_error(
    decoder: &mut Decoder,
    bytes: &[u8],
    cuts: &[usize],
) -> (Vec<Owned>, Result<(), ProtocolError>) {
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
            let (used, event) = match decoder.decode(&mut piece[pos..]) {
                Ok(decoded) => decoded,
                Err(e) => return (events, Err(e)),
            };
            pos += used;
            match event {
                Some(Event::Message(MessageKind::Text, p)) => events.push((1, p.to_vec())),
                Some(Event::Message(MessageKind::Binary, p)) => events.push((2, p.to_vec())),
                Some(Event::Ping(p)) => events.push((9, p.to_vec())),
                Some(Event::Pong(p)) => events.push((10, p.to_vec())),
                Some(Event::Close(None)) => events.push((8, Vec::new())),
                Some(Event::Close(Some(close))) => {
                    events.push((8, close_payload(close.code, close.reason)));
                }
                None => break,
            }
        }
        assert_eq!(pos, piece.len(), "the decoder used every byte of a read");
    }
    (events, Ok(()))
}

/// A message: text or binary, its payload, how to fragment it, and
/// whether a ping goes between its fragments.
fn message() -> impl Strategy<Value = (bool, Vec<u8>, Vec<usize>, bool)> {
    (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::collection::vec(1usize..700, 0..6),
        any::<bool>(),
    )
}

/// Encodes `messages` as one side would send them: each message in
/// fragments, a ping (or, from a server, alternately a pong) between
/// fragments where asked, each frame masked with the next of `masks` when
/// `masks` is given (a client) or unmasked (a server). Returns the wire and
/// the events the other side must see.
fn encode_messages(
    messages: &[(bool, Vec<u8>, Vec<usize>, bool)],
    masks: Option<&[[u8; 4]]>,
) -> (Vec<u8>, Vec<Owned>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let mut frames = 0usize;
    let mut next_mask = || {
        frames += 1;
        masks.map(|m| m[frames % m.len()])
    };
    for (i, (text, payload, fragments, control_between)) in messages.iter().enumerate() {
        // Text must be valid UTF-8: use the lossy form of the bytes.
        let payload = if *text {
            String::from_utf8_lossy(payload).into_owned().into_bytes()
        } else {
            payload.clone()
        };
        let kind = if *text { Opcode::Text } else { Opcode::Binary };
        let mut rest: &[u8] = &payload;
        let mut first = true;
        for size in fragments {
            if rest.len() <= *size {
                break;
            }
            // A cut inside a character is allowed: UTF-8 is checked across
            // fragments.
            let (head, tail) = rest.split_at(*size);
            let opcode = if first { kind } else { Opcode::Continuation };
            encode_frame(&mut wire, false, opcode, head, next_mask());
            if *control_between {
                let (opcode, code) = if masks.is_none() && i % 2 == 1 {
                    (Opcode::Pong, 10)
                } else {
                    (Opcode::Ping, 9)
                };
                encode_frame(&mut wire, true, opcode, b"between", next_mask());
                expected.push((code, b"between".to_vec()));
            }
            first = false;
            rest = tail;
        }
        let opcode = if first { kind } else { Opcode::Continuation };
        encode_frame(&mut wire, true, opcode, rest, next_mask());
        expected.push((if *text { 1 } else { 2 }, payload));
    }
    (wire, expected)
}

/// Checks what a decoder handed out against its limits: no message over
/// `max_message`, no control payload over 125 bytes, text always UTF-8.
fn within_limits(events: &[Owned], max_message: usize) -> Result<(), TestCaseError> {
    for (opcode, payload) in events {
        match opcode {
            1 => {
                prop_assert!(payload.len() <= max_message);
                prop_assert!(std::str::from_utf8(payload).is_ok(), "text that is not UTF-8");
            }
            2 => prop_assert!(payload.len() <= max_message),
            _ => prop_assert!(
                payload.len() <= 125,
                "a control payload of {} bytes",
                payload.len()
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Client to server: random messages, fragmented at random sizes with
    /// pings between the fragments, masked with random keys, split into
    /// reads at random points: the server's decoder returns each whole and
    /// unchanged, in order, pings included.
    #[test]
    fn client_frames_decode_unchanged_on_the_server_side(
        messages in prop::collection::vec(message(), 1..8),
        masks in prop::collection::vec(any::<[u8; 4]>(), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (wire, expected) = encode_messages(&messages, Some(&masks));
        let mut decoder = Decoder::new(Role::Server, Limits::default());
        let events = decode_in_pieces(&mut decoder, &wire, &cuts).unwrap();
        prop_assert_eq!(events, expected);
    }

    /// Server to client: what the server's own encoder writes (unmasked,
    /// as §5.1 requires of a server) — random messages, fragmented, with
    /// pings and pongs between fragments, and a close with a random code
    /// and reason at the end — read by a client's decoder split at random
    /// points, comes back whole and unchanged, in order.
    #[test]
    fn server_frames_decode_unchanged_on_the_client_side(
        messages in prop::collection::vec(message(), 1..8),
        code in prop::sample::select(vec![1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 3000, 4999]),
        reason in "\\PC{0,40}",
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (mut wire, mut expected) = encode_messages(&messages, None);
        let close = close_payload(CloseCode(code), &reason);
        encode_frame(&mut wire, true, Opcode::Close, &close, None);
        expected.push((8, close));
        let mut decoder = Decoder::new(Role::Client, Limits::default());
        let events = decode_in_pieces(&mut decoder, &wire, &cuts).unwrap();
        prop_assert_eq!(events, expected);
    }

    /// Each side refuses the other's masking: a client's decoder fails on
    /// a masked frame (§5.1: "a client MUST close a connection if it
    /// detects a masked frame"), a server's on an unmasked one, with
    /// nothing handed out first.
    #[test]
    fn each_side_refuses_frames_masked_the_wrong_way(
        message in message(),
        mask in any::<[u8; 4]>(),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        let (masked, _) = encode_messages(std::slice::from_ref(&message), Some(&[mask]));
        let mut client = Decoder::new(Role::Client, Limits::default());
        prop_assert_eq!(decode_in_pieces(&mut client, &masked, &cuts), Err(ProtocolError::MaskedFrame));
        let (unmasked, _) = encode_messages(std::slice::from_ref(&message), None);
        let mut server = Decoder::new(Role::Server, Limits::default());
        prop_assert_eq!(decode_in_pieces(&mut server, &unmasked, &cuts), Err(ProtocolError::UnmaskedFrame));
    }

    /// Arbitrary bytes never panic the frame decoder, in either role, and
    /// whatever it hands out before it stops is within its limits.
    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4000), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        for role in [Role::Server, Role::Client] {
            let limits = Limits { max_message: 1000, max_fragments: 10 };
            let (events, _) = decode_until_error(&mut Decoder::new(role, limits), &bytes, &cuts);
            within_limits(&events, limits.max_message)?;
        }
    }

    /// A valid stream with a few bytes flipped: an error or events, never
    /// a panic, and any events within the limits.
    #[test]
    fn mutated_streams_never_panic(
        payload in prop::collection::vec(any::<u8>(), 0..2000),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        let mut wire = Vec::new();
        encode_frame(&mut wire, false, Opcode::Text, b"hello ", mask);
        encode_frame(&mut wire, true, Opcode::Ping, b"x", mask);
        encode_frame(&mut wire, true, Opcode::Continuation, &payload, mask);
        encode_frame(&mut wire, true, Opcode::Close, &[0x03, 0xE8], mask);
        for (at, value) in flips {
            let i = at % wire.len();
            wire[i] ^= value;
        }
        let limits = Limits { max_message: 4096, max_fragments: 100 };
        let (events, _) = decode_until_error(&mut Decoder::new(Role::Server, limits), &wire, &[7, 50, 300]);
        within_limits(&events, limits.max_message)?;
    }

    /// Arbitrary bytes never panic the HTTP request reader, however split;
    /// it always makes progress, and it never takes in more than a head
    /// and a body within their limits before it answers (a request or an
    /// error).
    #[test]
    fn request_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..3000), step in 1usize..600) {
        let limits = HeadLimits { max_head: 1024, max_headers: 16, max_body: 512 };
        let mut reader = RequestReader::new(limits);
        let mut held = 0;
        for piece in bytes.chunks(step) {
            let mut pos = 0;
            while pos < piece.len() {
                match reader.read(&piece[pos..]) {
                    Ok((used, request)) => {
                        prop_assert!(used > 0 || request.is_some(), "no progress on {} bytes", piece.len() - pos);
                        pos += used;
                        held += used;
                        if request.is_some() {
                            held = 0;
                        }
                        prop_assert!(held <= limits.max_head + limits.max_body, "took in {held} bytes without an answer");
                    }
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

    /// Arbitrary bytes never panic the line codec, it uses every byte it
    /// is given, and no line it returns is longer than the limit or
    /// contains a CR or LF.
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
                    Some(
                        LineEvent::TooLong { .. }
                        | LineEvent::SubnegotiationTooLong { .. }
                        | LineEvent::Command { .. },
                    ) => {}
                    None => break,
                }
            }
            prop_assert_eq!(pos, piece.len());
        }
    }

    /// Lines of text (no CR, LF or NUL in them; as UTF-8 they hold no IAC
    /// byte either), each ended in one of
    /// the four ways a client may end a line and split into reads at
    /// random points, come out of the line codec unchanged, in order, each
    /// with the dialect it ended in.
    #[test]
    fn lines_decode_unchanged_whatever_their_ends_and_splits(
        lines in prop::collection::vec(("[^\r\n\u{0}]{0,80}", 0usize..4), 1..30),
        step in 1usize..200,
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, (text, end)) in lines.iter().enumerate() {
            wire.extend_from_slice(text.as_bytes());
            // A lone CR before an empty line that ends in LF would be CR LF
            // on the wire: one line end, by design. Those two lines are
            // sent as CR LF and LF instead.
            let lf_next = lines.get(i + 1).is_some_and(|(t, e)| t.is_empty() && *e == 0);
            let (bytes, dialect): (&[u8], LineEnd) = match end {
                0 => (b"\n", LineEnd::Lf),
                1 => (b"\r\n", LineEnd::Cr),
                2 => (b"\r\0", LineEnd::Cr),
                _ if lf_next => (b"\r\n", LineEnd::Cr),
                _ => (b"\r", LineEnd::Cr),
            };
            wire.extend_from_slice(bytes);
            expected.push((text.as_bytes().to_vec(), dialect));
        }
        let mut codec = LineCodec::new(4096);
        let mut got = Vec::new();
        for piece in wire.chunks(step) {
            let mut pos = 0;
            loop {
                let (used, event) = codec.decode(&piece[pos..]);
                pos += used;
                match event {
                    Some(LineEvent::Line(line, end)) => got.push((line.to_vec(), end)),
                    Some(LineEvent::TooLong { .. }) => prop_assert!(false, "no line here is too long"),
                    Some(LineEvent::Command { .. } | LineEvent::SubnegotiationTooLong { .. }) => {
                        prop_assert!(false, "no command here")
                    }
                    None => break,
                }
            }
        }
        prop_assert_eq!(got, expected);
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

/// A line codec's events as owned values, for comparing two ways of
/// driving it.
#[derive(Clone, Debug, PartialEq)]
enum LineSeen {
    Line(Vec<u8>, LineEnd),
    TooLong,
    SubnegotiationTooLong(u8),
    Command(String, Option<Vec<u8>>),
}

impl LineSeen {
    fn of(event: LineEvent) -> LineSeen {
        match event {
            LineEvent::Line(line, end) => LineSeen::Line(line.to_vec(), end),
            LineEvent::TooLong { .. } => LineSeen::TooLong,
            LineEvent::SubnegotiationTooLong { option, .. } => LineSeen::SubnegotiationTooLong(option.0),
            LineEvent::Command { command, answer } => {
                LineSeen::Command(command.to_string(), answer.map(|a| a.bytes().to_vec()))
            }
        }
    }
}

/// Feeds each read to the line codec: with `fast`, as `--line-echo`
/// does, a run of plain lines first (turned into the lines it holds, by
/// splitting it at each LF, the plain way), then one step of `decode`
/// for whatever stopped it, and again; without, `decode` alone. Returns
/// the events, what the codec holds at the end, and for the fast way
/// the runs of plain lines, each with the echo of its lines rebuilt one
/// by one.
#[allow(clippy::type_complexity)]
fn line_codec_ways(
    max_line: usize,
    reads: &[&[u8]],
    fast: bool,
) -> (Vec<LineSeen>, Option<Vec<u8>>, Vec<(Vec<u8>, Vec<u8>)>) {
    let mut codec = LineCodec::new(max_line);
    let mut seen = Vec::new();
    let mut runs = Vec::new();
    for read in reads {
        let mut pos = 0;
        loop {
            if fast {
                let run = codec.plain_lines(&read[pos..]);
                let bytes = &read[pos..pos + run.bytes];
                let mut rebuilt = Vec::new();
                let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
                assert_eq!(lines.len(), run.lines);
                for line in lines {
                    let (text, end) = match line {
                        [text @ .., b'\r', b'\n'] => (text, LineEnd::Cr),
                        [text @ .., b'\n'] => (text, LineEnd::Lf),
                        _ => panic!("a run holds whole lines only: {line:?}"),
                    };
                    encode_line(&mut rebuilt, text, end);
                    seen.push(LineSeen::Line(text.to_vec(), end));
                }
                if run.bytes > 0 {
                    runs.push((bytes.to_vec(), rebuilt));
                }
                pos += run.bytes;
            }
            let (used, event) = codec.decode(&read[pos..]);
            pos += used;
            match event {
                Some(event) => seen.push(LineSeen::of(event)),
                None => break,
            }
        }
        assert_eq!(pos, read.len());
    }
    let last = codec.finish().map(<[u8]>::to_vec);
    (seen, last, runs)
}

/// What a telnet client might send, in the proportions that find the
/// corners: text, every line end, NUL, IAC (as commands, IAC IAC or
/// stray), and any byte at all.
fn telnet_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => "[a-z ]{1,12}".prop_map(String::into_bytes),
        3 => Just(b"\n".to_vec()),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\0".to_vec()),
        1 => Just(vec![255]),
        1 => telnet_command().prop_map(|(bytes, _)| bytes),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(piece, 0..120).prop_map(|pieces| pieces.concat())
}

proptest! {
    /// The fast path is the slow path, faster: for any input, split into
    /// reads anywhere and with any line limit, taking runs of plain lines
    /// with `plain_lines` between steps of `decode` gives the same lines,
    /// commands, answers and too-long notices in the same order, leaves
    /// the same partial line behind, and every run is, byte for byte, the
    /// echo of its lines rebuilt one by one.
    #[test]
    fn plain_lines_agree_with_decode(
        wire in telnet_stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        max_line in 1usize..40,
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let reads: Vec<&[u8]> = points.windows(2).map(|w| &wire[w[0]..w[1]]).collect();
        let (slow, slow_last, _) = line_codec_ways(max_line, &reads, false);
        let (fast, fast_last, runs) = line_codec_ways(max_line, &reads, true);
        prop_assert_eq!(fast, slow);
        prop_assert_eq!(fast_last, slow_last);
        for (run, rebuilt) in runs {
            prop_assert_eq!(run, rebuilt);
        }
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
                Some(LineEvent::SubnegotiationTooLong { .. }) => panic!("no sub-negotiation here"),
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
