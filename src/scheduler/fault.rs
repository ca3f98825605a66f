//! Crash points for tests: a debug build of the scheduler kills itself (SIGKILL, like `kill -9`)
//! at a named step when `EXPMAN_TEST_CRASH_AT=<point>[:<n>]` says so, on the `n`-th time it
//! passes there (default 1). `EXPMAN_TEST_NO_RENAME_NOREPLACE=1` makes it take the path for
//! filesystems without `RENAME_NOREPLACE` (NFS) on a local disk too.
//!
//! Crash recovery is only believable when the kill lands at a known step, and a test that
//! guesses the moment with sleeps lands anywhere. Release builds (the Python package, `cargo
//! install`) compile all of this to nothing, so no environment variable can change them.

/// Names the crash point of a debug build; see the module documentation.
#[cfg(debug_assertions)]
pub(crate) const CRASH_AT_ENV: &str = "EXPMAN_TEST_CRASH_AT";

/// Dies here when [`CRASH_AT_ENV`] names this point and this is the pass it counts to.
#[cfg(debug_assertions)]
pub(crate) fn crash_point(point: &str) {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static PASSES: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
    let Ok(wanted) = std::env::var(CRASH_AT_ENV) else {
        return;
    };
    // Point names hold colons themselves: only a numeric last part is the count.
    let (name, nth) = match wanted.rsplit_once(':') {
        Some((name, n)) if n.parse::<u32>().is_ok() => (name, n.parse().unwrap_or(1)),
        _ => (wanted.as_str(), 1),
    };
    if name != point {
        return;
    }
    let mut passes = PASSES.lock().unwrap_or_else(|p| p.into_inner());
    let count = passes
        .get_or_insert_with(HashMap::new)
        .entry(point.to_string())
        .or_insert(0);
    *count += 1;
    if *count == nth {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// Release builds have no crash points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn crash_point(_point: &str) {}

/// Whether to act as on a filesystem without `RENAME_NOREPLACE` (debug builds, for tests).
#[cfg(debug_assertions)]
pub(crate) fn without_rename_noreplace() -> bool {
    std::env::var_os("EXPMAN_TEST_NO_RENAME_NOREPLACE").is_some_and(|v| v == "1")
}

/// Release builds use `RENAME_NOREPLACE` wherever the filesystem has it.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn without_rename_noreplace() -> bool {
    false
}
