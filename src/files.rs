//! `--static DIR`: serving a folder, the part that needs no disk.
//!
//! Sans-IO, like the codecs: which file a request path may name, what type
//! it is, and whether the client's copy is still good. The loop does the
//! file system work (`server/files.rs`): it resolves the name this module
//! gives it inside DIR, checks where it really leads, and streams the file.
//!
//! A request path is hostile until proven otherwise. It is decoded once
//! (RFC 3986 §2.1: `%2e` is `.`) and then split into names, each of which
//! must be an ordinary file name:
//!
//! ```text
//! /../etc/passwd          ..          403: it climbs out of DIR
//! /%2e%2e/etc/passwd      ..          403: the same, encoded
//! /%252e%252e/x           %2e%2e      decoded once only: a name with a %, not found
//! /a%2fb  /%2fetc         a/b, /etc   400: a slash inside a name
//! /a\b   /a%5cb           a\b         400: a backslash (a separator on Windows)
//! /a%00b                  a<NUL>b     400: NUL ends a name in C; no file has one
//! /.env   /.git/config    .env, .git  404: dotfiles are hidden, as if absent
//! //etc/passwd            etc/passwd  empty names are skipped: still inside DIR
//! ```
//!
//! Nothing here makes a path absolute: the names are joined onto DIR one
//! at a time, and none can contain a separator. Symbolic links are the
//! loop's to check, since only the disk knows where they lead.

use crate::http::{date, Request};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A request path that names something inside DIR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePath {
    /// The decoded names, in order; empty for DIR itself.
    pub names: Vec<String>,
    /// The path ended in `/`: it asks for a folder's `index.html`.
    pub folder: bool,
}

impl FilePath {
    /// The names joined, relative to DIR: `css/site.css`.
    pub fn relative(&self) -> PathBuf {
        self.names.iter().collect()
    }

    /// Where a folder asked for without its slash lives: the request's own
    /// names, re-encoded, with `/` after them. Built from the names rather
    /// than the raw target, so `//evil.example` (a folder named
    /// `evil.example`) redirects to `/evil.example/`, inside this site,
    /// never to another host.
    pub fn folder_location(&self, query: Option<&str>) -> String {
        let mut location = String::from("/");
        for name in &self.names {
            location.push_str(&encode_name(name));
            location.push('/');
        }
        if let Some(query) = query {
            location.push('?');
            location.push_str(query);
        }
        location
    }
}

/// Why a request path cannot name a file, with the status it earns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits (RFC 3986 §2.1).
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A NUL byte, raw or `%00`.
    Nul,
    /// A control character other than NUL.
    Control,
    /// A backslash, raw or `%5c`.
    Backslash,
    /// A slash inside a name (`%2f`).
    EncodedSlash,
    /// A `..` name, however it was written.
    DotDot,
    /// A name starting with `.`: hidden, answered as absent.
    Dotfile,
}

impl PathError {
    /// 403 for a path that tries to leave DIR, 404 for a hidden file (its
    /// existence is not confirmed), 400 for a name no file can have.
    pub fn status(self) -> crate::http::Status {
        use crate::http::Status;
        match self {
            PathError::DotDot => Status::FORBIDDEN,
            PathError::Dotfile => Status::NOT_FOUND,
            _ => Status::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathError::BadEscape => "a % in the path is not followed by two hex digits (RFC 3986 §2.1)",
            PathError::NotUtf8 => "the path does not decode to UTF-8",
            PathError::Nul => "the path has a NUL byte",
            PathError::Control => "the path has a control character",
            PathError::Backslash => "the path has a backslash; separate names with /",
            PathError::EncodedSlash => "the path has an encoded slash (%2F) inside a name",
            PathError::DotDot => "the path climbs out of the static folder with ..",
            PathError::Dotfile => "not found (dotfiles are hidden)",
        })
    }
}

/// What file a request path (`Request::path`, still percent-encoded)
/// names inside DIR, or why it names none.
pub fn resolve(path: &str) -> Result<FilePath, PathError> {
    let mut names = Vec::new();
    let mut folder = true;
    for raw in path.split('/') {
        if raw.is_empty() {
            // `//` and the leading `/`: nothing to add. A path that ends
            // in `/` (its last piece is empty) asks for a folder.
            folder = true;
            continue;
        }
        folder = false;
        let name = decode(raw)?;
        for c in name.chars() {
            match c {
                '\0' => return Err(PathError::Nul),
                '\\' => return Err(PathError::Backslash),
                '/' => return Err(PathError::EncodedSlash),
                c if c.is_control() => return Err(PathError::Control),
                _ => {}
            }
        }
        if name == ".." {
            return Err(PathError::DotDot);
        }
        if name.starts_with('.') {
            return Err(PathError::Dotfile);
        }
        names.push(name);
    }
    Ok(FilePath { names, folder })
}

/// Strict percent-decoding of one path segment: `+` is a plus here (it
/// means space only in form queries), and a broken escape is an error
/// rather than passed through.
fn decode(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
            let text = std::str::from_utf8(hex).map_err(|_| PathError::BadEscape)?;
            let byte = u8::from_str_radix(text, 16).map_err(|_| PathError::BadEscape)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// Percent-encodes what may not stand in a path segment (RFC 3986 §3.3).
fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The media type a file is sent with, by its extension. Anything else is
/// `application/octet-stream`, which a browser downloads rather than runs;
/// with `X-Content-Type-Options: nosniff` beside it, the browser does not
/// guess either.
pub fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e).to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        // RFC 9239 §6: text/javascript is the one to use.
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// What tells one version of a file from another (RFC 9110 §8.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// A strong entity tag from the size and the modification time to the
    /// nanosecond, as nginx makes its own: any write changes one of them.
    pub etag: String,
    /// The modification time, to the second, as `Last-Modified` says it.
    pub modified: SystemTime,
}

impl Validators {
    /// The validators of a file of `len` bytes last modified at `modified`.
    pub fn new(len: u64, modified: SystemTime) -> Validators {
        let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Validators {
            etag: format!("\"{len:x}-{:x}{:08x}\"", since.as_secs(), since.subsec_nanos()),
            modified: UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        }
    }

    /// `Last-Modified`, an IMF-fixdate.
    pub fn last_modified(&self) -> String {
        date::format(self.modified)
    }

    /// Does the client already have this version? Then the answer is 304
    /// Not Modified, without the body (RFC 9110 §15.4.5). Only for GET and
    /// HEAD; the caller asks only then.
    ///
    /// RFC 9110 §13.2.2 sets the order: `If-None-Match` when present, and
    /// `If-Modified-Since` only when it is not.
    pub fn not_modified(&self, request: &Request) -> bool {
        let mut tags = request.headers_named("if-none-match").peekable();
        if tags.peek().is_some() {
            return tags.any(|value| self.matches_any(value));
        }
        match request.header("if-modified-since").and_then(date::parse) {
            // §13.1.3: false if the file changed after the date given.
            Some(since) => self.modified <= since,
            None => false,
        }
    }

    /// RFC 9110 §13.1.2: `*` matches any current file, and otherwise the
    /// list is compared with the weak function (§8.8.3.2): `W/"x"` and
    /// `"x"` are the same tag for this purpose.
    fn matches_any(&self, value: &[u8]) -> bool {
        let Ok(value) = std::str::from_utf8(value) else {
            return false;
        };
        if value.trim() == "*" {
            return true;
        }
        value.split(',').any(|tag| {
            let tag = tag.trim();
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == self.etag
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &str) -> Vec<String> {
        resolve(path).unwrap_or_else(|e| panic!("{path}: {e}")).names
    }

    #[test]
    fn ordinary_paths_name_files() {
        assert_eq!(names("/"), Vec::<String>::new());
        assert_eq!(names("/1.html"), ["1.html"]);
        assert_eq!(names("/css/site.css"), ["css", "site.css"]);
        assert_eq!(names("/a%20b/c+d.txt"), ["a b", "c+d.txt"]);
        assert_eq!(names("//etc/passwd"), ["etc", "passwd"]);
        assert_eq!(names("/%252e%252e/x"), ["%2e%2e", "x"]);
        assert_eq!(names("/caf%C3%A9"), ["café"]);
        assert!(resolve("/docs/").unwrap().folder);
        assert!(!resolve("/docs").unwrap().folder);
        assert!(resolve("/").unwrap().folder);
    }

    #[test]
    fn hostile_paths_are_refused_for_what_they_are() {
        for (path, error) in [
            ("/../secret", PathError::DotDot),
            ("/a/../../secret", PathError::DotDot),
            ("/%2e%2e/secret", PathError::DotDot),
            ("/%2E%2E/secret", PathError::DotDot),
            ("/.%2e/secret", PathError::DotDot),
            ("/%2e./secret", PathError::DotDot),
            ("/a%2f..%2fsecret", PathError::EncodedSlash),
            ("/%2fetc%2fpasswd", PathError::EncodedSlash),
            ("/a\\b", PathError::Backslash),
            ("/..%5csecret", PathError::Backslash),
            ("/a%00b", PathError::Nul),
            ("/a%0ab", PathError::Control),
            ("/a%zz", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("/%ff", PathError::NotUtf8),
            ("/.env", PathError::Dotfile),
            ("/.git/config", PathError::Dotfile),
            ("/a/.hidden/b", PathError::Dotfile),
            ("/%2ehtaccess", PathError::Dotfile),
            ("/.", PathError::Dotfile),
        ] {
            assert_eq!(resolve(path), Err(error), "{path}");
        }
    }

    #[test]
    fn a_folder_redirect_stays_on_this_site() {
        let path = resolve("//evil.example").unwrap();
        assert_eq!(path.folder_location(None), "/evil.example/");
        let path = resolve("/a%20b/c").unwrap();
        assert_eq!(path.folder_location(Some("x=1")), "/a%20b/c/?x=1");
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type("1.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("APP.JS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("m.wasm"), "application/wasm");
        assert_eq!(content_type("photo.jpeg"), "image/jpeg");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert_eq!(content_type("x.exe"), "application/octet-stream");
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            target: "/f".into(),
            version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            wire_len: 0,
            authority: None,
        }
    }

    #[test]
    fn conditional_requests_follow_rfc_9110_section_13_2_2() {
        let modified = UNIX_EPOCH + Duration::from_nanos(784_111_777_500_000_000);
        let v = Validators::new(10, modified);
        let etag = v.etag.clone();
        assert_eq!(v.last_modified(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(!v.not_modified(&request(&[])));
        assert!(v.not_modified(&request(&[("If-None-Match", &etag)])));
        assert!(v.not_modified(&request(&[("If-None-Match", &format!("W/{etag}"))])));
        assert!(v.not_modified(&request(&[("If-None-Match", &format!("\"x\", {etag}"))])));
        assert!(v.not_modified(&request(&[("If-None-Match", "*")])));
        assert!(!v.not_modified(&request(&[("If-None-Match", "\"other\"")])));
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert!(v.not_modified(&request(&[("If-Modified-Since", date)])));
        let earlier = "Sun, 06 Nov 1994 08:49:36 GMT";
        assert!(!v.not_modified(&request(&[("If-Modified-Since", earlier)])));
        assert!(!v.not_modified(&request(&[("If-Modified-Since", "yesterday")])));
        // If-None-Match wins: a stale tag means the body is sent, whatever
        // the date says.
        let both = [("If-None-Match", "\"other\""), ("If-Modified-Since", date)];
        assert!(!v.not_modified(&request(&both)));
    }
}
