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

/// Telnet command bytes (RFC 854).
mod iac {
    pub const IAC: u8 = 255;
    pub const SB: u8 = 250;
    pub const SE: u8 = 240;
    /// WILL (251), WONT (252), DO (253), DONT (254) take an option byte.
    pub const NEGOTIATION: std::ops::RangeInclusive<u8> = 251..=254;
}

/// What the codec found.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// One line, without its line end and telnet commands. Not yet
    /// checked for UTF-8: that is the application's business.
    Line(&'a [u8]),
    /// A line passed the limit; the rest of it will be skipped.
    TooLong {
        /// The longest line allowed, in bytes (`--max-line`, 4 KiB by
        /// default).
        limit: usize,
    },
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
                            return (i + 1, Some(LineEvent::Line(&self.line)));
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
        let end = input
            .iter()
            .position(|&b| matches!(b, b'\n' | b'\r' | iac::IAC))?;
        if end > self.max_line {
            return None;
        }
        let used = match (input[end], input.get(end + 1)) {
            (iac::IAC, _) => return None,
            (b'\r', Some(b'\n' | 0)) => end + 2,
            (b'\r', None) => {
                self.after_cr = true;
                end + 1
            }
            _ => end + 1,
        };
        Some((used, Some(LineEvent::Line(&input[..end]))))
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
                    Some(LineEvent::Line(l)) => out.push(Seen::Line(l.to_vec())),
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
    fn a_last_line_without_line_end() {
        let mut c = LineCodec::new(100);
        assert!(decode(&mut c, &[b"bye"]).is_empty());
        assert_eq!(c.finish(), Some(&b"bye"[..]));
        assert_eq!(c.finish(), None);
    }
}
