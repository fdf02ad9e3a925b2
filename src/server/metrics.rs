//! `GET /metrics`: the loop's counters in the Prometheus text exposition
//! format, version 0.0.4, for a Prometheus server to scrape.
//!
//! The same numbers as `GET /stats` (see `stats.rs`), written as the
//! format wants them: one family per line group, each with `# HELP` (what
//! it counts) and `# TYPE` (counter, gauge or histogram), then one line per
//! labelled sample:
//!
//! ```text
//! # HELP duplex_connections Connections open now, by door and endpoint.
//! # TYPE duplex_connections gauge
//! duplex_connections{door="web",endpoint="/chat"} 3
//! ```
//!
//! Names follow Prometheus's conventions: the `duplex_` prefix, base units
//! (`_seconds`, `_bytes`), and `_total` on counters, which only grow while
//! the process lives. A histogram is written as cumulative buckets
//! (`_bucket{le="0.001"}` counts every turn that took at most 1 ms,
//! `le="+Inf"` all of them), then `_sum` and `_count`.
//!
//! The loop answers it rather than a handler, because one gauge, the bytes
//! waiting in output queues, is a sum over every connection: one pass over
//! the slab per scrape, instead of a running total kept on every write.

use super::close::Why;
use super::conn::Via;
use super::context::Shared;
use super::stats::{ViaStats, TURN_BOUNDS};
use super::Server;
use crate::http::{Request, Response, Status};
use mio::Token;
use std::fmt::{Display, Write};

/// The content type of version 0.0.4 of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the loop adds to the counters: the output queues, summed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Queues {
    /// Bytes waiting in all output queues (and TLS records not yet sent).
    pub bytes: usize,
    /// The most bytes waiting for one connection.
    pub largest: usize,
    /// Connections over `--max-output`, their reading paused.
    pub over_limit: usize,
}

impl Server {
    /// `GET /metrics` (or HEAD).
    pub(super) fn serve_metrics(&mut self, token: Token, request: &Request) {
        let mut queues = Queues::default();
        for (key, conn) in &self.conns {
            let pending = conn.out.len() + self.sessions.sealed(Token(key));
            queues.bytes += pending;
            queues.largest = queues.largest.max(pending);
            queues.over_limit += usize::from(conn.over_limit);
        }
        let response = Response::new(Status::OK)
            .header("Content-Type", CONTENT_TYPE)
            .header("Cache-Control", "no-store")
            .body(text(&self.shared, queues).into_bytes())
            .head_only(request.method == "HEAD")
            .close(!request.keep_alive());
        self.respond(token, response);
    }
}

/// One of a transport's counters.
type PerVia = fn(&ViaStats) -> u64;

/// The whole exposition.
pub(super) fn text(shared: &Shared, queues: Queues) -> String {
    let s = &shared.stats;
    let hub = shared.hub.stats();
    let mut out = Exposition::default();

    out.family(
        "duplex_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    out.sample(
        "duplex_uptime_seconds",
        &[],
        shared.now.duration_since(s.started).as_secs_f64(),
    );

    out.family(
        "duplex_connections",
        "gauge",
        "Connections open now, by door and endpoint (http: a request being read or answered).",
    );
    let line = if shared.config.line_echo { "echo" } else { "chat" };
    for (door, endpoint, n) in [
        ("line", line, s.line),
        ("web", "http", s.http),
        ("web", "/echo", s.ws_echo),
        ("web", "/chat", s.ws_chat),
        ("web", "/clock", s.ws_clock),
        ("web", "/socket.io/", s.ws_socketio),
        ("web", "/events", s.event_streams),
    ] {
        out.sample("duplex_connections", &[("door", door), ("endpoint", endpoint)], n);
    }
    out.family(
        "duplex_connections_closing",
        "gauge",
        "Connections saying goodbye now.",
    );
    out.sample("duplex_connections_closing", &[], s.closing);

    out.family(
        "duplex_connections_accepted_total",
        "counter",
        "Connections accepted, by door.",
    );
    for (door, n) in [("line", s.accepted_by_door[0]), ("web", s.accepted_by_door[1])] {
        out.sample("duplex_connections_accepted_total", &[("door", door)], n);
    }
    out.family(
        "duplex_connections_refused_total",
        "counter",
        "Connections turned away at accept (connection limit, shutting down).",
    );
    out.sample("duplex_connections_refused_total", &[], s.refused);

    out.family(
        "duplex_closes_total",
        "counter",
        "Connections freed, by why they closed.",
    );
    for (reason, n) in Why::REASONS.iter().zip(s.closes) {
        out.sample("duplex_closes_total", &[("reason", reason)], n);
    }

    out.family(
        "duplex_http_requests_total",
        "counter",
        "HTTP requests read on the web door.",
    );
    out.sample("duplex_http_requests_total", &[], s.http_requests);
    out.family(
        "duplex_http_refusals_total",
        "counter",
        "HTTP refusals sent, by status (only statuses sent at least once).",
    );
    for (i, &n) in s.refusals.iter().enumerate() {
        if n > 0 {
            out.sample(
                "duplex_http_refusals_total",
                &[("status", &(400 + i).to_string())],
                n,
            );
        }
    }

    let per_via: [(&str, &str, PerVia); 6] = [
        (
            "duplex_messages_received_total",
            "Messages received, by transport.",
            |v| v.messages_in,
        ),
        (
            "duplex_messages_sent_total",
            "Messages queued to clients, by transport.",
            |v| v.messages_out,
        ),
        (
            "duplex_received_bytes_total",
            "Bytes read, by transport (HTTP heads included).",
            |v| v.bytes_in,
        ),
        (
            "duplex_sent_bytes_total",
            "Bytes written, by transport (HTTP heads included).",
            |v| v.bytes_out,
        ),
        (
            "duplex_transport_requests_total",
            "HTTP requests, by chat transport.",
            |v| v.requests,
        ),
        (
            "duplex_chat_lines_delivered_total",
            "Chat lines delivered, by transport.",
            |v| v.delivered,
        ),
    ];
    for (name, help, value) in per_via {
        out.family(name, "counter", help);
        for via in Via::ALL {
            out.sample(name, &[("transport", via.name())], value(&s.via[via as usize]));
        }
    }

    out.family(
        "duplex_output_queue_bytes",
        "gauge",
        "Bytes waiting in output queues now, all connections together.",
    );
    out.sample("duplex_output_queue_bytes", &[], queues.bytes);
    out.family(
        "duplex_output_queue_largest_bytes",
        "gauge",
        "Bytes waiting for the connection with the most.",
    );
    out.sample("duplex_output_queue_largest_bytes", &[], queues.largest);
    out.family(
        "duplex_output_over_limit_connections",
        "gauge",
        "Connections over --max-output now, their reading paused.",
    );
    out.sample("duplex_output_over_limit_connections", &[], queues.over_limit);

    out.family(
        "duplex_hub_members",
        "gauge",
        "Chat members now, every door and transport.",
    );
    out.sample("duplex_hub_members", &[], hub.members);
    out.family("duplex_hub_rooms", "gauge", "Chat rooms now.");
    out.sample("duplex_hub_rooms", &[], hub.rooms);
    out.family(
        "duplex_http_members",
        "gauge",
        "Chat members over plain HTTP now.",
    );
    out.sample("duplex_http_members", &[], shared.members.len());
    out.family(
        "duplex_socketio_sessions",
        "gauge",
        "socket.io (Engine.IO) sessions open now, over polling or WebSocket.",
    );
    out.sample("duplex_socketio_sessions", &[], shared.sio.len());
    if let Some(relay) = &shared.relay {
        relay_families(&mut out, relay);
    }

    let turns = &s.turns;
    out.family(
        "duplex_loop_turns_total",
        "counter",
        "Turns of the event loop completed.",
    );
    out.sample("duplex_loop_turns_total", &[], turns.count);
    let name = "duplex_loop_turn_duration_seconds";
    out.family(
        name,
        "histogram",
        "How long each loop turn took, from waking to sleeping again.",
    );
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0;
    for (bound, n) in TURN_BOUNDS.iter().zip(turns.counts) {
        cumulative += n;
        out.sample(&bucket, &[("le", &bound.as_secs_f64().to_string())], cumulative);
    }
    out.sample(&bucket, &[("le", "+Inf")], turns.count);
    out.sample(&format!("{name}_sum"), &[], turns.sum.as_secs_f64());
    out.sample(&format!("{name}_count"), &[], turns.count);
    out.text
}

/// The text format, written line by line.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// `# HELP` and `# TYPE` for a family, before its samples.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// `name{label="value",...} value`.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape(value, true));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// The relay to other instances (`--redis`): its links and its entries.
fn relay_families(out: &mut Exposition, relay: &super::context::RelayView) {
    out.family(
        "duplex_relay_link_up",
        "gauge",
        "1 while the relay's link to Redis is ready, by side (writer: XADD, reader: XREAD).",
    );
    for (side, state) in [("writer", relay.writer), ("reader", relay.reader)] {
        let up = u8::from(state == crate::relay::LinkState::Ready);
        out.sample("duplex_relay_link_up", &[("side", side)], up);
    }
    out.family(
        "duplex_relay_queued_entries",
        "gauge",
        "Entries of this instance waiting for Redis to answer (bounded by --redis-buffer).",
    );
    out.sample("duplex_relay_queued_entries", &[], relay.queued);
    out.family(
        "duplex_relay_entries_total",
        "counter",
        "Stream entries: added by this instance, applied from others, skipped as duplicates, \
         missed (trimmed or lost), dropped unsent.",
    );
    let s = relay.stats;
    for (what, n) in [
        ("added", s.added),
        ("applied", s.applied),
        ("duplicate", s.duplicates),
        ("missed", s.missed),
        ("dropped", s.dropped),
    ] {
        out.sample("duplex_relay_entries_total", &[("what", what)], n);
    }
}

/// The format's escapes: `\\` and newline everywhere, `\"` in label values.
fn escape(text: &str, quoted: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quoted => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_escapes() {
        let mut out = Exposition::default();
        out.family("x_total", "counter", "A \\ count.");
        out.sample("x_total", &[("path", "/a\"b\n")], 3);
        out.sample("y", &[], 0.5);
        assert_eq!(
            out.text,
            "# HELP x_total A \\\\ count.\n# TYPE x_total counter\nx_total{path=\"/a\\\"b\\n\"} 3\ny 0.5\n"
        );
    }

    #[test]
    fn every_close_reason_has_a_name() {
        use std::time::Duration;
        let whys = [
            Why::PeerClosed("x"),
            Why::PeerCloseFrame(None),
            Why::HandshakeComplete,
            Why::Quit,
            Why::Shutdown,
            Why::Idle(Duration::ZERO),
            Why::NoPong(Duration::ZERO),
            Why::TooSlow,
            Why::OverHardLimit(0),
            Why::Violation(crate::ws::CloseCode::PROTOCOL_ERROR, String::new()),
            Why::Answered(Status::OK),
            Why::TooMuchPipelined,
            Why::MemberLeft,
            Why::Error(String::new()),
            Why::Tls(String::new()),
            Why::CloseTimeout,
            Why::FileChanged(String::new()),
            Why::Answered(Status::NOT_FOUND),
        ];
        let mut seen: Vec<usize> = whys.iter().map(Why::reason_index).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), whys.len(), "two reasons share a name");
        assert_eq!(seen.len(), Why::REASONS.len() - 1, "a name no reason uses");
    }
}
