//! `EXP terminate` and `EXP delete` from another process: through the control channel while
//! a scheduler runs on the base directory, and performed by the caller when none does.

#![cfg(feature = "ui")]

mod scheduler_support;

use std::path::Path;

use scheduler_support::*;

/// A job whose shell leaves a background grandchild running and waits for it; the grandchild's
/// pid goes to `$PIDFILE`.
const SPAWNS_GRANDCHILD: &str = "sleep 1000 & echo $! > \"$PIDFILE\"; wait";

fn read_pid(path: &Path) -> u32 {
    wait_for_file(path).trim().parse().expect("a pid")
}

/// After a terminate: Error "terminated", nothing left of the job's process group, the
/// grandchild included, and the supervisor gone.
fn assert_terminated(dir: &Path, grandchild: u32) {
    let status = wait_for_state(dir, "Error");
    assert_eq!(status["error"], "terminated", "{status}");
    let pgid = pid_field(&status, "pid");
    assert_eq!(
        group_members(pgid),
        Vec::<u32>::new(),
        "job group {pgid} survived"
    );
    assert!(!alive(grandchild), "grandchild {grandchild} survived");
    let supervisor = pid_field(&status, "supervisor_pid");
    wait_until("the supervisor to exit", LIMIT, || {
        (!alive(supervisor)).then_some(())
    });
}

/// While the scheduler runs, `EXP terminate` goes through its control channel: the job's whole
/// process group dies, the run is Error "terminated", and the scheduler moves on to the next
/// job (which shows the freed slot is reused) and exits. A queued job terminated before it
/// starts is cancelled: it never runs, not even through its `retries`.
#[test]
fn terminate_through_the_scheduler_kills_grandchildren() {
    let sb = Sandbox::new();
    let pidfile = sb.join("grandchild.pid");
    let after = sb.join("after-ran");
    let cancelled_ran = sb.join("cancelled-ran");
    let config = sb.write(
        "terminate.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
max_concurrent = 1
gpus = []

[[experiments]]
name = "stuck"
priority = 1
env = {{ PIDFILE = {pid} }}
command = {cmd}

[[experiments]]
name = "after"
command = "touch {after}"

[[experiments]]
name = "cancelled"
retries = 1
command = "touch {cancelled_ran}"
"#,
            pid = toml_path(&pidfile),
            cmd = toml_str(SPAWNS_GRANDCHILD),
            after = after.display(),
            cancelled_ran = cancelled_ran.display(),
        ),
    );
    let scheduler = Running::scheduler(&config);
    let grandchild = read_pid(&pidfile);
    let dir = experiment(&sb.base(), "stuck");
    assert_eq!(status(&dir)["status"], "Running");
    assert!(
        !after.exists(),
        "max_concurrent = 1 holds the second job back"
    );

    let cancelled = experiment(&sb.base(), "cancelled");
    let out = control("terminate", &cancelled);
    out.expect_code(0);
    assert!(out.stdout.contains("cancelled"), "{}", out.stdout);

    let out = control("terminate", &dir);
    out.expect_code(0);
    assert!(out.stdout.contains("terminated"), "{}", out.stdout);

    let out = scheduler.wait(LIMIT);
    out.expect_code(1);
    // The scheduler performed both requests (it reports each one it answers).
    assert!(out.stdout.contains(": terminated"), "{}", out.stdout);
    assert!(out.stdout.contains(": cancelled"), "{}", out.stdout);
    assert_terminated(&dir, grandchild);
    let cancelled = status(&cancelled);
    assert_eq!(cancelled["status"], "Error", "{cancelled}");
    assert_eq!(cancelled["run_id"], "run_0001", "{cancelled}");
    assert!(
        cancelled["error"].as_str().unwrap().contains("cancelled"),
        "{cancelled}"
    );
    assert!(!cancelled_ran.exists(), "the cancelled job ran");
    assert!(
        after.exists(),
        "the queued job ran after the terminated one"
    );
    assert_eq!(
        status(&experiment(&sb.base(), "after"))["status"],
        "Finished"
    );
}

/// With no scheduler running, `EXP terminate` does the work itself: a run started by
/// `EXP retry` (a detached supervisor) is killed with its grandchildren and marked.
#[test]
fn terminate_without_a_scheduler_kills_grandchildren() {
    let sb = Sandbox::new();
    let pidfile = sb.join("grandchild.pid");
    // The first run ends at once; the retried run hangs with a grandchild.
    let config = sb.write(
        "terminate.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
gpus = []

[[experiments]]
name = "hangs_on_retry"
env = {{ PIDFILE = {pid} }}
command = {cmd}
"#,
            pid = toml_path(&pidfile),
            cmd = toml_str(&format!(
                "if [ \"$EXPMAN_RUN_ID\" = run_0001 ]; then exit 0; fi; {SPAWNS_GRANDCHILD}"
            )),
        ),
    );
    run_scheduler(&config).expect_code(0);
    let dir = experiment(&sb.base(), "hangs_on_retry");

    control("retry", &dir).expect_code(0);
    let grandchild = read_pid(&pidfile);
    let running = wait_for_state(&dir, "Running");
    assert_eq!(running["run_id"], "run_0002", "{running}");
    assert!(alive(grandchild));

    let out = control("terminate", &dir);
    out.expect_code(0);
    assert_terminated(&dir, grandchild);
    assert_eq!(status(&dir)["run_id"], "run_0002");
}

/// `EXP delete` is refused while the experiment runs (and removes nothing); once it has
/// finished it removes the directory, both through a running scheduler and without one.
#[test]
fn delete_is_refused_while_running_and_removes_when_finished() {
    let sb = Sandbox::new();
    let release = sb.join("release");
    let config = sb.write(
        "delete.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
max_concurrent = 2
gpus = []

[[experiments]]
name = "blocked"
priority = 1
command = "touch {started}; while [ ! -e {release} ]; do sleep 0.02; done"

[[experiments]]
name = "quick"
command = "true"

[[experiments]]
name = "third"
priority = -1
command = "true"
"#,
            started = sb.join("started").display(),
            release = release.display()
        ),
    );
    let scheduler = Running::scheduler(&config);
    // Every queued experiment appears on disk at once.
    wait_until("the experiments to appear", LIMIT, || {
        (experiments(&sb.base()).len() == 3).then_some(())
    });
    let blocked = experiment(&sb.base(), "blocked");
    let quick = experiment(&sb.base(), "quick");
    wait_for_state(&blocked, "Running");
    // `third` gets the slot `quick` frees once the scheduler has seen `quick` end (`blocked`
    // holds the other one): from then on the scheduler counts `quick` as done.
    wait_for_state(&experiment(&sb.base(), "third"), "Finished");
    assert_eq!(status(&quick)["status"], "Finished");

    // Refused while running: an error naming the state, the directory untouched.
    let out = control("delete", &blocked);
    assert_ne!(
        out.code(),
        Some(0),
        "deleting a running experiment succeeded"
    );
    assert!(out.stderr.contains("running"), "{}", out.stderr);
    assert!(blocked.join("config.json").is_file());

    // A finished one goes, through the scheduler's control channel.
    control("delete", &quick).expect_code(0);
    assert!(!quick.exists(), "{quick:?} still exists");

    std::fs::write(&release, "").unwrap();
    scheduler.wait(LIMIT).expect_code(0);
    assert_eq!(status(&blocked)["status"], "Finished");

    // No scheduler now: the caller deletes it itself.
    control("delete", &blocked).expect_code(0);
    assert!(!blocked.exists(), "{blocked:?} still exists");
}

/// Ctrl-C (SIGINT) to the scheduler terminates its running jobs, grandchildren included, and
/// cancels the queued ones; it then exits with the summary and a non-zero code.
#[test]
fn ctrl_c_terminates_running_jobs_and_cancels_queued_ones() {
    interrupted_by(&[libc::SIGINT]);
}

/// SIGTERM (what `kill`, systemd, docker and `timeout` send) does the same; it used to kill the
/// scheduler outright, leaving its jobs running and their runs Running for good.
#[test]
fn sigterm_terminates_running_jobs_and_cancels_queued_ones() {
    interrupted_by(&[libc::SIGTERM]);
}

/// The same signal twice at once (`timeout -s INT` signals the process and its group; so does
/// a terminal's Ctrl-C) is one request: it used to exit at once, without a summary, leaving
/// the jobs running.
#[test]
fn a_doubled_interrupt_still_terminates_the_jobs_and_prints_the_summary() {
    interrupted_by(&[libc::SIGINT, libc::SIGINT]);
}

fn interrupted_by(signals: &[libc::c_int]) {
    let sb = Sandbox::new();
    let pidfile = sb.join("grandchild.pid");
    let queued_ran = sb.join("queued-ran");
    let config = sb.write(
        "interrupt.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
max_concurrent = 1
gpus = []

[[experiments]]
name = "running"
priority = 1
env = {{ PIDFILE = {pid} }}
command = {cmd}

[[experiments]]
name = "queued"
command = "touch {queued_ran}"
"#,
            pid = toml_path(&pidfile),
            cmd = toml_str(SPAWNS_GRANDCHILD),
            queued_ran = queued_ran.display(),
        ),
    );
    let scheduler = Running::scheduler(&config);
    let grandchild = read_pid(&pidfile);
    let running = experiment(&sb.base(), "running");
    let queued = experiment(&sb.base(), "queued");

    for &sig in signals {
        signal(scheduler.pid(), sig);
    }
    let out = scheduler.wait(LIMIT);
    out.expect_code(1);
    assert!(out.stdout.contains("interrupted"), "{}", out.stdout);
    assert_terminated(&running, grandchild);
    let queued_status = status(&queued);
    assert_eq!(queued_status["status"], "Error", "{queued_status}");
    assert!(
        queued_status["error"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{queued_status}"
    );
    assert!(!queued_ran.exists(), "the queued job ran after Ctrl-C");
    // The progress line and the summary give the terminated run the same time.
    let event = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("running run_0001 after ")?.1.split_once(':'))
        .map(|(time, _)| time.to_string());
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("running ") && l.contains("terminated"))
        .and_then(|l| l.split_whitespace().nth(3))
        .map(str::to_string);
    assert!(event.is_some() && event == row, "{}", out.stdout);
}

/// A run started by hand (from a shell, a notebook, a launcher) does not lead a process group:
/// `EXP terminate` signalled the group of its pid, which reached nothing, then reported
/// "terminated" and marked the run Error while the process went on writing rows. Now the
/// process itself is stopped (and only it: the test runner shares its group), and only then is
/// the run marked.
#[test]
fn terminate_stops_a_run_started_by_hand_that_leads_no_process_group() {
    /// Kills the stand-in on the way out, also when the test fails.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let sb = Sandbox::new();
    // Shares this test's process group, as a script started from a shell shares the shell's.
    let mut job = KillOnDrop(
        std::process::Command::new("sleep")
            .arg("1000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start sleep"),
    );
    let mut exp = expman::Experiment::builder("by_hand", sb.base())
        .command("python train.py")
        .create()
        .expect("create the experiment");
    exp.set_running(job.0.id()).expect("mark it running");
    let dir = exp.dir().to_path_buf();
    drop(exp);

    let out = control("terminate", &dir);
    out.expect_code(0);
    let exited = wait_until("the run's process to exit", LIMIT, || {
        job.0.try_wait().expect("query sleep")
    });
    assert!(!exited.success(), "{exited:?}");
    let status = status(&dir);
    assert_eq!(status["status"], "Error", "{status}");
    assert_eq!(status["error"], "terminated", "{status}");
}

/// A retry whose supervisor cannot be started (here: no EXP where EXPMAN_EXP_BIN points; in
/// the wild: the UI server's binary replaced by an upgrade) left the new run Pending for good:
/// nothing would ever start it, and the UI offered only Delete. It is now ended in Error with
/// the reason.
#[test]
fn a_retry_that_cannot_start_its_supervisor_ends_the_run_in_error() {
    let sb = Sandbox::new();
    let config = sb.write(
        "fails.toml",
        "[scheduler]\nbase_dir = \"experiments\"\ngpus = []\n\n[[experiments]]\nname = \"fails\"\ncommand = \"exit 1\"\n",
    );
    run_scheduler(&config).expect_code(1);
    let dir = experiment(&sb.base(), "fails");
    let mut retry = exp();
    retry
        .env("EXPMAN_EXP_BIN", sb.join("missing/EXP"))
        .arg("retry")
        .arg(&dir);
    let out = run(retry);
    assert_ne!(out.code(), Some(0), "{out:?}");
    let status = status(&dir);
    assert_eq!(status["run_id"], "run_0002", "{status}");
    assert_eq!(status["status"], "Error", "{status}");
    let error = status["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("could not start"), "{status}");
}
