//! Who is at the other end of a connection: the socket's peer, or, behind
//! a trusted reverse proxy, the client that proxy speaks for
//! (`--trust-proxy`; the rule is in [`crate::forwarded`]).
//!
//! Every log line, greeting and `/stats` answer names a connection by its
//! `Peer`, so behind nginx they name the real client and the proxy
//! connection it came through: `203.0.113.7 via 127.0.0.1:40312`.

use super::Stats;
use crate::forwarded::{client_address, Client, TrustedProxy};
use crate::http::Request;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Peer {
    /// The socket's peer is the client.
    Direct(SocketAddr),
    /// The socket's peer is a trusted proxy, speaking for a client. Boxed:
    /// rare, and every connection pays for the largest variant.
    Proxied(Box<Proxied>),
}

/// A client behind a trusted proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Proxied {
    /// The client, as the proxy says (it gives no port).
    pub client: IpAddr,
    /// The proxy's connection to us.
    pub proxy: SocketAddr,
}

impl Peer {
    /// The socket's own peer: the proxy, when there is one.
    pub fn socket(&self) -> SocketAddr {
        match self {
            Peer::Direct(addr) => *addr,
            Peer::Proxied(proxied) => proxied.proxy,
        }
    }

    /// The client's address, as far as it can be known.
    pub fn client(&self) -> IpAddr {
        match self {
            Peer::Direct(addr) => addr.ip(),
            Peer::Proxied(proxied) => proxied.client,
        }
    }

    /// Reads who the client is from a request's `X-Forwarded-For`, and
    /// counts what was found. Each request says it again: a proxy that
    /// reuses its connection to us may carry another client's next
    /// request on it.
    pub fn on_request(&mut self, request: &Request, trusted: &[TrustedProxy], stats: &mut Stats) {
        let socket = self.socket();
        let fields = request.headers_named("x-forwarded-for");
        let client = client_address(socket.ip(), fields, trusted);
        match &client {
            Client::Direct | Client::NotForwarded => {}
            Client::Untrusted => {
                stats.forwarded_ignored += 1;
                log::debug!(
                    "{socket}: X-Forwarded-For ignored: {} is not a trusted proxy (--trust-proxy)",
                    socket.ip()
                );
            }
            Client::Forwarded(ip) => {
                stats.forwarded += 1;
                log::trace!("{socket}: forwarded for {ip}");
            }
            Client::Malformed { nearest, entry } => {
                stats.forwarded_malformed += 1;
                log::warn!("{socket}: X-Forwarded-For entry {entry:?} is not an address; the client is taken to be {nearest}");
            }
        }
        *self = match client {
            Client::Forwarded(client) | Client::Malformed { nearest: client, .. } => {
                Peer::Proxied(Box::new(Proxied {
                    client,
                    proxy: socket,
                }))
            }
            Client::Direct | Client::Untrusted | Client::NotForwarded => Peer::Direct(socket),
        };
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Direct(addr) => write!(f, "{addr}"),
            Peer::Proxied(proxied) => write!(f, "{} via {}", proxied.client, proxied.proxy),
        }
    }
}
