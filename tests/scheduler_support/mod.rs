//! Helpers shared by the `scheduler_*` integration tests.
//!
//! Every test runs the real `EXP` binary (`EXP run`, `EXP retry`, ...) on a config in a temp
//! directory, with jobs that are small shell scripts recording what they saw (start and end
//! times, `CUDA_VISIBLE_DEVICES`, ...) in files the test reads afterwards.
//!
//! Waiting is on real events: a process exit (through a thread blocked in `wait`), or a file or
//! a `status.json` state appearing, polled with a deadline. A deadline that passes fails the
//! test with what the scheduler printed.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `EXP` binary cargo built for these tests.
pub const EXP: &str = env!("CARGO_BIN_EXE_EXP");

/// How long any single wait in these tests may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(40);

/// A temp directory holding configs, job scripts, records and the experiments.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// A fresh, empty sandbox.
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("expman-sched-")
                .tempdir()
                .expect("create a temp dir"),
        }
    }

    /// The sandbox directory (absolute).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<sandbox>/<name>`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// The base directory the configs written by the tests use (`base_dir = "experiments"`).
    pub fn base(&self) -> PathBuf {
        self.join("experiments")
    }

    /// Writes `contents` to `<sandbox>/<name>` and returns the path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        path
    }

    /// Writes the job script [`JOB_SCRIPT`] as `<sandbox>/job.sh` and returns a command line
    /// prefix running it: `sh <sandbox>/job.sh`.
    pub fn job_script(&self) -> String {
        let path = self.write("job.sh", JOB_SCRIPT);
        format!("sh {}", path.display())
    }
}

impl Drop for Sandbox {
    /// A test that fails half way can leave jobs running (they live in their own process
    /// groups, detached from the scheduler): kill every process whose command line names this
    /// sandbox, with its process group (which holds the job's grandchildren).
    fn drop(&mut self) {
        let needle = self.path().display().to_string();
        let own_group = stat(std::process::id()).map(|(_, group)| group);
        for pid in processes() {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            if !String::from_utf8_lossy(&cmdline).contains(&needle) {
                continue;
            }
            if let Some((_, group)) = stat(pid)
                && Some(group) != own_group
            {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(-(group as libc::pid_t), libc::SIGKILL);
                }
            }
            signal(pid, libc::SIGKILL);
        }
    }
}

/// A job that records what it saw. Arguments: `NAME RECORDS SECONDS [BARRIER]`.
///
/// It appends `start NAME` to `RECORDS.starts` as soon as it runs; with `BARRIER` it then waits
/// until that file has at least `BARRIER` lines (so the first `BARRIER` jobs are provably
/// running at the same moment); then it sleeps `SECONDS` (its "work") and appends one line to
/// `RECORDS`: `NAME START_NS END_NS CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER EXPMAN_RUN_ID
/// EXPMAN_EXPERIMENT_DIR` (`-` for an unset variable). Both lines are single `write`s to files
/// opened with `O_APPEND`, so concurrent jobs never interleave them.
pub const JOB_SCRIPT: &str = r#"name=$1; rec=$2; secs=$3; barrier=${4:-0}
start=$(date +%s%N)
echo "start $name" >> "$rec.starts"
while [ "$(wc -l < "$rec.starts")" -lt "$barrier" ]; do sleep 0.01; done
sleep "$secs"
end=$(date +%s%N)
echo "$name $start $end ${CUDA_VISIBLE_DEVICES--} ${CUDA_DEVICE_ORDER--} ${EXPMAN_RUN_ID--} ${EXPMAN_EXPERIMENT_DIR--}" >> "$rec"
"#;

/// One line of a records file written by [`JOB_SCRIPT`].
#[derive(Debug, Clone)]
pub struct Record {
    /// The job's name (its first argument).
    pub name: String,
    /// `date +%s%N` when it started.
    pub start: u128,
    /// `date +%s%N` when it ended.
    pub end: u128,
    /// `CUDA_VISIBLE_DEVICES` as the job saw it, parsed; `None` when unset.
    pub gpus: Option<Vec<u32>>,
    /// `CUDA_DEVICE_ORDER` (`-` when unset).
    pub device_order: String,
    /// `EXPMAN_RUN_ID` (`-` when unset).
    pub run_id: String,
    /// `EXPMAN_EXPERIMENT_DIR` (`-` when unset).
    pub experiment_dir: String,
}

impl Record {
    /// Whether the two jobs ran at the same time.
    pub fn overlaps(&self, other: &Record) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Reads a records file written by [`JOB_SCRIPT`], in the order the lines were written.
pub fn read_records(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 7, "malformed record line {line:?}");
            let gpus = match f[3] {
                "-" => None,
                "" => Some(Vec::new()),
                list => Some(
                    list.split(',')
                        .map(|g| g.parse().unwrap_or_else(|_| panic!("bad GPU in {line:?}")))
                        .collect(),
                ),
            };
            Record {
                name: f[0].to_string(),
                start: f[1].parse().expect("start time"),
                end: f[2].parse().expect("end time"),
                gpus,
                device_order: f[4].to_string(),
                run_id: f[5].to_string(),
                experiment_dir: f[6].to_string(),
            }
        })
        .collect()
}

/// The largest number of records whose intervals overlap at one instant.
pub fn max_overlap(records: &[Record]) -> usize {
    // Sweep over start (+1) and end (-1) events; at equal times ends go first, since an
    // interval is [start, end).
    let mut events: Vec<(u128, i32)> = records
        .iter()
        .flat_map(|r| [(r.start, 1), (r.end, -1)])
        .collect();
    events.sort();
    let (mut now, mut best) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        best = best.max(now);
    }
    best as usize
}

/// `EXP` with a clean environment for these tests: the supervisor is this same binary
/// (`EXPMAN_EXP_BIN`), and nothing about GPUs or an enclosing run leaks in.
pub fn exp() -> Command {
    let mut cmd = Command::new(EXP);
    cmd.env("EXPMAN_EXP_BIN", EXP)
        .env_remove("EXPMAN_EXPERIMENT_DIR")
        .env_remove("EXPMAN_RUN_ID")
        .env_remove("EXPMAN_PARAMS")
        .env_remove("EXPMAN_GPU_INVENTORY")
        .stdin(Stdio::null());
    cmd
}

/// What a finished `EXP` process printed.
#[derive(Debug)]
pub struct Outcome {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Outcome {
    /// Its exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Outcome {
        assert_eq!(
            self.code(),
            Some(code),
            "EXP exited with {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A running `EXP` process whose output is being collected.
pub struct Running {
    /// `None` once waited for.
    child: Option<Child>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    /// Starts `cmd` with its output collected.
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start EXP");
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = Some(collect(Box::new(child.stdout.take().expect("stdout"))));
        let stderr = Some(collect(Box::new(child.stderr.take().expect("stderr"))));
        Running {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// `EXP run --config <config>`.
    pub fn scheduler(config: &Path) -> Running {
        let mut cmd = exp();
        cmd.arg("run").arg("--config").arg(config);
        Running::spawn(cmd)
    }

    /// Like [`Running::scheduler`] with extra environment variables.
    pub fn scheduler_with_env(config: &Path, env: &[(&str, &str)]) -> Running {
        let mut cmd = exp();
        cmd.arg("run").arg("--config").arg(config);
        for (key, value) in env {
            cmd.env(key, value);
        }
        Running::spawn(cmd)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not waited for yet").id()
    }

    /// Waits for the process to exit (a thread blocks in `wait`); after `limit` it is killed
    /// and the test fails with its output.
    pub fn wait(mut self, limit: Duration) -> Outcome {
        let mut child = self.child.take().expect("not waited for yet");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait().expect("wait for EXP");
            let _ = tx.send(status);
        });
        let mut status = rx.recv_timeout(limit).ok();
        let timed_out = status.is_none();
        if timed_out {
            signal(pid, libc::SIGKILL);
        }
        waiter.join().expect("the waiter thread");
        status = status.or_else(|| rx.try_recv().ok());
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        if timed_out {
            panic!(
                "EXP (pid {pid}) did not exit within {limit:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            );
        }
        Outcome {
            status: status.expect("exit status"),
            stdout,
            stderr,
        }
    }

    /// `kill -9`, then reaps it; returns what it printed until then.
    pub fn kill9(self) -> Outcome {
        signal(self.pid(), libc::SIGKILL);
        self.wait(LIMIT)
    }
}

impl Drop for Running {
    /// A test that panics before waiting leaves no scheduler behind.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `cmd` to completion (at most [`LIMIT`]).
pub fn run(cmd: Command) -> Outcome {
    Running::spawn(cmd).wait(LIMIT)
}

/// `EXP run --config <config>` to completion.
pub fn run_scheduler(config: &Path) -> Outcome {
    Running::scheduler(config).wait(LIMIT)
}

/// `EXP <action> <dir>` (retry, terminate, delete) to completion.
pub fn control(action: &str, dir: &Path) -> Outcome {
    let mut cmd = exp();
    cmd.arg(action).arg(dir);
    run(cmd)
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Polls `ready` every 10 ms until it gives `Some`, failing the test after `limit`.
pub fn wait_until<T>(what: &str, limit: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `path` exists and is not empty; returns its contents.
pub fn wait_for_file(path: &Path) -> String {
    wait_until(&format!("{path:?} to appear"), LIMIT, || {
        std::fs::read_to_string(path)
            .ok()
            .filter(|text| !text.trim().is_empty())
    })
}

/// The experiments under `base`, by the name in their `config.json`; fails on two directories
/// with the same name (nothing in these tests should run twice).
pub fn experiments(base: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(base) else {
        return found;
    };
    for entry in entries {
        let path = entry.expect("list the base dir").path();
        let Ok(text) = std::fs::read_to_string(path.join("config.json")) else {
            continue;
        };
        let config: Value = serde_json::from_str(&text).expect("config.json is JSON");
        let name = config["name"].as_str().expect("config name").to_string();
        if let Some(other) = found.insert(name.clone(), path.clone()) {
            panic!("two directories for experiment {name}: {other:?} and {path:?}");
        }
    }
    found
}

/// The directory of experiment `name` under `base`.
pub fn experiment(base: &Path, name: &str) -> PathBuf {
    experiments(base)
        .remove(name)
        .unwrap_or_else(|| panic!("no experiment {name} under {base:?}"))
}

/// `status.json` of an experiment directory.
pub fn status(dir: &Path) -> Value {
    let path = dir.join("status.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}

/// Waits until `status.json` of `dir` says `state` (Pending, Running, Finished, Error).
pub fn wait_for_state(dir: &Path, state: &str) -> Value {
    wait_for_status(dir, &format!("status {state}"), |s| s["status"] == state)
}

/// Waits until `status.json` of `dir` satisfies `ready`.
pub fn wait_for_status(dir: &Path, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_until(&format!("{dir:?}: {what}"), LIMIT, || {
        let path = dir.join("status.json");
        let status: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        ready(&status).then_some(status)
    })
}

/// Whether process `pid` exists and is not a zombie (a zombie has finished; only its parent,
/// sometimes an init that never reaps, keeps the entry).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The live (non-zombie) processes of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|(state, group)| state != 'Z' && group == pgid))
        .collect()
}

/// Every pid in `/proc`.
fn processes() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("list /proc")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// State letter and process group of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let mut fields = text[text.rfind(')')? + 1..].split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// A pid recorded in `status.json` (`pid`, `supervisor_pid`).
pub fn pid_field(status: &Value, field: &str) -> u32 {
    status[field]
        .as_u64()
        .unwrap_or_else(|| panic!("status.json has no {field}: {status}")) as u32
}

/// The Python interpreter the project's test runner prepares (`<repo>/.venv/bin/python`, see
/// `scripts/setup-test-deps`), checked to import `expman`. Fails the test with what to do
/// otherwise: these tests are about the binding, so skipping them silently would hide a gap.
pub fn python_with_expman() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = repo.join(".venv/bin/python");
    let fix = format!(
        "create it with scripts/setup-test-deps, then install the binding: \
         {}/.venv/bin/python -m pip install ./bindings/python",
        repo.display()
    );
    assert!(
        python.is_file(),
        "{} does not exist; {fix}",
        python.display()
    );
    let check = Command::new(&python)
        .args(["-c", "import expman"])
        .stdin(Stdio::null())
        .output()
        .expect("run the .venv python");
    assert!(
        check.status.success(),
        "`{} -c 'import expman'` failed ({}); {fix}",
        python.display(),
        String::from_utf8_lossy(&check.stderr).trim()
    );
    python
}

/// Quotes `path` as a TOML basic string.
pub fn toml_path(path: &Path) -> String {
    toml_str(&path.display().to_string())
}

/// Quotes `text` as a TOML basic string.
pub fn toml_str(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `EXP run` on `config` (with the dry run too) and checks: exit code 2, one error line on
/// stderr starting with `<path>:<line>:<column>: ` and holding every `needle`, and no base
/// directory afterwards. `config` may be bytes that are not UTF-8.
pub fn assert_rejected(config: impl AsRef<[u8]>, line: usize, column: usize, needles: &[&str]) {
    let sb = Sandbox::new();
    let path = sb.write("bad.toml", config);
    for dry_run in [false, true] {
        let mut cmd = exp();
        cmd.arg("run").arg("--config").arg(&path);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let out = run(cmd);
        out.expect_code(2);
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("EXP: ") && !l.contains("no GPU pool"))
            .collect();
        assert_eq!(errors.len(), 1, "one error:\n{}", out.stderr);
        let origin = format!("EXP: {}:{line}:{column}: ", path.display());
        assert!(
            errors[0].starts_with(&origin),
            "expected the error at {origin:?}, got:\n{}",
            errors[0]
        );
        for needle in needles {
            assert!(
                errors[0].contains(needle),
                "{needle:?} missing from:\n{}",
                errors[0]
            );
        }
        assert!(
            out.stdout.is_empty(),
            "nothing planned or run: {}",
            out.stdout
        );
        assert!(
            !sb.base().exists(),
            "a rejected config created {}",
            sb.base().display()
        );
    }
}
