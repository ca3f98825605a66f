//! `Experiment::capture_output`: a run started by hand gets its output in `logs/<run_id>.log`
//! (the log the UI shows), at the file-descriptor level, while it still reaches the terminal.
//!
//! Each case runs in a child process (this test binary in a role), because a capture takes over
//! the process's fds 1 and 2: the parent reads the child's stdout and stderr as its terminal
//! and the log as the UI would.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{child_command, wait_with_deadline};
use expman::Experiment;

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| {
        let base = PathBuf::from(common::env("EXPMAN_TEST_DIR"));
        match role {
            "print" => {
                let mut exp = Experiment::builder("by_hand", &base).create().unwrap();
                exp.capture_output().unwrap();
                println!("Rust println to stdout");
                eprintln!("Rust eprintln to stderr");
                // A write(2) of C code or another library, past every Rust stream.
                let raw = b"raw write to fd 1\n";
                // SAFETY: write(2) on fd 1 with a valid buffer.
                let written = unsafe { libc::write(1, raw.as_ptr().cast(), raw.len()) };
                assert_eq!(written, raw.len() as isize);
                // A child process inherits the descriptors.
                let status = Command::new("sh")
                    .args([
                        "-c",
                        "echo stdout of a subprocess; echo stderr of a subprocess >&2",
                    ])
                    .status()
                    .unwrap();
                assert!(status.success());
                if std::env::var("EXPMAN_TEST_STOP").is_ok() {
                    exp.stop_capture().unwrap();
                    println!("printed after stop_capture");
                }
                // Otherwise dropping `exp` stops the capture.
            }
            "switch" => {
                let mut first = Experiment::builder("first", &base).create().unwrap();
                first.capture_output().unwrap();
                println!("while the first runs");
                let mut second = Experiment::builder("second", &base).create().unwrap();
                second.capture_output().unwrap();
                assert!(!first.is_capturing() && second.is_capturing());
                println!("while the second runs");
                // Stopping the first one's (replaced) capture leaves the second's running.
                first.stop_capture().unwrap();
                println!("still the second");
            }
            "outlives" => {
                // A subprocess started during the capture, still printing after it stops (a
                // notebook cell run again, a server the script started).
                let mut exp = Experiment::builder("outlived", &base).create().unwrap();
                exp.capture_output().unwrap();
                let log = exp.layout().run_log(exp.run_id());
                let mut sub = Command::new("sh")
                    .args([
                        "-c",
                        "echo before; read go; echo after; echo after on stderr >&2",
                    ])
                    .stdin(Stdio::piped())
                    .spawn()
                    .unwrap();
                wait_until_in(&log, "before");
                exp.stop_capture().unwrap();
                writeln!(sub.stdin.take().unwrap(), "go").unwrap();
                let status = sub.wait().unwrap();
                assert!(
                    status.success(),
                    "the subprocess died after the stop: {status}"
                );
                wait_until_in(&log, "after on stderr");
            }
            "attached" => {
                // Launched as the scheduler launches jobs: fds 1 and 2 already are the log.
                let mut exp = Experiment::builder("ignored", &base).create().unwrap();
                assert!(exp.is_attached());
                exp.capture_output().unwrap();
                assert!(!exp.is_capturing());
                println!("printed once");
                std::io::stdout().flush().unwrap();
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// Waits (a minute at most) until the file at `path` holds `text`.
fn wait_until_in(path: &Path, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{text:?} never reached {path:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the child `role` with `env`, its output piped; returns (stdout, stderr).
fn run_child(role: &str, base: &Path, env: &[(&str, &str)]) -> (String, String) {
    let mut cmd = child_command("child", role);
    cmd.env("EXPMAN_TEST_DIR", base)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let out = wait_for_output(child);
    assert!(out.status.success(), "child {role} failed: {out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn wait_for_output(child: std::process::Child) -> std::process::Output {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the child exits within a minute")
        .unwrap()
}

/// The only experiment directory named `name_*` under `base`.
fn experiment_dir(base: &Path, name: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(base)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}_"))
        })
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

fn run_log(base: &Path, name: &str) -> String {
    std::fs::read_to_string(experiment_dir(base, name).join("logs/run_0001.log")).unwrap()
}

const STDOUT_LINES: [&str; 3] = [
    "Rust println to stdout",
    "raw write to fd 1",
    "stdout of a subprocess",
];
const STDERR_LINES: [&str; 2] = ["Rust eprintln to stderr", "stderr of a subprocess"];

/// Everything the process writes to fds 1 and 2 (Rust's streams, a raw write(2), a child
/// process) is in the run log when the experiment is dropped, and still on the terminal, each
/// stream on its own. Before `capture_output` existed, the log of a run started by hand stayed
/// empty.
#[test]
fn output_reaches_the_log_and_the_terminal() {
    let base = tempfile::tempdir().unwrap();
    let (stdout, stderr) = run_child("print", base.path(), &[]);
    let log = run_log(base.path(), "by_hand");
    for line in STDOUT_LINES {
        assert!(log.contains(line), "{line:?} in the log:\n{log}");
        assert!(stdout.contains(line), "{line:?} on stdout:\n{stdout}");
        assert!(!stderr.contains(line), "{line:?} on stderr:\n{stderr}");
    }
    for line in STDERR_LINES {
        assert!(log.contains(line), "{line:?} in the log:\n{log}");
        assert!(stderr.contains(line), "{line:?} on stderr:\n{stderr}");
        assert!(!stdout.contains(line), "{line:?} on stdout:\n{stdout}");
    }
    // The order of each stream is kept.
    let at = |line: &str| log.find(line).unwrap();
    assert!(at(STDOUT_LINES[0]) < at(STDOUT_LINES[1]) && at(STDOUT_LINES[1]) < at(STDOUT_LINES[2]));
}

/// `stop_capture` returns once everything printed before is in the log; what is printed after
/// reaches the terminal only.
#[test]
fn stop_capture_flushes_and_restores_the_terminal() {
    let base = tempfile::tempdir().unwrap();
    let (stdout, _) = run_child("print", base.path(), &[("EXPMAN_TEST_STOP", "1")]);
    let log = run_log(base.path(), "by_hand");
    for line in STDOUT_LINES.iter().chain(&STDERR_LINES) {
        assert!(log.contains(line), "{line:?} in the log:\n{log}");
    }
    assert!(stdout.contains("printed after stop_capture"), "{stdout}");
    assert!(!log.contains("printed after stop_capture"), "{log}");
}

/// A subprocess that still prints when the capture stops (started while it ran) keeps its
/// output: on the terminal and in the run's log, and it is not killed by a broken pipe, as it
/// was when the stop closed the pipe's read end.
#[test]
fn a_subprocess_printing_after_the_stop_keeps_its_output() {
    let base = tempfile::tempdir().unwrap();
    let (stdout, stderr) = run_child("outlives", base.path(), &[]);
    let log = run_log(base.path(), "outlived");
    assert!(
        stdout.contains("before") && stdout.contains("after\n"),
        "{stdout}"
    );
    assert!(stderr.contains("after on stderr"), "{stderr}");
    assert!(
        log.contains("before") && log.contains("after on stderr"),
        "{log}"
    );
}

/// One capture at a time: a second experiment's capture takes over, so each run's log holds
/// what was printed while it was the latest.
#[test]
fn a_later_capture_takes_over() {
    let base = tempfile::tempdir().unwrap();
    let (stdout, _) = run_child("switch", base.path(), &[]);
    let first = run_log(base.path(), "first");
    let second = run_log(base.path(), "second");
    assert_eq!(first, "while the first runs\n");
    assert_eq!(second, "while the second runs\nstill the second\n");
    for line in [
        "while the first runs",
        "while the second runs",
        "still the second",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
}

/// A job the scheduler launched already writes into its run log (fds 1 and 2 are that file):
/// capturing then does nothing, and nothing is written twice.
#[test]
fn a_scheduled_run_is_not_captured_twice() {
    let base = tempfile::tempdir().unwrap();
    let exp = Experiment::builder("scheduled", base.path())
        .create()
        .unwrap();
    let log_path = exp.layout().run_log(exp.run_id());
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    let mut cmd = child_command("child", "attached");
    cmd.env("EXPMAN_TEST_DIR", base.path())
        .env(expman::ENV_EXPERIMENT_DIR, exp.dir())
        .env(expman::ENV_RUN_ID, exp.run_id().to_string())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut child = cmd.spawn().unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(60), "the attached child");
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{text}");
    assert_eq!(text.matches("printed once").count(), 1, "{text}");
}
