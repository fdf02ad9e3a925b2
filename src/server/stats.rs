//! The loop's counters, for `/stats` and `GET /stats`.

use super::conn::{Endpoint, State, Via};
use super::Door;
use std::time::Instant;

#[derive(Debug)]
pub struct Stats {
    pub started: Instant,
    /// Connections by what they are now.
    pub line: usize,
    pub http: usize,
    pub ws_echo: usize,
    pub ws_chat: usize,
    pub ws_clock: usize,
    pub closing: usize,
    /// Since start.
    pub accepted: u64,
    pub refused: u64,
    pub http_requests: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Per transport, indexed like `Via::ALL`.
    pub via: [ViaStats; 7],
    pub event_streams: usize,
}

/// What one transport cost: requests made, bytes on the wire both ways
/// (HTTP heads included), and chat lines delivered with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViaStats {
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub delivered: u64,
}

impl Stats {
    pub fn new(now: Instant) -> Stats {
        Stats {
            started: now,
            line: 0,
            http: 0,
            ws_echo: 0,
            ws_chat: 0,
            ws_clock: 0,
            closing: 0,
            accepted: 0,
            refused: 0,
            http_requests: 0,
            messages_in: 0,
            messages_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            via: [ViaStats::default(); 7],
            event_streams: 0,
        }
    }

    pub fn via(&mut self, via: Via) -> &mut ViaStats {
        &mut self.via[via as usize]
    }

    pub fn websocket_total(&self) -> usize {
        self.ws_echo + self.ws_chat + self.ws_clock
    }

    pub(super) fn connected(&mut self, door: Door) {
        self.accepted += 1;
        match door {
            Door::Line => self.line += 1,
            Door::Web => self.http += 1,
        }
    }

    pub(super) fn state_changed(&mut self, old: &State, new: &State) {
        *self.count(old) -= 1;
        *self.count(new) += 1;
    }

    pub(super) fn disconnected(&mut self, _door: Door, state: &State) {
        *self.count(state) -= 1;
    }

    fn count(&mut self, state: &State) -> &mut usize {
        match state {
            State::Line(_) => &mut self.line,
            State::Http(_) => &mut self.http,
            State::WebSocket(ws) => match ws.endpoint {
                Endpoint::Echo => &mut self.ws_echo,
                Endpoint::Chat => &mut self.ws_chat,
                Endpoint::Clock => &mut self.ws_clock,
            },
            State::EventStream(_) => &mut self.event_streams,
            State::Closing(_) => &mut self.closing,
        }
    }
}
