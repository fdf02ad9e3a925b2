//! File descriptors: every connection holds one, and the process may hold
//! only `RLIMIT_NOFILE` of them. A Debian login shell sets the soft limit
//! to 1,024, far below the default connection cap of 10,000, so the cap
//! could never be reached: past ~1,014 connections `accept` fails with
//! EMFILE and newcomers wait unanswered in the backlog.
//!
//! So at start the soft limit is raised toward the hard limit, as far as
//! the cap needs (Redis does the same for `maxclients`). If the hard
//! limit is lower, the cap is lowered to fit, and one log line says so.
//! And one descriptor is kept spare, so that if the process runs out
//! anyway a refused client still gets its answer and a close, not silence.

use std::fs::File;
use std::io;

/// Descriptors the server needs besides its connections: stdio, the poll,
/// the listeners, the signal pipe, the spare, and a margin for the rest of
/// the process (the logger, a file a learner's `--static` may open).
pub(super) const RESERVE: u64 = 16;

/// Raises the soft `RLIMIT_NOFILE` so that `cap` connections fit, as far
/// as the hard limit allows. Returns the cap that fits.
pub(super) fn fit_connection_cap(cap: usize) -> usize {
    let wanted = cap as u64 + RESERVE;
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            log::warn!("cannot read the file descriptor limit ({e}); keeping --max-connections {cap}");
            return cap;
        }
    };
    if soft >= wanted {
        return cap;
    }
    let raised = wanted.min(hard);
    match rlimit::setrlimit(rlimit::Resource::NOFILE, raised, hard) {
        Ok(()) => log::debug!("file descriptor limit raised from {soft} to {raised}"),
        Err(e) => log::warn!("cannot raise the file descriptor limit from {soft}: {e}"),
    }
    let now = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(soft, |(soft, _)| soft);
    if now >= wanted {
        return cap;
    }
    let fits = now.saturating_sub(RESERVE) as usize;
    log::warn!(
        "only {now} file descriptors allowed (hard limit {hard}): at most {fits} connections, not {cap}; \
raise it with `ulimit -n {wanted}` or lower --max-connections"
    );
    fits
}

/// The spare descriptor: held while all is well, let go for a moment when
/// `accept` fails for want of descriptors.
pub(super) fn spare() -> Option<File> {
    match File::open("/dev/null") {
        Ok(file) => Some(file),
        Err(e) => {
            log::warn!("cannot keep a spare file descriptor: {e}");
            None
        }
    }
}

/// Out of descriptors: EMFILE (this process) or ENFILE (the system), by
/// their numbers in Linux's `errno.h` (std has no kind for them).
pub(super) fn out_of_descriptors(e: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(e.raw_os_error(), Some(ENFILE | EMFILE))
}
