//! Following the queue's Slurm jobs from the scheduler loop: which have ended.
//!
//! A job holds its place in `max_concurrent` until Slurm says it has left the running states,
//! even when `status.json` already shows the run's end (its supervisor recorded it and is
//! exiting), so Slurm never holds more jobs than the limit. A job that Slurm says has ended
//! while `status.json` still shows no end after [`slurm::SETTLE_GRACE`] is settled from
//! Slurm's record (cancelled while pending, node failure, time limit).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::output::Output;
use super::queue::{Entry, EntryState, SlurmJob};
use super::slurm;
use crate::error::Result;
use crate::store::Status;

/// How often the scheduler reads the `status.json` of its Slurm runs.
const SLURM_STATUS_EVERY: Duration = Duration::from_millis(250);

/// When the scheduler last looked at its Slurm jobs.
pub(super) struct SlurmWatch {
    last_status: Instant,
    last_query: Instant,
    unreachable: bool,
}

impl SlurmWatch {
    pub(super) fn new() -> SlurmWatch {
        SlurmWatch {
            last_status: Instant::now(),
            last_query: Instant::now(),
            unreachable: false,
        }
    }

    /// The indices in `queue` of the Slurm jobs that have ended (their runs settled from
    /// Slurm's record where the supervisor recorded no end); the caller finishes them.
    pub(super) fn poll(&mut self, queue: &mut [Entry], out: &mut Output) -> Result<Vec<usize>> {
        if self.last_status.elapsed() < SLURM_STATUS_EVERY {
            return Ok(Vec::new());
        }
        self.last_status = Instant::now();
        let ending = read_run_ends(queue);
        // Slurm is asked every POLL, and at once while a job whose run has ended is leaving it.
        if !ending && self.last_query.elapsed() < slurm::POLL {
            return Ok(Vec::new());
        }
        self.last_query = Instant::now();
        let ids: Vec<&str> = slurm_jobs(queue).map(|job| job.id.as_str()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let Some(found) = self.ask(&ids, out) else {
            return Ok(Vec::new());
        };
        let mut ended = Vec::new();
        for (index, entry) in queue.iter_mut().enumerate() {
            let EntryState::Running(running) = &mut entry.state else {
                continue;
            };
            let Some(job) = &mut running.slurm else {
                continue;
            };
            if !slurm::ended(found.get(&job.id)) {
                job.ended_since = None;
                continue;
            }
            if job.run_ended {
                ended.push(index);
                continue;
            }
            let since = *job.ended_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= slurm::SETTLE_GRACE {
                slurm::settle(&entry.dir, running.run, &job.id)?;
                ended.push(index);
            }
        }
        Ok(ended)
    }

    /// Slurm's states of `ids`, or `None` (reported once) while Slurm cannot be asked.
    fn ask(&mut self, ids: &[&str], out: &mut Output) -> Option<HashMap<String, String>> {
        match slurm::states(ids) {
            Ok(found) => {
                if self.unreachable {
                    out.event("Slurm answers again");
                    self.unreachable = false;
                }
                Some(found)
            }
            Err(e) => {
                if !self.unreachable {
                    out.event(&format!(
                        "warning: cannot ask Slurm about the jobs ({e}); retrying every {}s",
                        slurm::POLL.as_secs()
                    ));
                    self.unreachable = true;
                }
                None
            }
        }
    }
}

/// The Slurm jobs of the queue.
fn slurm_jobs(queue: &[Entry]) -> impl Iterator<Item = &SlurmJob> {
    queue.iter().filter_map(|entry| match &entry.state {
        EntryState::Running(running) => running.slurm.as_ref(),
        _ => None,
    })
}

/// Reads `status.json` of every Slurm run not known to have ended. Returns whether any job's
/// run has ended (its job is leaving Slurm).
fn read_run_ends(queue: &mut [Entry]) -> bool {
    let mut ending = false;
    for entry in queue.iter_mut() {
        let EntryState::Running(running) = &mut entry.state else {
            continue;
        };
        let Some(job) = &mut running.slurm else {
            continue;
        };
        if !job.run_ended {
            let status = Status::load(&entry.dir).unwrap_or_default();
            let run = running.run;
            job.run_ended = status.run_id != Some(run) || status.status.is_terminal();
            // The job that claimed the run is the one to follow: after a restart between
            // sbatch and recording its id, the run may have been submitted twice, and the
            // second job (which cannot claim it) ends at once.
            if let Some(id) = status.slurm_job_id.filter(|id| *id != job.id)
                && status.run_id == Some(run)
            {
                job.id = id;
                job.ended_since = None;
            }
        }
        ending |= job.run_ended;
    }
    ending
}
