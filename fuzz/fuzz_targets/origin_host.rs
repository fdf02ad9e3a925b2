//! Arbitrary request targets, `Host` and `Origin` values through the
//! authority parser, the request reader and the Origin/Host policy: they
//! may refuse, never panic, and whatever they accept is well-formed.
#![no_main]

use duplex::http::{Authority, HeadLimits, RequestReader};
use duplex::origin::{OriginPolicy, Purpose};
use libfuzzer_sys::fuzz_target;

/// What `Authority::parse` promises of a host it accepts: a lower-case
/// host of URI characters with no userinfo, list or path in it, that
/// prints and parses back to itself.
fn assert_well_formed(authority: &Authority) {
    let host = authority.host.as_bytes();
    assert!(!host.is_empty());
    assert!(host.iter().all(|b| b.is_ascii_graphic()), "{authority:?}");
    assert!(
        !host.iter().any(|b| b"@,/?#\\\"<>{}|^`".contains(b)),
        "{authority:?}"
    );
    assert!(!host.iter().any(u8::is_ascii_uppercase), "{authority:?}");
    assert_eq!(host[0] == b'[', host[host.len() - 1] == b']', "{authority:?}");
    let again = Authority::parse(authority.to_string().as_bytes());
    assert_eq!(again.as_ref(), Ok(authority));
}

fuzz_target!(|data: &[u8]| {
    // Three fields, one per line: target, Host, Origin. CR and LF stay
    // out of them so each stays one header line.
    let mut fields = data.splitn(3, |&b| b == b'\n').map(|f| {
        f.iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect::<Vec<u8>>()
    });
    let (target, host, origin) = (
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
    );

    if let Ok(authority) = Authority::parse(&host) {
        assert_well_formed(&authority);
    }

    let mut wire = b"GET ".to_vec();
    wire.extend_from_slice(&target);
    wire.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    wire.extend_from_slice(&host);
    wire.extend_from_slice(b"\r\nOrigin: ");
    wire.extend_from_slice(&origin);
    wire.extend_from_slice(b"\r\n\r\n");
    let limits = HeadLimits {
        max_head: 4096,
        max_headers: 16,
        max_body: 0,
    };
    let Ok((_, Some(request))) = RequestReader::new(limits).read(&wire) else {
        return;
    };
    // HTTP/1.1 always names its server, and what it names is well-formed.
    let authority = request
        .authority
        .as_ref()
        .expect("an HTTP/1.1 request names its server");
    assert_well_formed(authority);
    let _ = request.path();
    let _ = request.query_param("room");

    let policies = [
        OriginPolicy::new(&[], &[], true),
        OriginPolicy::new(&[], &[], false),
        OriginPolicy::new(
            &["null".into(), "https://example.com".into()],
            &["example.com".into()],
            true,
        ),
        OriginPolicy::new(&["*".into()], &[], true),
    ];
    for policy in &policies {
        // On loopback, an accepted authority names a loopback host or an
        // allowed one.
        if policy.check_host(&request).is_ok() && policy.loopback_only {
            let name = authority.name();
            assert!(
                name == "localhost"
                    || name.ends_with(".localhost")
                    || name == "::1"
                    || name
                        .parse::<std::net::Ipv4Addr>()
                        .is_ok_and(|ip| ip.is_loopback())
                    || policy
                        .allow_hosts
                        .iter()
                        .any(|h| *h == name || *h == authority.to_string()),
                "{authority:?} passed the loopback Host check"
            );
        }
        // A request that acts is held to at least the WebSocket rule.
        let websocket = policy.check_origin(&request, Purpose::WebSocket);
        let action = policy.check_origin(&request, Purpose::Action);
        assert!(websocket.is_ok() || action.is_err(), "{origin:?}");
        // Refusals say why without panicking.
        if let Err(forbidden) = action {
            let _ = forbidden.to_string();
        }
    }
});
