//! RESP, the Redis serialization protocol (version 2), sans-IO: commands
//! out as bytes, replies in as values.
//!
//! The relay (`--redis`) speaks to Redis over two plain TCP connections in
//! the loop's `Poll`. This module is all of the protocol they need, and
//! nothing of the sockets: [`encode_command`] appends a command to an
//! output buffer, and [`decode`] takes the bytes read so far and returns a
//! whole reply and how many bytes it used, or `None` while the reply is
//! still partial. It is tested with byte strings and fuzzed
//! (`fuzz/fuzz_targets/resp_reply.rs`).
//!
//! RESP2 in one paragraph (the protocol spec, "RESP protocol description"):
//! every value starts with a type byte and ends its header with CR LF.
//! `+OK\r\n` is a simple string, `-ERR what\r\n` an error, `:42\r\n` an
//! integer, `$5\r\nhello\r\n` a bulk string of a declared length (binary
//! safe; `$-1\r\n` is the null bulk string), and `*2\r\n` an array of two
//! values that follow (`*-1\r\n` is the null array). A client sends every
//! command as an array of bulk strings.
//!
//! Why our own and not the `redis-protocol` crate: the relay needs the
//! five RESP2 types and one encoder, about two hundred lines here with
//! the limits below visible at the call site; the crate's decoder is
//! built around `bytes::Bytes` and RESP3 too, more to read than to write.
//!
//! A stranger does not talk to this decoder (Redis does), but a broken or
//! hostile server could, so every length is checked before anything is
//! allocated, and nesting is bounded: [`Limits`].

use std::fmt;

/// One reply from Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+OK`: a short status, never containing CR or LF.
    Simple(String),
    /// `-ERR ...`: the command failed; the text says why.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$N`: binary-safe bytes; `None` is the null bulk string (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*N`: values in order; `None` is the null array (`*-1`), which is
    /// what `XREAD BLOCK` answers when it timed out with nothing new.
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The bytes of a bulk or simple string.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(bytes)) => Some(bytes),
            Value::Simple(text) => Some(text.as_bytes()),
            _ => None,
        }
    }

    /// The elements of a non-null array.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// Is this the null bulk string or the null array?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Bulk(None) | Value::Array(None))
    }
}

/// How much one reply may hold. Every bound is checked on the header that
/// declares it, before the bytes it announces arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string.
    pub bulk: usize,
    /// Most elements in one array.
    pub elements: usize,
    /// Deepest nesting of arrays (`XREAD` replies are four deep).
    pub depth: usize,
    /// Longest header line (type byte to CR LF), and so the longest simple
    /// string or error.
    pub line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            bulk: 16 << 20,
            elements: 1 << 20,
            depth: 8,
            line: 64 << 10,
        }
    }
}

/// Why bytes are not a RESP reply. The connection that sent them cannot
/// be trusted to stay in step after any of these, so the caller drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// The first byte of a value is none of `+ - : $ *`.
    UnknownType(u8),
    /// A length or integer is not a decimal number (or overflows).
    BadNumber,
    /// A length below -1.
    NegativeLength,
    /// A bulk string does not end with CR LF where its length says.
    MissingCrLf,
    /// A header line longer than [`Limits::line`].
    LineTooLong,
    /// A bulk string longer than [`Limits::bulk`].
    BulkTooLong,
    /// An array longer than [`Limits::elements`].
    TooManyElements,
    /// Arrays nested deeper than [`Limits::depth`].
    TooDeep,
    /// A simple string or error that is not UTF-8.
    NotText,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RespError::UnknownType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            RespError::BadNumber => f.write_str("a RESP length or integer is not a number"),
            RespError::NegativeLength => f.write_str("a RESP length below -1"),
            RespError::MissingCrLf => f.write_str("a bulk string without its CR LF"),
            RespError::LineTooLong => f.write_str("a RESP line over the limit"),
            RespError::BulkTooLong => f.write_str("a bulk string over the limit"),
            RespError::TooManyElements => f.write_str("an array over the limit"),
            RespError::TooDeep => f.write_str("arrays nested too deep"),
            RespError::NotText => f.write_str("a status line that is not UTF-8"),
        }
    }
}

impl std::error::Error for RespError {}

/// Decodes one reply from the start of `input`: `Ok(Some((value, used)))`
/// when it is all there, `Ok(None)` when more bytes are needed (nothing is
/// consumed; call again with more), or an error.
///
/// Each call starts from the beginning of the reply, so a reply that
/// arrives in k reads is scanned k times: fine for the relay's replies,
/// which are bounded by `XREAD`'s `COUNT` and by [`Limits`].
pub fn decode(input: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, RespError> {
    let mut pos = 0;
    match value(input, &mut pos, limits, 0)? {
        Some(value) => Ok(Some((value, pos))),
        None => Ok(None),
    }
}

/// One value at `*pos`, moving `*pos` past it; `None` if incomplete.
fn value(input: &[u8], pos: &mut usize, limits: &Limits, depth: usize) -> Result<Option<Value>, RespError> {
    let Some(&kind) = input.get(*pos) else {
        return Ok(None);
    };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(RespError::UnknownType(kind));
    }
    let Some(line) = header(input, *pos + 1, limits)? else {
        return Ok(None);
    };
    let after = *pos + 1 + line.len() + 2;
    let value = match kind {
        b'+' => Value::Simple(text(line)?),
        b'-' => Value::Error(text(line)?),
        b':' => Value::Integer(number(line)?),
        b'$' => {
            let Some(len) = length(line)? else {
                *pos = after;
                return Ok(Some(Value::Bulk(None)));
            };
            if len > limits.bulk {
                return Err(RespError::BulkTooLong);
            }
            // The declared bytes, then CR LF.
            let end = after + len;
            if input.len() < end + 2 {
                return Ok(None);
            }
            if &input[end..end + 2] != b"\r\n" {
                return Err(RespError::MissingCrLf);
            }
            *pos = end + 2;
            return Ok(Some(Value::Bulk(Some(input[after..end].to_vec()))));
        }
        _ => {
            let Some(len) = length(line)? else {
                *pos = after;
                return Ok(Some(Value::Array(None)));
            };
            if len > limits.elements {
                return Err(RespError::TooManyElements);
            }
            if depth >= limits.depth {
                return Err(RespError::TooDeep);
            }
            // Reserve no more than the bytes present could hold (each
            // element is at least 3 bytes): a header claiming a million
            // elements costs nothing until they arrive.
            let mut items = Vec::with_capacity(len.min((input.len() - after) / 3));
            let mut at = after;
            for _ in 0..len {
                match value(input, &mut at, limits, depth + 1)? {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
            *pos = at;
            return Ok(Some(Value::Array(Some(items))));
        }
    };
    *pos = after;
    Ok(Some(value))
}

/// The header line starting at `start`, without its CR LF; `None` if the
/// CR LF has not arrived yet.
fn header<'a>(input: &'a [u8], start: usize, limits: &Limits) -> Result<Option<&'a [u8]>, RespError> {
    let rest = &input[start.min(input.len())..];
    let window = &rest[..rest.len().min(limits.line + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some(&rest[..end])),
        None if rest.len() >= limits.line + 2 => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

fn text(line: &[u8]) -> Result<String, RespError> {
    String::from_utf8(line.to_vec()).map_err(|_| RespError::NotText)
}

/// A decimal integer: an optional `-`, then digits only.
fn number(line: &[u8]) -> Result<i64, RespError> {
    let (negative, digits) = match line {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadNumber);
    }
    let mut n: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        n = n.checked_mul(10).ok_or(RespError::BadNumber)?;
        n = if negative {
            n.checked_sub(d)
        } else {
            n.checked_add(d)
        }
        .ok_or(RespError::BadNumber)?;
    }
    Ok(n)
}

/// A length: `None` for -1 (null), an error below that.
fn length(line: &[u8]) -> Result<Option<usize>, RespError> {
    match number(line)? {
        -1 => Ok(None),
        n if n < -1 => Err(RespError::NegativeLength),
        n => usize::try_from(n).map(Some).map_err(|_| RespError::BadNumber),
    }
}

/// Appends a command as RESP sends it: an array of bulk strings.
///
/// ```
/// let mut out = Vec::new();
/// duplex::resp::encode_command(&mut out, &[b"PING".as_slice()]);
/// assert_eq!(out, b"*1\r\n$4\r\nPING\r\n");
/// ```
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.push(b'*');
    push_decimal(out, args.len());
    for arg in args {
        let arg = arg.as_ref();
        out.push(b'$');
        push_decimal(out, arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_decimal(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Encodes a value as a server would send it: the inverse of [`decode`],
/// for tests, the fuzz target and a learner's experiments.
pub fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Simple(text) => {
            out.push(b'+');
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Error(text) => {
            out.push(b'-');
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Integer(n) => {
            out.push(b':');
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Value::Bulk(Some(bytes)) => {
            out.push(b'$');
            push_decimal(out, bytes.len());
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        Value::Array(Some(items)) => {
            out.push(b'*');
            push_decimal(out, items.len());
            for item in items {
                encode_value(out, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
        decode(bytes, &Limits::default())
    }

    fn bulk(b: &[u8]) -> Value {
        Value::Bulk(Some(b.to_vec()))
    }

    #[test]
    fn the_five_types_as_the_spec_shows_them() {
        assert_eq!(one(b"+OK\r\n"), Ok(Some((Value::Simple("OK".into()), 5))));
        assert_eq!(
            one(b"-ERR unknown command 'foobar'\r\n").unwrap().unwrap().0,
            Value::Error("ERR unknown command 'foobar'".into())
        );
        assert_eq!(one(b":1000\r\n"), Ok(Some((Value::Integer(1000), 7))));
        assert_eq!(one(b":-3\r\n").unwrap().unwrap().0, Value::Integer(-3));
        assert_eq!(one(b"$5\r\nhello\r\n"), Ok(Some((bulk(b"hello"), 11))));
        assert_eq!(one(b"$0\r\n\r\n"), Ok(Some((bulk(b""), 6))));
        assert_eq!(one(b"$-1\r\n"), Ok(Some((Value::Bulk(None), 5))));
        assert_eq!(one(b"*-1\r\n"), Ok(Some((Value::Array(None), 5))));
        assert_eq!(
            one(b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n").unwrap().unwrap().0,
            Value::Array(Some(vec![bulk(b"foo"), bulk(b"bar")]))
        );
        // Binary-safe: CR LF inside a bulk string is data.
        assert_eq!(one(b"$4\r\na\r\nb\r\n").unwrap().unwrap().0, bulk(b"a\r\nb"));
    }

    #[test]
    fn partial_replies_ask_for_more_and_consume_nothing() {
        let whole = b"*2\r\n$3\r\nfoo\r\n:7\r\n";
        for cut in 0..whole.len() {
            assert_eq!(one(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        // Two replies back to back: the first, and how far it went.
        let (v, used) = one(b":1\r\n:2\r\n").unwrap().unwrap();
        assert_eq!((v, used), (Value::Integer(1), 4));
    }

    #[test]
    fn broken_replies_are_refused() {
        assert_eq!(one(b"!oops\r\n"), Err(RespError::UnknownType(b'!')));
        assert_eq!(one(b":12a\r\n"), Err(RespError::BadNumber));
        assert_eq!(one(b":\r\n"), Err(RespError::BadNumber));
        assert_eq!(one(b":99999999999999999999\r\n"), Err(RespError::BadNumber));
        assert_eq!(one(b"$-2\r\n"), Err(RespError::NegativeLength));
        assert_eq!(one(b"$3\r\nabcd\r\n"), Err(RespError::MissingCrLf));
        assert_eq!(one(b"+\xff\r\n"), Err(RespError::NotText));
        let small = Limits {
            bulk: 4,
            elements: 2,
            depth: 2,
            line: 8,
        };
        assert_eq!(decode(b"$5\r\n", &small), Err(RespError::BulkTooLong));
        assert_eq!(decode(b"*3\r\n", &small), Err(RespError::TooManyElements));
        assert_eq!(decode(b"*1\r\n*1\r\n*1\r\n", &small), Err(RespError::TooDeep));
        assert_eq!(decode(b"+1234567890", &small), Err(RespError::LineTooLong));
        // A huge declared array costs nothing before its elements come.
        assert_eq!(one(b"*1000000\r\n"), Ok(None));
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &["XADD", "k", "*", "f", "v\r\n"]);
        assert_eq!(
            out,
            b"*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$1\r\n*\r\n$1\r\nf\r\n$3\r\nv\r\n\r\n"
        );
        // And a server would read it back as those strings.
        let (v, _) = one(&out).unwrap().unwrap();
        let items: Vec<&[u8]> = v.items().unwrap().iter().filter_map(Value::bytes).collect();
        assert_eq!(items, [&b"XADD"[..], b"k", b"*", b"f", b"v\r\n"]);
    }
}
