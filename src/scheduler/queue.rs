//! The scheduler's queue: one entry per experiment, built from its `config.json` whether the
//! scheduler created it now, adopted it after a crash or took it over from a control request,
//! and the state it moves through (queued, running, done).

use std::collections::HashSet;
use std::time::Instant;

use super::backend::JobBackend;
use super::output::{Output, clock, gpu_note};
use crate::error::Result;
use crate::experiment::Experiment;
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, ProcessId, RunState, Status};

/// What the GPUs of a job are.
#[derive(Debug, Clone)]
pub(super) enum GpuRequest {
    /// These GPUs (`gpu_ids`).
    Ids(Vec<u32>),
    /// This many from the pool (`gpus`).
    Count(usize),
}

impl GpuRequest {
    /// Picks the GPUs from `pool`, or `None` if they are not free now.
    pub(super) fn reserve(&self, pool: &[u32], busy: &HashSet<u32>) -> Option<Vec<u32>> {
        match self {
            GpuRequest::Ids(ids) => ids.iter().all(|id| !busy.contains(id)).then(|| ids.clone()),
            GpuRequest::Count(0) => Some(Vec::new()),
            GpuRequest::Count(n) => {
                let free: Vec<u32> = pool
                    .iter()
                    .copied()
                    .filter(|id| !busy.contains(id))
                    .take(*n)
                    .collect();
                (free.len() == *n).then_some(free)
            }
        }
    }
}

/// One experiment of the queue.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) dir: ExperimentDir,
    pub(super) gpus: GpuRequest,
    /// Automatic retries of a failed run still allowed (`retries` in `config.json`).
    pub(super) retries_left: u32,
    pub(super) backend: JobBackend,
    pub(super) state: EntryState,
}

/// Where an entry stands.
pub(super) enum EntryState {
    /// Waiting for room (and GPUs) to start this run.
    Queued(RunId),
    /// Started here, or submitted to Slurm and not ended.
    Running(Running),
    /// Nothing more to do.
    Done,
}

/// A run the scheduler started (or submitted) and waits for.
pub(super) struct Running {
    pub(super) run: RunId,
    pub(super) since: Instant,
    /// Reserved from the pool until the run ends.
    pub(super) gpus: Vec<u32>,
    /// Started by a scheduler that died: not our child, so watched by polling.
    pub(super) adopted: Option<ProcessId>,
    /// The Slurm job, for a Slurm run.
    pub(super) slurm: Option<SlurmJob>,
}

impl Running {
    /// Started (or submitted) now.
    pub(super) fn new(run: RunId, gpus: Vec<u32>, slurm: Option<SlurmJob>) -> Running {
        Running {
            run,
            since: Instant::now(),
            gpus,
            adopted: None,
            slurm,
        }
    }
}

/// A submitted Slurm job the scheduler follows.
pub(super) struct SlurmJob {
    pub(super) id: String,
    /// `status.json` shows the run's end; the job still counts until Slurm says it has ended.
    pub(super) run_ended: bool,
    /// When `squeue` first said the job had ended while `status.json` did not show the run's
    /// end yet.
    pub(super) ended_since: Option<Instant>,
}

impl SlurmJob {
    /// Job `id`, just submitted (or found again).
    pub(super) fn new(id: String) -> SlurmJob {
        SlurmJob {
            id,
            run_ended: false,
            ended_since: None,
        }
    }
}

impl Entry {
    /// The one way to build an entry: name, GPUs, retries and backend as `config.json` of
    /// `dir` records them (the scheduler wrote them there from its config file).
    pub(super) fn from_config(dir: ExperimentDir, state: EntryState) -> Result<Entry> {
        let config = Config::load(&dir)?;
        let backend = JobBackend::of(&config);
        // Slurm picks a Slurm job's GPUs: only the count matters there.
        let gpus = if config.gpu_ids.is_empty() || backend == JobBackend::Slurm {
            GpuRequest::Count(config.launch.gpus as usize)
        } else {
            GpuRequest::Ids(config.gpu_ids)
        };
        Ok(Entry {
            name: config.name,
            dir,
            gpus,
            retries_left: config.launch.retries,
            backend,
            state,
        })
    }

    pub(super) fn is_queued(&self) -> bool {
        matches!(self.state, EntryState::Queued(_))
    }

    pub(super) fn is_running(&self) -> bool {
        matches!(self.state, EntryState::Running(_))
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self.state, EntryState::Done)
    }

    /// After a crash: what to do with this experiment of the dead scheduler's queue.
    pub(super) fn recover(&self, out: &mut Output) -> Result<EntryState> {
        let dir = &self.dir;
        let status = Status::load(dir)?;
        let name = dir.path().display();
        if let (JobBackend::Slurm, Some(run), Some(job), false) = (
            self.backend,
            status.run_id,
            &status.slurm_job_id,
            status.status.is_terminal(),
        ) {
            // Submitted (maybe running) before the crash: Slurm kept it; follow it again.
            out.line(&format!("followed again: {name} (Slurm job {job})"));
            let slurm = SlurmJob::new(job.clone());
            return Ok(EntryState::Running(Running::new(
                run,
                Vec::new(),
                Some(slurm),
            )));
        }
        Ok(match status.status {
            RunState::Pending => match status.run_id {
                Some(run) => EntryState::Queued(run),
                None => EntryState::Queued(Experiment::open_pending(dir.path())?.run_id()),
            },
            RunState::Running => match status.supervisor_process().filter(|p| p.is_alive()) {
                Some(supervisor) => {
                    out.line(&format!("still running, adopted: {name}"));
                    let run = status.run_id.unwrap_or(RunId::FIRST);
                    EntryState::Running(Running {
                        adopted: Some(supervisor),
                        ..Running::new(run, status.gpus.clone(), None)
                    })
                }
                None => {
                    if let Some(job) = status.job_process().filter(|p| p.is_alive()) {
                        super::process::kill_group(job.pid, super::job::KILL_GRACE);
                    }
                    let reason = "the scheduler and the job's supervisor stopped while it ran \
                                  (killed or crashed); its exit code is unknown";
                    Status::update(dir, |s| s.mark_ended(None, Some(reason.into())))?;
                    out.line(&format!("marked Error (supervisor gone): {name}"));
                    EntryState::Done
                }
            },
            RunState::Finished | RunState::Error => EntryState::Done,
        })
    }

    /// Its run ended (the supervisor exited, or Slurm says the job has ended): records an end
    /// the supervisor could not, reports it, and queues a retry if the run failed and retries
    /// are left (not while `stopping`, nor after a terminate request). Returns the GPUs it held.
    pub(super) fn finish(&mut self, out: &mut Output, stopping: bool) -> Result<Vec<u32>> {
        let EntryState::Running(running) = &mut self.state else {
            return Ok(Vec::new());
        };
        let (run, since, gpus) = (
            running.run,
            running.since,
            std::mem::take(&mut running.gpus),
        );
        let mut status = Status::load(&self.dir)?;
        if !status.status.is_terminal() {
            // The supervisor died without recording the end (killed, or it could not start).
            status = Status::update(&self.dir, |s| {
                if !s.status.is_terminal() {
                    s.mark_ended(
                        None,
                        Some("the job's supervisor exited without recording a result".into()),
                    );
                }
            })?;
        }
        // The run's own times when recorded, so this line and the summary's table agree.
        let took = status
            .duration()
            .unwrap_or_else(|| since.elapsed())
            .as_secs_f64();
        match status.status {
            RunState::Finished => out.event(&format!("done    {} {run} in {took:.1}s", self.name)),
            _ => out.event(&format!(
                "error   {} {run} after {took:.1}s: {}",
                self.name,
                status.error.as_deref().unwrap_or("failed")
            )),
        }
        if status.status == RunState::Error
            && self.retries_left > 0
            && !stopping
            && !status.terminate_requested
        {
            self.retries_left -= 1;
            let next = Experiment::open_pending(self.dir.path())?.run_id();
            out.event(&format!(
                "retry   {} as {next} ({} left)",
                self.name, self.retries_left
            ));
            self.state = EntryState::Queued(next);
        } else {
            self.state = EntryState::Done;
        }
        Ok(gpus)
    }
}

/// The progress block: counts, then one line per running job.
pub(super) fn progress_lines(queue: &[Entry]) -> Vec<String> {
    let count = |f: fn(&Entry) -> bool| queue.iter().filter(|e| f(e)).count();
    let mut lines = vec![format!(
        "pending {} | running {} | done {}",
        count(Entry::is_queued),
        count(Entry::is_running),
        count(Entry::is_done),
    )];
    for entry in queue {
        if let EntryState::Running(running) = &entry.state {
            let place = match &running.slurm {
                Some(slurm) => format!(" (Slurm job {})", slurm.id),
                None => gpu_note(&running.gpus),
            };
            lines.push(format!(
                "  {} {}{place}  {}",
                entry.name,
                running.run,
                clock(running.since.elapsed())
            ));
        }
    }
    lines
}
