//! The kernel's view of a connection: `getsockopt(TCP_INFO)` (Linux,
//! tcp(7)), for the page's connection table.
//!
//! The loop sees a connection through its own machines (`Close`, the
//! protocol); the kernel keeps another, the TCP state machine of RFC 9293
//! §3.3.2, with its round-trip estimate and its unacknowledged and
//! retransmitted segments. `TCP_INFO` lets a process read it for a socket
//! it holds. Neither std nor socket2 offers it, so this file makes the one
//! system call through `libc`, and this is the only `unsafe` in the crate
//! (`src/lib.rs` denies it everywhere else).
//!
//! What it cannot show: a socket the server has closed. After `close`, the
//! kernel may keep the connection for a while (`LAST_ACK` until the peer's
//! ACK, `TIME_WAIT` for 60 s on Linux), but the process holds no descriptor
//! to ask with. The page says so rather than inventing a row.

use std::io;
use std::time::Duration;

/// The TCP states, by the numbers Linux gives them (`include/net/tcp_states.h`),
/// named as RFC 9293 §3.3.2 names them.
const STATES: [&str; 12] = [
    "?",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECEIVED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "TIME_WAIT",
    "CLOSED",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

/// What the page shows of the kernel's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TcpInfo {
    /// The TCP state, RFC 9293's name for it.
    pub state: &'static str,
    /// The kernel's smoothed round-trip time (SRTT, RFC 6298 §2).
    pub rtt: Duration,
    /// Segments sent and not yet acknowledged.
    pub unacked: u32,
    /// Segments being retransmitted now.
    pub retrans: u32,
    /// Retransmissions over the connection's life.
    pub total_retrans: u32,
    /// The congestion window, in segments.
    pub cwnd: u32,
}

/// The start of Linux's `struct tcp_info` (`include/uapi/linux/tcp.h`), the
/// part every kernel since 2.6.x fills: seven `u8`s, one byte of bit
/// fields, then 24 `u32`s. The kernel writes at most the length it is
/// given, and newer kernels append fields after these without moving them.
#[repr(C)]
#[derive(Default)]
struct RawTcpInfo {
    state: u8,
    ca_state: u8,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    options: u8,
    wscale: u8,
    bit_fields: u8,
    rto: u32,
    ato: u32,
    snd_mss: u32,
    rcv_mss: u32,
    unacked: u32,
    sacked: u32,
    lost: u32,
    retrans: u32,
    fackets: u32,
    last_data_sent: u32,
    last_ack_sent: u32,
    last_data_recv: u32,
    last_ack_recv: u32,
    pmtu: u32,
    rcv_ssthresh: u32,
    rtt: u32,
    rttvar: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
}

/// Asks the kernel about `socket`. One system call; the loop makes it only
/// while someone watches (the page's table, `--step`'s close narration).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(super) fn tcp_info(socket: &impl std::os::fd::AsRawFd) -> io::Result<TcpInfo> {
    let mut raw = RawTcpInfo::default();
    let mut len = std::mem::size_of::<RawTcpInfo>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes at the pointer and then
    // stores how many it wrote in `len` (getsockopt(2)). The pointer is to
    // `raw`, a live, exclusively borrowed `repr(C)` value of exactly `len`
    // bytes, aligned for its type; every field is a plain integer, so any
    // bytes the kernel writes (or leaves as our zeros) are a valid value.
    // `len` is a live local. The descriptor belongs to `socket`, which is
    // borrowed for the whole call, so it cannot be closed (or reused for
    // another file) meanwhile; an fd that is not a TCP socket is answered
    // with an error, not undefined behaviour.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut raw as *mut RawTcpInfo).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpInfo {
        state: STATES.get(raw.state as usize).copied().unwrap_or("?"),
        rtt: Duration::from_micros(raw.rtt.into()),
        unacked: raw.unacked,
        retrans: raw.retrans,
        total_retrans: raw.total_retrans,
        cwnd: raw.snd_cwnd,
    })
}

/// Elsewhere the kernel's view is not available (macOS has a different
/// call, `TCP_CONNECTION_INFO`; it is not wired up).
#[cfg(not(target_os = "linux"))]
pub(super) fn tcp_info(_socket: &impl std::os::fd::AsRawFd) -> io::Result<TcpInfo> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP_INFO is read on Linux only",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn the_layout_is_the_kernels() {
        // 8 one-byte fields and 24 four-byte ones, as in linux/tcp.h.
        assert_eq!(std::mem::size_of::<RawTcpInfo>(), 8 + 24 * 4);
    }

    #[test]
    fn a_connected_socket_is_established_and_a_closed_peer_shows() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(tcp_info(&server).unwrap().state, "ESTABLISHED");
        // The peer closes: our side has received its FIN and waits for our
        // own close (RFC 9293 §3.6, case 2).
        // Reading the end of the stream proves the FIN has arrived.
        drop(client);
        let mut server = server;
        server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let n = std::io::Read::read(&mut server, &mut [0; 8]).unwrap();
        assert_eq!(n, 0);
        assert_eq!(tcp_info(&server).unwrap().state, "CLOSE_WAIT");
        // Our FIN goes out: LAST_ACK until the peer's ACK, which on
        // loopback may already have come (CLOSED).
        server.shutdown(std::net::Shutdown::Write).unwrap();
        let state = tcp_info(&server).unwrap().state;
        assert!(["LAST_ACK", "CLOSED"].contains(&state), "{state}");
    }

    #[test]
    fn a_socket_that_is_not_tcp_is_an_error() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(tcp_info(&udp).is_err());
    }
}
