//! Process identity that survives pid reuse: a pid plus its start time, and the host name.
//!
//! A run marked Running whose process is gone must not stay "Running" forever, and a recycled
//! pid must not be mistaken for the original job, so liveness compares both.

use serde::{Deserialize, Serialize};

/// A process on a given host, identified by pid and kernel start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22); `None` where unknown.
    pub start_time: Option<u64>,
}

impl ProcessId {
    /// The identity of process `pid` now, or `None` if it does not exist.
    pub fn of(pid: u32) -> Option<ProcessId> {
        if !pid_exists(pid) {
            return None;
        }
        Some(ProcessId {
            pid,
            start_time: start_time(pid),
        })
    }

    /// The calling process.
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        ProcessId {
            pid,
            start_time: start_time(pid),
        }
    }

    /// Whether this exact process (same pid, same start time) is still alive on this host.
    /// Zombies count as gone: they have finished their work.
    pub fn is_alive(&self) -> bool {
        match (stat_fields(self.pid), self.start_time) {
            (Some((state, start)), Some(expected)) => state != 'Z' && start == expected,
            (Some((state, _)), None) => state != 'Z',
            (None, _) => !cfg!(target_os = "linux") && pid_exists(self.pid),
        }
    }
}

fn pid_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // Without /proc we cannot tell; assuming alive never marks a live job as dead.
        true
    }
}

fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, start)| start)
}

/// State letter (`Z` for a zombie) and start time of process `pid`, from `/proc/<pid>/stat`;
/// `None` when it does not exist (or there is no /proc).
pub(crate) fn state_and_start(pid: u32) -> Option<(char, u64)> {
    stat_fields(pid)
}

/// State letter and start time from `/proc/<pid>/stat`.
fn stat_fields(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields after the name start at 3 (state); start time is field 22, i.e. 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
