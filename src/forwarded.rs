//! Who a request came from when a reverse proxy stands in front:
//! `X-Forwarded-For`, believed only from a proxy named with
//! `--trust-proxy`.
//!
//! Behind nginx every connection comes from nginx, so the socket's peer
//! says nothing about the client. nginx says who it was in a header it
//! extends at each hop, oldest first:
//!
//! ```text
//! X-Forwarded-For: <what the client itself claimed, if anything>, <client as nginx saw it>
//! ```
//!
//! Anyone can send that header, so it is worth exactly as much as the
//! machine that added its last entry. The rule, the one nginx's own
//! `real_ip_recursive on` follows:
//!
//! 1. if the socket's peer is not a trusted proxy, it is the client, and
//!    any `X-Forwarded-For` it sent is ignored (it may be a lie);
//! 2. otherwise read the header from the right: each entry was added by
//!    the hop after it. The first entry that is not itself a trusted proxy
//!    is the client. Entries further left were written by that client and
//!    are never believed;
//! 3. an entry that is not an address stops the walk: the client is the
//!    last hop that could be read (a trusted proxy), never the malformed
//!    text nor anything to the left of it.
//!
//! Sans-IO like the codecs: addresses and header values in, an answer out.
//! The walk is bounded by the request head's own limit (`--max-head`).
//!
//! ```rust
//! use duplex::forwarded::{client_address, Client, TrustedProxy};
//! use std::net::IpAddr;
//!
//! let nginx: IpAddr = "127.0.0.1".parse().unwrap();
//! let trusted = ["127.0.0.1".parse::<TrustedProxy>().unwrap()];
//! // nginx added the client it saw after whatever the client claimed.
//! let header: &[u8] = b"10.6.6.6, 203.0.113.7";
//! let real: IpAddr = "203.0.113.7".parse().unwrap();
//! assert_eq!(client_address(nginx, [header], &trusted), Client::Forwarded(real));
//! // The same header straight from a stranger is ignored.
//! let stranger: IpAddr = "198.51.100.4".parse().unwrap();
//! assert_eq!(client_address(stranger, [header], &trusted), Client::Untrusted);
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A proxy whose `X-Forwarded-For` is believed: one address
/// (`127.0.0.1`, `::1`) or a network (`10.0.0.0/8`, `fd00::/8`), as
/// nginx's `set_real_ip_from` takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    /// Whether `ip` is this proxy, or in this network. An IPv4 address
    /// that reached an IPv6 socket (`::ffff:127.0.0.1`) is compared as the
    /// IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

/// The first `prefix` bits of `a` and `b` agree.
fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, bits) = (usize::from(prefix / 8), prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    bits == 0 || (a[whole] ^ b[whole]) >> (8 - bits) == 0
}

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<TrustedProxy, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let Ok(network) = address.parse::<IpAddr>() else {
            let hint = match text.parse::<SocketAddr>() {
                Ok(with_port) => format!(
                    "; give the proxy's address without a port ({}): it connects from a port of its choosing",
                    with_port.ip()
                ),
                Err(_) => String::new(),
            };
            return Err(format!(
                "not an address or network: {text:?} (try 127.0.0.1, ::1 or 10.0.0.0/8){hint}"
            ));
        };
        let network = network.to_canonical();
        let most = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => most,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(n) if n <= most => n,
                _ => {
                    return Err(format!(
                        "not a prefix length for {network}: {prefix:?} (0 to {most})"
                    ))
                }
            },
        };
        Ok(TrustedProxy { network, prefix })
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let most = if self.network.is_ipv4() { 32 } else { 128 };
        match self.prefix == most {
            true => write!(f, "{}", self.network),
            false => write!(f, "{}/{}", self.network, self.prefix),
        }
    }
}

/// Who the client is, as far as the headers may be believed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Client {
    /// The peer is the client: it is no trusted proxy, and sent no
    /// `X-Forwarded-For`.
    Direct,
    /// The peer is no trusted proxy but sent `X-Forwarded-For`: ignored,
    /// the peer is the client.
    Untrusted,
    /// A trusted proxy sent no `X-Forwarded-For` (or an empty one): the
    /// proxy is all we know.
    NotForwarded,
    /// A trusted proxy says the client is this address.
    Forwarded(IpAddr),
    /// The walk met an entry that is no address, shown here as sent
    /// (cut short): the client is taken to be the last hop read before it,
    /// a trusted proxy.
    Malformed {
        /// The last address read, right of the malformed entry.
        nearest: IpAddr,
        /// The entry that is not an address.
        entry: String,
    },
}

impl Client {
    /// The address to treat as the client's, given the socket's peer.
    pub fn address(&self, peer: IpAddr) -> IpAddr {
        match self {
            Client::Forwarded(ip) => *ip,
            Client::Malformed { nearest, .. } => *nearest,
            Client::Direct | Client::Untrusted | Client::NotForwarded => peer,
        }
    }
}

/// Longest malformed entry quoted in a log line; the rest is cut.
const QUOTED: usize = 40;

/// The client of a request that reached us from `peer` with these
/// `X-Forwarded-For` field values (in the order received: RFC 9110 §5.3
/// makes several lines one list, joined by commas).
pub fn client_address<'a>(
    peer: IpAddr,
    fields: impl IntoIterator<Item = &'a [u8]>,
    trusted: &[TrustedProxy],
) -> Client {
    let mut fields = fields.into_iter().peekable();
    let trusts = |ip: IpAddr| trusted.iter().any(|proxy| proxy.contains(ip));
    if !trusts(peer) {
        return match fields.peek() {
            None => Client::Direct,
            Some(_) => Client::Untrusted,
        };
    }
    let fields: Vec<&[u8]> = fields.collect();
    let mut nearest = peer.to_canonical();
    // Right to left over the entries of every line, last line first.
    let entries = fields
        .iter()
        .rev()
        .flat_map(|field| field.rsplit(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        // RFC 9110 §5.6.1: a list may have empty elements; they count for
        // nothing.
        .filter(|entry| !entry.is_empty());
    let mut read_any = false;
    for entry in entries {
        read_any = true;
        let Some(ip) = parse_entry(entry) else {
            let text = String::from_utf8_lossy(entry);
            let entry = text.chars().take(QUOTED).collect();
            return Client::Malformed { nearest, entry };
        };
        nearest = ip;
        if !trusts(ip) {
            break;
        }
    }
    match read_any {
        true => Client::Forwarded(nearest),
        false => Client::NotForwarded,
    }
}

/// One entry of the list: an IPv4 or IPv6 address, as nginx writes them.
/// Some proxies add the client's port, so `192.0.2.1:5678` and
/// `[2001:db8::1]:5678` are read too (and `[2001:db8::1]`), the port
/// dropped. Anything else (`unknown`, a hostname, RFC 7239's obfuscated
/// `_hidden`) is no address.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    text.parse::<SocketAddr>()
        .ok()
        .map(|addr| addr.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn client(peer: &str, fields: &[&str], trusted: &[&str]) -> Client {
        client_address(ip(peer), fields.iter().map(|f| f.as_bytes()), &proxies(trusted))
    }

    #[test]
    fn a_peer_that_is_not_trusted_is_the_client() {
        assert_eq!(client("198.51.100.4", &[], &["127.0.0.1"]), Client::Direct);
        assert_eq!(
            client("198.51.100.4", &["10.0.0.1"], &["127.0.0.1"]),
            Client::Untrusted
        );
        // No --trust-proxy at all: never believed.
        assert_eq!(client("127.0.0.1", &["10.0.0.1"], &[]), Client::Untrusted);
        assert_eq!(Client::Untrusted.address(ip("198.51.100.4")), ip("198.51.100.4"));
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let trusted = ["127.0.0.1", "10.0.0.0/8"];
        // What nginx sends for a direct client.
        assert_eq!(
            client("127.0.0.1", &["203.0.113.7"], &trusted),
            Client::Forwarded(ip("203.0.113.7"))
        );
        // The client claimed to be 1.2.3.4: its claim is left of the
        // entry nginx added, and is not read.
        let spoofed = client("127.0.0.1", &["1.2.3.4, 203.0.113.7"], &trusted);
        assert_eq!(spoofed, Client::Forwarded(ip("203.0.113.7")));
        // Two proxies: nginx at 10.1.2.3 in front of the one on loopback.
        let chained = client("127.0.0.1", &["1.2.3.4, 203.0.113.7, 10.1.2.3"], &trusted);
        assert_eq!(chained, Client::Forwarded(ip("203.0.113.7")));
        // Several lines are one list (RFC 9110 §5.3).
        let lines = client("127.0.0.1", &["1.2.3.4, 203.0.113.7", "10.1.2.3"], &trusted);
        assert_eq!(lines, Client::Forwarded(ip("203.0.113.7")));
    }

    #[test]
    fn when_every_entry_is_trusted_the_leftmost_is_the_client() {
        // A client on the proxy's own machine, as in the tests.
        assert_eq!(
            client("127.0.0.1", &["127.0.0.1"], &["127.0.0.1"]),
            Client::Forwarded(ip("127.0.0.1"))
        );
        assert_eq!(
            client("127.0.0.1", &["10.0.0.2, 10.0.0.1"], &["127.0.0.1", "10.0.0.0/8"]),
            Client::Forwarded(ip("10.0.0.2"))
        );
    }

    #[test]
    fn a_trusted_proxy_without_the_header_is_all_we_know() {
        assert_eq!(client("127.0.0.1", &[], &["127.0.0.1"]), Client::NotForwarded);
        assert_eq!(
            client("127.0.0.1", &[" , "], &["127.0.0.1"]),
            Client::NotForwarded
        );
        assert_eq!(Client::NotForwarded.address(ip("127.0.0.1")), ip("127.0.0.1"));
    }

    #[test]
    fn a_malformed_entry_is_never_believed() {
        let trusted = ["127.0.0.1", "10.0.0.0/8"];
        for bad in [
            "unknown",
            "example.com",
            "_hidden",
            "1.2.3",
            "1.2.3.4.5",
            "::g",
            "[1.2.3.4]",
            "203.0.113.7:99999",
        ] {
            let got = client("127.0.0.1", &[bad], &trusted);
            assert_eq!(
                got,
                Client::Malformed {
                    nearest: ip("127.0.0.1"),
                    entry: bad.to_string()
                },
                "{bad}"
            );
            assert_eq!(got.address(ip("127.0.0.1")), ip("127.0.0.1"));
        }
        // The walk stops at it: the trusted hop right of it is the client,
        // and the address left of it is not read.
        let got = client("127.0.0.1", &["203.0.113.7, bogus, 10.0.0.9"], &trusted);
        assert_eq!(
            got,
            Client::Malformed {
                nearest: ip("10.0.0.9"),
                entry: "bogus".to_string()
            }
        );
        // A malformed entry left of the client is never reached.
        let got = client("127.0.0.1", &["bogus, 203.0.113.7"], &trusted);
        assert_eq!(got, Client::Forwarded(ip("203.0.113.7")));
        // Long: quoted cut short. Not UTF-8: no address either.
        let long = "x".repeat(100);
        let got = client_address(ip("127.0.0.1"), [long.as_bytes()], &proxies(&trusted));
        let Client::Malformed { entry, .. } = got else {
            panic!("{got:?}")
        };
        assert_eq!(entry.chars().count(), QUOTED);
        assert!(matches!(
            client_address(ip("127.0.0.1"), [&b"\xff\xfe"[..]], &proxies(&trusted)),
            Client::Malformed { .. }
        ));
    }

    #[test]
    fn entries_with_ports_and_brackets() {
        let trusted = ["127.0.0.1"];
        assert_eq!(
            client("127.0.0.1", &["203.0.113.7:5678"], &trusted),
            Client::Forwarded(ip("203.0.113.7"))
        );
        assert_eq!(
            client("127.0.0.1", &["[2001:db8::1]:5678"], &trusted),
            Client::Forwarded(ip("2001:db8::1"))
        );
        assert_eq!(
            client("127.0.0.1", &["[2001:db8::1]"], &trusted),
            Client::Forwarded(ip("2001:db8::1"))
        );
        assert_eq!(
            client("127.0.0.1", &["2001:db8::1"], &trusted),
            Client::Forwarded(ip("2001:db8::1"))
        );
        // An IPv4 address written the IPv6 way is the IPv4 address.
        assert_eq!(
            client("127.0.0.1", &["::ffff:203.0.113.7"], &trusted),
            Client::Forwarded(ip("203.0.113.7"))
        );
    }

    #[test]
    fn trusted_addresses_and_networks() {
        let one: TrustedProxy = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(
            one.contains(ip("::ffff:127.0.0.1")),
            "IPv4 through an IPv6 socket"
        );
        assert!(!one.contains(ip("127.0.0.2")));
        let net: TrustedProxy = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.1.2")) && !net.contains(ip("11.0.0.1")));
        let odd: TrustedProxy = "192.168.4.0/22".parse().unwrap();
        assert!(odd.contains(ip("192.168.7.255")) && !odd.contains(ip("192.168.8.0")));
        let v6: TrustedProxy = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        let all: TrustedProxy = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.7")));
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert_eq!(one.to_string(), "127.0.0.1");
    }

    /// One entry of a generated header, and what it stands for.
    #[derive(Clone, Debug)]
    enum Entry {
        Trusted(u8),
        Stranger(u8),
        Garbage(String),
    }

    impl Entry {
        fn text(&self) -> String {
            match self {
                Entry::Trusted(n) => format!("10.0.0.{n}"),
                Entry::Stranger(n) => format!("203.0.113.{n}"),
                Entry::Garbage(text) => text.clone(),
            }
        }
    }

    fn entry() -> impl proptest::strategy::Strategy<Value = Entry> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u8>().prop_map(Entry::Trusted),
            any::<u8>().prop_map(Entry::Stranger),
            // No commas (they would make two entries), and no hex digits,
            // so never an address (`a::b` would be one).
            "[g-z_][g-z_.:-]{0,8}".prop_map(Entry::Garbage),
        ]
    }

    proptest::proptest! {
        /// However the list is spread over lines and spaced, the client is
        /// the rightmost entry that is not trusted; the walk stops at the
        /// first malformed one, keeping the last address read.
        #[test]
        fn the_walk_follows_the_rule(
            entries in proptest::collection::vec(entry(), 0..12),
            cuts in proptest::collection::vec(proptest::prelude::any::<bool>(), 12),
            spaces in proptest::collection::vec(0usize..3, 12),
        ) {
            let mut fields = vec![String::new()];
            for (i, e) in entries.iter().enumerate() {
                let last = fields.last_mut().unwrap();
                if !last.is_empty() {
                    last.push(',');
                }
                last.push_str(&" ".repeat(spaces[i]));
                last.push_str(&e.text());
                if cuts[i] {
                    fields.push(String::new());
                }
            }
            let fields: Vec<&str> = fields.iter().map(String::as_str).filter(|f| !f.is_empty()).collect();
            let got = client("127.0.0.1", &fields, &["127.0.0.1", "10.0.0.0/8"]);
            let mut nearest = ip("127.0.0.1");
            let mut expected = None;
            for e in entries.iter().rev() {
                match e {
                    Entry::Garbage(text) => {
                        expected = Some(Client::Malformed { nearest, entry: text.clone() });
                        break;
                    }
                    Entry::Trusted(_) => nearest = ip(&e.text()),
                    Entry::Stranger(_) => {
                        nearest = ip(&e.text());
                        break;
                    }
                }
            }
            let expected = expected.unwrap_or(match entries.is_empty() {
                true => Client::NotForwarded,
                false => Client::Forwarded(nearest),
            });
            proptest::prop_assert_eq!(got, expected);
        }

        /// Any bytes at all: never a panic, and from a stranger never
        /// believed.
        #[test]
        fn any_bytes_are_safe(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let trusted = proxies(&["127.0.0.1"]);
            let _ = client_address(ip("127.0.0.1"), [bytes.as_slice()], &trusted);
            let stranger = client_address(ip("198.51.100.4"), [bytes.as_slice()], &trusted);
            proptest::prop_assert_eq!(stranger.address(ip("198.51.100.4")), ip("198.51.100.4"));
        }
    }

    #[test]
    fn bad_trusted_proxies_say_what_would_work() {
        let err = "127.0.0.1:8080".parse::<TrustedProxy>().unwrap_err();
        assert!(err.contains("without a port (127.0.0.1)"), "{err}");
        let err = "nginx".parse::<TrustedProxy>().unwrap_err();
        assert!(err.contains("try 127.0.0.1"), "{err}");
        let err = "10.0.0.0/33".parse::<TrustedProxy>().unwrap_err();
        assert!(err.contains("0 to 32"), "{err}");
        assert!("::/129".parse::<TrustedProxy>().is_err());
        assert!("10.0.0.0/x".parse::<TrustedProxy>().is_err());
    }
}
