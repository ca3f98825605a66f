//! Process groups: every job runs in its own group, so terminate and timeout reach its
//! grandchildren too.

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// Sends `signal` to the process group `pgid`. Returns false when the group is gone.
pub(crate) fn signal_group(pgid: u32, signal: Signal) -> bool {
    match i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        Some(pid) => kill_process_group(pid, signal).is_ok(),
        None => false,
    }
}

/// Whether any process of group `pgid` is left.
pub(crate) fn group_alive(pgid: u32) -> bool {
    match i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        Some(pid) => test_kill_process_group(pid).is_ok(),
        None => false,
    }
}

/// SIGTERM to the group, then SIGKILL if anything is left after `grace`. Returns once the group
/// is gone or after a last SIGKILL.
pub(crate) fn kill_group(pgid: u32, grace: Duration) {
    if !signal_group(pgid, Signal::TERM) {
        return;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(pgid, Signal::KILL);
}
