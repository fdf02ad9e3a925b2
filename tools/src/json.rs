//! Just enough JSON to read duplex's answers: the chat's poll answers
//! (`{"token":..,"messages":[{"id":..,"text":..}],..}`) and `GET /stats`.
//! RFC 8259, read by recursive descent, with the nesting bounded so a
//! hostile answer cannot exhaust the stack.

/// One JSON value. Numbers are kept as `f64`, which holds every integer
/// the server sends (line numbers, counters) exactly up to 2^53.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    /// Members in the order they came.
    Object(Vec<(String, Json)>),
}

/// Deeper than this is not an answer duplex gives.
const MAX_DEPTH: usize = 32;

impl Json {
    /// Reads a whole document: one value, with only whitespace around it.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut reader = Reader {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let value = reader.value(0)?;
        reader.skip_space();
        if reader.pos != reader.bytes.len() {
            return Err(format!("trailing bytes at {}", reader.pos));
        }
        Ok(value)
    }

    /// An object's member by name.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A whole, non-negative number.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n < 2f64.powi(53) => Some(*n as u64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self.bytes.get(self.pos).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.pos += 1;
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.pos))
    }

    /// Takes `word` if it comes next.
    fn eat(&mut self, word: &[u8]) -> bool {
        let found = self.bytes[self.pos..].starts_with(word);
        if found {
            self.pos += word.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return self.error("nested too deep");
        }
        self.skip_space();
        match self.bytes.get(self.pos) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.eat(b"true") => Ok(Json::Bool(true)),
            _ if self.eat(b"false") => Ok(Json::Bool(false)),
            _ if self.eat(b"null") => Ok(Json::Null),
            _ => self.error("no value"),
        }
    }

    /// The items between `open` and `close`, separated by commas, each
    /// read by `item`. The opening byte is next.
    fn list(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        self.pos += 1;
        self.skip_space();
        if self.eat(&[close]) {
            return Ok(());
        }
        loop {
            item(self)?;
            self.skip_space();
            if self.eat(&[close]) {
                return Ok(());
            }
            if !self.eat(b",") {
                return self.error("expected , or the end");
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, String> {
        let mut items = Vec::new();
        self.list(b']', |r| {
            items.push(r.value(depth + 1)?);
            Ok(())
        })?;
        Ok(Json::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Json, String> {
        let mut members = Vec::new();
        self.list(b'}', |r| {
            r.skip_space();
            if r.bytes.get(r.pos) != Some(&b'"') {
                return r.error("expected a member name");
            }
            let key = r.string()?;
            r.skip_space();
            if !r.eat(b":") {
                return r.error("expected :");
            }
            members.push((key, r.value(depth + 1)?));
            Ok(())
        })?;
        Ok(Json::Object(members))
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b"+-.eE0123456789".contains(b))
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or("");
        match text.parse() {
            Ok(n) => Ok(Json::Number(n)),
            Err(_) => self.error("bad number"),
        }
    }

    /// A string, its opening quote next (§7).
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.pos += 1;
            }
            // The input is a `&str`, and the run stops only at ASCII bytes:
            // it is whole UTF-8.
            out.push_str(std::str::from_utf8(&self.bytes[run..self.pos]).unwrap_or("\u{fffd}"));
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                _ => return self.error("unterminated string or a raw control character"),
            }
        }
    }

    /// The character after a backslash.
    fn escape(&mut self) -> Result<char, String> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return self.error("unterminated escape");
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return self.error("unknown escape"),
        })
    }

    /// `\uXXXX`, or two of them for a character beyond the BMP (a UTF-16
    /// surrogate pair, §7). A lone surrogate becomes U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return Ok(char::from_u32(high).unwrap_or('\u{fffd}'));
        }
        if !self.eat(b"\\u") {
            return Ok('\u{fffd}');
        }
        let low = self.hex4()?;
        let code = 0x10000 + ((high - 0xD800) << 10) + low.wrapping_sub(0xDC00);
        Ok(char::from_u32(code).unwrap_or('\u{fffd}'))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok());
        match digits.and_then(|d| u32::from_str_radix(d, 16).ok()) {
            Some(n) => {
                self.pos += 4;
                Ok(n)
            }
            None => self.error("bad \\u escape"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_poll_answer() {
        let text = r#"{"token":"ab12","name":"guest-1","next":7,"missed":0,
            "messages":[{"id":7,"text":"[lobby] a: \"hi\"\\ \u00e9\ud83d\ude00"}],"replies":[],"replies_dropped":0}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(json.get("token").and_then(Json::as_str), Some("ab12"));
        assert_eq!(json.get("next").and_then(Json::as_u64), Some(7));
        let messages = json.get("messages").and_then(Json::as_array).unwrap();
        assert_eq!(messages[0].get("id").and_then(Json::as_u64), Some(7));
        assert_eq!(
            messages[0].get("text").and_then(Json::as_str),
            Some("[lobby] a: \"hi\"\\ é😀")
        );
        assert_eq!(json.get("replies").and_then(Json::as_array), Some(&[][..]));
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "\"a\u{1}\"",
            "1 2",
            "nul",
            "\"\\x\"",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(Json::parse(&deep).is_err());
        assert_eq!(
            Json::parse(" [true, null, -1.5e1] ")
                .unwrap()
                .as_array()
                .map(<[Json]>::len),
            Some(3)
        );
    }
}
