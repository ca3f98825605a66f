//! Planning and the scheduling loop.
//!
//! A run of the scheduler:
//! 1. takes `<base>/.expman/scheduler.lock` (one scheduler per base directory);
//! 2. creates every queued experiment on disk at once, as Pending (or, after a crash, adopts the
//!    queue recorded in `<base>/.expman/scheduler.json` by the scheduler that died; see
//!    `journal.rs` for how a kill while creating it leaves nothing half-made);
//! 3. launches jobs in priority order, at most `max_concurrent` at a time, each with GPUs reserved
//!    for it alone, through a supervisor process (`EXP __job`) that records the exit code; with
//!    `backend = "slurm"` it submits them with `sbatch` instead (at most `max_concurrent`
//!    submitted and not ended) and follows them through `status.json` and `squeue` (see
//!    [`super::slurm`]);
//! 4. answers control requests (retry, terminate, delete) and shows progress;
//! 5. prints a summary when the queue is empty.

use std::collections::HashSet;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::config::{Backend, JobSpec, SchedulerConfig};
use super::control::{self, Action, Answer, Request, SchedulerDir};
use super::journal::{self, Journal, JournalEntry, Materialized};
use super::slurm;
use crate::error::{Error, IoContext, Result};
use crate::experiment::Experiment;
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, Launch, ProcessId, RunState, Status};

/// How often the loop looks at control requests and redraws progress when nothing happens.
const TICK: Duration = Duration::from_millis(100);

/// What the scheduler needs besides the config.
pub struct RunOptions {
    /// The GPU pool, best first (most free memory). Empty: no GPUs.
    pub gpu_pool: Vec<u32>,
    /// Set (by a Ctrl-C handler) to terminate the running jobs and stop.
    pub interrupt: Arc<AtomicBool>,
    /// Where progress goes; `None` for silence.
    pub output: Option<Box<dyn Write + Send>>,
}

impl RunOptions {
    /// Progress on stdout, no GPUs, no interrupt.
    pub fn new(gpu_pool: Vec<u32>) -> RunOptions {
        RunOptions {
            gpu_pool,
            interrupt: Arc::new(AtomicBool::new(false)),
            output: Some(Box::new(std::io::stdout())),
        }
    }
}

/// One job of a plan.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    /// The config entry.
    pub spec: JobSpec,
    /// Existing directory (resume), or `None` for a new one.
    pub existing: Option<PathBuf>,
    /// The run id it will get.
    pub run: RunId,
}

/// What a scheduler run would do (`EXP run --dry-run`).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config file.
    pub config: PathBuf,
    /// Where experiments go.
    pub base_dir: PathBuf,
    /// Concurrency limit.
    pub max_concurrent: usize,
    /// The GPU pool.
    pub pool: Vec<u32>,
    /// Where the jobs run.
    pub backend: Backend,
    /// The supervisor program the jobs run (`EXP`), when it can be found.
    pub job_launcher: Option<PathBuf>,
    /// Jobs in launch order.
    pub jobs: Vec<PlannedJob>,
}

/// Works out the plan without creating anything.
pub fn plan(config: &SchedulerConfig, pool: &[u32]) -> Result<Plan> {
    config.check_pool(pool)?;
    let mut jobs = Vec::new();
    for spec in config.in_priority_order() {
        let existing = if spec.resume {
            latest_dir(&config.base_dir, &spec.name)?
        } else {
            None
        };
        let run = match &existing {
            Some(dir) => dir.runs()?.last().map_or(RunId::FIRST, |r| r.next()),
            None => RunId::FIRST,
        };
        jobs.push(PlannedJob {
            spec: spec.clone(),
            existing: existing.map(|d| d.path().to_path_buf()),
            run,
        });
    }
    Ok(Plan {
        config: config.path.clone(),
        base_dir: config.base_dir.clone(),
        max_concurrent: config.max_concurrent,
        pool: pool.to_vec(),
        backend: config.backend,
        job_launcher: control::job_launcher().ok(),
        jobs,
    })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resources = match self.backend {
            Backend::Local => format!("GPU pool {:?}", self.pool),
            Backend::Slurm => "on Slurm (sbatch)".to_string(),
        };
        writeln!(
            f,
            "plan for {}: {} experiment(s) into {}, at most {} at a time, {resources}",
            self.config.display(),
            self.jobs.len(),
            self.base_dir.display(),
            self.max_concurrent,
        )?;
        for (i, job) in self.jobs.iter().enumerate() {
            // A new directory's name is decided when it is created (its timestamp).
            let path = match &job.existing {
                Some(dir) => dir.clone(),
                None => self
                    .base_dir
                    .join(format!("{}_<YYYY-MM-DD__HH-MM-SS>", job.spec.name)),
            };
            let dir = match &job.existing {
                Some(_) => format!("{} (resume)", path.display()),
                None => format!("{} (new)", path.display()),
            };
            let gpus = if job.spec.slurm.is_some() {
                match job.spec.gpus {
                    0 => "none".to_string(),
                    n => format!("{n}, picked by Slurm"),
                }
            } else if !job.spec.gpu_ids.is_empty() {
                format!("{:?}", job.spec.gpu_ids)
            } else if job.spec.gpus > 0 {
                format!("{} from the pool", job.spec.gpus)
            } else {
                "none".to_string()
            };
            writeln!(
                f,
                "{:>3}. {} (priority {})\n     directory: {dir}\n     run:       {}\n     GPUs:      {gpus}\n     command:   {}",
                i + 1,
                job.spec.name,
                job.spec.priority,
                job.run,
                job.spec.command
            )?;
            // Everything else the job is started with, so the plan shows what will execute.
            if let Some(cwd) = &job.spec.cwd {
                writeln!(f, "     cwd:       {}", cwd.display())?;
            }
            if !job.spec.env.is_empty() {
                let env: Vec<String> = job
                    .spec
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", slurm::shell_quote(v)))
                    .collect();
                writeln!(f, "     env:       {}", env.join(" "))?;
            }
            if let Some(timeout) = job.spec.timeout {
                writeln!(f, "     timeout:   {}", humantime::format_duration(timeout))?;
            }
            if let Some(slurm) = &job.spec.slurm {
                let launch = Launch {
                    gpus: job.spec.gpus,
                    ..Launch::default()
                };
                let exp_bin = self
                    .job_launcher
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("EXP"));
                let args = slurm::sbatch_command(
                    &slurm::absolute(&path),
                    &job.spec.name,
                    job.run,
                    &launch,
                    slurm,
                    &exp_bin,
                );
                writeln!(f, "     sbatch:    {}", slurm::shell_line(&args))?;
            }
        }
        Ok(())
    }
}

/// The newest experiment directory under `base` whose config names `name`.
pub(super) fn latest_dir(base: &Path, name: &str) -> Result<Option<ExperimentDir>> {
    let entries = match std::fs::read_dir(base) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("list", base, e)),
    };
    let mut best: Option<(String, ExperimentDir)> = None;
    for entry in entries {
        let path = entry.at("list", base)?.path();
        let Ok(dir) = ExperimentDir::open(&path) else {
            continue;
        };
        let Ok(config) = Config::load(&dir) else {
            continue;
        };
        if config.name == name && best.as_ref().is_none_or(|(at, _)| config.created_at > *at) {
            best = Some((config.created_at, dir));
        }
    }
    Ok(best.map(|(_, dir)| dir))
}

/// How a scheduled run ended, for the summary.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    /// Experiment name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Last run.
    pub run: Option<RunId>,
    /// Final state.
    pub state: RunState,
    /// Exit code, when known.
    pub exit_code: Option<i32>,
    /// Error text.
    pub error: Option<String>,
    /// Wall time of the last run.
    pub duration: Option<Duration>,
}

/// What a scheduler run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// One row per experiment, in launch order.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Whether every experiment finished successfully.
    pub fn all_finished(&self) -> bool {
        self.rows.iter().all(|r| r.state == RunState::Finished)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<width$}  {:<8}  {:<8}  {:>9}  result",
            "name", "run", "status", "time"
        )?;
        for row in &self.rows {
            let run = row.run.map(|r| r.to_string()).unwrap_or_default();
            let time = row
                .duration
                .map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_default();
            let result = match (&row.error, row.exit_code) {
                (Some(error), _) => error.clone(),
                (None, Some(code)) => format!("exit {code}"),
                (None, None) => String::new(),
            };
            writeln!(
                f,
                "{:<width$}  {run:<8}  {:<8}  {time:>9}  {result}",
                row.name,
                row.state.as_str()
            )?;
        }
        Ok(())
    }
}

/// What the GPUs of a job are.
#[derive(Debug, Clone)]
enum GpuRequest {
    Ids(Vec<u32>),
    Count(usize),
}

struct Tracked {
    name: String,
    dir: ExperimentDir,
    gpus: GpuRequest,
    retries_left: u32,
    /// Submitted to Slurm instead of started here.
    slurm: bool,
    state: TrackedState,
}

enum TrackedState {
    Queued(RunId),
    /// Started here, or (with `slurm`) submitted to Slurm and not ended.
    Running {
        run: RunId,
        since: Instant,
        gpus: Vec<u32>,
        /// Started by a scheduler that died: not our child, so watched by polling.
        adopted: Option<ProcessId>,
        /// The Slurm job, for a Slurm run.
        slurm: Option<SlurmJob>,
    },
    Done,
}

/// A submitted Slurm job the scheduler follows.
struct SlurmJob {
    id: String,
    /// `status.json` shows the run's end; the job still counts until Slurm says it has ended.
    run_ended: bool,
    /// When `squeue` first said the job had ended while `status.json` did not show the run's
    /// end yet.
    ended_since: Option<Instant>,
}

/// When the scheduler last looked at its Slurm jobs.
struct SlurmWatch {
    last_status: Instant,
    last_query: Instant,
    unreachable: bool,
}

/// How often the scheduler reads the `status.json` of its Slurm runs.
const SLURM_STATUS_EVERY: Duration = Duration::from_millis(250);

struct Exit {
    index: usize,
}

/// Runs the config to completion. Returns the summary; jobs that fail do not make this an error.
pub fn run(config: &SchedulerConfig, mut options: RunOptions) -> Result<Summary> {
    config.check_pool(&options.gpu_pool)?;
    // Fail before creating anything when jobs could not be launched (or submitted).
    control::job_launcher()?;
    if config.backend == Backend::Slurm {
        check_sbatch()?;
    }
    std::fs::create_dir_all(&config.base_dir).at("create the base directory", &config.base_dir)?;
    let sched = SchedulerDir::new(&config.base_dir);
    let Some(_lock) = sched.try_lock()? else {
        let holder = Journal::load(&sched)
            .map(|j| format!(" (pid {} on {})", j.pid, j.host))
            .unwrap_or_default();
        return Err(Error::invalid_state(format!(
            "another scheduler{holder} is running on {}; wait for it to finish or use another base_dir",
            config.base_dir.display()
        )));
    };
    let mut out = Output::new(options.output.take());

    let previous = Journal::load(&sched).filter(|j| !j.finished);
    if let Some(previous) = &previous {
        out.line(&format!(
            "recovering the queue of a scheduler that stopped without finishing ({} experiments)",
            previous.jobs.len()
        ));
    }

    // Every queued experiment appears on disk at once, as Pending, each staged, recorded in
    // the journal and moved into place (see journal.rs), so a restart after a kill at any
    // step adopts or finishes what exists instead of creating it twice or leaving it half-made.
    let mut journal = Journal::begin(config, previous);
    journal.forget_unpublished(|name| config.experiments.iter().any(|e| e.name == name))?;
    journal.remove_unrecorded_staging(&sched)?;
    let mut jobs: Vec<Tracked> = Vec::new();
    for spec in config.in_priority_order() {
        let gpus = if spec.gpu_ids.is_empty() {
            GpuRequest::Count(spec.gpus as usize)
        } else {
            GpuRequest::Ids(spec.gpu_ids.clone())
        };
        let (dir, state) = match journal::materialize(config, spec, &sched, &mut journal)? {
            Materialized::Queued(dir, run) => (dir, TrackedState::Queued(run)),
            Materialized::Adopted(dir) => {
                let state = recover(&dir, &mut out)?;
                (dir, state)
            }
        };
        jobs.push(Tracked {
            name: spec.name.clone(),
            dir,
            gpus,
            retries_left: spec.retries,
            slurm: spec.slurm.is_some(),
            state,
        });
    }
    journal.save_durable(&sched)?;

    let (exits, exited) = mpsc::channel::<Exit>();
    let mut busy_gpus: HashSet<u32> = jobs
        .iter()
        .filter_map(|j| match &j.state {
            TrackedState::Running { gpus, .. } => Some(gpus.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut stopping = false;
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    let mut watch = SlurmWatch {
        last_status: Instant::now(),
        last_query: Instant::now(),
        unreachable: false,
    };
    loop {
        if options.interrupt.load(Ordering::SeqCst) && !stopping {
            stopping = true;
            out.line("interrupted: terminating running jobs");
            for job in jobs.iter_mut() {
                match job.state {
                    TrackedState::Running { .. } => {
                        let _ = control::perform_locally(&job.dir, Action::Terminate, None);
                    }
                    TrackedState::Queued(_) => {
                        let _ = control::perform_locally(&job.dir, Action::Terminate, None);
                        job.state = TrackedState::Done;
                    }
                    TrackedState::Done => {}
                }
            }
        }
        // Launch while there is room, in priority order; a job waiting for GPUs lets jobs
        // behind it that fit go first.
        let running = jobs
            .iter()
            .filter(|j| matches!(j.state, TrackedState::Running { .. }))
            .count();
        let mut room = config.max_concurrent.saturating_sub(running);
        if !stopping {
            for (index, job) in jobs.iter_mut().enumerate() {
                if room == 0 {
                    break;
                }
                let TrackedState::Queued(run) = job.state else {
                    continue;
                };
                if job.slurm {
                    room -= 1;
                    match control::submit_or_record(&job.dir, run) {
                        Ok(id) => {
                            out.event(&format!("submit  {} {run} as Slurm job {id}", job.name));
                            job.state = TrackedState::Running {
                                run,
                                since: Instant::now(),
                                gpus: Vec::new(),
                                adopted: None,
                                slurm: Some(SlurmJob {
                                    id,
                                    run_ended: false,
                                    ended_since: None,
                                }),
                            };
                        }
                        Err(e) => {
                            out.event(&format!("error   {} {run}: {e}", job.name));
                            job.state = TrackedState::Done;
                        }
                    }
                    continue;
                }
                let Some(gpus) = reserve(&job.gpus, &options.gpu_pool, &busy_gpus) else {
                    continue;
                };
                match launch(&job.dir, run, &gpus, index, &exits) {
                    Ok(()) => {
                        busy_gpus.extend(&gpus);
                        out.event(&format!("start   {} {run}{}", job.name, gpu_note(&gpus)));
                        job.state = TrackedState::Running {
                            run,
                            since: Instant::now(),
                            gpus,
                            adopted: None,
                            slurm: None,
                        };
                        room -= 1;
                    }
                    Err(e) => {
                        out.event(&format!("error   {} {run}: {e}", job.name));
                        let message = e.to_string();
                        Status::update(&job.dir, |s| s.mark_ended(None, Some(message)))?;
                        job.state = TrackedState::Done;
                    }
                }
            }
        }
        if !jobs.iter().any(|j| !matches!(j.state, TrackedState::Done)) {
            // Answer what arrived meanwhile (a Rerun may queue work) before leaving.
            serve_requests(&sched, &mut jobs, &mut journal, &mut out)?;
            if !jobs.iter().any(|j| !matches!(j.state, TrackedState::Done)) {
                break;
            }
            continue;
        }
        if let Ok(exit) = exited.recv_timeout(TICK) {
            finish(&mut jobs[exit.index], &mut busy_gpus, &mut out, stopping)?;
            // Drain whatever else ended meanwhile before launching again.
            while let Ok(exit) = exited.try_recv() {
                finish(&mut jobs[exit.index], &mut busy_gpus, &mut out, stopping)?;
            }
        }
        for job in jobs.iter_mut() {
            if let TrackedState::Running {
                adopted: Some(supervisor),
                ..
            } = job.state
                && !supervisor.is_alive()
            {
                finish(job, &mut busy_gpus, &mut out, stopping)?;
            }
        }
        follow_slurm(&mut jobs, &mut watch, &mut busy_gpus, &mut out, stopping)?;
        serve_requests(&sched, &mut jobs, &mut journal, &mut out)?;
        if last_draw.elapsed() >= Duration::from_secs(1) {
            out.progress(&jobs);
            last_draw = Instant::now();
        }
    }
    out.clear_progress();
    journal.finished = true;
    journal.save_durable(&sched)?;
    let summary = Summary {
        // An experiment deleted while the scheduler ran is not "unfinished": leave it out.
        rows: jobs
            .iter()
            .filter(|j| j.dir.config_path().is_file())
            .map(summary_row)
            .collect(),
    };
    out.line(&format!("\n{summary}"));
    Ok(summary)
}

/// After a crash: what to do with an experiment of the dead scheduler's queue.
fn recover(dir: &ExperimentDir, out: &mut Output) -> Result<TrackedState> {
    let status = Status::load(dir)?;
    let name = dir.path().display();
    let slurm = Config::load(dir)?.launch.slurm.is_some();
    if let (true, Some(run), Some(job), false) = (
        slurm,
        status.run_id,
        &status.slurm_job_id,
        status.status.is_terminal(),
    ) {
        // Submitted (maybe running) before the crash: Slurm kept it; follow it again.
        out.line(&format!("followed again: {name} (Slurm job {job})"));
        return Ok(TrackedState::Running {
            run,
            since: Instant::now(),
            gpus: Vec::new(),
            adopted: None,
            slurm: Some(SlurmJob {
                id: job.clone(),
                run_ended: false,
                ended_since: None,
            }),
        });
    }
    Ok(match status.status {
        RunState::Pending => match status.run_id {
            Some(run) => TrackedState::Queued(run),
            None => TrackedState::Queued(Experiment::open_pending(dir.path())?.run_id()),
        },
        RunState::Running => match status.supervisor_process().filter(|p| p.is_alive()) {
            Some(supervisor) => {
                out.line(&format!("still running, adopted: {name}"));
                TrackedState::Running {
                    run: status.run_id.unwrap_or(RunId::FIRST),
                    since: Instant::now(),
                    gpus: status.gpus.clone(),
                    adopted: Some(supervisor),
                    slurm: None,
                }
            }
            None => {
                if let Some(job) = status.job_process().filter(|p| p.is_alive()) {
                    super::process::kill_group(job.pid, super::job::KILL_GRACE);
                }
                let reason = "the scheduler and the job's supervisor stopped while it ran \
                              (killed or crashed); its exit code is unknown";
                Status::update(dir, |s| s.mark_ended(None, Some(reason.into())))?;
                out.line(&format!("marked Error (supervisor gone): {name}"));
                TrackedState::Done
            }
        },
        RunState::Finished | RunState::Error => TrackedState::Done,
    })
}

/// Picks the GPUs for a job from the pool, or `None` if they are not free now.
fn reserve(request: &GpuRequest, pool: &[u32], busy: &HashSet<u32>) -> Option<Vec<u32>> {
    match request {
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

fn launch(
    dir: &ExperimentDir,
    run: RunId,
    gpus: &[u32],
    index: usize,
    exits: &mpsc::Sender<Exit>,
) -> Result<()> {
    let mut child = control::supervisor_command(dir, run, gpus)?
        .spawn()
        .at("start the job supervisor for", dir.path())?;
    let exits = exits.clone();
    std::thread::spawn(move || {
        let _ = child.wait();
        let _ = exits.send(Exit { index });
    });
    Ok(())
}

/// Whether `sbatch` can be run: checked before anything is created, so a machine without
/// Slurm gets one error rather than one per experiment.
fn check_sbatch() -> Result<()> {
    match std::process::Command::new("sbatch")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::invalid_state(format!(
            "backend = \"slurm\" but sbatch cannot be run ({e}); run on a Slurm login node \
             (with sbatch, squeue, scontrol and scancel on the PATH) or use backend = \"local\""
        ))),
    }
}

/// Follows the submitted Slurm jobs. A job holds its place in `max_concurrent` until Slurm says
/// it has left the running states, even when `status.json` already shows the run's end (its
/// supervisor recorded it and is exiting), so Slurm never holds more jobs than the limit. A job
/// that Slurm says has ended while `status.json` still shows no end after
/// [`slurm::SETTLE_GRACE`] is settled from Slurm's record (cancelled while pending, node
/// failure, time limit).
fn follow_slurm(
    jobs: &mut [Tracked],
    watch: &mut SlurmWatch,
    busy: &mut HashSet<u32>,
    out: &mut Output,
    stopping: bool,
) -> Result<()> {
    if watch.last_status.elapsed() < SLURM_STATUS_EVERY {
        return Ok(());
    }
    watch.last_status = Instant::now();
    let mut ending = false;
    for job in jobs.iter_mut() {
        if let TrackedState::Running {
            run,
            slurm: Some(slurm_job),
            ..
        } = &mut job.state
            && !slurm_job.run_ended
        {
            let status = Status::load(&job.dir).unwrap_or_default();
            slurm_job.run_ended = status.run_id != Some(*run) || status.status.is_terminal();
            // The job that claimed the run is the one to follow: after a restart between
            // sbatch and recording its id, the run may have been submitted twice, and the
            // second job (which cannot claim it) ends at once.
            if let Some(id) = status.slurm_job_id.filter(|id| *id != slurm_job.id)
                && status.run_id == Some(*run)
            {
                slurm_job.id = id;
                slurm_job.ended_since = None;
            }
        }
        ending |= matches!(&job.state, TrackedState::Running { slurm: Some(j), .. } if j.run_ended);
    }
    // Slurm is asked every POLL, and at once while a job whose run has ended is leaving it.
    if !ending && watch.last_query.elapsed() < slurm::POLL {
        return Ok(());
    }
    watch.last_query = Instant::now();
    let ids: Vec<String> = jobs
        .iter()
        .filter_map(|job| match &job.state {
            TrackedState::Running {
                slurm: Some(slurm), ..
            } => Some(slurm.id.clone()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let found = match slurm::states(&ids.iter().map(String::as_str).collect::<Vec<_>>()) {
        Ok(found) => {
            if watch.unreachable {
                out.event("Slurm answers again");
                watch.unreachable = false;
            }
            found
        }
        Err(e) => {
            if !watch.unreachable {
                out.event(&format!(
                    "warning: cannot ask Slurm about the jobs ({e}); retrying every {}s",
                    slurm::POLL.as_secs()
                ));
                watch.unreachable = true;
            }
            return Ok(());
        }
    };
    for job in jobs.iter_mut() {
        let TrackedState::Running {
            run,
            slurm: Some(slurm_job),
            ..
        } = &mut job.state
        else {
            continue;
        };
        if !slurm::ended(found.get(&slurm_job.id)) {
            slurm_job.ended_since = None;
            continue;
        }
        if slurm_job.run_ended {
            finish(job, busy, out, stopping)?;
            continue;
        }
        let since = *slurm_job.ended_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= slurm::SETTLE_GRACE {
            let run = *run;
            let id = slurm_job.id.clone();
            slurm::settle(&job.dir, run, &id)?;
            finish(job, busy, out, stopping)?;
        }
    }
    Ok(())
}

/// A job's supervisor ended: free its GPUs, retry it if it failed and has retries left.
fn finish(
    job: &mut Tracked,
    busy: &mut HashSet<u32>,
    out: &mut Output,
    stopping: bool,
) -> Result<()> {
    let TrackedState::Running {
        run, since, gpus, ..
    } = &job.state
    else {
        return Ok(());
    };
    let (run, since) = (*run, *since);
    for gpu in gpus {
        busy.remove(gpu);
    }
    let mut status = Status::load(&job.dir)?;
    if !status.status.is_terminal() {
        // The supervisor died without recording the end (killed, or it could not start).
        status = Status::update(&job.dir, |s| {
            if !s.status.is_terminal() {
                s.mark_ended(
                    None,
                    Some("the job's supervisor exited without recording a result".into()),
                );
            }
        })?;
    }
    let took = since.elapsed().as_secs_f64();
    match status.status {
        RunState::Finished => out.event(&format!("done    {} {run} in {took:.1}s", job.name)),
        _ => out.event(&format!(
            "error   {} {run} after {took:.1}s: {}",
            job.name,
            status.error.as_deref().unwrap_or("failed")
        )),
    }
    if status.status == RunState::Error
        && job.retries_left > 0
        && !stopping
        && !status.terminate_requested
    {
        job.retries_left -= 1;
        let next = Experiment::open_pending(job.dir.path())?.run_id();
        out.event(&format!(
            "retry   {} as {next} ({} left)",
            job.name, job.retries_left
        ));
        job.state = TrackedState::Queued(next);
    } else {
        job.state = TrackedState::Done;
    }
    Ok(())
}

/// Answers the control requests waiting in `<base>/.expman/control/`.
fn serve_requests(
    sched: &SchedulerDir,
    jobs: &mut Vec<Tracked>,
    journal: &mut Journal,
    out: &mut Output,
) -> Result<()> {
    let dir = sched.control_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut requests: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    requests.sort();
    for path in requests {
        let answer = match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Request>(&b).ok())
        {
            None => Answer {
                ok: false,
                message: format!("unreadable request {}", path.display()),
            },
            Some(request) => match handle(request, jobs, journal, sched) {
                Ok(message) => {
                    out.event(&message);
                    Answer { ok: true, message }
                }
                Err(e) => Answer {
                    ok: false,
                    message: e.to_string(),
                },
            },
        };
        let done = path.with_extension("done");
        let body = serde_json::to_vec(&answer).map_err(|e| Error::invalid_state(e.to_string()))?;
        crate::store::write_atomic(&done, &body)?;
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

fn handle(
    request: Request,
    jobs: &mut Vec<Tracked>,
    journal: &mut Journal,
    sched: &SchedulerDir,
) -> Result<String> {
    let exp = ExperimentDir::open(&request.dir)?;
    let index = jobs.iter().position(|j| same_dir(j.dir.path(), exp.path()));
    if let Some(i) = index {
        match (&jobs[i].state, request.action) {
            // Its supervisor may have recorded the end already, but until the scheduler has
            // seen it exit the job still holds its slot and GPUs: a new run or a removed
            // directory now would be mistaken for that job's end.
            (TrackedState::Running { .. }, Action::Retry | Action::Delete) => {
                return Err(Error::invalid_state(format!(
                    "{} is still running (or just ending); {} it once it has ended",
                    jobs[i].name,
                    request.action.as_str()
                )));
            }
            // Cancelled or deleted before it started: it leaves the queue (a cancelled job
            // must not be launched, nor retried).
            (TrackedState::Queued(_), Action::Delete | Action::Terminate) => {
                jobs[i].state = TrackedState::Done;
            }
            // A Slurm job is terminated through Slurm and its end seen in `status.json`
            // afterwards, maybe as "cancelled before it started": not a failure to retry.
            (TrackedState::Running { .. }, Action::Terminate) if jobs[i].slurm => {
                jobs[i].retries_left = 0;
            }
            _ => {}
        }
    }
    let mut queued: Option<RunId> = None;
    let mut queue = |_: &ExperimentDir, run: RunId| queued = Some(run);
    let message = control::perform_locally(&exp, request.action, Some(&mut queue))?;
    if let Some(run) = queued {
        match index {
            Some(i) => jobs[i].state = TrackedState::Queued(run),
            None => {
                // An experiment this scheduler did not start (another config, or by hand):
                // take it into the queue with the GPUs its config names.
                let config = Config::load(&exp)?;
                let slurm = config.launch.slurm.is_some();
                let gpus = if config.gpu_ids.is_empty() || slurm {
                    GpuRequest::Count(config.launch.gpus as usize)
                } else {
                    GpuRequest::Ids(config.gpu_ids)
                };
                journal.record(JournalEntry::placed(&config.name, exp.path()));
                journal.save_durable(sched)?;
                jobs.push(Tracked {
                    name: config.name,
                    dir: exp,
                    gpus,
                    retries_left: 0,
                    slurm,
                    state: TrackedState::Queued(run),
                });
            }
        }
    }
    Ok(message)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn summary_row(job: &Tracked) -> SummaryRow {
    let status = Status::load(&job.dir).unwrap_or_default();
    let duration = match (&status.started_at, &status.finished_at) {
        (Some(start), Some(end)) => chrono::DateTime::parse_from_rfc3339(end)
            .ok()
            .zip(chrono::DateTime::parse_from_rfc3339(start).ok())
            .and_then(|(e, s)| (e - s).to_std().ok()),
        _ => None,
    };
    SummaryRow {
        name: job.name.clone(),
        dir: job.dir.path().to_path_buf(),
        run: status.run_id,
        state: status.effective().0,
        exit_code: status.exit_code,
        error: status.error.clone(),
        duration,
    }
}

fn gpu_note(gpus: &[u32]) -> String {
    if gpus.is_empty() {
        String::new()
    } else {
        format!(" on GPU {gpus:?}")
    }
}

/// Terminal output: a redrawn block of live progress on a terminal, plain event lines otherwise.
struct Output {
    sink: Option<Box<dyn Write + Send>>,
    interactive: bool,
    drawn: usize,
    started: Instant,
}

impl Output {
    fn new(sink: Option<Box<dyn Write + Send>>) -> Output {
        Output {
            interactive: sink.is_some() && std::io::stdout().is_terminal(),
            sink,
            drawn: 0,
            started: Instant::now(),
        }
    }

    fn line(&mut self, text: &str) {
        self.clear_progress();
        if let Some(sink) = &mut self.sink {
            let _ = writeln!(sink, "{text}");
            let _ = sink.flush();
        }
    }

    fn event(&mut self, text: &str) {
        let elapsed = self.started.elapsed().as_secs();
        self.line(&format!(
            "[{:02}:{:02}:{:02}] {text}",
            elapsed / 3600,
            elapsed / 60 % 60,
            elapsed % 60
        ));
    }

    fn clear_progress(&mut self) {
        if self.drawn > 0
            && let Some(sink) = &mut self.sink
        {
            let _ = write!(sink, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn progress(&mut self, jobs: &[Tracked]) {
        if !self.interactive {
            return;
        }
        self.clear_progress();
        let count = |f: fn(&Tracked) -> bool| jobs.iter().filter(|j| f(j)).count();
        let mut lines = vec![format!(
            "pending {} | running {} | done {}",
            count(|j| matches!(j.state, TrackedState::Queued(_))),
            count(|j| matches!(j.state, TrackedState::Running { .. })),
            count(|j| matches!(j.state, TrackedState::Done)),
        )];
        for job in jobs {
            if let TrackedState::Running {
                run,
                since,
                gpus,
                slurm,
                ..
            } = &job.state
            {
                let s = since.elapsed().as_secs();
                let place = match slurm {
                    Some(slurm) => format!(" (Slurm job {})", slurm.id),
                    None => gpu_note(gpus),
                };
                lines.push(format!(
                    "  {} {run}{place}  {:02}:{:02}:{:02}",
                    job.name,
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                ));
            }
        }
        if let Some(sink) = &mut self.sink {
            for line in &lines {
                let _ = writeln!(sink, "{line}");
            }
            let _ = sink.flush();
        }
        self.drawn = lines.len();
    }
}
