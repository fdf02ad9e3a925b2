//! A streaming UTF-8 check that fails on the first byte that can no longer
//! begin or continue a valid character.
//!
//! RFC 6455 §8.1 says a text message must be UTF-8 and §5.6 that it may
//! arrive in fragments that split a character anywhere. Failing *fast*
//! means refusing `ED A0` (the start of a surrogate) the moment it arrives,
//! not when the message ends. The standard library's validator already
//! knows the difference: its error's `error_len()` is `None` when the input
//! merely stops in the middle of a character that could still be valid.
//! So we keep at most three bytes of an unfinished character between calls
//! and let `std::str::from_utf8` do the rest.

/// Validates a text message as its fragments arrive; [`Utf8Validator::finish`]
/// ends the message and leaves it ready for the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The start of a character split across calls.
    pending: [u8; 4],
    pending_len: u8,
}

/// The bytes seen so far cannot be the start of valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Checks the next piece of a text stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        // Most chat and echo text is ASCII, which is always valid and is
        // checked several bytes at a time.
        if self.pending_len == 0 && bytes.is_ascii() {
            return Ok(());
        }
        if self.pending_len > 0 {
            // Finish the split character first, using only as many new
            // bytes as it still needs.
            let have = usize::from(self.pending_len);
            let need = char_width(self.pending[0]) - have;
            let take = need.min(bytes.len());
            self.pending[have..have + take].copy_from_slice(&bytes[..take]);
            let total = have + take;
            match std::str::from_utf8(&self.pending[..total]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    self.pending_len = total as u8;
                    return Ok(());
                }
            }
            bytes = &bytes[take..];
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &bytes[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// No character is cut short: what came so far is complete UTF-8, so
    /// an ASCII piece may follow unchecked.
    pub fn at_boundary(&self) -> bool {
        self.pending_len == 0
    }

    /// The stream ended: it is valid only if no character is left unfinished.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        *self = Utf8Validator::default();
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// The length of the character a (valid) leading byte starts.
fn char_width(lead: u8) -> usize {
    match lead {
        0xF0..=0xF4 => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split(bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for b in bytes {
            v.feed(std::slice::from_ref(b))?;
        }
        v.finish()
    }

    #[test]
    fn agrees_with_std_byte_by_byte() {
        let samples: &[&[u8]] = &[
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "🌍 你好".as_bytes(),
            &[
                0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65,
                0x64,
            ],
            &[0xF4, 0x90, 0x80, 0x80],
            &[0xC0, 0xAF],
            &[0xF0, 0x9F, 0x98],
            &[0xE2, 0x82],
            &[0xFF],
        ];
        for s in samples {
            assert_eq!(check_split(s).is_ok(), std::str::from_utf8(s).is_ok(), "{s:x?}");
        }
    }

    #[test]
    fn fails_on_the_first_impossible_byte() {
        // A surrogate's second byte is already wrong: no need to wait.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"ok ").is_ok());
        assert!(v.feed(&[0xED]).is_ok());
        assert_eq!(v.feed(&[0xA0]), Err(InvalidUtf8));
        // Above U+10FFFF.
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xF4]).is_ok());
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn unfinished_character_at_the_end_is_invalid() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xE2, 0x82]).is_ok());
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }
}
