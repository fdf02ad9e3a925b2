//! Socket.IO protocol 5, sans-IO: events with names and JSON arguments,
//! carried in Engine.IO `message` packets ([`crate::engineio`]).
//!
//! A Socket.IO packet is one line of text (github.com/socketio/
//! socket.io-protocol, "Packet encoding", cited here as "SIO §…"):
//!
//! ```text
//!   <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//!
//!   0                         CONNECT to the main namespace "/"
//!   0/admin,                  CONNECT to /admin
//!   2["message",{"msg":"hi"}] EVENT "message" with one argument
//!   212["message","hi"]       the same, asking for an ACK with id 12
//!   312["ok"]                 the ACK for event 12
//!   4{"message":"…"}          CONNECT_ERROR
//!   1                         DISCONNECT
//!   51-["up",{"_placeholder":true,"num":0}]   BINARY_EVENT, one attachment
//! ```
//!
//! On the wire each is prefixed by Engine.IO's `4`: `42["message","hi"]`.
//!
//! The payload is parsed by serde_json, but only after two bounds checked
//! here, before any parser runs: its size (the Engine.IO `maxPayload`,
//! checked by the caller on the packet) and its nesting depth
//! ([`check_depth`]). A parser that recurses (serde_json does, with a limit
//! of 128 levels) must not be handed `[[[[…` ten thousand deep from a
//! stranger; this scan refuses it in one pass with no recursion at all.

use serde_json::Value;
use std::fmt;

/// Deepest JSON nesting accepted in a payload, by default. A chat message
/// is two levels deep (`["message",{"name":…,"msg":…}]`); 32 leaves room
/// for any sensible application and none for a parser-stack attack.
pub const MAX_DEPTH: usize = 32;

/// Most binary attachments one packet may announce. Each is a separate
/// Engine.IO message the receiver must collect.
pub const MAX_ATTACHMENTS: u32 = 10;

/// A Socket.IO packet type (SIO §"Exchange protocol").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: join a namespace; the server answers with its own CONNECT.
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event: a name and arguments.
    Event,
    /// `3`: the answer to an event that asked for one.
    Ack,
    /// `4`: the server refuses a CONNECT.
    ConnectError,
    /// `5`: an event whose arguments include binary attachments.
    BinaryEvent,
    /// `6`: an ACK with binary attachments.
    BinaryAck,
}

impl PacketType {
    /// The type a byte names, if any.
    pub fn from_byte(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// The name the protocol uses, for logs and the page's frame log.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Event => "EVENT",
            PacketType::Ack => "ACK",
            PacketType::ConnectError => "CONNECT_ERROR",
            PacketType::BinaryEvent => "BINARY_EVENT",
            PacketType::BinaryAck => "BINARY_ACK",
        }
    }
}

/// One decoded packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet<'a> {
    /// What kind.
    pub kind: PacketType,
    /// Binary attachments that follow (BINARY_EVENT and BINARY_ACK only).
    pub attachments: u32,
    /// The namespace, `/` when the packet names none.
    pub namespace: &'a str,
    /// The acknowledgement id: on an EVENT, the sender wants an ACK with
    /// it; on an ACK, the event it answers.
    pub id: Option<u64>,
    /// The JSON payload, if there was one.
    pub data: Option<Value>,
}

impl Packet<'_> {
    /// An EVENT's name and arguments (SIO: the payload is a non-empty
    /// array whose first element names the event).
    pub fn event(&self) -> Option<(&str, &[Value])> {
        match &self.data {
            Some(Value::Array(items)) => match items.split_first() {
                Some((Value::String(name), args)) => Some((name, args)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Why a packet was refused. Each is a protocol error: the reference
/// server closes the connection with "parse error".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not even a type byte.
    Empty,
    /// The first byte names no packet type (`0` to `6`).
    BadType(u8),
    /// A binary packet's attachment count is missing, malformed or over
    /// [`MAX_ATTACHMENTS`].
    BadAttachments,
    /// The acknowledgement id is not a number a JavaScript peer could
    /// hold exactly (at most 2^53 − 1).
    BadId,
    /// The payload nests deeper than the limit (see [`check_depth`]).
    TooDeep(usize),
    /// The payload is not JSON.
    Json(String),
    /// The payload is JSON, but not what this packet type carries
    /// (SIO: "the payload is mandatory and MUST be a non-empty array").
    BadPayload(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("an empty Socket.IO packet"),
            DecodeError::BadType(b) if b.is_ascii_graphic() => {
                write!(f, "no Socket.IO packet type {:?} (types are 0 to 6)", *b as char)
            }
            DecodeError::BadType(b) => write!(f, "no Socket.IO packet type 0x{b:02x} (types are 0 to 6)"),
            DecodeError::BadAttachments => write!(
                f,
                "a binary packet's attachment count is malformed or over {MAX_ATTACHMENTS}"
            ),
            DecodeError::BadId => f.write_str("an acknowledgement id that is not a safe integer"),
            DecodeError::TooDeep(limit) => write!(f, "JSON nested deeper than {limit} levels"),
            DecodeError::Json(why) => write!(f, "the payload is not JSON: {why}"),
            DecodeError::BadPayload(why) => f.write_str(why),
        }
    }
}

/// Events a client may not send: the reference library keeps these names
/// for its own (socket.io-parser `RESERVED_EVENTS`).
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Largest acknowledgement id: JavaScript's `Number.MAX_SAFE_INTEGER`.
const MAX_ID: u64 = (1 << 53) - 1;

/// Reads one Socket.IO packet (the text of an Engine.IO message, without
/// its `4`). The payload's depth is checked before serde_json sees it.
pub fn decode(text: &str, max_depth: usize) -> Result<Packet<'_>, DecodeError> {
    let bytes = text.as_bytes();
    let (&first, _) = bytes.split_first().ok_or(DecodeError::Empty)?;
    let kind = PacketType::from_byte(first).ok_or(DecodeError::BadType(first))?;
    let mut rest = &text[1..];
    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        // `<n>-`: the count, then a dash.
        let (count, after) = rest.split_once('-').ok_or(DecodeError::BadAttachments)?;
        attachments = count
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_ATTACHMENTS).contains(n) && count.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(DecodeError::BadAttachments)?;
        rest = after;
    }
    // A namespace starts with `/` and ends at the first comma (or the
    // end: `1/admin` is accepted as the reference parser accepts it).
    let mut namespace = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        namespace = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let mut id = None;
    if digits > 0 {
        let value = rest[..digits]
            .parse::<u64>()
            .ok()
            .filter(|&v| v <= MAX_ID)
            .ok_or(DecodeError::BadId)?;
        id = Some(value);
        rest = &rest[digits..];
    }
    let data = if rest.is_empty() {
        None
    } else {
        check_depth(rest.as_bytes(), max_depth)?;
        Some(serde_json::from_str::<Value>(rest).map_err(|e| DecodeError::Json(e.to_string()))?)
    };
    let packet = Packet {
        kind,
        attachments,
        namespace,
        id,
        data,
    };
    check_payload(&packet)?;
    Ok(packet)
}

/// The payload each type must carry (socket.io-parser `isPayloadValid`).
fn check_payload(packet: &Packet) -> Result<(), DecodeError> {
    let data = packet.data.as_ref();
    let ok = match packet.kind {
        PacketType::Connect => matches!(data, None | Some(Value::Object(_))),
        PacketType::Disconnect => data.is_none(),
        PacketType::ConnectError => matches!(data, Some(Value::Object(_) | Value::String(_))),
        PacketType::Event | PacketType::BinaryEvent => match data {
            Some(Value::Array(items)) => match items.first() {
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                Some(Value::Number(_)) => true,
                _ => false,
            },
            _ => false,
        },
        PacketType::Ack | PacketType::BinaryAck => matches!(data, Some(Value::Array(_))),
    };
    if ok {
        return Ok(());
    }
    Err(DecodeError::BadPayload(match packet.kind {
        PacketType::Connect => "a CONNECT's payload must be an object",
        PacketType::Disconnect => "a DISCONNECT carries no payload",
        PacketType::ConnectError => "a CONNECT_ERROR's payload must be an object or a string",
        PacketType::Event | PacketType::BinaryEvent => {
            "an EVENT's payload must be a non-empty array starting with the event's name (not a reserved one)"
        }
        PacketType::Ack | PacketType::BinaryAck => "an ACK's payload must be an array",
    }))
}

/// Refuses JSON that nests deeper than `max_depth`, in one pass and
/// without recursion: brackets are counted outside strings, and a string
/// ends at the first quote not escaped by a backslash. It judges only
/// depth; whether the text is JSON at all is the parser's to say, so
/// counting may be fooled only by text the parser refuses anyway.
pub fn check_depth(json: &[u8], max_depth: usize) -> Result<(), DecodeError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(DecodeError::TooDeep(max_depth));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// `{"sid":"…"}`: the server's CONNECT answer (SIO §"Connection to a
/// namespace"), as `0{…}`. The sid is base64url, needing no escapes.
pub fn connect(sid: &str) -> String {
    format!("0{{\"sid\":\"{sid}\"}}")
}

/// A CONNECT_ERROR for `namespace` with this message, as
/// `4/admin,{"message":"…"}` (or `4{…}` for the main namespace).
pub fn connect_error(namespace: &str, message: &str) -> String {
    let message = Value::String(message.to_string());
    format!("4{}{{\"message\":{message}}}", namespace_prefix(namespace))
}

/// An EVENT with one string argument, as `2["name","text"]`: what
/// `socket.emit(name, text)` sends.
pub fn event(name: &str, text: &str) -> String {
    let name = Value::String(name.to_string());
    let text = Value::String(text.to_string());
    format!("2[{name},{text}]")
}

/// An ACK for event `id` in `namespace`, with arguments `args` (already
/// JSON values).
pub fn ack(namespace: &str, id: u64, args: &[Value]) -> String {
    let args = Value::Array(args.to_vec());
    format!("3{}{id}{args}", namespace_prefix(namespace))
}

/// A DISCONNECT from `namespace`: the server ends the client's socket.
pub fn disconnect(namespace: &str) -> String {
    format!("1{}", namespace_prefix(namespace))
}

/// `/admin,` for a namespace other than the main one, nothing for `/`.
fn namespace_prefix(namespace: &str) -> String {
    if namespace == "/" {
        String::new()
    } else {
        format!("{namespace},")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packets_from_the_protocol_document() {
        let p = decode("0", MAX_DEPTH).unwrap();
        assert_eq!(
            (p.kind, p.namespace, p.id, p.data),
            (PacketType::Connect, "/", None, None)
        );
        let p = decode("0/admin,{\"token\":\"123\"}", MAX_DEPTH).unwrap();
        assert_eq!((p.namespace, p.data), ("/admin", Some(json!({"token": "123"}))));
        let p = decode("2[\"foo\"]", MAX_DEPTH).unwrap();
        assert_eq!(p.event(), Some(("foo", &[][..])));
        let p = decode("212[\"foo\"]", MAX_DEPTH).unwrap();
        assert_eq!(p.id, Some(12));
        let p = decode("3/admin,13[\"bar\"]", MAX_DEPTH).unwrap();
        assert_eq!((p.kind, p.namespace, p.id), (PacketType::Ack, "/admin", Some(13)));
        let p = decode("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", MAX_DEPTH).unwrap();
        assert_eq!((p.kind, p.attachments), (PacketType::BinaryEvent, 1));
        let p = decode("1/admin,", MAX_DEPTH).unwrap();
        assert_eq!((p.kind, p.namespace), (PacketType::Disconnect, "/admin"));
    }

    #[test]
    fn the_tutorials_message() {
        let p = decode(r#"2["message",{"name":"laney","msg":"hi"}]"#, MAX_DEPTH).unwrap();
        let (name, args) = p.event().unwrap();
        assert_eq!(name, "message");
        assert_eq!(args, [json!({"name": "laney", "msg": "hi"})]);
    }

    #[test]
    fn what_the_server_sends() {
        assert_eq!(connect("abc"), r#"0{"sid":"abc"}"#);
        assert_eq!(
            connect_error("/admin", "Invalid namespace"),
            r#"4/admin,{"message":"Invalid namespace"}"#
        );
        assert_eq!(
            event("servermessage", "a \"b\"\n"),
            r#"2["servermessage","a \"b\"\n"]"#
        );
        assert_eq!(ack("/", 12, &[json!("ok")]), r#"312["ok"]"#);
        assert_eq!(disconnect("/"), "1");
    }

    #[test]
    fn bad_packets_are_refused() {
        assert_eq!(decode("", MAX_DEPTH), Err(DecodeError::Empty));
        assert_eq!(decode("9", MAX_DEPTH), Err(DecodeError::BadType(b'9')));
        assert_eq!(decode("5[\"a\"]", MAX_DEPTH), Err(DecodeError::BadAttachments));
        assert_eq!(
            decode("5999-[\"a\"]", MAX_DEPTH),
            Err(DecodeError::BadAttachments)
        );
        assert_eq!(
            decode("299999999999999999999[\"a\"]", MAX_DEPTH),
            Err(DecodeError::BadId)
        );
        assert!(matches!(decode("2[\"a\"", MAX_DEPTH), Err(DecodeError::Json(_))));
        assert!(matches!(
            decode("2{}", MAX_DEPTH),
            Err(DecodeError::BadPayload(_))
        ));
        assert!(matches!(
            decode("2[]", MAX_DEPTH),
            Err(DecodeError::BadPayload(_))
        ));
        assert!(matches!(
            decode("2[\"connect\"]", MAX_DEPTH),
            Err(DecodeError::BadPayload(_))
        ));
        assert!(matches!(
            decode("1{}", MAX_DEPTH),
            Err(DecodeError::BadPayload(_))
        ));
        assert!(matches!(
            decode("0[1]", MAX_DEPTH),
            Err(DecodeError::BadPayload(_))
        ));
    }

    #[test]
    fn depth_is_bounded_before_parsing() {
        let deep = format!("2{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(decode(&deep, MAX_DEPTH), Err(DecodeError::TooDeep(MAX_DEPTH)));
        // Brackets inside strings are text, escaped quotes included.
        let text = format!("2[\"m\",\"{}\\\"{}\"]", "[".repeat(100), "{".repeat(100));
        assert!(decode(&text, MAX_DEPTH).is_ok());
        let exactly = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check_depth(exactly.as_bytes(), MAX_DEPTH), Ok(()));
        let over = format!("[{exactly}]");
        assert_eq!(
            check_depth(over.as_bytes(), MAX_DEPTH),
            Err(DecodeError::TooDeep(MAX_DEPTH))
        );
    }
}
