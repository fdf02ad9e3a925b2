//! The request target and the authority it names (RFC 9112 §3.2, §3.3).
//!
//! A request line names its resource in one of four forms:
//!
//! ```text
//! origin-form     GET /poll?room=dev HTTP/1.1      what browsers send; Host names the server
//! absolute-form   GET http://host:8080/poll ...    what clients send to proxies; a server
//!                                                  MUST accept it too (§3.2.2)
//! authority-form  CONNECT host:443 HTTP/1.1        a tunnel through a proxy (§3.2.3)
//! asterisk-form   OPTIONS * HTTP/1.1               the server as a whole (§3.2.4)
//! ```
//!
//! The authority (`host[:port]`) comes from the target in absolute-form and
//! from the `Host` header otherwise. Either way it is held to the same
//! grammar (RFC 9110 §7.2, RFC 3986 §3.2), because the Origin and Host
//! checks (`crate::origin`) compare it, and a check that compares strings
//! it never parsed can be fooled: `localhost@evil.example`,
//! `localhost, evil.example`, `localhost:80x`.

/// A parsed `host[:port]` (RFC 9110 §7.2: `Host = uri-host [ ":" port ]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// The host, lower-cased (RFC 3986 §3.2.2: hosts are case-insensitive).
    /// An IPv6 literal keeps its brackets: `[::1]`.
    pub host: String,
    /// The port, if one was given. `host:` (an empty port) is allowed by
    /// the grammar and means no port (RFC 3986 §3.2.3).
    pub port: Option<u16>,
}

impl Authority {
    /// Parses `host[:port]`, refusing anything the grammar does not allow,
    /// with the reason. An empty authority is refused here: whether an
    /// empty `Host` is acceptable depends on the target (see
    /// [`crate::http::Request::authority`]).
    pub fn parse(text: &[u8]) -> Result<Authority, &'static str> {
        if text.is_empty() {
            return Err("empty authority");
        }
        // RFC 9110 §4.2.4: userinfo is not allowed in an http(s) target or
        // in Host, and its `@` is the classic way to make `localhost@evil`
        // look like localhost to a careless check.
        if text.contains(&b'@') {
            return Err("userinfo (user@) is not allowed (RFC 9110 §4.2.4)");
        }
        // A comma is what two Host lines become when a proxy folds them
        // into one (RFC 9110 §5.3); Host is a single value, never a list.
        if text.contains(&b',') {
            return Err("a list: Host names exactly one authority (RFC 9110 §7.2)");
        }
        let (host, port) = if text[0] == b'[' {
            // IP-literal = "[" ( IPv6address / IPvFuture ) "]"
            let close = text
                .iter()
                .position(|&b| b == b']')
                .ok_or("IPv6 literal without its closing ]")?;
            if !is_ip_literal(&text[1..close]) {
                return Err("invalid IPv6 literal");
            }
            match &text[close + 1..] {
                [] => (&text[..=close], None),
                [b':', port @ ..] => (&text[..=close], Some(port)),
                _ => return Err("text after the IPv6 literal"),
            }
        } else {
            match text.iter().position(|&b| b == b':') {
                Some(colon) => (&text[..colon], Some(&text[colon + 1..])),
                None => (text, None),
            }
        };
        // RFC 9110 §4.2.1: an http URI with an empty host is invalid.
        if host.is_empty() {
            return Err("no host before the port");
        }
        if host[0] != b'[' && !is_reg_name(host) {
            return Err("the host has a character a host name cannot have");
        }
        let port = match port {
            None | Some([]) => None,
            Some(digits) => Some(parse_port(digits)?),
        };
        Ok(Authority {
            host: String::from_utf8_lossy(host).to_ascii_lowercase(),
            port,
        })
    }

    /// The host without the brackets of an IPv6 literal: `::1`, `localhost`.
    pub fn name(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }
}

impl std::fmt::Display for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// `port = *DIGIT` (RFC 3986 §3.2.3), and a TCP port besides: at most 65535.
fn parse_port(digits: &[u8]) -> Result<u16, &'static str> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err("the port is not a number");
    }
    // Leading zeros are digits too, so skip them before counting.
    let significant = digits
        .iter()
        .position(|&b| b != b'0')
        .map_or(&[][..], |i| &digits[i..]);
    if significant.len() > 5 {
        return Err("the port is out of range");
    }
    let value = significant
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).map_err(|_| "the port is out of range")
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (RFC 3986
/// §3.2.2), an IPv4 address included. The comma (a sub-delim) is refused
/// before this is called.
fn is_reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                // pct-encoded = "%" HEXDIG HEXDIG
                if !host
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
                continue;
            }
            b if b.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b';' | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// The inside of `[...]`: an IPv6 address, or RFC 3986's `IPvFuture`
/// (`v` 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )).
fn is_ip_literal(inside: &[u8]) -> bool {
    if let Some(rest) = inside.strip_prefix(b"v").or_else(|| inside.strip_prefix(b"V")) {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&b));
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

/// The four forms of request target (RFC 9112 §3.2), borrowed from the
/// request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/path?query` (§3.2.1).
    Origin {
        /// The absolute path, `/` at least.
        path: &'a str,
        /// What follows `?`, if there is a `?`.
        query: Option<&'a str>,
    },
    /// `http://authority/path?query` (§3.2.2).
    Absolute {
        /// `host[:port]`, not yet checked: see [`Authority::parse`].
        authority: &'a str,
        /// The path; `/` when the target has none (RFC 9110 §4.2.3).
        path: &'a str,
        /// What follows `?`, if there is a `?`.
        query: Option<&'a str>,
    },
    /// `host:port`, for CONNECT only (§3.2.3).
    Authority(&'a str),
    /// `*`, for a server-wide OPTIONS only (§3.2.4).
    Asterisk,
}

impl<'a> Target<'a> {
    /// Tells the form of `target` for a request with this `method`, and
    /// refuses a form the method may not use.
    pub fn parse(method: &str, target: &'a str) -> Result<Target<'a>, &'static str> {
        // §3.2.3: "The authority-form of request-target is only used for
        // CONNECT requests", and CONNECT uses only it.
        if method == "CONNECT" {
            return Ok(Target::Authority(target));
        }
        if target == "*" {
            // §3.2.4: "only used for a server-wide OPTIONS request".
            return if method == "OPTIONS" {
                Ok(Target::Asterisk)
            } else {
                Err("* is a target for OPTIONS only (RFC 9112 §3.2.4)")
            };
        }
        if target.starts_with('/') {
            let (path, query) = split_query(target);
            return Ok(Target::Origin { path, query });
        }
        // absolute-URI = scheme ":" hier-part; for http and https the
        // hier-part is "//" authority path-abempty (RFC 9110 §4.2).
        let Some((scheme, rest)) = target.split_once("://") else {
            return Err("the target must be /path, http://host/path, or * for OPTIONS");
        };
        // RFC 3986 §3.1: schemes are case-insensitive.
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err("only http and https targets are served here");
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(end);
        let (path, query) = split_query(after);
        let path = if path.is_empty() { "/" } else { path };
        Ok(Target::Absolute {
            authority,
            path,
            query,
        })
    }
}

fn split_query(text: &str) -> (&str, Option<&str>) {
    match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(text: &str) -> Result<Authority, &'static str> {
        Authority::parse(text.as_bytes())
    }

    #[test]
    fn rfc_hosts() {
        // RFC 9110 §7.2's example, RFC 6455 §1.3's, and the loopback forms.
        for (text, host, port) in [
            ("www.example.org", "www.example.org", None),
            ("server.example.com", "server.example.com", None),
            ("127.0.0.1:8080", "127.0.0.1", Some(8080)),
            ("LocalHost:80", "localhost", Some(80)),
            ("[::1]:8080", "[::1]", Some(8080)),
            ("[::1]", "[::1]", None),
            ("[v1.fe80::a+en1]", "[v1.fe80::a+en1]", None),
            ("localhost:", "localhost", None),
            ("localhost:00080", "localhost", Some(80)),
            ("xn--bcher-kva.example", "xn--bcher-kva.example", None),
            ("a%2Db", "a%2db", None),
        ] {
            let a = authority(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((a.host.as_str(), a.port), (host, port), "{text}");
        }
        assert_eq!(authority("[::1]:80").unwrap().name(), "::1");
        assert_eq!(authority("[::1]:80").unwrap().to_string(), "[::1]:80");
    }

    #[test]
    fn malformed_hosts() {
        for text in [
            "",
            "a, b",
            "a,b",
            "user@localhost",
            "localhost@evil.example",
            "localhost:http",
            "localhost:65536",
            "localhost:99999999999999999999",
            "localhost:-1",
            "localhost:+80",
            "localhost:80:80",
            ":8080",
            "local host",
            "localhost/",
            "[::1",
            "[::1]x",
            "[not-v6]",
            "[127.0.0.1]",
            "a%zzb",
            "a%2",
            "ex\u{e4}mple.org",
        ] {
            assert!(authority(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn target_forms() {
        assert_eq!(
            Target::parse("GET", "/poll?room=dev"),
            Ok(Target::Origin {
                path: "/poll",
                query: Some("room=dev")
            })
        );
        // RFC 9112 §3.2.2's example.
        assert_eq!(
            Target::parse("GET", "http://www.example.org/pub/WWW/TheProject.html"),
            Ok(Target::Absolute {
                authority: "www.example.org",
                path: "/pub/WWW/TheProject.html",
                query: None
            })
        );
        assert_eq!(
            Target::parse("GET", "HTTP://h:1?x=1"),
            Ok(Target::Absolute {
                authority: "h:1",
                path: "/",
                query: Some("x=1")
            })
        );
        // §3.2.3 and §3.2.4's examples.
        assert_eq!(
            Target::parse("CONNECT", "www.example.com:80"),
            Ok(Target::Authority("www.example.com:80"))
        );
        assert_eq!(Target::parse("OPTIONS", "*"), Ok(Target::Asterisk));
        for (method, target) in [
            ("GET", "*"),
            ("GET", "www.example.com:80"),
            ("GET", "ftp://example.org/"),
            ("GET", "mailto:a@example.org"),
            ("GET", "poll"),
        ] {
            assert!(Target::parse(method, target).is_err(), "{method} {target}");
        }
    }
}
