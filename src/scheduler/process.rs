//! Process groups: every job runs in its own group, so terminate and timeout reach its
//! grandchildren too.

use std::time::{Duration, Instant};

use rustix::process::{
    Pid, Signal, getpgid, kill_process, kill_process_group, test_kill_process_group,
};

use crate::store::ProcessId;

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

/// Stops the process `job`: its whole group when it leads one (every job the scheduler starts
/// does, so its grandchildren go too), else the process alone (a script started by hand from a
/// shell, a notebook or a launcher shares its group with processes that are not the run's, and
/// signalling a group it does not lead reached nothing). SIGTERM, then SIGKILL after `grace`.
/// Returns whether it is gone.
pub(crate) fn stop_process(job: ProcessId, grace: Duration) -> bool {
    let Some(pid) = i32::try_from(job.pid).ok().and_then(Pid::from_raw) else {
        return !job.is_alive();
    };
    if getpgid(Some(pid)).is_ok_and(|group| group == pid) {
        kill_group(job.pid, grace);
    } else if job.is_alive() {
        let _ = kill_process(pid, Signal::TERM);
        if !wait_gone(job, grace) && job.is_alive() {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
    // SIGKILL is delivered at once, but the exit takes a moment to show in /proc.
    wait_gone(job, grace)
}

/// Waits up to `grace` for `job` to be gone; returns whether it is.
fn wait_gone(job: ProcessId, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    while job.is_alive() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
