//! The web door: HTTP requests, the page, and the way into WebSocket.

use super::conn::{CloseHandshake, Endpoint, State, WebSocket};
use super::Server;
use crate::http::{Request, Response, Status};
use crate::ws::handshake;
use mio::Token;

/// The built-in page, compiled into the binary: no files to find, no CDN.
pub const PAGE: &str = include_str!("../web/index.html");

impl Server {
    /// Reads requests and answers each in order. Returns how many bytes
    /// were used: fewer than given when a request upgraded the connection
    /// and the rest are WebSocket frames.
    pub(super) fn http_input(&mut self, token: Token, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return input.len();
            };
            let State::Http(http) = &mut conn.state else {
                return pos;
            };
            if http.parked.is_some() {
                // HTTP/1.1 answers in order: requests pipelined behind a
                // parked long poll wait for it, within the head and body
                // limits.
                let room = (self.config.max_head + self.config.max_body).saturating_sub(http.stash.len());
                if input.len() - pos > room {
                    log::info!("{}: too much pipelined behind a long poll", conn.peer);
                    self.begin_closing(token, "too much pipelined behind a long poll".into());
                    return input.len();
                }
                http.stash.extend_from_slice(&input[pos..]);
                return input.len();
            }
            match http.reader.read(&input[pos..]) {
                Err(error) => {
                    log::info!("{}: bad request: {error}", conn.peer);
                    let response = Response::refusal(error.status(), &error.to_string()).close(true);
                    self.respond(token, response);
                    return input.len();
                }
                Ok((used, request)) => {
                    pos += used;
                    // RFC 9110 §10.1.1: a client that sent `Expect:
                    // 100-continue` may wait for this before its body.
                    if let Some(interim) = http.reader.take_interim() {
                        conn.out.push_bytes(interim);
                        self.mark_dirty(token);
                    }
                    if let Some(request) = request {
                        self.route(token, request);
                    }
                }
            }
        }
        pos
    }

    /// Decides what a request gets.
    fn route(&mut self, token: Token, request: Request) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let peer = conn.peer;
        log::debug!(
            "{peer}: {} {} HTTP/1.{}",
            request.method,
            request.target,
            request.version
        );
        self.stats.http_requests += 1;
        if self.config.hexdump {
            log::info!("{peer} request head:\n{}", describe_head(&request));
        }
        let head_only = request.method == "HEAD";
        let keep_alive = request.keep_alive();

        // RFC 9112 §3.2: a 1.1 request without Host is malformed.
        if request.version == 1 && request.header("host").is_none() {
            return self.respond(
                token,
                Response::refusal(Status::BAD_REQUEST, "missing Host header").close(true),
            );
        }
        if let Err(forbidden) = self.policy.check_host(&request) {
            log::warn!("{peer}: refused: {forbidden}");
            return self.respond(
                token,
                Response::refusal(Status::FORBIDDEN, &forbidden.to_string()).close(true),
            );
        }

        if handshake::is_upgrade(&request) {
            return self.upgrade(token, &request);
        }

        let path = request.path();
        match (request.method.as_str(), path) {
            ("GET", "/poll") => return self.poll(token, &request, false),
            ("GET", "/longpoll") => return self.poll(token, &request, true),
            ("GET", "/events") => return self.event_stream(token, &request),
            ("POST", "/send") => return self.send_line(token, &request),
            _ => {}
        }
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.via = super::conn::Via::Other;
            self.stats.via(super::conn::Via::Other).bytes_in += request.wire_len as u64;
        }
        let response = match (request.method.as_str(), path) {
            ("GET" | "HEAD", "/") => Response::new(Status::OK)
                .header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "no-cache")
                .body(PAGE.as_bytes().to_vec()),
            ("GET" | "HEAD", "/healthz") => Response::new(Status::OK)
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(b"ok\n".to_vec()),
            ("GET" | "HEAD", "/stats") => Response::new(Status::OK)
                .header("Content-Type", "application/json")
                .header("Cache-Control", "no-store")
                .body(self.stats_json().into_bytes()),
            ("GET" | "HEAD", _) if Endpoint::from_path(path).is_some() => {
                // RFC 6455 §4.2.2 and RFC 9110 §15.5.22: this resource
                // speaks WebSocket only.
                handshake::upgrade_required(&format!(
                    "{path} is a WebSocket endpoint: connect with ws://host{path}"
                ))
            }
            // RFC 9110 §9.3.7: `OPTIONS *` asks about the server as a whole.
            ("OPTIONS", "*") => Response::new(Status::OK).header("Allow", "GET, HEAD, POST, OPTIONS"),
            (_, "/" | "/healthz" | "/stats" | "/echo" | "/chat" | "/clock") => Response::refusal(
                Status::METHOD_NOT_ALLOWED,
                &format!("{} is not allowed on {path}", request.method),
            )
            .header("Allow", "GET, HEAD"),
            // A poll acts (it can make a member), so it is GET only.
            (_, "/poll" | "/longpoll" | "/events") => Response::refusal(
                Status::METHOD_NOT_ALLOWED,
                &format!("{} is not allowed on {path}", request.method),
            )
            .header("Allow", "GET"),
            (_, "/send") => {
                Response::refusal(Status::METHOD_NOT_ALLOWED, "send a line with POST /send?token=T")
                    .header("Allow", "POST")
            }
            _ => Response::refusal(
                Status::NOT_FOUND,
                &format!("nothing at {path}; try / for the page"),
            ),
        };
        let response = response.head_only(head_only).close(!keep_alive);
        self.respond(token, response);
    }

    /// Queues a response. Afterwards the connection waits for the next
    /// request, or closes if the response said so.
    pub(super) fn respond(&mut self, token: Token, response: Response) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let status = response.status();
        if status.0 >= 400 {
            log::debug!("{}: answered {} {}", conn.peer, status.0, status.1);
        }
        conn.out.encode_with(|out| response.encode(out));
        if let State::Http(http) = &mut conn.state {
            http.deadline = self.now + self.config.handshake_timeout;
        }
        self.mark_dirty(token);
        if response.closes() {
            self.begin_closing(token, format!("answered {} {}", status.0, status.1));
        }
    }

    /// The opening handshake (RFC 6455 §4.2): check, answer 101, and from
    /// then on the connection speaks frames.
    fn upgrade(&mut self, token: Token, request: &Request) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let peer = conn.peer;
        let Some(endpoint) = Endpoint::from_path(request.path()) else {
            let why = format!(
                "no WebSocket endpoint at {}; try /echo, /chat or /clock",
                request.path()
            );
            return self.respond(token, Response::refusal(Status::NOT_FOUND, &why).close(true));
        };
        // Cross-site WebSocket hijacking guard (RFC 6455 §10.2).
        if let Err(forbidden) = self
            .policy
            .check_origin(request, crate::origin::Purpose::WebSocket)
        {
            log::warn!("{peer}: refused WebSocket: {forbidden}");
            return self.respond(
                token,
                Response::refusal(Status::FORBIDDEN, &forbidden.to_string()).close(true),
            );
        }
        let key = match handshake::validate(request) {
            Ok(key) => key,
            Err(error) => {
                log::info!("{peer}: refused WebSocket: {error}");
                return self.respond(token, error.response().close(true));
            }
        };
        let via = if endpoint == Endpoint::Chat {
            super::conn::Via::WebSocket
        } else {
            super::conn::Via::Other
        };
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.via = via;
        }
        let counted = self.stats.via(via);
        counted.requests += 1;
        counted.bytes_in += request.wire_len as u64;
        let protocol = handshake::select_protocol(request, endpoint.subprotocols());
        let response = handshake::accept_response(&key, protocol);
        log::debug!(
            "{peer}: WebSocket {} opened{}",
            endpoint.path(),
            protocol.map_or(String::new(), |p| format!(" with subprotocol {p}"))
        );
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.out.encode_with(|out| response.encode(out));
            if self.config.hexdump {
                let mut text = Vec::new();
                response.encode(&mut text);
                log::info!("{peer} handshake answer:\n{}", String::from_utf8_lossy(&text));
            }
        }
        self.mark_dirty(token);
        let limits = crate::ws::Limits {
            max_message: self.config.max_message,
            max_fragments: self.config.max_fragments,
        };
        self.set_state(
            token,
            State::WebSocket(WebSocket {
                endpoint,
                decoder: crate::ws::Decoder::new(crate::ws::Role::Server, limits),
                close: CloseHandshake::Open,
                ping_sent: None,
            }),
        );
        self.ws_opened(token, endpoint);
    }

    /// `/stats` in chat: one line.
    pub(super) fn stats_line(&self) -> String {
        let hub = self.hub.stats();
        let s = &self.stats;
        format!(
            "* stats: {} connections (telnet {}, websocket {}, http {}), {} members in {} rooms, \
messages in {} out {}, bytes in {} out {}, up {}s",
            self.conns.len(),
            s.line,
            s.websocket_total(),
            s.http,
            hub.members,
            hub.rooms,
            s.messages_in,
            s.messages_out,
            s.bytes_in,
            s.bytes_out,
            self.now.duration_since(s.started).as_secs()
        )
    }

    /// `GET /stats`: the same numbers as JSON, written by hand.
    pub(super) fn stats_json(&self) -> String {
        let hub = self.hub.stats();
        let s = &self.stats;
        format!(
            concat!(
                "{{\"connections\":{{\"total\":{},\"telnet\":{},\"http\":{},\"closing\":{},",
                "\"websocket\":{{\"echo\":{},\"chat\":{},\"clock\":{}}}}},",
                "\"accepted\":{},\"refused\":{},\"http_requests\":{},",
                "\"hub\":{{\"members\":{},\"rooms\":{},\"messages\":{}}},",
                "\"messages\":{{\"in\":{},\"out\":{}}},\"bytes\":{{\"in\":{},\"out\":{}}},",
                "\"http_members\":{},\"event_streams\":{},\"transports\":{{{}}},",
                "\"uptime_seconds\":{}}}\n"
            ),
            self.conns.len(),
            s.line,
            s.http,
            s.closing,
            s.ws_echo,
            s.ws_chat,
            s.ws_clock,
            s.accepted,
            s.refused,
            s.http_requests,
            hub.members,
            hub.rooms,
            hub.messages,
            s.messages_in,
            s.messages_out,
            s.bytes_in,
            s.bytes_out,
            self.http_members.len(),
            s.event_streams,
            self.transport_json(),
            self.now.duration_since(s.started).as_secs()
        )
    }

    /// Per transport: requests, bytes in and out, lines delivered.
    fn transport_json(&self) -> String {
        super::conn::Via::ALL
            .iter()
            .map(|&via| {
                let v = self.stats.via[via as usize];
                format!(
                    "\"{}\":{{\"requests\":{},\"bytes_in\":{},\"bytes_out\":{},\"delivered\":{}}}",
                    via.name(),
                    v.requests,
                    v.bytes_in,
                    v.bytes_out,
                    v.delivered
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The request head as text, for `--hexdump`.
fn describe_head(request: &Request) -> String {
    let mut text = format!(
        "{} {} HTTP/1.{}\n",
        request.method, request.target, request.version
    );
    for (name, value) in &request.headers {
        text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value)));
    }
    text
}
