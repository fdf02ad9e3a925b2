//! The telnet door's line codec, sans-IO.
//!
//! What a telnet client really sends is not quite text:
//!
//! * **Line ends differ.** RFC 854 says a line ends with CR LF, and a bare
//!   CR must be sent as CR NUL; RFC 1123 §3.3.1 adds that real clients send
//!   CR LF, CR NUL, or a lone LF. So a line ends at LF, CR LF, CR NUL or a
//!   lone CR, and the LF or NUL right after a CR is swallowed rather than
//!   read as an empty line.
//! * **Commands hide in the stream.** Byte 255 (IAC, "interpret as
//!   command") starts a telnet command: `IAC WILL/WONT/DO/DONT option` (3
//!   bytes), `IAC SB ... IAC SE` (sub-negotiation), or a 2-byte command
//!   such as `IAC IP`, which is what Ctrl-C sends (`FF F4 FF FD 06`).
//!   They are recognised and dropped; `IAC IAC` is a literal 255.
//! * **Lines can be endless.** A line longer than the limit is reported
//!   once, as soon as it passes the limit, and the rest of it is skipped
//!   without being stored.
//!
//! [`LineCodec::decode`] returns at most one [`LineEvent`] and how many
//! bytes it used; call it again with the rest. A line that arrives whole in
//! one read is handed out as a slice of the input, without a copy.

/// "Interpret as command" (RFC 854): starts a telnet command; doubled, it
/// is a data byte 255.
pub const IAC: u8 = 255;

/// Telnet command bytes (RFC 854).
mod iac {
    pub use super::IAC;
    pub const SB: u8 = 250;
    pub const SE: u8 = 240;
    /// WILL (251), WONT (252), DO (253), DONT (254) take an option byte.
    pub const NEGOTIATION: std::ops::RangeInclusive<u8> = 251..=254;
}

/// What the codec found.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// One line, without its line end and telnet commands, and how it
    /// ended. Not yet checked for UTF-8: that is the application's
    /// business.
    Line(&'a [u8], LineEnd),
    /// A line passed the limit; the rest of it will be skipped.
    TooLong {
        /// The longest line allowed, in bytes (`--max-line`, 4 KiB by
        /// default).
        limit: usize,
    },
}

/// How a line ended, so an echo can answer in the client's own
/// dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnd {
    /// A lone LF, as Unix tools (`nc`, scripts) send.
    Lf,
    /// CR LF, CR NUL or a lone CR: the telnet way (RFC 854).
    Cr,
    /// None: the peer closed its side in the middle of a line.
    Eof,
}

impl LineEnd {
    /// The bytes that end a line written back in the same dialect. A
    /// telnet client gets the NVT's CR LF (RFC 854), whatever CR form it
    /// sent.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnd::Lf => b"\n",
            LineEnd::Cr => b"\r\n",
            LineEnd::Eof => b"",
        }
    }
}

/// Where the telnet command parser stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Telnet {
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes next.
    Option,
    /// Inside IAC SB ... until IAC SE.
    Sub,
    /// An IAC inside a sub-negotiation.
    SubIac,
}

/// Splits a telnet byte stream into lines, dropping telnet commands and
/// bounding line length. One per connection; it keeps only a line that
/// is split across reads.
#[derive(Debug)]
pub struct LineCodec {
    max_line: usize,
    /// A line split across reads (or cleaned of telnet commands).
    line: Vec<u8>,
    telnet: Telnet,
    /// The last byte was CR: a following LF or NUL belongs to it.
    after_cr: bool,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    /// The last event lent out `line`: empty it next time.
    lent: bool,
}

impl LineCodec {
    /// A codec that refuses lines longer than `max_line` bytes, line end
    /// excluded.
    pub fn new(max_line: usize) -> LineCodec {
        LineCodec {
            max_line,
            line: Vec::new(),
            telnet: Telnet::Data,
            after_cr: false,
            skipping: false,
            lent: false,
        }
    }

    /// Bytes held for a line not yet complete.
    pub fn buffered(&self) -> usize {
        if self.lent {
            0
        } else {
            self.line.len()
        }
    }

    /// Decodes from `input`. Returns how many bytes were used and the next
    /// event; `(input.len(), None)` means "all used, send more".
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<LineEvent<'a>>) {
        if self.lent {
            self.lent = false;
            self.line = Vec::new();
        }
        if self.line.is_empty() && self.telnet == Telnet::Data && !self.after_cr && !self.skipping {
            if let Some(found) = self.whole_line(input) {
                return found;
            }
        }
        for (i, &byte) in input.iter().enumerate() {
            match self.telnet {
                Telnet::Command => {
                    self.telnet = match byte {
                        iac::IAC => {
                            self.telnet = Telnet::Data;
                            if self.push(byte) {
                                return (i + 1, Some(LineEvent::TooLong { limit: self.max_line }));
                            }
                            continue;
                        }
                        iac::SB => Telnet::Sub,
                        b if iac::NEGOTIATION.contains(&b) => Telnet::Option,
                        // A two-byte command (IP, AYT, BRK, NOP, ...): dropped.
                        _ => Telnet::Data,
                    };
                }
                Telnet::Option => self.telnet = Telnet::Data,
                Telnet::Sub => {
                    if byte == iac::IAC {
                        self.telnet = Telnet::SubIac;
                    }
                }
                Telnet::SubIac => {
                    self.telnet = if byte == iac::SE {
                        Telnet::Data
                    } else {
                        Telnet::Sub
                    };
                }
                Telnet::Data => {
                    if std::mem::take(&mut self.after_cr) && (byte == b'\n' || byte == 0) {
                        continue;
                    }
                    match byte {
                        iac::IAC => self.telnet = Telnet::Command,
                        b'\n' | b'\r' => {
                            self.after_cr = byte == b'\r';
                            if std::mem::take(&mut self.skipping) {
                                // The over-long line was reported already.
                                continue;
                            }
                            self.lent = true;
                            let end = if byte == b'\n' { LineEnd::Lf } else { LineEnd::Cr };
                            return (i + 1, Some(LineEvent::Line(&self.line, end)));
                        }
                        _ => {
                            if self.push(byte) {
                                return (i + 1, Some(LineEvent::TooLong { limit: self.max_line }));
                            }
                        }
                    }
                }
            }
        }
        (input.len(), None)
    }

    /// The peer closed its side: a last line without a line end still
    /// counts (`printf 'hi' | nc -N`).
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.lent || self.skipping || self.line.is_empty() {
            return None;
        }
        self.lent = true;
        Some(&self.line)
    }

    /// The fast path: a whole line at the front of `input`, free of telnet
    /// commands and within the limit, returned without a copy.
    fn whole_line<'a>(&mut self, input: &'a [u8]) -> Option<(usize, Option<LineEvent<'a>>)> {
        // A line end past the limit makes no difference: the slow path
        // reports the line as too long.
        let window = &input[..input.len().min(self.max_line + 1)];
        let end = find_any(window, [b'\n', b'\r', iac::IAC])?;
        let used = match (input[end], input.get(end + 1)) {
            (iac::IAC, _) => return None,
            (b'\r', Some(b'\n' | 0)) => end + 2,
            (b'\r', None) => {
                self.after_cr = true;
                end + 1
            }
            _ => end + 1,
        };
        let line_end = if input[end] == b'\n' {
            LineEnd::Lf
        } else {
            LineEnd::Cr
        };
        Some((used, Some(LineEvent::Line(&input[..end], line_end))))
    }

    /// Adds a byte to the line. Returns true when the line has just become
    /// too long (and starts skipping it).
    fn push(&mut self, byte: u8) -> bool {
        if self.skipping {
            return false;
        }
        if self.line.len() >= self.max_line {
            self.skipping = true;
            self.line = Vec::new();
            return true;
        }
        self.line.push(byte);
        false
    }
}

/// The index of the first byte of `haystack` that is one of `needles`.
///
/// The scanning of a line, done eight bytes at a time: `xor` with the
/// needle repeated turns a matching byte into zero, and the classic
/// "has a zero byte" test, `(x - 0x01..) & !x & 0x80..`, marks it. Its
/// lowest mark is always a true match (a false one can only follow a true
/// one, through the subtraction's borrow), so on the little-endian word
/// the trailing zeros count the bytes before the first needle.
pub fn find_any<const N: usize>(haystack: &[u8], needles: [u8; N]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let mut words = haystack.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let word = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        let mut marks = 0;
        for needle in needles {
            let x = word ^ (ONES * u64::from(needle));
            marks |= x.wrapping_sub(ONES) & !x & HIGHS;
        }
        if marks != 0 {
            return Some(offset + (marks.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|b| needles.contains(b)).map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Seen {
        Line(Vec<u8>),
        TooLong,
    }

    fn decode(codec: &mut LineCodec, pieces: &[&[u8]]) -> Vec<Seen> {
        let mut out = Vec::new();
        for piece in pieces {
            let mut pos = 0;
            loop {
                let (used, event) = codec.decode(&piece[pos..]);
                pos += used;
                match event {
                    Some(LineEvent::Line(l, _)) => out.push(Seen::Line(l.to_vec())),
                    Some(LineEvent::TooLong { .. }) => out.push(Seen::TooLong),
                    None => break,
                }
            }
        }
        out
    }

    fn lines(items: &[&str]) -> Vec<Seen> {
        items.iter().map(|s| Seen::Line(s.as_bytes().to_vec())).collect()
    }

    #[test]
    fn every_line_end() {
        let mut c = LineCodec::new(100);
        assert_eq!(
            decode(&mut c, &[b"a\nb\r\nc\r\0d\re\n"]),
            lines(&["a", "b", "c", "d", "e"])
        );
    }

    #[test]
    fn cr_lf_split_across_reads_is_one_line_end() {
        let mut c = LineCodec::new(100);
        assert_eq!(
            decode(&mut c, &[b"hello\r", b"\nworld\r", b"\0"]),
            lines(&["hello", "world"])
        );
    }

    #[test]
    fn telnet_commands_are_dropped() {
        let mut c = LineCodec::new(100);
        // Ctrl-C: IAC IP, IAC DO TIMING-MARK; a window-size sub-negotiation;
        // an escaped 255.
        let input: &[u8] = b"\xFF\xF4\xFF\xFD\x06hi\xFF\xFA\x1F\x00\x50\x00\x18\xFF\xF0 there\xFF\xFFx\r\n";
        assert_eq!(decode(&mut c, &[input]), [Seen::Line(b"hi there\xFFx".to_vec())]);
        // Split inside a command.
        let mut c = LineCodec::new(100);
        assert_eq!(decode(&mut c, &[b"a\xFF", b"\xFB", b"\x01b\n"]), lines(&["ab"]));
    }

    #[test]
    fn too_long_lines_are_reported_once_and_skipped() {
        let mut c = LineCodec::new(4);
        assert_eq!(
            decode(&mut c, &[b"12345", b"6789\nok\n"]),
            [Seen::TooLong, Seen::Line(b"ok".to_vec())]
        );
        let mut c = LineCodec::new(4);
        assert_eq!(
            decode(&mut c, &[b"123456789\nok\n"]),
            [Seen::TooLong, Seen::Line(b"ok".to_vec())]
        );
        assert_eq!(c.buffered(), 0);
    }

    #[test]
    fn the_line_end_is_remembered() {
        let mut c = LineCodec::new(100);
        let mut ends = Vec::new();
        // The fast path (whole lines) and the slow one (after a telnet
        // command, or split across reads) must agree.
        for piece in [&b"a\n"[..], b"b\r\n", b"\xFF\xF1c\n", b"d\r\0", b"e", b"\r", b"f"] {
            let mut pos = 0;
            while let (used, Some(LineEvent::Line(_, end))) = c.decode(&piece[pos..]) {
                pos += used;
                ends.push(end);
            }
        }
        assert_eq!(c.finish(), Some(&b"f"[..]));
        use LineEnd::*;
        assert_eq!(ends, [Lf, Cr, Lf, Cr, Cr]);
    }

    #[test]
    fn find_any_finds_the_first_needle_wherever_it_lies() {
        let naive = |h: &[u8], n: &[u8]| h.iter().position(|b| n.contains(b));
        // Every position in and around a word, and bytes that differ from
        // a needle by one bit or by the borrow of the subtraction.
        for len in 0..40 {
            for at in 0..len {
                for filler in [0u8, 1, 0x0B, 0x0C, 0x7F, 0x80, 0xFE] {
                    let mut h = vec![filler; len];
                    h[at] = b'\r';
                    if at + 1 < len {
                        h[at + 1] = b'\n';
                    }
                    assert_eq!(find_any(&h, [b'\n', b'\r', IAC]), naive(&h, b"\n\r\xFF"), "{h:?}");
                    assert_eq!(find_any(&h, [b'\n']), naive(&h, b"\n"), "{h:?}");
                    assert_eq!(find_any(&h, [IAC]), naive(&h, b"\xFF"), "{h:?}");
                }
            }
        }
    }

    #[test]
    fn a_last_line_without_line_end() {
        let mut c = LineCodec::new(100);
        assert!(decode(&mut c, &[b"bye"]).is_empty());
        assert_eq!(c.finish(), Some(&b"bye"[..]));
        assert_eq!(c.finish(), None);
    }
}
