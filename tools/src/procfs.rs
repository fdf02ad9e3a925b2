//! What Linux's `/proc` says about a process: its CPU time and its memory.
//! The tools read the server's from outside, so the server needs no code
//! of its own for being measured. Elsewhere than Linux each reading is
//! `None`, and the reports say less.

/// Clock ticks per second in /proc's CPU times (`USER_HZ`): 100 on every
/// mainstream Linux build.
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) used so far by a process ("self" or a pid).
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; count fields
    // after it. Field 3 (state) is first there, so utime (14) and stime
    // (15) are at 11 and 12 (man 5 proc).
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / USER_HZ)
}

/// CPU seconds the whole machine has spent busy (all cores), from the
/// first line of /proc/stat: everything but idle and iowait.
pub fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let (idle, iowait) = (*ticks.get(3)?, *ticks.get(4)?);
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - idle - iowait;
    Some(busy as f64 / USER_HZ)
}

/// A field of /proc/PID/status in bytes, e.g. "VmRSS" (resident now) or
/// "VmHWM" (the high-water mark).
pub fn memory(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kb: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The resident memory of a process now (`VmRSS`), in bytes.
pub fn rss(pid: u32) -> Option<u64> {
    memory(pid, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // Not Linux: nothing to read.
        }
        assert!(cpu_secs("self").is_some());
        assert!(rss(std::process::id()).is_some_and(|bytes| bytes > 0));
    }
}
