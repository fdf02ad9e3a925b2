//! `--static DIR`: the loop's part of serving a folder (the part that needs
//! no disk is [`crate::files`]).
//!
//! Two things happen here, both file system work, so both in the loop:
//!
//! 1. **Finding the file** ([`Server::serve_file`]). The names that
//!    `files::resolve` let through are joined onto DIR, and the result is
//!    canonicalised: every symbolic link followed, every `..` gone. What
//!    comes out must still lie inside DIR (which was canonicalised at
//!    start), or the request is refused: a link that leads out of DIR is
//!    followed only to see where it goes. A folder is its `index.html`,
//!    checked the same way. Only regular files are opened, and never
//!    before `stat` says so (opening a FIFO would block the loop).
//!
//! 2. **Sending it** ([`Server::send_file_chunks`], called from the write
//!    point). The head goes out first, with `Content-Length`; then the
//!    body, one chunk at a time, read straight into the output queue
//!    whenever the queue has drained below a chunk. A file is never held
//!    whole in memory, and a fast reader gets at most
//!    `FILE_CHUNKS_PER_TURN` chunks a turn before the other connections
//!    have their go. Reads of regular files do not block on Linux the way
//!    sockets can (they are served from the page cache, or wait for the
//!    disk), so each read is bounded to one chunk instead.
//!
//! A file that shrinks or changes while it goes out cannot keep the
//! promise its `Content-Length` made: the connection is closed after what
//! was already sent, and the client sees a short body, never another
//! file's bytes dressed as this one.

use super::close::Why;
use super::conn::Protocol;
use super::Server;
use crate::files::{self, Validators};
use crate::http::{Request, Response, Status};
use mio::Token;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Bytes read from a file at once: one read of the page cache takes a few
/// microseconds, and two of them queued keep a socket busy between turns.
pub(super) const FILE_CHUNK: usize = 64 * 1024;

/// Chunks one connection may read and write in one turn (1 MiB) before
/// the others get a go; it carries on next turn.
const FILE_CHUNKS_PER_TURN: usize = 16;

/// A file going out as the body of a response.
#[derive(Debug)]
pub(super) struct FileSend {
    file: File,
    /// The path inside DIR, for the logs.
    name: String,
    /// Bytes still to send of the `Content-Length` promised.
    left: u64,
    /// What the file was when its head went out: a change is noticed.
    len: u64,
    modified: Option<SystemTime>,
    /// The response said `Connection: close`: close after the last byte.
    close_after: bool,
    /// When the peer last took a chunk: one that takes nothing for
    /// `--slow-reader-timeout` is closed (see `Http::request_deadline`).
    pub progress: Instant,
}

/// What a request path turned out to name.
enum Found {
    /// A regular file, with what `stat` said of it.
    File(PathBuf, Metadata),
    /// `/`, and DIR has no `index.html`: the built-in page.
    BuiltInPage,
}

impl Server {
    /// The static folder, canonical, if `--static` was given.
    pub fn static_dir(&self) -> Option<&Path> {
        self.static_root.as_deref()
    }

    /// Answers a request for a file under `--static`: the file, a redirect
    /// to a folder's slash, a 304, or a refusal that says why.
    pub(super) fn serve_file(&mut self, token: Token, request: Request) {
        let Some(root) = self.static_root.clone() else {
            return;
        };
        let keep_alive = request.keep_alive();
        let head_only = request.method == "HEAD";
        let response = match find(&root, &request, self.shared.config.static_max_file) {
            Ok(Found::BuiltInPage) => super::routes::page(),
            Ok(Found::File(path, meta)) if !head_only => {
                match self.open_file(token, &path, &meta, &request) {
                    Some(response) => response,
                    // The head is queued and the body is on its way.
                    None => return,
                }
            }
            Ok(Found::File(path, meta)) => file_head(&path, &meta, &request),
            Err(refusal) => {
                if let Some(conn) = self.conns.get(token.0) {
                    let status = refusal.status();
                    log::info!(
                        "{}: static {}: {} {}",
                        conn.peer,
                        request.target,
                        status.0,
                        status.1
                    );
                }
                refusal
            }
        };
        self.respond(token, response.head_only(head_only).close(!keep_alive));
    }

    /// Opens the file and queues its head; the body follows from the write
    /// point. Returns a response instead when there is no body to send: a
    /// 304, an empty file, or a file that could not be opened.
    fn open_file(
        &mut self,
        token: Token,
        path: &Path,
        seen: &Metadata,
        request: &Request,
    ) -> Option<Response> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => {
                return Some(Response::refusal(
                    Status::NOT_FOUND,
                    &format!("cannot open it: {e}"),
                ))
            }
        };
        // What was opened is what is described: the metadata of the open
        // file, not of the name, which may have changed since `stat`.
        let meta = match file.metadata() {
            Ok(meta) if meta.is_file() && same_file(&meta, seen) => meta,
            _ => {
                return Some(Response::refusal(
                    Status::NOT_FOUND,
                    "it changed while being opened",
                ))
            }
        };
        let head = file_head(path, &meta, request);
        if head.status() != Status::OK || meta.len() == 0 {
            return Some(head);
        }
        let now = self.shared.now;
        let timeout = self.shared.config.slow_reader_timeout;
        let Some((Protocol::Http(http), mut cx)) = self.split(token) else {
            return None;
        };
        let head = head
            .header("Date", cx.shared.date.now())
            .close(!request.keep_alive());
        cx.out.encode_with(|out| head.encode(out));
        log::debug!("{}: sending {} ({} bytes)", cx.peer, path.display(), meta.len());
        http.send_file(FileSend {
            file,
            name: request.path().to_string(),
            left: meta.len(),
            len: meta.len(),
            modified: meta.modified().ok(),
            close_after: head.closes(),
            progress: now,
        });
        cx.schedule(super::timers::ConnTimer::RequestDeadline, now + timeout);
        self.mark_dirty(token);
        None
    }

    /// Called by the write point after each write: while a file is going
    /// out and the queue has drained below a chunk, read the next chunk
    /// into the queue and write again, up to this turn's share.
    pub(super) fn send_file_chunks(&mut self, token: Token) {
        for _ in 0..FILE_CHUNKS_PER_TURN {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return;
            };
            let Protocol::Http(http) = &mut conn.protocol else {
                return;
            };
            if !conn.close.is_open() || !http.is_sending_file() || conn.out.len() >= FILE_CHUNK {
                return;
            }
            let all_read = match self.read_file_chunk(token) {
                Ok(all_read) => all_read,
                Err(why) => {
                    if let Some(conn) = self.conns.get(token.0) {
                        log::info!("{}: {why}; closing after what was sent", conn.peer);
                    }
                    return self.close(token, why);
                }
            };
            if !self.write_queue(token, None) {
                return;
            }
            if all_read {
                return self.file_sent(token);
            }
        }
        // The share is used and the socket may still have room, in which
        // case no writable event will come: carry on next turn.
        self.write_again.push(token);
    }

    /// Reads the next chunk of the file into the connection's queue.
    /// Returns whether the file is now all read.
    fn read_file_chunk(&mut self, token: Token) -> Result<bool, Why> {
        let now = self.shared.now;
        let Some(conn) = self.conns.get_mut(token.0) else {
            return Ok(false);
        };
        let Protocol::Http(http) = &mut conn.protocol else {
            return Ok(false);
        };
        let Some(send) = http.file_mut() else {
            return Ok(false);
        };
        let want = send.left.min(FILE_CHUNK as u64) as usize;
        let mut result = Ok(0);
        conn.out.encode_with(|out| {
            let start = out.len();
            out.resize(start + want, 0);
            result = read_chunk(send, &mut out[start..]);
            // Only what was read, and only from a file still as it was.
            let n = *result.as_ref().unwrap_or(&0);
            out.truncate(start + n);
        });
        let n = result.map_err(|e| Why::FileChanged(format!("{}: {e}", send.name)))?;
        send.left -= n as u64;
        send.progress = now;
        log::trace!(
            "file: token {} read {n} bytes of {}, {} left",
            token.0,
            send.name,
            send.left
        );
        Ok(send.left == 0)
    }

    /// The last chunk is read: the response is complete once the queue
    /// drains, and the connection goes on to the next request, or closes
    /// if the response or the peer said so.
    fn file_sent(&mut self, token: Token) {
        let (now, config) = (self.shared.now, &self.shared.config);
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let Protocol::Http(http) = &mut conn.protocol else {
            return;
        };
        let Some(send) = http.file_done(now, config) else {
            return;
        };
        log::debug!("{}: {} read whole ({} bytes)", conn.peer, send.name, send.len);
        if send.close_after {
            self.close(token, Why::Answered(Status::OK));
        } else if conn.eof {
            self.close(token, Why::PeerClosed("after its request was answered"));
        } else {
            self.resume(token);
        }
    }
}

/// Reads exactly `buf.len()` bytes, then checks that the file is still
/// the one whose length went out in the head. A short read means the file
/// shrank; a new length or time means it was written to.
fn read_chunk(send: &mut FileSend, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match send.file.read(&mut buf[n..]) {
            Ok(0) => return Err(io::Error::other("the file shrank while being sent")),
            Ok(read) => n += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let meta = send.file.metadata()?;
    if meta.len() != send.len || meta.modified().ok() != send.modified {
        return Err(io::Error::other("the file changed while being sent"));
    }
    Ok(n)
}

/// Finds what a request names under `root` (canonical), or the refusal.
fn find(root: &Path, request: &Request, max_file: usize) -> Result<Found, Response> {
    let path = files::resolve(request.path()).map_err(|e| Response::refusal(e.status(), &e.to_string()))?;
    let shown = request.path();
    let (mut real, mut meta) = inside(root, &root.join(path.relative()), shown)?;
    if meta.is_dir() {
        if !path.folder {
            // As express.static does: the folder's own URL ends in `/`, so
            // the links inside its index.html resolve against it.
            let location = path.folder_location(query(request));
            return Err(
                Response::refusal(Status::MOVED_PERMANENTLY, &format!("see {location}"))
                    .header("Location", &location),
            );
        }
        match inside(root, &real.join("index.html"), shown) {
            Ok(index) => (real, meta) = index,
            Err(_) if path.names.is_empty() => return Ok(Found::BuiltInPage),
            Err(refusal) if refusal.status() == Status::NOT_FOUND => {
                let why = format!("no index.html in {shown}; folders are not listed");
                return Err(Response::refusal(Status::NOT_FOUND, &why));
            }
            Err(refusal) => return Err(refusal),
        }
    }
    if !meta.is_file() {
        return Err(Response::refusal(
            Status::FORBIDDEN,
            &format!("{shown} is not a regular file"),
        ));
    }
    if request.method != "GET" && request.method != "HEAD" {
        let why = format!("{} is not allowed on {shown}", request.method);
        return Err(Response::refusal(Status::METHOD_NOT_ALLOWED, &why).header("Allow", "GET, HEAD"));
    }
    if meta.len() > max_file as u64 {
        let why = format!(
            "{shown} is {} bytes, over --static-max-file ({max_file} bytes)",
            meta.len()
        );
        return Err(Response::refusal(Status::FORBIDDEN, &why));
    }
    Ok(Found::File(real, meta))
}

/// Where `candidate` really leads, if that is inside `root` and not
/// hidden, with its metadata.
fn inside(root: &Path, candidate: &Path, shown: &str) -> Result<(PathBuf, Metadata), Response> {
    let not_found = || Response::refusal(Status::NOT_FOUND, &format!("nothing at {shown}"));
    let real = match std::fs::canonicalize(candidate) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(Response::refusal(
                Status::FORBIDDEN,
                &format!("{shown} is not readable"),
            ))
        }
        Err(_) => return Err(not_found()),
    };
    let Ok(within) = real.strip_prefix(root) else {
        log::warn!("static: {shown} leads out of the folder, to {}", real.display());
        let why = format!("{shown} leads out of the static folder (a symbolic link)");
        return Err(Response::refusal(Status::FORBIDDEN, &why));
    };
    // A link may lead to a dotfile inside DIR: hidden all the same.
    let hidden = within
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    if hidden {
        return Err(not_found());
    }
    let meta = std::fs::metadata(&real).map_err(|_| not_found())?;
    Ok((real, meta))
}

/// The head of a 200 for a file, or a 304 if the client's copy is current
/// (RFC 9110 §13.2.2; a 304 carries the validators a 200 would, §15.4.5).
fn file_head(path: &Path, meta: &Metadata, request: &Request) -> Response {
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let validators = Validators::new(meta.len(), modified);
    // The real file's name: `/` may be DIR/index.html.
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let status = if validators.not_modified(request) {
        Status::NOT_MODIFIED
    } else {
        Status::OK
    };
    let response = Response::new(status)
        .header("ETag", &validators.etag)
        .header("Last-Modified", &validators.last_modified())
        // Use it, but ask first: an edited page shows on the next reload.
        .header("Cache-Control", "no-cache");
    if status == Status::NOT_MODIFIED {
        return response;
    }
    response
        .header("Content-Type", files::content_type(&name))
        .header("X-Content-Type-Options", "nosniff")
        .streamed(meta.len())
}

/// The query of the request target, if any.
fn query(request: &Request) -> Option<&str> {
    request.target.split_once('?').map(|(_, q)| q)
}

/// The same file, by device and inode.
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}
