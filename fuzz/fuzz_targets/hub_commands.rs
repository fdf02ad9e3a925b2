//! Lines from a few members into one hub, as any door would hand them
//! over: it may refuse, never panic, and its books always agree (every
//! member in exactly one room, names unique by their folded key, history
//! within its bounds; see `Hub::check_consistency`).
//!
//! The input is lines. The first byte of each picks a member (its low two
//! bits) and what happens (the next three): a member not there joins; one
//! that is there leaves, sends a binary message, gets a clock tick, or
//! (most often) says the rest of the line, which may be any command.
#![no_main]

use duplex::hub::{fold_name, Action, HistoryLimits, Hub, MemberId, Transport};
use libfuzzer_sys::fuzz_target;
use std::time::SystemTime;

const NOW: SystemTime = SystemTime::UNIX_EPOCH;

fuzz_target!(|data: &[u8]| {
    // Small bounds, so that the fuzzer reaches them.
    let limits = HistoryLimits { lines: 8, room_bytes: 600, total_bytes: 1500 };
    let mut hub = Hub::new(200, limits);
    let mut members: [Option<MemberId>; 4] = [None; 4];
    for line in data.split(|&b| b == b'\n') {
        let Some((&op, rest)) = line.split_first() else { continue };
        let slot = usize::from(op & 3);
        match (members[slot], (op >> 2) & 7) {
            (None, kind) => {
                let transport = match kind % 3 {
                    0 => Transport::Line,
                    1 => Transport::WebSocket,
                    _ => Transport::Http,
                };
                members[slot] = Some(hub.join(slot, transport, "fuzz"));
            }
            (Some(id), 0) => {
                hub.leave(id);
                members[slot] = None;
            }
            (Some(id), 1) => hub.binary(id, rest),
            (Some(id), 2) => {
                let _ = hub.clock_tick(id, u32::from(op), NOW);
            }
            (Some(id), _) => {
                let text = String::from_utf8_lossy(rest);
                // The key is stable: folding a key changes nothing.
                let key = fold_name(&text);
                assert_eq!(fold_name(&key), key, "{text:?}");
                hub.text(id, &text, NOW);
            }
        }
        // Carry out what the loop would: a member that said /quit leaves.
        let outbox = hub.drain();
        for action in &outbox.actions {
            if let Action::Quit { member } = action {
                hub.leave(*member);
                members.iter_mut().filter(|m| **m == Some(*member)).for_each(|m| *m = None);
            }
        }
        hub.recycle(outbox);
        if let Err(why) = hub.check_consistency() {
            panic!("the hub's books disagree: {why}");
        }
        for (slot, member) in members.iter().enumerate() {
            if let Some(id) = member {
                assert_eq!(hub.link(*id), Some(slot));
            }
        }
    }
});
