//! Engine.IO protocol 4, sans-IO: the transport under Socket.IO.
//!
//! Engine.IO gives a browser one logical connection, a *session* named by
//! its `sid`, over whichever carrier works: HTTP long polling first, then
//! WebSocket once the client has checked it gets through. Its whole wire
//! format is one character of packet type, then the data:
//!
//! ```text
//!   0  open      server → client   {"sid":…,"upgrades":…,"pingInterval":…,…}
//!   1  close     either way        the session is over
//!   2  ping      server → client   (and "2probe" client → server, upgrading)
//!   3  pong      client → server   (and "3probe" server → client)
//!   4  message   either way        the data: "4hello", or binary
//!   5  upgrade   client → server   switch the session to this WebSocket
//!   6  noop      server → client   ends a pending poll, nothing more
//! ```
//!
//! Over WebSocket each frame is one packet; a binary frame is a binary
//! message, with no type byte. Over polling a body holds several packets
//! joined by the record separator `\x1e` (which JSON text never contains
//! raw), and a binary message travels as `b` and its base64.
//!
//! This module only reads and writes those bytes, and answers the
//! handshake's questions (which transport, which sid, which version);
//! sessions, their timers and their carriers are the loop's
//! (`server/engineio.rs`). The reference is the protocol's own document,
//! github.com/socketio/engine.io-protocol, cited here as "EIO §…".

use base64::Engine as _;
use std::fmt;

/// The record separator between packets in a polling body (EIO §4
/// "HTTP long-polling", payload encoding).
pub const SEPARATOR: u8 = 0x1e;

/// The one protocol revision spoken here (`EIO=4` in the query).
pub const PROTOCOL: &str = "4";

/// An Engine.IO packet type (EIO §3 "Packet encoding").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: the handshake's answer.
    Open,
    /// `1`: the session ends.
    Close,
    /// `2`: the server's heartbeat, or the client's probe when upgrading.
    Ping,
    /// `3`: the answer to a ping.
    Pong,
    /// `4`: application data: here, a Socket.IO packet.
    Message,
    /// `5`: the client moves the session to the WebSocket it probed.
    Upgrade,
    /// `6`: nothing; sent to end a poll that must return.
    Noop,
}

impl PacketType {
    /// The type a byte names, if it names one.
    pub fn from_byte(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }

    /// The name the protocol uses, for logs and the page's frame log.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Open => "open",
            PacketType::Close => "close",
            PacketType::Ping => "ping",
            PacketType::Pong => "pong",
            PacketType::Message => "message",
            PacketType::Upgrade => "upgrade",
            PacketType::Noop => "noop",
        }
    }
}

/// One decoded packet. Text borrows from the input; base64 is decoded into
/// a buffer of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A packet of this type carrying text (possibly empty): `2probe`,
    /// `4{"a":1}`, `3`.
    Text(PacketType, &'a str),
    /// A binary message: a WebSocket binary frame, or `b…` in a polling
    /// body.
    Binary(Vec<u8>),
}

/// Why a packet could not be read. Each is a protocol error: the session
/// that sent it is closed (the reference server closes with "parse error").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// An empty packet: not even a type byte.
    Empty,
    /// The first byte names no packet type (EIO §3 lists `0` to `6`).
    BadType(u8),
    /// A `b` packet whose data is not base64.
    BadBase64,
    /// A text packet that is not UTF-8 (EIO §3: text packets are strings).
    NotUtf8,
    /// More packets in one polling body than the limit.
    TooManyPackets(usize),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Empty => f.write_str("an empty Engine.IO packet"),
            PacketError::BadType(byte) if byte.is_ascii_graphic() => {
                write!(
                    f,
                    "no Engine.IO packet type {:?} (types are 0 to 6)",
                    *byte as char
                )
            }
            PacketError::BadType(byte) => {
                write!(f, "no Engine.IO packet type 0x{byte:02x} (types are 0 to 6)")
            }
            PacketError::BadBase64 => f.write_str("a binary packet (b…) that is not base64"),
            PacketError::NotUtf8 => f.write_str("an Engine.IO text packet that is not UTF-8"),
            PacketError::TooManyPackets(limit) => {
                write!(f, "more than {limit} Engine.IO packets in one request")
            }
        }
    }
}

/// Reads one text packet: a WebSocket text frame, or one record of a
/// polling body. `b` introduces base64 binary, which only polling uses.
pub fn decode_packet(text: &[u8]) -> Result<Packet<'_>, PacketError> {
    let (&first, rest) = text.split_first().ok_or(PacketError::Empty)?;
    if first == b'b' {
        // EIO §4: in a polling payload, "b" + base64 is a binary message.
        return base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map(Packet::Binary)
            .map_err(|_| PacketError::BadBase64);
    }
    let kind = PacketType::from_byte(first).ok_or(PacketError::BadType(first))?;
    let data = std::str::from_utf8(rest).map_err(|_| PacketError::NotUtf8)?;
    Ok(Packet::Text(kind, data))
}

/// Reads a polling request's body: packets joined by `\x1e`, at most
/// `max_packets` of them (a body of separators alone must not make a list
/// as long as itself).
pub fn decode_payload(body: &[u8], max_packets: usize) -> Result<Vec<Packet<'_>>, PacketError> {
    let mut packets = Vec::new();
    for record in body.split(|&b| b == SEPARATOR) {
        if packets.len() == max_packets {
            return Err(PacketError::TooManyPackets(max_packets));
        }
        packets.push(decode_packet(record)?);
    }
    Ok(packets)
}

/// Appends a text packet: its type byte, then its data.
pub fn encode_packet(out: &mut Vec<u8>, kind: PacketType, data: &str) {
    out.push(kind.byte());
    out.extend_from_slice(data.as_bytes());
}

/// Joins encoded packets into a polling response body (EIO §4).
pub fn encode_payload<'a>(out: &mut Vec<u8>, packets: impl IntoIterator<Item = &'a [u8]>) {
    for (i, packet) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        out.extend_from_slice(packet);
    }
}

/// What the handshake tells the client (EIO §4 "Handshake"): its session,
/// where it may upgrade, the heartbeat, and the largest payload accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// The session's id, which every later request carries.
    pub sid: &'a str,
    /// Transports the session may upgrade to: `["websocket"]` on polling,
    /// none on a session that began on WebSocket.
    pub upgrades: &'a [&'a str],
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the client has to answer a ping.
    pub ping_timeout: u64,
    /// Bytes: the most one polling body or one WebSocket message may hold.
    pub max_payload: usize,
}

impl Handshake<'_> {
    /// The open packet, `0{…}`. Every value is a number, the sid is
    /// base64url and the upgrades are fixed names, so none needs escaping.
    pub fn open_packet(&self) -> String {
        let upgrades: Vec<String> = self.upgrades.iter().map(|u| format!("\"{u}\"")).collect();
        format!(
            "0{{\"sid\":\"{}\",\"upgrades\":[{}],\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
            self.sid,
            upgrades.join(","),
            self.ping_interval,
            self.ping_timeout,
            self.max_payload
        )
    }
}

/// The two carriers (the `transport` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportName {
    /// `polling`: HTTP long polling, GET to read, POST to write.
    Polling,
    /// `websocket`.
    WebSocket,
}

/// What a request to `/socket.io/` asks, from its query: the protocol
/// revision, the transport and the session, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    /// Which carrier this request is.
    pub transport: TransportName,
    /// The session it belongs to; none for a handshake.
    pub sid: Option<&'a str>,
}

/// The errors the reference server answers a bad request with, by code
/// (engine.io `Server.errors`): HTTP 400 (403 for `Forbidden`) and a body
/// `{"code":N,"message":"…"}`. Clients show the message as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: no `transport`, or one not spoken here.
    UnknownTransport,
    /// 1: the `sid` names no live session: never made, or closed.
    UnknownSid,
    /// 2: a handshake (no sid) by other than GET.
    BadHandshakeMethod,
    /// 3: anything else malformed.
    BadRequest,
    /// 4: refused by policy (the Origin check).
    Forbidden,
    /// 5: an `EIO` other than 4.
    UnsupportedProtocolVersion,
}

impl ErrorCode {
    /// The number in the JSON body.
    pub fn code(self) -> u8 {
        match self {
            ErrorCode::UnknownTransport => 0,
            ErrorCode::UnknownSid => 1,
            ErrorCode::BadHandshakeMethod => 2,
            ErrorCode::BadRequest => 3,
            ErrorCode::Forbidden => 4,
            ErrorCode::UnsupportedProtocolVersion => 5,
        }
    }

    /// The reference server's message for it, word for word: clients
    /// and their users know these.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::UnknownTransport => "Transport unknown",
            ErrorCode::UnknownSid => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// 403 for `Forbidden`, 400 for the rest.
    pub fn status(self) -> crate::http::Status {
        match self {
            ErrorCode::Forbidden => crate::http::Status::FORBIDDEN,
            _ => crate::http::Status::BAD_REQUEST,
        }
    }

    /// The JSON body: `{"code":1,"message":"Session ID unknown"}`.
    pub fn body(self) -> String {
        format!("{{\"code\":{},\"message\":\"{}\"}}", self.code(), self.message())
    }
}

/// Reads the query of a request to `/socket.io/`, in the order the
/// reference server checks it: the revision, then the transport.
pub fn parse_query<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<Query<'a>, ErrorCode> {
    // EIO §4: `EIO=4` names this revision. An older client (EIO=3)
    // speaks another heartbeat and payload format.
    if param("EIO") != Some(PROTOCOL) {
        return Err(ErrorCode::UnsupportedProtocolVersion);
    }
    let transport = match param("transport") {
        Some("polling") => TransportName::Polling,
        Some("websocket") => TransportName::WebSocket,
        _ => return Err(ErrorCode::UnknownTransport),
    };
    let sid = param("sid").filter(|s| !s.is_empty());
    Ok(Query { transport, sid })
}

/// Describes one Engine.IO packet for a log line (`--hexdump`, traces):
/// `message 2["hi"]`, `ping probe`, `binary (3 bytes)`.
pub fn describe(packet: &Packet) -> String {
    match packet {
        Packet::Text(kind, "") => kind.name().to_string(),
        Packet::Text(kind, data) => format!("{} {data}", kind.name()),
        Packet::Binary(data) => format!("binary ({} bytes)", data.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_from_the_protocol_document() {
        assert_eq!(
            decode_packet(b"4hello"),
            Ok(Packet::Text(PacketType::Message, "hello"))
        );
        assert_eq!(
            decode_packet(b"2probe"),
            Ok(Packet::Text(PacketType::Ping, "probe"))
        );
        assert_eq!(decode_packet(b"5"), Ok(Packet::Text(PacketType::Upgrade, "")));
        assert_eq!(decode_packet(b"bAQIDBA=="), Ok(Packet::Binary(vec![1, 2, 3, 4])));
    }

    #[test]
    fn a_polling_body_is_split_at_the_record_separator() {
        let body = b"4hello\x1ebAQIDBA==\x1e2probe";
        let packets = decode_payload(body, 16).unwrap();
        assert_eq!(
            packets,
            [
                Packet::Text(PacketType::Message, "hello"),
                Packet::Binary(vec![1, 2, 3, 4]),
                Packet::Text(PacketType::Ping, "probe"),
            ]
        );
        let mut out = Vec::new();
        encode_payload(&mut out, [&b"4hello"[..], b"6"]);
        assert_eq!(out, b"4hello\x1e6");
    }

    #[test]
    fn bad_packets_are_named() {
        assert_eq!(decode_packet(b""), Err(PacketError::Empty));
        assert_eq!(decode_packet(b"9x"), Err(PacketError::BadType(b'9')));
        assert_eq!(decode_packet(b"b!!"), Err(PacketError::BadBase64));
        assert_eq!(decode_packet(b"4\xff"), Err(PacketError::NotUtf8));
        assert_eq!(decode_payload(b"4a\x1e", 16), Err(PacketError::Empty));
        assert_eq!(
            decode_payload("6\x1e".repeat(100).as_bytes(), 16),
            Err(PacketError::TooManyPackets(16))
        );
        assert_eq!(
            PacketError::BadType(b'9').to_string(),
            "no Engine.IO packet type '9' (types are 0 to 6)"
        );
    }

    #[test]
    fn the_open_packet() {
        let handshake = Handshake {
            sid: "lv_VI97HAXpY6yYWAAAC",
            upgrades: &["websocket"],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1000000,
        };
        assert_eq!(
            handshake.open_packet(),
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }

    #[test]
    fn queries() {
        let q = |s: &'static str| {
            move |name: &str| {
                s.split('&')
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v)
            }
        };
        assert_eq!(
            parse_query(q("EIO=4&transport=polling&t=x")),
            Ok(Query {
                transport: TransportName::Polling,
                sid: None
            })
        );
        assert_eq!(
            parse_query(q("EIO=4&transport=websocket&sid=abc")),
            Ok(Query {
                transport: TransportName::WebSocket,
                sid: Some("abc")
            })
        );
        assert_eq!(
            parse_query(q("EIO=3&transport=polling")),
            Err(ErrorCode::UnsupportedProtocolVersion)
        );
        assert_eq!(
            parse_query(q("EIO=4&transport=flash")),
            Err(ErrorCode::UnknownTransport)
        );
        assert_eq!(
            ErrorCode::UnknownSid.body(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
    }
}
