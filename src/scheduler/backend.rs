//! Where a job runs, as its `config.json` says: on this machine under its supervisor
//! (`EXP __job`), or submitted to Slurm (`launch.slurm`). Starting, terminating and cancelling
//! a run differ by backend; everything that differs is here, so the queue and the control
//! channel ask the backend instead of testing for Slurm themselves.

use std::time::{Duration, Instant};

use super::job::KILL_GRACE;
use super::launcher;
use super::process::stop_process;
use super::slurm;
use crate::error::{Error, Result};
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, Status, hostname};

/// Where the runs of one experiment are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobBackend {
    /// A supervisor process on this machine, started by the scheduler (or a retry).
    Local,
    /// A Slurm job running the same supervisor, submitted with `sbatch`.
    Slurm,
}

impl JobBackend {
    /// The backend `config.json` names.
    pub(crate) fn of(config: &Config) -> JobBackend {
        match config.launch.slurm {
            Some(_) => JobBackend::Slurm,
            None => JobBackend::Local,
        }
    }

    /// The backend of the experiment in `exp` (local when its config cannot be read).
    pub(crate) fn of_dir(exp: &ExperimentDir) -> JobBackend {
        Config::load(exp).map_or(JobBackend::Local, |c| JobBackend::of(&c))
    }

    /// Starts `run` (Pending) without a scheduler, on `gpus` (local only): a retry from the
    /// CLI or the UI. A Slurm run gets a detached follower that records its end if Slurm ends
    /// the job before its supervisor can. Returns what happened, for the user.
    pub(crate) fn launch_detached(
        self,
        exp: &ExperimentDir,
        run: RunId,
        gpus: &[u32],
    ) -> Result<String> {
        match self {
            JobBackend::Local => {
                launcher::launch_detached(exp, run, gpus)?;
                Ok(format!("{run} started"))
            }
            JobBackend::Slurm => {
                let job = slurm::submit_or_record(exp, run)?;
                slurm::spawn_follower(exp, run)?;
                Ok(format!("{run} submitted as Slurm job {job}"))
            }
        }
    }

    /// Takes a Pending run (`status`, already marked cancelled) out of Slurm's queue, if it
    /// was submitted there (if the job starts meanwhile, its supervisor cannot claim the run
    /// any more and exits). Nothing to do locally.
    pub(crate) fn cancel(self, status: &Status) -> Result<()> {
        match (self, &status.slurm_job_id) {
            (JobBackend::Slurm, Some(job)) => slurm::cancel(job),
            _ => Ok(()),
        }
    }

    /// Ends the running run of `exp` (`status`) and records it as terminated. Returns what
    /// happened, for the user.
    pub(crate) fn terminate(self, exp: &ExperimentDir, status: &Status) -> Result<String> {
        match (self, &status.slurm_job_id) {
            (JobBackend::Slurm, Some(job)) => terminate_slurm(exp, status.run_id, job),
            _ => terminate_local(exp),
        }
    }
}

/// Slurm signals every process of the job, the supervisor included, which then records
/// nothing: the end is recorded here.
fn terminate_slurm(exp: &ExperimentDir, run: Option<RunId>, job: &str) -> Result<String> {
    Status::update(exp, |s| s.terminate_requested = true)?;
    slurm::cancel_and_wait(job)?;
    Status::update(exp, |s| {
        if s.run_id == run && !s.status.is_terminal() {
            s.mark_ended(None, Some("terminated".into()));
        }
    })?;
    Ok(format!("terminated (Slurm job {job} cancelled)"))
}

/// Stops the job's process (its group, for a scheduled job); its supervisor records the end,
/// and if there is none (a run started outside the scheduler, or a supervisor that died) the
/// end is recorded here. A process that cannot be stopped from here (on another host, or
/// surviving SIGKILL: another user's) is an error, and the run's state stays as it was.
fn terminate_local(exp: &ExperimentDir) -> Result<String> {
    let before = Status::load(exp)?;
    if let Some(host) = before.host.as_deref().filter(|h| *h != hostname())
        && !before.status.is_terminal()
        && before.pid.is_some()
    {
        return Err(Error::invalid_state(format!(
            "{} runs on host {host}, not on this one ({}): run `EXP terminate` on {host}",
            exp.path().display(),
            hostname()
        )));
    }
    let status = Status::update(exp, |s| s.terminate_requested = true)?;
    if let Some(job) = status.job_process().filter(|p| p.is_alive())
        && !stop_process(job, KILL_GRACE)
    {
        Status::update(exp, |s| s.terminate_requested = false)?;
        return Err(Error::invalid_state(format!(
            "process {} of {} still runs after SIGTERM and SIGKILL (another user's process \
             cannot be signalled: stop it as that user); its state is unchanged",
            job.pid,
            exp.path().display()
        )));
    }
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
    Ok("terminated".to_string())
}
