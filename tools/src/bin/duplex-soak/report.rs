//! The report at the end of a soak, and the checks that decide its exit
//! status.

use crate::mib;
use crate::run::{After, Goodbyes, Run, Settled};
use crate::server::json_number;
use duplex_tools::json::Json;
use std::time::Duration;

/// The transports the HTTP members use, as `GET /stats` names them, and
/// the requests of theirs each one serves.
const HTTP_TRANSPORTS: [(&str, &[&str]); 4] = [
    ("sse", &["events"]),
    ("longpoll", &["longpoll"]),
    // A vanished member's probe is a short poll too.
    ("poll", &["poll", "probe"]),
    ("send", &["send"]),
];

/// What the phases found, for the report.
pub struct Findings {
    /// `GET /stats` before any client connected.
    pub stats_before: String,
    pub setup: Duration,
    pub load: Duration,
    pub settled: Settled,
    pub goodbyes: Goodbyes,
    pub after: After,
    pub total: Duration,
}

impl Run<'_> {
    /// Prints the report; `true` if every check passed.
    pub fn report(&self, f: &Findings) -> bool {
        println!();
        println!("==== duplex-soak report ====");
        println!(
            "durations: setup {:.1} s, load {:.1} s, settle {:.1} s, goodbyes {:.1} s, until /stats shows 0 {:.1} s, total {:.1} s",
            f.setup.as_secs_f64(),
            f.load.as_secs_f64(),
            f.settled.took.as_secs_f64(),
            f.goodbyes.took.as_secs_f64(),
            f.after.took.as_secs_f64(),
            f.total.as_secs_f64()
        );
        self.print_connections();
        self.print_chat(f);
        self.print_http(f);
        self.print_others(f);
        self.print_server(f);
        self.checks(f)
    }

    fn print_connections(&self) {
        let t = &self.soak.t;
        println!("connections opened, by kind:");
        for (kind, n) in &t.opened {
            let failed = t.connect_failed.get(kind).copied().unwrap_or(0);
            let failed = if failed > 0 {
                format!(" ({failed} failed to connect)")
            } else {
                String::new()
            };
            println!("  {kind:<22} {n:>6}{failed}");
        }
    }

    fn print_chat(&self, f: &Findings) {
        let (cli, t) = (&self.cli, &self.soak.t);
        println!(
            "chat: {} members ready of {} ({} senders at {}/s, {} flooders at {}/s x {} B)",
            t.members_ready,
            cli.members + cli.flood_rooms,
            self.soak.senders.len().saturating_sub(cli.flood_rooms),
            cli.send_rate,
            cli.flood_rooms,
            cli.flood_rate,
            cli.flood_size
        );
        println!(
            "  seq lines sent {} ({} by senders, {} by flooders), received {} (expected {}), {:.0} sent/s",
            t.seq_sent,
            t.seq_sent - t.flood_sent,
            t.flood_sent,
            t.seq_received,
            f.settled.seq_expected,
            t.seq_sent as f64 / f.load.as_secs_f64()
        );
        println!(
            "  violations: missing {} | duplicate/reordered {} | misattributed {} | not received by the end {}",
            t.seq_missing, t.seq_repeated, t.seq_misattributed, t.seq_tail_missing
        );
        println!("  error lines to members: {}", t.error_lines);
    }

    /// The HTTP members, and what the server counted for their transports.
    fn print_http(&self, f: &Findings) {
        let (cli, h) = (&self.cli, &self.soak.t.http);
        let list = |map: &std::collections::BTreeMap<&str, u64>| {
            let items: Vec<String> = map.iter().map(|(k, n)| format!("{n} {k}")).collect();
            items.join(", ")
        };
        println!(
            "http: {} members ready of {}; joined by kind: {}",
            h.ready,
            cli.http_members,
            list(&h.joined)
        );
        println!(
            "  requests: {}; keep-alive connections the server closed idle: {}; sender lines held back: {}",
            list(&h.requests),
            h.idle_closed,
            h.held_back
        );
        println!(
            "  leaving: /quit {} over, {} not | silent {} swept, {} still known (of {} planned) | event streams resumed with Last-Event-ID: {}",
            h.quit_ok, h.quit_failed, h.swept, h.not_swept, h.vanishing, h.resumed
        );
        println!(
            "  room lines read {} ({}), each checked by number: lost {} | doubled/reordered {} | missed {} | foreign {} | bad answers {} | 410 while present {} | connections lost {} | late {}",
            h.lines_read(),
            list(&h.lines),
            h.lost,
            h.doubled, h.missed, h.foreign, h.bad_answers, h.expired, h.conns_lost, h.timeouts
        );
        let served: Vec<String> = HTTP_TRANSPORTS
            .iter()
            .map(|(via, _)| match transport(&f.after.stats, via) {
                Some((requests, delivered)) => format!(
                    "{via} {requests} requests (soak made {}), {delivered} lines delivered (soak read {})",
                    self.asked(via),
                    h.lines.get(via).copied().unwrap_or(0)
                ),
                None => format!("{via} ?"),
            })
            .collect();
        println!("  server transports (GET /stats): {}", served.join(" | "));
    }

    /// Requests the HTTP members made that `GET /stats` counts under `via`.
    fn asked(&self, via: &str) -> u64 {
        let kinds = HTTP_TRANSPORTS
            .iter()
            .find(|(v, _)| *v == via)
            .map_or(&[][..], |(_, k)| k);
        kinds
            .iter()
            .map(|k| self.soak.t.http.requests.get(k).copied().unwrap_or(0))
            .sum()
    }

    /// Echo clients, slow readers, churners, and the goodbyes.
    fn print_others(&self, f: &Findings) {
        let (cli, t) = (&self.cli, &self.soak.t);
        println!(
            "echo: {} clients, sent {}, received {} ({:.1} MB), mismatches {}, unanswered {}",
            t.echo_ready,
            t.echo_sent,
            t.echo_received,
            t.echo_bytes as f64 / 1e6,
            t.echo_mismatches,
            t.echo_unanswered
        );
        println!(
            "slow readers: {} started (hold {} s), {} still open at the end",
            t.slow_started, cli.slow_hold, f.settled.leftover_slow
        );
        for (outcome, n) in &t.slow_outcomes {
            println!("  {n:>4} x {outcome}");
        }
        println!(
            "churn: {} started ({:.0}/min): {} polite, {} dropped after their line, {} dropped early, {} failed, {} still open",
            t.churn_started,
            t.churn_started as f64 * 60.0 / f.load.as_secs_f64(),
            t.churn_polite,
            t.churn_dropped,
            t.churn_dropped_early,
            t.churn_failed,
            f.settled.leftover_churn
        );
        println!(
            "well-behaved closed by the server: {}, goodbyes without the server's close: {}, left open: {}",
            t.unexpected_closes, t.close_timeouts, f.goodbyes.left_open
        );
    }

    /// The server's memory and its own counts, before and after.
    fn print_server(&self, f: &Findings) {
        print_rss("server", &self.rss);
        println!("GET /stats before: {}", f.stats_before);
        println!("GET /stats after:  {}", f.after.stats);
        if let Some(c) = &self.cluster {
            let restarts: Vec<String> = c
                .restarts
                .iter()
                .map(|d| format!("{:.0} s", d.as_secs_f64()))
                .collect();
            println!(
                "cluster: Redis killed and restarted empty at {}",
                restarts.join(" and ")
            );
            print_rss("second instance", &c.peer_rss);
            println!(
                "second instance GET /stats after: {}",
                f.after.peer_stats.as_deref().unwrap_or("")
            );
        }
        if let Some(status) = &self.watch.crashed {
            println!("THE SERVER EXITED during the run: {status}");
        }
    }

    /// The HTTP members' checks, and the server's own count of their
    /// transports.
    fn http_checks(&self, f: &Findings) -> [(&'static str, bool); 8] {
        let (cli, h) = (&self.cli, &self.soak.t.http);
        let served = HTTP_TRANSPORTS.iter().all(|(via, _)| {
            transport(&f.after.stats, via).is_some_and(|(requests, delivered)| {
                (requests > 0 || delivered > 0) && requests == self.asked(via)
            })
        });
        [
            ("every HTTP member ready", h.ready == cli.http_members),
            (
                "HTTP members still there at the end",
                f.goodbyes.http_at_end == cli.http_members,
            ),
            (
                "HTTP lines in order: none lost, doubled, reordered or missed",
                h.lost + h.doubled + h.missed == 0,
            ),
            (
                "HTTP answers as they should be: nothing foreign, no bad answer, no 410 while present",
                h.foreign + h.bad_answers + h.expired == 0,
            ),
            (
                "no HTTP connection lost, no answer late",
                h.conns_lost + h.timeouts == 0,
            ),
            (
                "every HTTP /quit over: 204, then the stream ended (after * bye) or the poll refused",
                h.quit_failed == 0 && h.quit_ok >= cli.http_members as u64,
            ),
            (
                "every silent HTTP member forgotten by the server in time",
                h.not_swept == 0 && h.swept == h.vanishing,
            ),
            (
                "GET /stats counts sse, longpoll, poll and send, request for request",
                served,
            ),
        ]
    }

    /// Prints each check, ok or FAIL; `true` if all passed.
    fn checks(&self, f: &Findings) -> bool {
        let (cli, t) = (&self.cli, &self.soak.t);
        let after = &f.after;
        let hub_empty =
            json_number(&after.stats, "members") == Some(0) && json_number(&after.stats, "rooms") == Some(0);
        let checks = [
            ("server ran to the end", self.watch.crashed.is_none()),
            (
                "every member ready",
                t.members_ready == cli.members + cli.flood_rooms,
            ),
            ("every echo client open", t.echo_ready == cli.echoes),
            (
                "no sequence violation",
                t.seq_missing + t.seq_repeated + t.seq_misattributed + t.seq_tail_missing == 0,
            ),
            ("every line delivered", t.seq_received == f.settled.seq_expected),
            ("no error line to a member", t.error_lines == 0),
            ("no echo mismatch", t.echo_mismatches + t.echo_unanswered == 0),
            (
                "no well-behaved client closed by the server",
                t.unexpected_closes == 0,
            ),
            (
                "members still there at the end",
                f.goodbyes.members_at_end == cli.members + cli.flood_rooms,
            ),
            (
                "every slow reader closed by the server (1008 / too slow)",
                t.slow_closed() == t.slow_started,
            ),
            (
                "no polite goodbye left unanswered",
                t.close_timeouts == 0 && f.goodbyes.left_open == 0,
            ),
            ("GET /stats back to zero connections", after.others == 0),
            (
                "... within 10 s of the last client leaving",
                after.others == 0 && after.took < Duration::from_secs(10),
            ),
            ("hub empty at the end", hub_empty),
            (
                "cluster: Redis restarted twice",
                self.cluster.as_ref().is_none_or(|c| c.restarts.len() == 2),
            ),
            (
                "cluster: the second instance counts no connection, no member, no room",
                f.after.peer_stats.as_deref().is_none_or(|s| {
                    json_number(s, "total") == Some(1)
                        && json_number(s, "members") == Some(0)
                        && json_number(s, "rooms") == Some(0)
                }),
            ),
        ];
        let checks = checks.into_iter().chain(self.http_checks(f));
        println!("checks:");
        let mut all = true;
        for (what, ok) in checks {
            println!("  [{}] {what}", if ok { "ok" } else { "FAIL" });
            all &= ok;
        }
        println!("result: {}", if all { "PASS" } else { "FAIL" });
        all
    }
}

/// A process's memory: before, at its peak during the load, after, and
/// every sample.
fn print_rss(who: &str, rss: &crate::run::RssSamples) {
    let peak = rss.during.iter().map(|(_, b)| *b).max().unwrap_or(0);
    let samples: Vec<String> = rss
        .during
        .iter()
        .map(|(at, b)| format!("{:.0}s {:.1}", at.as_secs_f64(), mib(*b)))
        .collect();
    println!(
        "{who} RSS: before {:.1} MiB, peak during {:.1} MiB, after {:.1} MiB",
        mib(rss.before.unwrap_or(0)),
        mib(peak),
        mib(rss.after.unwrap_or(0))
    );
    println!("  samples (MiB): {}", samples.join(", "));
}

/// A transport's `requests` and `delivered` in a `GET /stats` answer.
fn transport(stats: &str, via: &str) -> Option<(u64, u64)> {
    let json = Json::parse(stats).ok()?;
    let counts = json.get("transports")?.get(via)?;
    let number = |key: &str| counts.get(key).and_then(Json::as_u64);
    Some((number("requests")?, number("delivered")?))
}
