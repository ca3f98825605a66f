//! `config.json` (what an experiment is) and `status.json` (where it stands), written atomically.

use std::io::ErrorKind as IoErrorKind;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::process::{ProcessId, hostname};
use super::run_id::RunId;
use super::{ExperimentDir, LockFile, write_atomic};
use crate::error::{Error, IoContext, Result};

/// `config.json`: the experiment's identity, written when it is created (and again by the
/// scheduler's `resume = true`, with the config file's settings; name and creation stay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The experiment's name.
    pub name: String,
    /// The command that runs it.
    pub command: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Free-form description.
    pub description: String,
    /// GPUs the experiment asked for.
    pub gpu_ids: Vec<u32>,
    /// Creation time, RFC 3339 with the local offset.
    pub created_at: String,
    /// The host that created it.
    pub host: String,
    /// The expman version that created it.
    pub expman_version: String,
    /// Scheduler priority (higher first); 0 outside the scheduler.
    pub priority: i64,
    /// How the scheduler launches the command (kept here so a retry can relaunch it).
    pub launch: Launch,
    /// Hyperparameters by flattened name (see [`crate::params`]): set at creation, from the
    /// scheduler's config or `EXPMAN_PARAMS`, and updated by `log_params`.
    pub params: crate::params::Params,
}

/// How a scheduled experiment's command is launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Launch {
    /// Extra environment variables.
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory (absolute); `None` for the scheduler's own.
    pub cwd: Option<String>,
    /// Kill the job's process group after this many seconds.
    pub timeout_secs: Option<u64>,
    /// How many times a failed run is retried automatically.
    pub retries: u32,
    /// GPUs to take from the scheduler's pool (when `gpu_ids` is empty); with Slurm, the
    /// `--gres=gpu:N` count.
    pub gpus: u32,
    /// Submitted to Slurm with these settings (`[scheduler] backend = "slurm"`); `None` for a
    /// job the scheduler runs on its own machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmLaunch>,
    /// How often the job supervisor samples the job's system metrics, in milliseconds
    /// (`[scheduler] system_metrics_interval`); 0 when they are off (`[scheduler]
    /// system_metrics = false`); unset: the default (see [`crate::sysmetrics`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_metrics_ms: Option<u64>,
}

/// What one run executes, recorded per run in `status.json` (the current run's `launch`, and
/// each earlier run's in `history`): the scheduler's supervisor runs exactly this, and a retry
/// (Rerun) repeats it, whatever `config.json` says by then.
///
/// Recorded for runs expman launches (queued by the scheduler, a retry, a resume); a run a
/// script started by hand has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunLaunch {
    /// The shell command (`sh -c`).
    pub command: String,
    /// Extra environment variables.
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory (absolute); `None` for the launcher's own.
    pub cwd: Option<String>,
    /// Kill the job's process group after this many seconds.
    pub timeout_secs: Option<u64>,
    /// How often the job supervisor samples the job's system metrics, in milliseconds
    /// (`[scheduler] system_metrics_interval`); 0 when they are off (`[scheduler]
    /// system_metrics = false`); unset: the default (see [`crate::sysmetrics`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_metrics_ms: Option<u64>,
}

impl RunLaunch {
    /// What `config` says a run executes.
    pub fn from_config(config: &Config) -> RunLaunch {
        RunLaunch {
            command: config.command.clone(),
            env: config.launch.env.clone(),
            cwd: config.launch.cwd.clone(),
            timeout_secs: config.launch.timeout_secs,
            system_metrics_ms: config.launch.system_metrics_ms,
        }
    }
}

/// The `sbatch` settings of a job submitted to Slurm, after per-experiment overrides: enough
/// to submit it again (a retry) without the scheduler's TOML file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SlurmLaunch {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--time`, in Slurm's own format (`[D-]HH:MM:SS`, minutes, `UNLIMITED`).
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// `--mem` (Slurm's units: a number of MB, or with a K/M/G/T suffix).
    pub mem: Option<String>,
    /// More `sbatch` arguments, verbatim, after the ones above.
    pub extra_sbatch_args: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: String::new(),
            command: String::new(),
            tags: Vec::new(),
            description: String::new(),
            gpu_ids: Vec::new(),
            created_at: chrono::Local::now().to_rfc3339(),
            host: hostname(),
            expman_version: crate::VERSION.to_string(),
            priority: 0,
            launch: Launch::default(),
            params: crate::params::Params::new(),
        }
    }
}

impl Config {
    /// Reads `config.json` of `dir`.
    pub fn load(dir: &ExperimentDir) -> Result<Config> {
        read_json(&dir.config_path())
    }

    pub(crate) fn save(&self, dir: &ExperimentDir) -> Result<()> {
        write_json(&dir.config_path(), self)
    }
}

/// The life-cycle states shown as the UI's four columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RunState {
    /// Queued, not started.
    #[default]
    Pending,
    /// A process is working on it.
    Running,
    /// Ended successfully.
    Finished,
    /// Ended with an error, was terminated, or its process vanished.
    Error,
}

impl RunState {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Finished | RunState::Error)
    }

    /// The state's name as written in `status.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "Pending",
            RunState::Running => "Running",
            RunState::Finished => "Finished",
            RunState::Error => "Error",
        }
    }
}

/// One finished run kept in `status.json`'s history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunRecord {
    /// The run.
    pub run_id: Option<RunId>,
    /// How it ended.
    pub status: RunState,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Its exit code, when a process exited.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its Slurm job, for Slurm runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    /// The node it ran on, for Slurm runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The GPUs it held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<u32>,
    /// What it executed (runs expman launched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<RunLaunch>,
    /// The parameters this run logged (`log_params`), when it logged any.
    #[serde(skip_serializing_if = "crate::params::Params::is_empty")]
    pub params: crate::params::Params,
}

/// `status.json`: the current run's state, plus the runs before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Status {
    /// Current state.
    pub status: RunState,
    /// The current (latest) run.
    pub run_id: Option<RunId>,
    /// The process doing the run.
    pub pid: Option<u32>,
    /// The process's start time (clock ticks since boot), to tell a recycled pid apart.
    pub pid_start_time: Option<u64>,
    /// Host of that process.
    pub host: Option<String>,
    /// When the run started (RFC 3339).
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Exit code of the run's process.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// GPUs the run holds.
    pub gpus: Vec<u32>,
    /// The process supervising a scheduled run (it records the exit code, even when the
    /// scheduler itself dies).
    pub supervisor_pid: Option<u32>,
    /// The supervisor's start time, to tell a recycled pid apart.
    pub supervisor_start_time: Option<u64>,
    /// Set by `terminate` before it signals the job, so the end is recorded as "terminated".
    pub terminate_requested: bool,
    /// The Slurm job running this run (recorded by the submitter, and by the job itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    /// The node the run ran on (`SLURMD_NODENAME`, or Slurm's `BatchHost`), for Slurm runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What the current run executes, for a run expman launches (see [`RunLaunch`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<RunLaunch>,
    /// The parameters the current run logged (`log_params`), when it logged any: a run that
    /// changes a parameter keeps its own value here after later runs change it again.
    #[serde(skip_serializing_if = "crate::params::Params::is_empty")]
    pub params: crate::params::Params,
    /// Set when `pid` was named by `set_running(pid)` for a process other than the caller: a
    /// dead one is then reported as such, not as a crash of the caller.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pid_named: bool,
    /// Earlier runs of this experiment, oldest first.
    pub history: Vec<RunRecord>,
    /// Fields expman does not know (added by hand or by another tool): kept as they are when
    /// the file is written again, across runs.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Status {
    /// Reads `status.json` of `dir`; a missing file reads as Pending.
    pub fn load(dir: &ExperimentDir) -> Result<Status> {
        match read_json(&dir.status_path()) {
            Err(e) if matches!(e.io_error(), Some(io) if io.kind() == IoErrorKind::NotFound) => {
                Ok(Status::default())
            }
            other => other,
        }
    }

    /// Read-modify-write under the experiment lock, so concurrent updaters (a scheduler and its
    /// child) never lose each other's changes. Returns the new status.
    pub fn update(dir: &ExperimentDir, change: impl FnOnce(&mut Status)) -> Result<Status> {
        let lock = LockFile::acquire(&dir.lock_path())?;
        Status::update_locked(dir, &lock, change)
    }

    /// [`Status::update`] for a caller that already holds the experiment lock (run-id
    /// allocation, which records the new run under the same lock).
    pub(crate) fn update_locked(
        dir: &ExperimentDir,
        _lock: &LockFile,
        change: impl FnOnce(&mut Status),
    ) -> Result<Status> {
        let mut status = Status::load(dir)?;
        change(&mut status);
        write_json(&dir.status_path(), &status)?;
        Ok(status)
    }

    /// Applies `change` (written for the current run, as [`Status::mark_ended`]) to the record
    /// of the earlier run `run` in `history` instead, adding one if it has none.
    pub fn change_past_run(&mut self, run: RunId, change: impl FnOnce(&mut Status)) {
        let index = match self.history.iter().rposition(|r| r.run_id == Some(run)) {
            Some(index) => index,
            None => {
                self.history.push(RunRecord {
                    run_id: Some(run),
                    ..RunRecord::default()
                });
                self.history.sort_by_key(|r| r.run_id);
                self.history
                    .iter()
                    .rposition(|r| r.run_id == Some(run))
                    .unwrap_or(0)
            }
        };
        let record = &mut self.history[index];
        let mut as_current = Status {
            status: record.status,
            run_id: record.run_id,
            started_at: record.started_at.take(),
            finished_at: record.finished_at.take(),
            exit_code: record.exit_code.take(),
            error: record.error.take(),
            ..Status::default()
        };
        change(&mut as_current);
        record.status = as_current.status;
        record.started_at = as_current.started_at;
        record.finished_at = as_current.finished_at;
        record.exit_code = as_current.exit_code;
        record.error = as_current.error;
    }

    /// Starts a new run: the previous one moves into `history`.
    pub fn begin_run(&mut self, run: RunId, state: RunState) {
        if let Some(previous) = self.run_id.filter(|&r| r != run) {
            self.history.push(RunRecord {
                run_id: Some(previous),
                status: self.status,
                started_at: self.started_at.take(),
                finished_at: self.finished_at.take(),
                exit_code: self.exit_code.take(),
                error: self.error.take(),
                slurm_job_id: self.slurm_job_id.take(),
                node: self.node.take(),
                gpus: self.gpus.clone(),
                launch: self.launch.take(),
                params: std::mem::take(&mut self.params),
            });
        }
        *self = Status {
            status: state,
            run_id: Some(run),
            history: std::mem::take(&mut self.history),
            gpus: std::mem::take(&mut self.gpus),
            other: std::mem::take(&mut self.other),
            ..Status::default()
        };
    }

    /// Marks the run as being done by `process` on this host.
    pub fn mark_running(&mut self, process: ProcessId) {
        self.status = RunState::Running;
        self.pid_named = false;
        self.pid = Some(process.pid);
        self.pid_start_time = process.start_time;
        self.host = Some(hostname());
        self.started_at.get_or_insert_with(now_rfc3339);
        self.finished_at = None;
        self.exit_code = None;
        self.error = None;
    }

    /// How long the run ran: from `started_at` to `finished_at`, when both are recorded.
    pub fn duration(&self) -> Option<std::time::Duration> {
        let (start, end) = (self.started_at.as_deref()?, self.finished_at.as_deref()?);
        let start = chrono::DateTime::parse_from_rfc3339(start).ok()?;
        let end = chrono::DateTime::parse_from_rfc3339(end).ok()?;
        (end - start).to_std().ok()
    }

    /// Marks the run as ended: Finished when `error` is `None`, else Error.
    pub fn mark_ended(&mut self, exit_code: Option<i32>, error: Option<String>) {
        self.status = if error.is_none() {
            RunState::Finished
        } else {
            RunState::Error
        };
        self.finished_at = Some(now_rfc3339());
        self.exit_code = exit_code;
        self.error = error;
    }

    /// The state as a reader should show it: a Running run whose process is gone from this
    /// host is reported as Error, so nothing stays "Running" forever after a kill.
    pub fn effective(&self) -> (RunState, Option<String>) {
        if self.status == RunState::Running
            && self.host.as_deref() == Some(hostname().as_str())
            && !self.job_alive()
            && !self.supervisor_alive()
        {
            let pid = self.pid.map_or_else(|| "?".to_string(), |p| p.to_string());
            let message = if self.pid_named {
                format!(
                    "process {pid} named by set_running is not running (it has exited, or no \
                     such process runs on {}); set_running(pid) records another process's \
                     pid, and the run shows Error once that process is gone: call \
                     set_running() without a pid from the process doing the work",
                    hostname()
                )
            } else {
                format!("process {pid} exited without marking the run finished (killed or crashed)")
            };
            return (RunState::Error, Some(message));
        }
        (self.status, self.error.clone())
    }

    /// The job's process, when one was recorded.
    pub fn job_process(&self) -> Option<ProcessId> {
        self.pid.map(|pid| ProcessId {
            pid,
            start_time: self.pid_start_time,
        })
    }

    /// The supervising process of a scheduled run, when one was recorded.
    pub fn supervisor_process(&self) -> Option<ProcessId> {
        self.supervisor_pid.map(|pid| ProcessId {
            pid,
            start_time: self.supervisor_start_time,
        })
    }

    /// Whether the recorded job process still runs on this host.
    pub fn job_alive(&self) -> bool {
        self.job_process().is_some_and(|p| p.is_alive())
    }

    /// Whether the recorded supervisor still runs on this host.
    pub fn supervisor_alive(&self) -> bool {
        self.supervisor_process().is_some_and(|p| p.is_alive())
    }
}

/// The current local time in RFC 3339.
pub fn now_rfc3339() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = super::read_bounded(path, super::STATE_FILE_LIMIT).at("read", path)?;
    // A file saved by an editor that writes a UTF-8 byte-order mark (Windows Notepad).
    let json = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    // serde reads a struct from an array too (`[]` was a config of empty fields, which the
    // next resume then wrote back): expman's state files are objects.
    if json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Error::corrupt(
            path,
            Some(1),
            "not valid expman JSON (an array, where expman's state files are objects); fix or \
             restore this file (the experiment's metrics and logs are not affected by it)",
        ));
    }
    serde_json::from_slice(json).map_err(|e| {
        Error::corrupt(
            path,
            Some(e.line() as u64),
            format!(
                "not valid expman JSON ({e}); fix or restore this file (the experiment's metrics \
                 and logs are not affected by it)"
            ),
        )
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::invalid_state(format!("cannot encode {}: {e}", path.display())))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}
