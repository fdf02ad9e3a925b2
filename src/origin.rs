//! Who may talk to the web door: the `Origin` and `Host` policy.
//!
//! Browsers let any web page open a WebSocket to any address, including
//! `ws://127.0.0.1:8080`, and send the page's origin along. A server that
//! ignores `Origin` lets a remote page drive a learner's local server
//! (cross-site WebSocket hijacking, RFC 6455 §10.2). The same goes for a
//! plain `POST`: a page on any site can submit a `text/plain` form to
//! `/send` without the CORS preflight that would ask first (cross-site
//! request forgery). So:
//!
//! * no `Origin` (not a browser), a loopback origin (any port), and the
//!   origin of the authority the client asked for are accepted;
//!   `--allow-origin` adds more, `*` any;
//! * `Origin: null` depends on the [`Purpose`]. A page opened from disk
//!   sends it, and that is how the classic examples connect, so a
//!   WebSocket from `null` is accepted. But a sandboxed iframe on *any*
//!   site sends `null` too, and nobody needs to post into the chat from a
//!   file, so a request that acts is refused from `null` unless
//!   `--allow-origin null` says otherwise;
//! * while the server listens on loopback, the request's authority (its
//!   `Host`) must name a loopback host or one given with `--allow-host`.
//!   Otherwise a remote name that resolves to 127.0.0.1 (DNS rebinding)
//!   would make a remote page look same-origin.

use crate::http::{Authority, Request};

/// Which origins and hosts the web door accepts; the default accepts
/// only the built-in cases listed in the module docs.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    /// Extra origins, compared case-insensitively (`https://example.com`,
    /// or `null`).
    pub allow_origins: Vec<String>,
    /// Accept any origin, `null` included, for any purpose
    /// (`--allow-origin '*'`).
    pub any_origin: bool,
    /// Extra host names accepted while bound to loopback.
    pub allow_hosts: Vec<String>,
    /// Bound to a loopback address: enforce the Host check.
    pub loopback_only: bool,
}

/// What the checked request would do; it decides what `Origin: null` may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Open a WebSocket. Allowed from `null` by default: a page opened
    /// from disk is how learners first meet WebSocket.
    WebSocket,
    /// A plain HTTP request that changes something (`POST /send`).
    /// Refused from `null` unless `--allow-origin null`.
    Action,
}

/// Why a request was refused with 403.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forbidden {
    /// A browser page from this `Origin` (RFC 6454 §7) may not do this.
    Origin(String, Purpose),
    /// More than one `Origin` header: no browser sends that (RFC 6454
    /// §7.3), and the second must not get a say.
    SeveralOrigins,
    /// This `Host` (RFC 9110 §7.2) is not a name the loopback server
    /// answers to: a possible DNS rebinding.
    Host(String),
    /// A browser said the request came from another site
    /// (`Sec-Fetch-Site: cross-site`, Fetch Metadata) without an `Origin`
    /// to judge: an `<img>` or a link, which may not act.
    CrossSite,
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Forbidden::Origin(origin, Purpose::WebSocket) => write!(
                f,
                "origin {origin} may not open WebSockets here (start duplex with --allow-origin {origin})"
            ),
            Forbidden::Origin(origin, Purpose::Action) if origin == "null" => write!(
                f,
                "origin null may not post here: any site can send it from a sandboxed frame \
(start duplex with --allow-origin null)"
            ),
            Forbidden::Origin(origin, Purpose::Action) => write!(
                f,
                "origin {origin} may not post here (start duplex with --allow-origin {origin})"
            ),
            Forbidden::SeveralOrigins => f.write_str("more than one Origin header"),
            Forbidden::CrossSite => f.write_str(
                "a page on another site may not join or post here (Sec-Fetch-Site: cross-site); \
use the page at /, or a client that is not a browser",
            ),
            Forbidden::Host(host) => write!(
                f,
                "host {host} is not served here: this server listens on loopback (start duplex with --allow-host {host})"
            ),
        }
    }
}

impl OriginPolicy {
    /// Builds the policy from `--allow-origin` (where `*` means any) and
    /// `--allow-host`, lower-cased once so checks compare cheaply.
    pub fn new(allow_origins: &[String], allow_hosts: &[String], loopback_only: bool) -> OriginPolicy {
        OriginPolicy {
            any_origin: allow_origins.iter().any(|o| o == "*"),
            allow_origins: allow_origins
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.to_ascii_lowercase())
                .collect(),
            allow_hosts: allow_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            loopback_only,
        }
    }

    /// The DNS-rebinding guard, for every request on the web door. It
    /// checks the authority the request names ([`Request::authority`]:
    /// the `Host` header, or the target's own in absolute-form), which the
    /// request reader has already parsed, so `localhost@evil.example` or
    /// `localhost, evil.example` never get this far.
    pub fn check_host(&self, request: &Request) -> Result<(), Forbidden> {
        if !self.loopback_only {
            return Ok(());
        }
        // No authority: an HTTP/1.0 client without Host (HTTP/1.1 without
        // one is refused by the reader).
        let Some(authority) = &request.authority else {
            return Ok(());
        };
        let name = authority.name();
        let whole = authority.to_string();
        if is_loopback_name(name) || self.allow_hosts.iter().any(|h| h == name || *h == whole) {
            Ok(())
        } else {
            Err(Forbidden::Host(whole))
        }
    }

    /// The origin to name in `Access-Control-Allow-Origin` (the CORS
    /// protocol, Fetch §3.2) on the answer to `request`: its `Origin`, if
    /// it sent one and this policy lets that origin act. A browser hides
    /// from a page every answer to a request it made across origins that
    /// does not name the page's origin so: without it, a page that may
    /// poll here could send but never read. A WebSocket needs none of it.
    pub fn cors_origin<'r>(&self, request: &'r Request) -> Option<&'r str> {
        let origin = request.header("origin")?;
        self.check_origin(request, Purpose::Action).ok()?;
        std::str::from_utf8(origin.trim_ascii()).ok()
    }

    /// The cross-site guard, for WebSocket upgrades ([`Purpose::WebSocket`])
    /// and for requests that act ([`Purpose::Action`]: `POST /send`, and
    /// the GETs that can make a member).
    pub fn check_origin(&self, request: &Request, purpose: Purpose) -> Result<(), Forbidden> {
        let mut fields = request.headers_named("origin");
        let Some(first) = fields.next() else {
            return self.check_fetch_site(request, purpose);
        };
        // RFC 6454 §7.3: a user agent sends at most one Origin.
        if fields.next().is_some() {
            return Err(Forbidden::SeveralOrigins);
        }
        let origin = String::from_utf8_lossy(first).trim().to_ascii_lowercase();
        if self.any_origin || self.allow_origins.contains(&origin) {
            return Ok(());
        }
        // RFC 6454 §7: `null` is an opaque origin, a page from disk or a
        // sandboxed frame on any site alike; see the module docs.
        if origin == "null" {
            return match purpose {
                Purpose::WebSocket => Ok(()),
                Purpose::Action => Err(Forbidden::Origin(origin, purpose)),
            };
        }
        // RFC 6454 §6.2: scheme "://" host [ ":" port ], nothing more.
        let authority = origin
            .split_once("://")
            .and_then(|(_, rest)| Authority::parse(rest.as_bytes()).ok());
        let Some(authority) = authority else {
            return Err(Forbidden::Origin(origin, purpose));
        };
        if is_loopback_name(authority.name()) {
            return Ok(());
        }
        // Same origin: the page was served by the authority this request
        // names. Host and port are compared, the scheme is not, so a page
        // served through a TLS proxy (https://host, Host: host) still
        // counts; a different host or port does not.
        if request.authority.as_ref() == Some(&authority) {
            return Ok(());
        }
        Err(Forbidden::Origin(origin, purpose))
    }

    /// A request without `Origin`: a client that is not a browser, a
    /// same-origin GET, or a browser's no-cors GET (an `<img src>`, a
    /// `<script src>`, a link followed). A GET that makes a member
    /// (`/poll`, `/longpoll`, `/events`) must not be made by a page on
    /// another site that way, and browsers say where a request comes from
    /// in Fetch Metadata: `Sec-Fetch-Site` is `cross-site` only then.
    /// Pages on other loopback ports are `same-site` (a site ignores the
    /// port), and are accepted as their `Origin` would be.
    fn check_fetch_site(&self, request: &Request, purpose: Purpose) -> Result<(), Forbidden> {
        if purpose == Purpose::WebSocket || self.any_origin {
            return Ok(());
        }
        let cross_site = request
            .headers_named("sec-fetch-site")
            .any(|value| value.trim_ascii().eq_ignore_ascii_case(b"cross-site"));
        if cross_site {
            Err(Forbidden::CrossSite)
        } else {
            Ok(())
        }
    }
}

fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" || name.ends_with(".localhost") || name == "::1" {
        return true;
    }
    name.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeadLimits, RequestReader};

    fn request(headers: &str) -> Request {
        crate::http::request::parse_whole(&format!("GET /chat HTTP/1.1\r\n{headers}\r\n"))
    }

    use Purpose::{Action, WebSocket};

    #[test]
    fn default_origins() {
        let p = OriginPolicy::new(&[], &[], true);
        for ok in [
            "Host: 127.0.0.1:8080\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: http://localhost:3000\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\n",
            "Host: [::1]:8080\r\nOrigin: http://[::1]:5000\r\n",
            "Host: localhost:8080\r\nOrigin: HTTP://LOCALHOST:8080\r\n",
        ] {
            for purpose in [WebSocket, Action] {
                assert_eq!(p.check_origin(&request(ok), purpose), Ok(()), "{ok}");
            }
            assert_eq!(p.check_host(&request(ok)), Ok(()), "{ok}");
        }
        let evil = request("Host: 127.0.0.1:8080\r\nOrigin: https://evil.example\r\n");
        assert_eq!(
            p.check_origin(&evil, WebSocket),
            Err(Forbidden::Origin("https://evil.example".into(), WebSocket))
        );
        let allowed = OriginPolicy::new(&["https://evil.example".into()], &[], true);
        assert_eq!(allowed.check_origin(&evil, Action), Ok(()));
        assert_eq!(
            OriginPolicy::new(&["*".into()], &[], true).check_origin(&evil, Action),
            Ok(())
        );
        // RFC 6454 §7.3: one Origin, or none.
        let two = request("Host: 127.0.0.1\r\nOrigin: http://localhost\r\nOrigin: https://evil.example\r\n");
        assert_eq!(p.check_origin(&two, WebSocket), Err(Forbidden::SeveralOrigins));
    }

    #[test]
    fn null_may_open_a_websocket_but_not_post() {
        // A page opened from disk and a sandboxed frame on any site both
        // send `Origin: null`.
        let null = request("Host: 127.0.0.1:8080\r\nOrigin: null\r\n");
        let p = OriginPolicy::new(&[], &[], true);
        assert_eq!(p.check_origin(&null, WebSocket), Ok(()));
        let refused = p.check_origin(&null, Action);
        assert_eq!(refused, Err(Forbidden::Origin("null".into(), Action)));
        assert!(refused.unwrap_err().to_string().contains("--allow-origin null"));
        for allow in ["null", "NULL", "*"] {
            let p = OriginPolicy::new(&[allow.into()], &[], true);
            assert_eq!(p.check_origin(&null, Action), Ok(()), "{allow}");
        }
    }

    #[test]
    fn near_misses_are_refused() {
        // A public server answering to chat.example:8080, so only the
        // Origin decides.
        let p = OriginPolicy::new(&[], &[], false);
        let from = |origin: &str| {
            let r = request(&format!("Host: chat.example:8080\r\nOrigin: {origin}\r\n"));
            (p.check_origin(&r, WebSocket), p.check_origin(&r, Action))
        };
        assert_eq!(from("http://chat.example:8080"), (Ok(()), Ok(())));
        for origin in [
            // A longer name that starts with ours.
            "https://chat.example.evil:8080",
            // Our name on another port: another origin (RFC 6454 §5).
            "http://chat.example:8081",
            "http://chat.example",
            // Names that start like loopback ones.
            "http://localhost.evil.com",
            "http://127.0.0.1.nip.io",
            "http://127.0.0.1.nip.io:8080",
            "http://localhost@evil.example",
            "http://evil.example/localhost",
            "http://evil.example#@localhost",
            "http://evil.example?localhost",
            "http://0x7f.0.0.1",
            "localhost",
            "http://",
            "",
        ] {
            let (websocket, action) = from(origin);
            assert!(websocket.is_err(), "{origin:?} may open a WebSocket");
            assert!(action.is_err(), "{origin:?} may post");
        }
        // Loopback origins are loopback by their parsed host, not a prefix.
        let local = OriginPolicy::new(&[], &[], true);
        for origin in [
            "http://localhost:1",
            "http://app.localhost",
            "http://127.8.9.10",
            "http://[::1]",
        ] {
            let r = request(&format!("Host: localhost\r\nOrigin: {origin}\r\n"));
            assert_eq!(local.check_origin(&r, Action), Ok(()), "{origin}");
        }
    }

    #[test]
    fn dns_rebinding_is_refused_on_loopback() {
        let p = OriginPolicy::new(&[], &[], true);
        let rebound = request("Host: attacker.example:8080\r\nOrigin: http://attacker.example:8080\r\n");
        // Same-origin by the headers, but the Host is not ours.
        assert_eq!(p.check_origin(&rebound, WebSocket), Ok(()));
        assert_eq!(
            p.check_host(&rebound),
            Err(Forbidden::Host("attacker.example:8080".into()))
        );
        let with_host = OriginPolicy::new(&[], &["attacker.example".into()], true);
        assert_eq!(with_host.check_host(&rebound), Ok(()));
        let public = OriginPolicy::new(&[], &[], false);
        assert_eq!(public.check_host(&rebound), Ok(()));

        // RFC 9112 §3.2.2: an absolute-form target's authority replaces
        // Host, so it is the one checked.
        let limits = HeadLimits {
            max_head: 8192,
            max_headers: 64,
            max_body: 0,
        };
        let absolute = RequestReader::new(limits)
            .read(b"GET http://attacker.example:8080/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
            .unwrap()
            .1
            .unwrap();
        assert_eq!(
            p.check_host(&absolute),
            Err(Forbidden::Host("attacker.example:8080".into()))
        );
    }
}
