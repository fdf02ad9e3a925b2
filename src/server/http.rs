//! An HTTP connection on the web door: requests read and answered in
//! order, until one upgrades it or asks it to close.

use super::close::Why;
use super::context::{Context, Next};
use super::engineio::{PollReply, SessionKey};
use super::files::FileSend;
use super::long_poll::LongPoll;
use super::members::MemberKey;
use super::timers::ConnTimer;
use crate::config::Config;
use crate::http::{HeadLimits, RequestReader, Response, Status};
use std::time::Instant;

/// A web-door connection between requests, reading one, or answering one
/// that takes more than a turn.
#[derive(Debug)]
pub(super) struct Http {
    reader: RequestReader,
    /// The next request head must be complete by then.
    deadline: Instant,
    /// The current request, while its answer is still to come or still
    /// going out. HTTP/1.1 answers in order (RFC 9112 §9.3.2), so requests
    /// behind it wait too.
    pending: Option<Pending>,
    /// Bytes of pipelined requests that arrived meanwhile, read once it
    /// is answered.
    stash: Vec<u8>,
}

/// A request whose answer takes more than one turn.
#[derive(Debug)]
pub(super) enum Pending {
    /// A long poll waiting for a line (`long_poll.rs`).
    LongPoll(LongPoll),
    /// A file from `--static` going out chunk by chunk (`files.rs`).
    File(Box<FileSend>),
    /// A socket.io poll, parked until its session has packets to send
    /// (`engineio.rs`), and what its answer must carry.
    EngineIoPoll(SessionKey, PollReply),
}

impl Http {
    pub fn new(config: &Config, now: Instant) -> Http {
        Http {
            reader: RequestReader::new(HeadLimits {
                max_head: config.max_head,
                max_headers: config.max_headers,
                max_body: config.max_body,
            }),
            deadline: now + config.handshake_timeout,
            pending: None,
            stash: Vec::new(),
        }
    }

    pub fn is_parked(&self) -> bool {
        matches!(self.pending, Some(Pending::LongPoll(_)))
    }

    /// A file is going out.
    pub fn is_sending_file(&self) -> bool {
        matches!(self.pending, Some(Pending::File(_)))
    }

    /// The HTTP member a parked long poll waits for.
    pub fn parked_member(&self) -> Option<MemberKey> {
        match &self.pending {
            Some(Pending::LongPoll(parked)) => Some(parked.member),
            _ => None,
        }
    }

    /// Parks the current request.
    pub fn park(&mut self, parked: LongPoll) {
        self.pending = Some(Pending::LongPoll(parked));
    }

    /// Takes the parked long poll away, unanswered.
    pub fn unpark(&mut self) -> Option<LongPoll> {
        match self.pending.take() {
            Some(Pending::LongPoll(parked)) => Some(parked),
            other => {
                self.pending = other;
                None
            }
        }
    }

    /// Parks the current request, a socket.io poll for `session`.
    pub fn park_poll(&mut self, session: SessionKey, reply: PollReply) {
        self.pending = Some(Pending::EngineIoPoll(session, reply));
    }

    /// The session a parked socket.io poll waits for.
    pub fn polled_session(&self) -> Option<SessionKey> {
        match self.pending {
            Some(Pending::EngineIoPoll(session, _)) => Some(session),
            _ => None,
        }
    }

    /// Takes the parked socket.io poll for `session` away, to answer it.
    pub fn unpark_poll(&mut self, session: SessionKey) -> Option<PollReply> {
        match self.pending.take() {
            Some(Pending::EngineIoPoll(parked, reply)) if parked == session => Some(reply),
            other => {
                self.pending = other;
                None
            }
        }
    }

    /// Forgets the parked socket.io poll, unanswered (the connection is
    /// going), returning its session.
    pub fn take_poll(&mut self) -> Option<SessionKey> {
        let session = self.polled_session()?;
        self.pending = None;
        Some(session)
    }

    /// The current request's answer is a file, going out from now on.
    pub fn send_file(&mut self, file: FileSend) {
        self.pending = Some(Pending::File(Box::new(file)));
    }

    /// The file going out, if one is.
    pub fn file_mut(&mut self) -> Option<&mut FileSend> {
        match &mut self.pending {
            Some(Pending::File(file)) => Some(file),
            _ => None,
        }
    }

    /// The file has gone out whole (or stopped): the next request's time
    /// starts now.
    pub fn file_done(&mut self, now: Instant, config: &Config) -> Option<Box<FileSend>> {
        match self.pending.take() {
            Some(Pending::File(file)) => {
                self.deadline = now + config.handshake_timeout;
                Some(file)
            }
            other => {
                self.pending = other;
                None
            }
        }
    }

    /// Requests wait behind an answer that is now complete.
    pub fn has_stash(&self) -> bool {
        self.pending.is_none() && !self.stash.is_empty()
    }

    /// Pipelined input that waited behind an answer now complete.
    pub fn take_stash(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_some() || self.stash.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.stash))
    }

    /// Reads a request and answers it. Returns how many bytes were used:
    /// up to the end of that request, so the loop can act on the answer
    /// (an upgrade, say, after which the rest are WebSocket frames).
    pub fn on_input(&mut self, cx: &mut Context, input: &mut [u8]) -> (usize, Next) {
        if self.pending.is_some() {
            return (input.len(), self.stash_behind(cx, input));
        }
        let mut pos = 0;
        while pos < input.len() {
            match self.reader.read(&input[pos..]) {
                Err(error) => {
                    log::info!("{}: bad request: {error}", cx.peer);
                    let response = Response::refusal(error.status(), &error.to_string()).close(true);
                    return (input.len(), self.respond(cx, response));
                }
                Ok((used, request)) => {
                    pos += used;
                    // RFC 9110 §10.1.1: a client that sent `Expect:
                    // 100-continue` may wait for this before its body.
                    if let Some(interim) = self.reader.take_interim() {
                        cx.out.push_bytes(interim);
                    }
                    if let Some(request) = request {
                        return (pos, super::routes::route(self, cx, request));
                    }
                }
            }
        }
        (pos, Next::Continue)
    }

    /// HTTP/1.1 answers in order: requests pipelined behind a parked long
    /// poll or a file going out wait for it, within the head and body
    /// limits.
    fn stash_behind(&mut self, cx: &mut Context, input: &[u8]) -> Next {
        let room = (cx.config.max_head + cx.config.max_body).saturating_sub(self.stash.len());
        if input.len() > room {
            log::info!("{}: too much pipelined behind a long poll", cx.peer);
            return Next::Close(Why::TooMuchPipelined);
        }
        self.stash.extend_from_slice(input);
        Next::Continue
    }

    /// Queues a response. Afterwards the connection waits for the next
    /// request, or closes if the response said so.
    pub fn respond(&mut self, cx: &mut Context, response: Response) -> Next {
        let response = response.header("Date", cx.shared.date.now());
        let status = response.status();
        cx.stats.answered(status);
        if status.0 >= 400 {
            log::debug!("{}: answered {} {}", cx.peer, status.0, status.1);
        }
        cx.out.encode_with(|out| response.encode(out));
        self.deadline = cx.now + cx.config.handshake_timeout;
        if response.closes() {
            Next::Close(Why::Answered(status))
        } else {
            Next::Continue
        }
    }

    pub fn on_eof(&mut self) -> Next {
        if self.is_sending_file() {
            // The peer has said all it will (a half-close, as `nc -N`
            // does), not that it stopped listening: the file goes out
            // whole, and the loop closes after it.
            return Next::Continue;
        }
        if self.reader.in_progress() {
            Next::Close(Why::PeerClosed("in the middle of a request"))
        } else {
            Next::Close(Why::PeerClosed("the connection"))
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: ConnTimer) -> Next {
        match timer {
            ConnTimer::RequestDeadline => self.request_deadline(cx),
            ConnTimer::LongPollDeadline => match &self.pending {
                Some(Pending::LongPoll(parked)) if cx.now >= parked.deadline => self.release(cx),
                _ => Next::Continue,
            },
            _ => Next::Continue,
        }
    }

    /// A request head must arrive within `--handshake-timeout` (slowloris
    /// guard); an idle keep-alive connection is closed at that point too.
    fn request_deadline(&mut self, cx: &mut Context) -> Next {
        match &self.pending {
            Some(Pending::LongPoll(parked)) => {
                // A parked long poll is a request being answered, not an
                // idle connection: its own deadline answers it, and the
                // next request's time starts with that answer.
                let at = parked.deadline.max(self.deadline);
                cx.schedule(ConnTimer::RequestDeadline, at);
                return Next::Continue;
            }
            Some(Pending::EngineIoPoll(..)) => {
                // Answered by its session's heartbeat within the ping
                // interval at the latest; until then it is no idle
                // connection.
                let at = cx.now + cx.config.handshake_timeout;
                cx.schedule(ConnTimer::RequestDeadline, at);
                return Next::Continue;
            }
            Some(Pending::File(file)) => {
                // A file goes out as fast as the peer reads it; one that
                // takes nothing for as long as a slow reader is allowed is
                // closed as one (the queue never grows past two chunks, so
                // the output limits alone would never notice it).
                let at = file.progress + cx.config.slow_reader_timeout;
                if cx.now >= at {
                    log::info!(
                        "{}: took none of a file for {:?}",
                        cx.peer,
                        cx.config.slow_reader_timeout
                    );
                    return Next::Close(Why::TooSlow);
                }
                cx.schedule(ConnTimer::RequestDeadline, at);
                return Next::Continue;
            }
            None => {}
        }
        if cx.now < self.deadline {
            let at = self.deadline;
            cx.schedule(ConnTimer::RequestDeadline, at);
            return Next::Continue;
        }
        if self.reader.in_progress() {
            log::info!(
                "{}: request head not complete within {:?}",
                cx.peer,
                cx.config.handshake_timeout
            );
            let response = Response::refusal(Status::REQUEST_TIMEOUT, "the request took too long to arrive");
            return self.respond(cx, response.close(true));
        }
        Next::Close(Why::Idle(cx.config.handshake_timeout))
    }
}
