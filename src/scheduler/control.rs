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
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::backend::JobBackend;
use super::job::KILL_GRACE;
pub use super::launcher::job_launcher;
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

/// Performs `action` on the experiment in `dir`: through the scheduler when one runs on its base
/// directory, else directly. Returns a message for the user.
pub fn perform(dir: &Path, action: Action) -> Result<String> {
    let exp = ExperimentDir::open(dir)?;
    let base = exp.path().parent().unwrap_or(Path::new("."));
    let scheduler = SchedulerDir::new(base);
    match scheduler.try_lock()? {
        Some(_held) => perform_locally(&exp, action, false).map(|done| done.message),
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

/// What [`perform_locally`] did.
pub(crate) struct Performed {
    /// For the user.
    pub(crate) message: String,
    /// The run a retry allocated for the scheduler's queue to launch (`for_queue`).
    pub(crate) queued: Option<RunId>,
}

impl Performed {
    fn said(message: String) -> Performed {
        Performed {
            message,
            queued: None,
        }
    }
}

/// Performs `action` in this process. With `for_queue` (a running scheduler answering a
/// request) a retry only allocates the run, and [`Performed::queued`] names it for the queue
/// to launch with the scheduler's pool and limits; without, it is launched at once.
pub(crate) fn perform_locally(
    exp: &ExperimentDir,
    action: Action,
    for_queue: bool,
) -> Result<Performed> {
    let status = Status::load(exp)?;
    let (state, _) = status.effective();
    let name = exp
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match action {
        Action::Retry => retry(exp, &status, &name, for_queue),
        Action::Terminate => terminate(exp, state, &name).map(Performed::said),
        Action::Delete => delete(exp, &status, &name).map(Performed::said),
    }
}

fn retry(exp: &ExperimentDir, status: &Status, name: &str, for_queue: bool) -> Result<Performed> {
    let state = status.effective().0;
    if !state.is_terminal() {
        return Err(Error::invalid_state(format!(
            "{name} is {}; only a finished or errored experiment can be retried",
            state.as_str()
        )));
    }
    let config = Config::load(exp)?;
    let backend = JobBackend::of(&config);
    let gpus = match (backend, for_queue) {
        (JobBackend::Local, false) => reused_gpus(&config, status, name)?,
        _ => Vec::new(),
    };
    let run = Experiment::open_pending(exp.path())?.run_id();
    if for_queue {
        // The running scheduler takes the run into its queue: it starts (or submits) it when
        // a slot is free, which may be much later; "started" would be wrong.
        let when = match backend {
            JobBackend::Local => "starts it when a slot is free",
            JobBackend::Slurm => "submits it to Slurm when a slot is free",
        };
        return Ok(Performed {
            message: format!(
                "{name}: {run} queued; the scheduler running on this directory {when}"
            ),
            queued: Some(run),
        });
    }
    let message = backend.launch_detached(exp, run, &gpus).inspect_err(|e| {
        // Nothing will ever start the Pending run: end it with the reason, or the experiment
        // stays Pending for good (only Delete is offered for that).
        let _ = Status::update(exp, |s| {
            if s.run_id == Some(run) && !s.status.is_terminal() {
                s.mark_ended(None, Some(format!("could not start: {e}")));
            }
        });
    })?;
    Ok(Performed::said(format!("{name}: {message}")))
}

/// Without a scheduler there is no pool to take `gpus = N` from: such a run gets the GPUs its
/// previous run held (as `gpu_ids` are reused), never silently none.
fn reused_gpus(config: &Config, status: &Status, name: &str) -> Result<Vec<u32>> {
    let wanted = config.launch.gpus as usize;
    if !config.gpu_ids.is_empty() {
        Ok(config.gpu_ids.clone())
    } else if status.gpus.len() == wanted {
        Ok(status.gpus.clone())
    } else {
        Err(Error::invalid_state(format!(
            "{name} takes {wanted} GPU(s) from a scheduler's pool and its last run held none to \
             reuse; retry it while `EXP run` runs on its base directory"
        )))
    }
}

fn terminate(exp: &ExperimentDir, state: RunState, name: &str) -> Result<String> {
    let backend = JobBackend::of_dir(exp);
    if state == RunState::Pending {
        let status = Status::update(exp, |s| {
            if s.status == RunState::Pending {
                s.mark_ended(None, Some("cancelled before it started".into()));
            }
        })?;
        backend.cancel(&status)?;
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
    Ok(format!("{name}: {}", backend.terminate(exp, &status)?))
}

fn delete(exp: &ExperimentDir, status: &Status, name: &str) -> Result<String> {
    let state = status.effective().0;
    if state == RunState::Running {
        return Err(Error::invalid_state(format!(
            "{name} is running; terminate it before deleting it"
        )));
    }
    if state == RunState::Pending {
        JobBackend::of_dir(exp).cancel(status)?;
    }
    std::fs::remove_dir_all(exp.path()).at("delete", exp.path())?;
    Ok(format!("{name}: deleted"))
}
