//! What each HTTP request gets: the page, `/healthz`, `/stats`, the chat
//! transports, the way into WebSocket, or a refusal that says why.

use super::conn::{Endpoint, Protocol, Via};
use super::context::{ChatRequest, Context, Next};
use super::http::Http;
use super::long_poll::count_request;
use super::websocket::WebSocket;
use crate::http::{Request, Response, Status};
use crate::origin::Purpose;
use crate::ws::deflate::{self, Agreement};
use crate::ws::handshake;

/// The built-in page, compiled into the binary: no files to find, no CDN.
pub const PAGE: &str = include_str!("../web/index.html");

/// Decides what a request gets.
pub(super) fn route(http: &mut Http, cx: &mut Context, request: Request) -> Next {
    // Behind a trusted proxy the client is who `X-Forwarded-For` says, for
    // this request and what it becomes (`peer.rs`); the logs name it.
    let trusted = &cx.shared.config.trust_proxies;
    cx.peer.on_request(&request, trusted, &mut cx.shared.stats);
    log::debug!(
        "{}: {} {} HTTP/1.{}",
        cx.peer,
        request.method,
        request.target,
        request.version
    );
    cx.stats.http_requests += 1;
    if cx.config.hexdump {
        log::info!("{} request head:\n{}", cx.peer, describe_head(&request));
    }
    // Host is well formed here: the reader refused a request without one,
    // with two, or with a malformed one (RFC 9112 §3.2). Whether this
    // server answers to it is policy:
    if let Err(forbidden) = cx.policy.check_host(&request) {
        log::warn!("{}: refused: {forbidden}", cx.peer);
        let response = Response::refusal(Status::FORBIDDEN, &forbidden.to_string());
        return http.respond(cx, response.close(true));
    }
    // socket.io: Engine.IO's polling and WebSocket transports, and the
    // upgrade between them (`engineio.rs`).
    if super::engineio::is_endpoint(request.path()) {
        count_request(cx, Via::SocketIo, &request);
        return if handshake::is_upgrade(&request) {
            super::engineio::upgrade(http, cx, &request)
        } else {
            super::engineio::request(http, cx, &request)
        };
    }
    if handshake::is_upgrade(&request) {
        return upgrade(http, cx, &request);
    }
    let via = match (request.method.as_str(), request.path()) {
        ("GET", "/poll") => Some(Via::Poll),
        ("GET", "/longpoll") => Some(Via::LongPoll),
        ("GET", "/events") => Some(Via::EventStream),
        ("POST", "/send") => Some(Via::Send),
        _ => None,
    };
    match via {
        Some(Via::Send) => send(http, cx, request),
        Some(via) => {
            count_request(cx, via, &request);
            // A poll or a stream without a token makes a member: it acts,
            // so a page on another site may not make one (docs/07).
            if let Err(forbidden) = cx.policy.check_origin(&request, Purpose::Action) {
                log::warn!("{}: refused: {forbidden}", cx.peer);
                let response = Response::refusal(Status::FORBIDDEN, &forbidden.to_string());
                return http.respond(cx, response.close(true));
            }
            Next::Chat(Box::new(ChatRequest { via, request }))
        }
        None => {
            *cx.via = Via::Other;
            cx.stats.via(Via::Other).bytes_in += request.wire_len as u64;
            if request.path() == "/metrics" && matches!(request.method.as_str(), "GET" | "HEAD") {
                return Next::Metrics(Box::new(request));
            }
            if cx.config.static_dir.is_some() && is_static(&request) {
                return Next::File(Box::new(request));
            }
            let response = plain(cx, &request);
            let head_only = request.method == "HEAD";
            http.respond(cx, response.head_only(head_only).close(!request.keep_alive()))
        }
    }
}

/// The paths the server answers itself. With `--static DIR` they win over
/// files of the same name: a DIR/stats is never served, nor a DIR/chat.
const BUILT_IN: [&str; 11] = [
    "/healthz",
    "/stats",
    "/echo",
    "/chat",
    "/clock",
    "/poll",
    "/longpoll",
    "/events",
    "/send",
    "/socket.io/",
    "*",
];

/// Is this request for `--static DIR`? Any path the server does not answers
/// itself, and `/` too: DIR's own index.html replaces the built-in page
/// (the loop falls back to the page when there is none).
fn is_static(request: &Request) -> bool {
    match request.path() {
        "/" => matches!(request.method.as_str(), "GET" | "HEAD"),
        path => !BUILT_IN.contains(&path),
    }
}

/// The built-in page.
pub(super) fn page() -> Response {
    Response::new(Status::OK)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", "no-cache")
        .body(PAGE.as_bytes().to_vec())
}

/// The answers that are plain HTTP: the page, health, counters, and the
/// refusals for everything else.
fn plain(cx: &Context, request: &Request) -> Response {
    let path = request.path();
    let not_allowed = |allow: &str| {
        Response::refusal(
            Status::METHOD_NOT_ALLOWED,
            &format!("{} is not allowed on {path}", request.method),
        )
        .header("Allow", allow)
    };
    match (request.method.as_str(), path) {
        ("GET" | "HEAD", "/") => page(),
        ("GET" | "HEAD", "/healthz") => Response::new(Status::OK)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(b"ok\n".to_vec()),
        ("GET" | "HEAD", "/stats") => Response::new(Status::OK)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            .body(super::stats::json(cx.shared, cx.peer.client()).into_bytes()),
        // RFC 6455 §4.2.2 and RFC 9110 §15.5.22: this resource speaks
        // WebSocket only.
        ("GET" | "HEAD", _) if Endpoint::from_path(path).is_some() => handshake::upgrade_required(&format!(
            "{path} is a WebSocket endpoint: connect with ws://host{path}"
        )),
        // RFC 9112 §3.2.4: asterisk-form asks about the server as a whole.
        ("OPTIONS", "*") => Response::new(Status::OK).header("Allow", "GET, HEAD, POST, OPTIONS"),
        (_, "/" | "/healthz" | "/stats" | "/metrics" | "/echo" | "/chat" | "/clock" | "/loop") => {
            not_allowed("GET, HEAD")
        }
        // A poll acts (it can make a member), so it is GET only.
        (_, "/poll" | "/longpoll" | "/events") => not_allowed("GET"),
        (_, "/send") => Response::refusal(Status::METHOD_NOT_ALLOWED, "send a line with POST /send?token=T")
            .header("Allow", "POST"),
        _ => Response::refusal(
            Status::NOT_FOUND,
            &format!("nothing at {path}; try / for the page"),
        ),
    }
}

/// `POST /send`: the body is lines, as a telnet user would type them.
/// Checked here, before anything changes; said by the loop, one line at a
/// time (`Server::send_lines`).
fn send(http: &mut Http, cx: &mut Context, request: Request) -> Next {
    count_request(cx, Via::Send, &request);
    // A page on another site must not post into the chat as the user
    // (cross-site request forgery). Unlike a WebSocket, not even from
    // `Origin: null`: a sandboxed frame on any site sends that, and a
    // `text/plain` form POST needs no preflight (see docs/07).
    if let Err(forbidden) = cx.policy.check_origin(&request, Purpose::Action) {
        let response = Response::refusal(Status::FORBIDDEN, &forbidden.to_string());
        return http.respond(cx, response.close(true));
    }
    if std::str::from_utf8(&request.body).is_err() {
        let response = Response::refusal(Status::BAD_REQUEST, "the body must be UTF-8 text")
            .allow_origin(cx.policy.cors_origin(&request));
        return http.respond(cx, response.close(!request.keep_alive()));
    }
    Next::Chat(Box::new(ChatRequest {
        via: Via::Send,
        request,
    }))
}

/// The opening handshake (RFC 6455 §4.2): check, answer 101, and from then
/// on the connection speaks frames.
fn upgrade(http: &mut Http, cx: &mut Context, request: &Request) -> Next {
    let Some(endpoint) = Endpoint::from_path(request.path()) else {
        let why = format!(
            "no WebSocket endpoint at {}; try /echo, /chat or /clock",
            request.path()
        );
        return http.respond(cx, Response::refusal(Status::NOT_FOUND, &why).close(true));
    };
    // Cross-site WebSocket hijacking guard (RFC 6455 §10.2).
    if let Err(forbidden) = cx.policy.check_origin(request, Purpose::WebSocket) {
        log::warn!("{}: refused WebSocket: {forbidden}", cx.peer);
        let response = Response::refusal(Status::FORBIDDEN, &forbidden.to_string());
        return http.respond(cx, response.close(true));
    }
    if endpoint == Endpoint::Loop {
        if let Some(refusal) = loop_refusal(cx) {
            return http.respond(cx, refusal.close(true));
        }
    }
    let key = match handshake::validate(request) {
        Ok(key) => key,
        Err(error) => {
            log::info!("{}: refused WebSocket: {error}", cx.peer);
            return http.respond(cx, error.response().close(true));
        }
    };
    let via = if endpoint == Endpoint::Chat {
        Via::WebSocket
    } else {
        Via::Other
    };
    count_request(cx, via, request);
    let protocol = handshake::select_protocol(request, endpoint.subprotocols());
    let deflate = negotiate_deflate(cx, request);
    let mut response = handshake::accept_response(&key, protocol);
    if let Some(agreement) = deflate {
        response = response.header("Sec-WebSocket-Extensions", &agreement.response());
    }
    log::debug!(
        "{}: WebSocket {} opened{}{}",
        cx.peer,
        endpoint.path(),
        protocol.map_or(String::new(), |p| format!(" with subprotocol {p}")),
        deflate.map_or(String::new(), |a| format!(" with {}", a.response()))
    );
    cx.out.encode_with(|out| response.encode(out));
    if cx.config.hexdump {
        let mut text = Vec::new();
        response.encode(&mut text);
        log::info!(
            "{} handshake answer:\n{}",
            cx.peer,
            String::from_utf8_lossy(&text)
        );
    }
    Next::Become(Protocol::WebSocket(WebSocket::open(cx, endpoint, deflate)))
}

/// permessage-deflate (RFC 7692 §5): the first acceptable offer, if the
/// server has it on. A declined offer is logged, and the connection goes
/// on without the extension: declining is not refusing (§5.1).
fn negotiate_deflate(cx: &mut Context, request: &Request) -> Option<Agreement> {
    let offers = request.headers_named("sec-websocket-extensions");
    if !cx.config.permessage_deflate {
        return None;
    }
    let (agreement, declined) = deflate::negotiate(offers, cx.config.deflate_client_context);
    for why in &declined {
        log::info!("{}: permessage-deflate offer declined: {why}", cx.peer);
    }
    cx.stats.deflate_declined += declined.len() as u64;
    if agreement.is_some() {
        cx.stats.deflate_negotiated += 1;
    }
    agreement
}

/// `/loop` is bounded like everything else: at most `--max-observers`
/// watch at once, and none when that is 0.
fn loop_refusal(cx: &Context) -> Option<Response> {
    let limit = cx.config.max_observers;
    if limit == 0 {
        return Some(Response::refusal(
            Status::NOT_FOUND,
            "/loop is off on this server (--max-observers 0)",
        ));
    }
    if cx.stats.ws_loop >= limit {
        log::info!("{}: refused /loop: {limit} observers already", cx.peer);
        let why =
            format!("the loop has {limit} observers already (--max-observers {limit}); close one and retry");
        return Some(Response::refusal(Status::SERVICE_UNAVAILABLE, &why).header("Retry-After", "5"));
    }
    None
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
