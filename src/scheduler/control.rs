//! Retry, terminate and delete, from any process (the UI, the CLI), with or without a scheduler.
//!
//! The control channel: a scheduler running on a base directory holds an exclusive lock on
//! `<base>/.expman/scheduler.lock` for as long as it lives (the kernel drops it when the process
//! dies, even by `kill -9`). A caller that can take that lock knows no scheduler runs and performs
//! the action itself, holding the lock meanwhile. Otherwise it drops a request file
//! `<base>/.expman/control/<id>.json` (`{"action": "retry", "dir": "..."}`) and waits for the
//! scheduler's answer in `<id>.done` (`{"ok": true, "message": "..."}`); the scheduler looks for
//! requests several times a second, so its queue, GPU reservations and concurrency limit stay
//! right.
//!
//! Slurm runs (`launch.slurm` in `config.json`) are acted on through Slurm: terminate is
//! `scancel` (the run is then recorded as terminated, or as cancelled while still queued), retry
//! submits the new run with the settings `config.json` recorded, and without a scheduler starts
//! a small follower (`EXP __slurm-follow`) that records the run's end if Slurm ends the job
//! before its supervisor can.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::job::KILL_GRACE;
use super::process::kill_group;
use super::slurm;
use crate::error::{Error, IoContext, Result};
use crate::experiment::Experiment;
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, RunState, Status};

/// An action on one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Start a new run in the experiment's directory (after an error, or to run it again).
    Retry,
    /// Kill the running job's process group and mark the run Error "terminated".
    Terminate,
    /// Remove the experiment directory (refused while it runs).
    Delete,
}

impl Action {
    /// The action's name, as in requests and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Terminate => "terminate",
            Action::Delete => "delete",
        }
    }
}

/// The scheduler's bookkeeping inside a base directory (`<base>/.expman/`).
#[derive(Debug, Clone)]
pub struct SchedulerDir {
    root: PathBuf,
}

impl SchedulerDir {
    /// The bookkeeping directory of `base_dir`.
    pub fn new(base_dir: &Path) -> SchedulerDir {
        SchedulerDir {
            root: base_dir.join(".expman"),
        }
    }
    /// Held by the running scheduler.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("scheduler.lock")
    }
    /// The scheduler's journal (which directories belong to its queue).
    pub fn state_path(&self) -> PathBuf {
        self.root.join("scheduler.json")
    }
    /// Where requests are dropped.
    pub fn control_dir(&self) -> PathBuf {
        self.root.join("control")
    }
    /// Where the scheduler builds its queue's experiments before moving each into place (see
    /// `journal.rs`); hidden from every reader of the base directory.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    pub(crate) fn create(&self) -> Result<()> {
        let dir = self.control_dir();
        std::fs::create_dir_all(&dir).at("create", &dir)
    }

    /// Opens the lock file; `Some(file)` holds the lock (no scheduler runs), `None` means a
    /// scheduler holds it.
    pub(crate) fn try_lock(&self) -> Result<Option<File>> {
        self.create()?;
        let path = self.lock_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at("open", &path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
    }

    /// Whether a scheduler currently runs on this base directory.
    pub fn scheduler_running(&self) -> Result<bool> {
        Ok(self.try_lock()?.is_none())
    }
}

/// A request in the control channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) action: Action,
    pub(crate) dir: PathBuf,
}

/// The scheduler's answer to a request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Answer {
    pub(crate) ok: bool,
    pub(crate) message: String,
}

/// Finds the executable that supervises jobs (`EXP __job`): `$EXPMAN_EXP_BIN`, else this
/// program if it is `EXP`, else `EXP` on the `PATH`.
pub fn job_launcher() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("EXPMAN_EXP_BIN") {
        return Ok(PathBuf::from(path));
    }
    if let Ok(exe) = std::env::current_exe()
        && exe.file_name().is_some_and(|n| n == "EXP")
    {
        return Ok(exe);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("EXP"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid_state(
                "cannot find the EXP program that supervises jobs; install it (pip install \
                 ./bindings/python, or cargo install --path . --features ui) or set EXPMAN_EXP_BIN",
            )
        })
}

/// Performs `action` on the experiment in `dir`: through the scheduler when one runs on its base
/// directory, else directly. Returns a message for the user.
pub fn perform(dir: &Path, action: Action) -> Result<String> {
    let exp = ExperimentDir::open(dir)?;
    let base = exp.path().parent().unwrap_or(Path::new("."));
    let scheduler = SchedulerDir::new(base);
    match scheduler.try_lock()? {
        Some(_held) => perform_locally(&exp, action, None),
        None => ask_scheduler(&scheduler, exp.path(), action),
    }
}

fn ask_scheduler(scheduler: &SchedulerDir, dir: &Path, action: Action) -> Result<String> {
    let id = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
        std::process::id()
    );
    let control = scheduler.control_dir();
    let request = control.join(format!("{id}.json"));
    let answer = control.join(format!("{id}.done"));
    let body = serde_json::to_vec(&Request {
        action,
        dir: dir.to_path_buf(),
    })
    .map_err(|e| Error::invalid_state(e.to_string()))?;
    crate::store::write_atomic(&request, &body)?;
    let deadline = Instant::now() + KILL_GRACE * 3;
    loop {
        match std::fs::read(&answer) {
            Ok(bytes) => {
                let _ = std::fs::remove_file(&answer);
                let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::corrupt(&control, None, format!("unreadable scheduler answer: {e}"))
                })?;
                return if answer.ok {
                    Ok(answer.message)
                } else {
                    Err(Error::invalid_state(answer.message))
                };
            }
            Err(e) if e.kind() == IoErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &answer, e)),
        }
        if Instant::now() > deadline {
            let _ = std::fs::remove_file(&request);
            if !scheduler.scheduler_running()? {
                // The scheduler exited meanwhile: do it ourselves.
                return perform(dir, action);
            }
            return Err(Error::invalid_state(format!(
                "the scheduler on {} did not answer the {} request within {}s",
                scheduler.root.display(),
                action.as_str(),
                (KILL_GRACE * 3).as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a running scheduler takes a retried run into its queue instead of launching it at once.
pub(crate) type Enqueue<'a> = &'a mut dyn FnMut(&ExperimentDir, RunId);

/// Performs `action` in this process (`queue`: see [`Enqueue`]).
pub(crate) fn perform_locally(
    exp: &ExperimentDir,
    action: Action,
    queue: Option<Enqueue<'_>>,
) -> Result<String> {
    let status = Status::load(exp)?;
    let (state, _) = status.effective();
    let name = exp
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match action {
        Action::Retry => {
            if !state.is_terminal() {
                return Err(Error::invalid_state(format!(
                    "{name} is {}; only a finished or errored experiment can be retried",
                    state.as_str()
                )));
            }
            if Config::load(exp)?.launch.slurm.is_some() {
                let run = Experiment::open_pending(exp.path())?.run_id();
                return match queue {
                    Some(queue) => {
                        queue(exp, run);
                        Ok(format!("{name}: {run} queued"))
                    }
                    None => {
                        let job = submit_or_record(exp, run)?;
                        slurm::spawn_follower(exp, run)?;
                        Ok(format!("{name}: {run} submitted as Slurm job {job}"))
                    }
                };
            }
            // Without a scheduler there is no pool to take `gpus = N` from: such a run gets
            // the GPUs its previous run held (as `gpu_ids` are reused), never silently none.
            let gpus = match queue {
                Some(_) => Vec::new(),
                None => {
                    let config = Config::load(exp)?;
                    let wanted = config.launch.gpus as usize;
                    if !config.gpu_ids.is_empty() {
                        config.gpu_ids
                    } else if status.gpus.len() == wanted {
                        status.gpus.clone()
                    } else {
                        return Err(Error::invalid_state(format!(
                            "{name} takes {wanted} GPU(s) from a scheduler's pool and its last \
                             run held none to reuse; retry it while `EXP run` runs on its base \
                             directory"
                        )));
                    }
                }
            };
            let run = Experiment::open_pending(exp.path())?.run_id();
            match queue {
                Some(queue) => queue(exp, run),
                None => launch_detached(exp, run, &gpus)?,
            }
            Ok(format!("{name}: {run} started"))
        }
        Action::Terminate => {
            if state == RunState::Pending {
                let status = Status::update(exp, |s| {
                    if s.status == RunState::Pending {
                        s.mark_ended(None, Some("cancelled before it started".into()));
                    }
                })?;
                // Submitted to Slurm: out of its queue too (if the job starts meanwhile, its
                // supervisor cannot claim the run any more and exits).
                if let Some(job) = &status.slurm_job_id {
                    slurm::cancel(job)?;
                }
                if status.status == RunState::Error {
                    return Ok(format!("{name}: cancelled"));
                }
            }
            let status = Status::load(exp)?;
            let state = status.effective().0;
            if state != RunState::Running {
                return Err(Error::invalid_state(format!(
                    "{name} is {}; only a running experiment can be terminated",
                    state.as_str()
                )));
            }
            if let Some(job) = status.slurm_job_id.clone().filter(|_| is_slurm(exp)) {
                // Slurm signals every process of the job, the supervisor included, which then
                // records nothing: the end is recorded here.
                let run = status.run_id;
                Status::update(exp, |s| s.terminate_requested = true)?;
                slurm::cancel_and_wait(&job)?;
                Status::update(exp, |s| {
                    if s.run_id == run && !s.status.is_terminal() {
                        s.mark_ended(None, Some("terminated".into()));
                    }
                })?;
                return Ok(format!("{name}: terminated (Slurm job {job} cancelled)"));
            }
            let status = Status::update(exp, |s| s.terminate_requested = true)?;
            if let Some(job) = status.job_process().filter(|p| p.is_alive()) {
                kill_group(job.pid, KILL_GRACE);
            }
            // The supervisor records the end; if there is none (a run started outside the
            // scheduler, or a supervisor that died) record it here.
            let deadline = Instant::now() + KILL_GRACE;
            while Instant::now() < deadline && status.supervisor_alive() {
                if Status::load(exp)?.status.is_terminal() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Status::update(exp, |s| {
                if !s.status.is_terminal() {
                    s.mark_ended(None, Some("terminated".into()));
                }
            })?;
            Ok(format!("{name}: terminated"))
        }
        Action::Delete => {
            if state == RunState::Running {
                return Err(Error::invalid_state(format!(
                    "{name} is running; terminate it before deleting it"
                )));
            }
            if state == RunState::Pending
                && let Some(job) = &status.slurm_job_id
            {
                slurm::cancel(job)?;
            }
            std::fs::remove_dir_all(exp.path()).at("delete", exp.path())?;
            Ok(format!("{name}: deleted"))
        }
    }
}

/// Whether the experiment in `exp` runs on Slurm (its config says so).
fn is_slurm(exp: &ExperimentDir) -> bool {
    Config::load(exp).is_ok_and(|c| c.launch.slurm.is_some())
}

/// Submits `run` to Slurm; when `sbatch` refuses, the run is marked Error with its message (so
/// it does not stay Pending) and the error returned.
pub(crate) fn submit_or_record(exp: &ExperimentDir, run: RunId) -> Result<String> {
    slurm::submit(exp, run).inspect_err(|e| {
        let message = e.to_string();
        let _ = Status::update(exp, |s| {
            if s.run_id == Some(run) && s.status == RunState::Pending {
                s.mark_ended(None, Some(message));
            }
        });
    })
}

/// Starts a supervisor for `run` that outlives this process.
pub(crate) fn launch_detached(exp: &ExperimentDir, run: RunId, gpus: &[u32]) -> Result<()> {
    let mut child = supervisor_command(exp, run, gpus)?
        .spawn()
        .at("start the job supervisor for", exp.path())?;
    // Reap it when it ends, so a long-lived caller (the UI server) collects no zombies.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// `EXP __job <dir> <run> --gpus ...`, in its own process group, its output into the run log.
pub(crate) fn supervisor_command(exp: &ExperimentDir, run: RunId, gpus: &[u32]) -> Result<Command> {
    let log_path = exp.run_log(run);
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log_path)
        .at("open the run log", &log_path)?;
    let mut command = Command::new(job_launcher()?);
    command.arg("__job").arg(exp.path()).arg(run.to_string());
    if !gpus.is_empty() {
        let gpus = gpus
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        command.arg(format!("--gpus={gpus}"));
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().at("share the run log", &log_path)?)
        .stderr(log)
        .process_group(0);
    Ok(command)
}
