//! Helpers shared by the `core_*` integration tests.
//!
//! Child processes are this test binary run again: `current_exe() --exact <child test>` with
//! [`ROLE_ENV`] naming what the child does. Each test file has one `#[test] fn child()` that
//! calls [`child_main`]; without the variable (a normal `cargo test`) it returns at once.
//!
//! Children talk back on stdout in lines starting with [`MARK`], so the test harness's own
//! output ("running 1 test", ...) never gets in the way.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use expman::{ErrorKind, SyncPolicy, TableWriter, Value};

/// Names the role a child process plays; unset in the parent.
pub const ROLE_ENV: &str = "EXPMAN_TEST_ROLE";
/// Prefix of every line a child reports to its parent.
pub const MARK: &str = "@@ ";
/// Both lock modes the writer supports (`EXPMAN_LOCK`).
pub const LOCK_MODES: [&str; 2] = ["shm", "flock"];

/// Runs `dispatch(role)` when this process is a child, and does nothing otherwise.
pub fn child_main(dispatch: impl FnOnce(&str)) {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        dispatch(&role);
    }
}

/// The value of a variable the parent set for this child.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("the parent must set {name}"))
}

/// A command that runs `child_test` of this test binary in the role `role`.
pub fn child_command(child_test: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args([
        "--exact",
        child_test,
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env(ROLE_ENV, role)
    // Nothing leaks in from whoever runs the tests; each test sets what it means.
    .env_remove("EXPMAN_LOCK")
    .env_remove(expman::ENV_EXPERIMENT_DIR)
    .env_remove(expman::ENV_RUN_ID)
    .stdin(Stdio::null());
    cmd
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a test that fails
/// half-way leaves no writer running, or stopped, behind it (holding our stdout open).
pub struct Guarded(pub Child);

impl Guarded {
    /// Starts `cmd`.
    pub fn spawn(cmd: &mut Command) -> Guarded {
        Guarded(cmd.spawn().expect("start a child process"))
    }
}

impl std::ops::Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reports one line to the parent (flushed at once: the parent may be blocked on it).
pub fn report(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{}", line.as_ref()).expect("write to the parent");
    out.flush().expect("flush to the parent");
}

/// How long a child may take to answer: far more than any correct one needs, so only a hang
/// (a lock never taken over, a deadlock) hits it.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// A child's reports, read on a thread so that waiting for one has a deadline instead of
/// hanging the test run. The thread also drains the child's stdout until it exits.
pub struct Reports(mpsc::Receiver<String>);

impl Reports {
    /// Starts reading the reports of `child` (whose stdout must be piped).
    pub fn of(child: &mut Child) -> Reports {
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            while let Some(line) = next_report(&mut stdout) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Reports(rx)
    }

    /// The next report; fails the test if the child exits first or says nothing for
    /// [`ANSWER_DEADLINE`].
    pub fn next(&self, what: &str) -> String {
        self.try_next(what)
            .unwrap_or_else(|| panic!("{what}: the child exited without answering"))
    }

    /// The next report, or `None` once the child has exited; fails the test on a hang.
    pub fn try_next(&self, what: &str) -> Option<String> {
        match self.0.recv_timeout(ANSWER_DEADLINE) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "{what}: no answer within {ANSWER_DEADLINE:?} (deadlock, or a lock never taken over?)"
                )
            }
        }
    }
}

/// Reads `stdout` until the next reported line; `None` at end of file.
fn next_report(stdout: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).expect("read a child's stdout") == 0 {
            return None;
        }
        if let Some(report) = line.strip_prefix(MARK) {
            return Some(report.trim_end_matches('\n').to_string());
        }
    }
}

/// Waits for `child` to exit, killing it and failing the test after `limit`. (Polling here is a
/// deadline, not synchronisation: a correct child exits long before it.)
pub fn wait_with_deadline(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?} (deadlock or a lock never taken over?)");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asserts that a child process exited successfully.
pub fn assert_success(status: ExitStatus, what: &str) {
    assert!(status.success(), "{what} failed: {status}");
}

/// A small deterministic PRNG (xorshift64*): the tests need random instants, not a crate.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `EXPMAN_TEST_SEED` when set (to replay a failure), else from the clock. The
    /// seed is printed so a failing run can be reproduced.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("EXPMAN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: EXPMAN_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Appends `line` and a newline to `path` with one `write(2)`: the children's acknowledgement
/// log, written only after `save_row` has returned.
pub fn ack(file: &mut File, line: &str) {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    file.write_all(&buf).expect("write the acknowledgement");
}

/// Opens (creating) an acknowledgement file in append mode.
pub fn open_ack(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the acknowledgement file")
}

/// The lines of an acknowledgement file.
pub fn read_acks(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// The cells of a row by column name, leaving out empty ones.
pub fn row_map(columns: &[String], row: &[Value]) -> HashMap<String, Value> {
    columns
        .iter()
        .zip(row)
        .filter(|(_, v)| **v != Value::Null)
        .map(|(c, v)| (c.clone(), v.clone()))
        .collect()
}

/// Parses a value written as `i:3`, `f:1.5`, `b:true`, `s:text` (the scripted child's syntax;
/// in text, `\n` stands for a newline and `\s` for a space).
pub fn parse_value(text: &str) -> Value {
    let (ty, v) = text.split_once(':').expect("values look like i:3");
    match ty {
        "i" => Value::Int(v.parse().unwrap()),
        "f" => Value::Float(v.parse().unwrap()),
        "b" => Value::Bool(v.parse().unwrap()),
        "s" => Value::Str(v.replace("\\n", "\n").replace("\\s", " ")),
        _ => panic!("unknown value type {ty}"),
    }
}

/// A child that obeys commands on stdin, one per line, answering each with one report:
///
/// - `save name=i:1 other=s:x` → sets the fields, calls `save_row`, answers `ok` or
///   `err <kind> <message>`
/// - `fsize <bytes>` → lowers RLIMIT_FSIZE (and ignores SIGXFSZ) so writes past it fail
/// - `fsize_off` → raises it back
/// - `fill_fds <spare>` → opens file descriptors until only `spare` are left
/// - `exit`
///
/// The table comes from `EXPMAN_TEST_TABLE`, the run id from `EXPMAN_TEST_RUN`.
pub fn scripted_writer() {
    let mut writer = TableWriter::new(
        env("EXPMAN_TEST_TABLE"),
        &env("EXPMAN_TEST_RUN"),
        SyncPolicy::WriteThrough,
    );
    let mut hoard: Vec<File> = Vec::new();
    report("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("read a command");
        let mut words = line.split(' ');
        match words.next().unwrap_or_default() {
            "save" => {
                let result = words.try_for_each(|field| {
                    let (name, value) = field.split_once('=').expect("fields look like a=i:1");
                    writer.set(name, parse_value(value))
                });
                match result.and_then(|()| writer.save_row()) {
                    Ok(()) => report("ok"),
                    Err(e) => {
                        let kind = match e.kind() {
                            ErrorKind::Io { .. } => "Io",
                            ErrorKind::Corrupt { .. } => "Corrupt",
                            ErrorKind::InvalidName { .. } => "InvalidName",
                            _ => "Other",
                        };
                        // A failed save keeps its pending row; drop it so the next command
                        // starts clean.
                        writer.clear_row();
                        report(format!("err {kind} {}", e.to_string().replace('\n', " ")));
                    }
                }
            }
            "fsize" => {
                let bytes: u64 = words.next().unwrap().parse().unwrap();
                set_fsize_limit(bytes);
                report("ok");
            }
            "fsize_off" => {
                set_fsize_limit(libc::RLIM_INFINITY);
                report("ok");
            }
            "fill_fds" => {
                let spare: usize = words.next().unwrap().parse().unwrap();
                while let Ok(f) = File::open("/dev/null") {
                    hoard.push(f);
                }
                hoard.truncate(hoard.len().saturating_sub(spare));
                report("ok");
            }
            "exit" => return,
            other => panic!("unknown command {other:?}"),
        }
    }
}

/// Lowers (or restores) the soft file-size limit of this process. Writes past it fail with
/// EFBIG instead of killing the process, because SIGXFSZ is ignored.
pub fn set_fsize_limit(bytes: u64) {
    // SAFETY: plain libc calls with valid arguments; ignoring SIGXFSZ is process-wide and this
    // child does nothing else that relies on it.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit),
            0,
            "setrlimit(RLIMIT_FSIZE)"
        );
    }
}

/// The parent's handle on a [`scripted_writer`] child.
pub struct Scripted {
    child: Guarded,
    stdin: ChildStdin,
    reports: Reports,
}

impl Scripted {
    /// Starts a scripted writer of `table` for `run` through `child_test` of this binary, with
    /// `EXPMAN_LOCK=lock_mode` (or the default detection when `None`).
    pub fn start(child_test: &str, table: &Path, run: &str, lock_mode: Option<&str>) -> Scripted {
        let mut cmd = child_command(child_test, "scripted");
        cmd.env("EXPMAN_TEST_TABLE", table)
            .env("EXPMAN_TEST_RUN", run)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(mode) = lock_mode {
            cmd.env("EXPMAN_LOCK", mode);
        }
        let mut child = Guarded::spawn(&mut cmd);
        let stdin = child.stdin.take().unwrap();
        let reports = Reports::of(&mut child);
        assert_eq!(reports.next("a scripted writer starting"), "ready");
        Scripted {
            child,
            stdin,
            reports,
        }
    }

    /// Sends one command and returns the child's answer.
    pub fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("send a command");
        self.stdin.flush().unwrap();
        self.reports.next(line)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the child to exit and checks it did so cleanly.
    pub fn exit(mut self) {
        writeln!(self.stdin, "exit").expect("send exit");
        let status = wait_with_deadline(
            &mut self.child,
            Duration::from_secs(20),
            "a scripted writer",
        );
        assert_success(status, "a scripted writer");
    }
}
