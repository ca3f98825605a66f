//! The scheduling loop.
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
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::backend::JobBackend;
use super::config::{Backend, SchedulerConfig};
use super::control::{self, Action, Answer, Request, SchedulerDir};
use super::journal::{self, Journal, JournalEntry, Materialized};
use super::launcher;
use super::output::{Output, gpu_note};
use super::queue::{self, Entry, EntryState, Running, SlurmJob};
use super::slurm;
use super::summary::{Summary, SummaryRow};
use super::watch::SlurmWatch;
use crate::error::{Error, IoContext, Result};
use crate::run_id::RunId;
use crate::store::{ExperimentDir, Status};

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

/// Runs the config to completion. Returns the summary; jobs that fail do not make this an error.
pub fn run(config: &SchedulerConfig, options: RunOptions) -> Result<Summary> {
    let mut scheduler = Scheduler::open(config, options)?;
    scheduler.take_queue()?;
    loop {
        scheduler.stop_if_interrupted();
        scheduler.launch_ready()?;
        if scheduler.idle() {
            // Answer what arrived meanwhile (a Rerun may queue work) before leaving.
            scheduler.serve_requests()?;
            if scheduler.idle() {
                break;
            }
            continue;
        }
        scheduler.reap()?;
        scheduler.poll_slurm()?;
        scheduler.serve_requests()?;
        scheduler.draw();
    }
    scheduler.summarise()
}

/// A local job's supervisor exited: the queue index of its entry.
struct Exit {
    index: usize,
}

/// One scheduler run on a base directory: its queue and everything the loop keeps between
/// iterations.
struct Scheduler<'a> {
    config: &'a SchedulerConfig,
    pool: Vec<u32>,
    interrupt: Arc<AtomicBool>,
    sched: SchedulerDir,
    /// Held for as long as the scheduler runs (see `control.rs`).
    _lock: File,
    journal: Journal,
    queue: Vec<Entry>,
    /// GPUs of the pool reserved by running jobs.
    busy_gpus: HashSet<u32>,
    exits: mpsc::Sender<Exit>,
    exited: mpsc::Receiver<Exit>,
    watch: SlurmWatch,
    out: Output,
    /// Interrupted: running jobs are being terminated, nothing new starts.
    stopping: bool,
    last_draw: Instant,
}

impl<'a> Scheduler<'a> {
    /// Checks that jobs can be launched, and takes the base directory's lock.
    fn open(config: &'a SchedulerConfig, mut options: RunOptions) -> Result<Scheduler<'a>> {
        config.check_pool(&options.gpu_pool)?;
        // Fail before creating anything when jobs could not be launched (or submitted).
        launcher::job_launcher()?;
        if config.backend == Backend::Slurm {
            slurm::check_sbatch()?;
        }
        let base = &config.base_dir;
        std::fs::create_dir_all(base).at("create the base directory", base)?;
        let sched = SchedulerDir::new(base);
        let Some(lock) = sched.try_lock()? else {
            let holder = Journal::load(&sched)
                .map(|j| format!(" (pid {} on {})", j.pid, j.host))
                .unwrap_or_default();
            return Err(Error::invalid_state(format!(
                "another scheduler{holder} is running on {}; wait for it to finish or use another base_dir",
                base.display()
            )));
        };
        let (exits, exited) = mpsc::channel();
        Ok(Scheduler {
            config,
            pool: options.gpu_pool,
            interrupt: options.interrupt,
            _lock: lock,
            journal: Journal::default(),
            queue: Vec::new(),
            busy_gpus: HashSet::new(),
            exits,
            exited,
            watch: SlurmWatch::new(),
            out: Output::new(options.output.take()),
            stopping: false,
            last_draw: Instant::now() - Duration::from_secs(1),
            sched,
        })
    }

    /// Puts every queued experiment on disk, or adopts the queue of a scheduler that died.
    ///
    /// Every queued experiment appears on disk at once, as Pending, each staged, recorded in
    /// the journal and moved into place (see journal.rs), so a restart after a kill at any
    /// step adopts or finishes what exists instead of creating it twice or leaving it half-made.
    fn take_queue(&mut self) -> Result<()> {
        let config = self.config;
        let previous = Journal::load(&self.sched).filter(|j| !j.finished);
        if let Some(previous) = &previous {
            self.out.line(&format!(
                "recovering the queue of a scheduler that stopped without finishing ({} experiments)",
                previous.jobs.len()
            ));
        }
        self.journal = Journal::begin(config, previous);
        self.journal
            .forget_unpublished(|name| config.experiments.iter().any(|e| e.name == name))?;
        self.journal.remove_unrecorded_staging(&self.sched)?;
        for spec in config.in_priority_order() {
            let entry = match journal::materialize(config, spec, &self.sched, &mut self.journal)? {
                Materialized::Queued(dir, run) => Entry::from_config(dir, EntryState::Queued(run))?,
                Materialized::Adopted(dir) => {
                    let mut entry = Entry::from_config(dir, EntryState::Done)?;
                    entry.state = entry.recover(&mut self.out)?;
                    entry
                }
            };
            if let EntryState::Running(running) = &entry.state {
                self.busy_gpus.extend(&running.gpus);
            }
            self.queue.push(entry);
        }
        self.journal.save_durable(&self.sched)
    }

    /// After an interrupt (Ctrl-C): terminates the running jobs and cancels the queued ones,
    /// once.
    fn stop_if_interrupted(&mut self) {
        if self.stopping || !self.interrupt.load(Ordering::SeqCst) {
            return;
        }
        self.stopping = true;
        self.out.line("interrupted: terminating running jobs");
        for entry in self.queue.iter_mut().filter(|e| !e.is_done()) {
            let _ = control::perform_locally(&entry.dir, Action::Terminate, false);
            if entry.is_queued() {
                entry.state = EntryState::Done;
            }
        }
    }

    /// Whether the queue is worked off.
    fn idle(&self) -> bool {
        self.queue.iter().all(Entry::is_done)
    }

    /// Launches while there is room, in priority order; a job waiting for GPUs lets jobs
    /// behind it that fit go first.
    fn launch_ready(&mut self) -> Result<()> {
        if self.stopping {
            return Ok(());
        }
        let running = self.queue.iter().filter(|e| e.is_running()).count();
        let mut room = self.config.max_concurrent.saturating_sub(running);
        for index in 0..self.queue.len() {
            if room == 0 {
                break;
            }
            if self.launch(index)? {
                room -= 1;
            }
        }
        Ok(())
    }

    /// Launches entry `index` if it is queued and (locally) its GPUs are free. Returns whether
    /// it took a place in `max_concurrent` (a Slurm submission does, even a refused one).
    fn launch(&mut self, index: usize) -> Result<bool> {
        let entry = &mut self.queue[index];
        let EntryState::Queued(run) = entry.state else {
            return Ok(false);
        };
        let out = &mut self.out;
        match entry.backend {
            JobBackend::Slurm => {
                match slurm::submit_or_record(&entry.dir, run) {
                    Ok(id) => {
                        out.event(&format!("submit  {} {run} as Slurm job {id}", entry.name));
                        let job = SlurmJob::new(id);
                        entry.state = EntryState::Running(Running::new(run, Vec::new(), Some(job)));
                    }
                    Err(e) => {
                        out.event(&format!("error   {} {run}: {e}", entry.name));
                        entry.state = EntryState::Done;
                    }
                }
                Ok(true)
            }
            JobBackend::Local => {
                let Some(gpus) = entry.gpus.reserve(&self.pool, &self.busy_gpus) else {
                    return Ok(false);
                };
                match spawn_supervisor(&entry.dir, run, &gpus, index, &self.exits) {
                    Ok(()) => {
                        self.busy_gpus.extend(&gpus);
                        out.event(&format!("start   {} {run}{}", entry.name, gpu_note(&gpus)));
                        entry.state = EntryState::Running(Running::new(run, gpus, None));
                        Ok(true)
                    }
                    Err(e) => {
                        out.event(&format!("error   {} {run}: {e}", entry.name));
                        let message = e.to_string();
                        Status::update(&entry.dir, |s| s.mark_ended(None, Some(message)))?;
                        entry.state = EntryState::Done;
                        Ok(false)
                    }
                }
            }
        }
    }

    /// Waits (one tick at most) for local supervisors to exit, and finishes those that did,
    /// and those of adopted runs that are gone.
    fn reap(&mut self) -> Result<()> {
        if let Ok(exit) = self.exited.recv_timeout(TICK) {
            self.finish(exit.index)?;
            // Drain whatever else ended meanwhile before launching again.
            while let Ok(exit) = self.exited.try_recv() {
                self.finish(exit.index)?;
            }
        }
        for index in 0..self.queue.len() {
            if let EntryState::Running(Running {
                adopted: Some(supervisor),
                ..
            }) = &self.queue[index].state
                && !supervisor.is_alive()
            {
                self.finish(index)?;
            }
        }
        Ok(())
    }

    /// Finishes the Slurm jobs that have ended.
    fn poll_slurm(&mut self) -> Result<()> {
        for index in self.watch.poll(&mut self.queue, &mut self.out)? {
            self.finish(index)?;
        }
        Ok(())
    }

    /// Entry `index`'s run ended: frees its GPUs, retries it if it failed and may.
    fn finish(&mut self, index: usize) -> Result<()> {
        let freed = self.queue[index].finish(&mut self.out, self.stopping)?;
        for gpu in freed {
            self.busy_gpus.remove(&gpu);
        }
        Ok(())
    }

    /// Redraws the progress block, once a second.
    fn draw(&mut self) {
        if self.last_draw.elapsed() >= Duration::from_secs(1) {
            self.out.progress(&queue::progress_lines(&self.queue));
            self.last_draw = Instant::now();
        }
    }

    /// Answers the control requests waiting in `<base>/.expman/control/`.
    fn serve_requests(&mut self) -> Result<()> {
        let dir = self.sched.control_dir();
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
                Some(request) => match self.handle(request) {
                    Ok(message) => {
                        self.out.event(&message);
                        Answer { ok: true, message }
                    }
                    Err(e) => Answer {
                        ok: false,
                        message: e.to_string(),
                    },
                },
            };
            let done = path.with_extension("done");
            let body =
                serde_json::to_vec(&answer).map_err(|e| Error::invalid_state(e.to_string()))?;
            crate::store::write_atomic(&done, &body)?;
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }

    /// Performs one request, keeping the queue right.
    fn handle(&mut self, request: Request) -> Result<String> {
        let exp = ExperimentDir::open(&request.dir)?;
        let index = self
            .queue
            .iter()
            .position(|e| same_dir(e.dir.path(), exp.path()));
        if let Some(entry) = index.map(|i| &mut self.queue[i]) {
            match (&entry.state, request.action) {
                // Its supervisor may have recorded the end already, but until the scheduler
                // has seen it exit the job still holds its slot and GPUs: a new run or a
                // removed directory now would be mistaken for that job's end.
                (EntryState::Running(_), Action::Retry | Action::Delete) => {
                    return Err(Error::invalid_state(format!(
                        "{} is still running (or just ending); {} it once it has ended",
                        entry.name,
                        request.action.as_str()
                    )));
                }
                // Cancelled or deleted before it started: it leaves the queue (a cancelled job
                // must not be launched, nor retried).
                (EntryState::Queued(_), Action::Delete | Action::Terminate) => {
                    entry.state = EntryState::Done;
                }
                // A Slurm job is terminated through Slurm and its end seen in `status.json`
                // afterwards, maybe as "cancelled before it started": not a failure to retry.
                (EntryState::Running(_), Action::Terminate)
                    if entry.backend == JobBackend::Slurm =>
                {
                    entry.retries_left = 0;
                }
                _ => {}
            }
        }
        let done = control::perform_locally(&exp, request.action, true)?;
        if let Some(run) = done.queued {
            self.enqueue(index, exp, run)?;
        }
        Ok(done.message)
    }

    /// Queues `run` of `exp`: entry `index`, or a new entry for an experiment this scheduler
    /// did not start (another config, or by hand), recorded in the journal.
    fn enqueue(&mut self, index: Option<usize>, exp: ExperimentDir, run: RunId) -> Result<()> {
        if let Some(i) = index {
            self.queue[i].state = EntryState::Queued(run);
            return Ok(());
        }
        let entry = Entry::from_config(exp, EntryState::Queued(run))?;
        self.journal
            .record(JournalEntry::placed(&entry.name, entry.dir.path()));
        self.journal.save_durable(&self.sched)?;
        self.queue.push(entry);
        Ok(())
    }

    /// Marks the journal finished and prints the summary.
    fn summarise(mut self) -> Result<Summary> {
        self.out.clear_progress();
        self.journal.finished = true;
        self.journal.save_durable(&self.sched)?;
        let summary = Summary {
            // An experiment deleted while the scheduler ran is not "unfinished": leave it out.
            rows: self
                .queue
                .iter()
                .filter(|e| e.dir.config_path().is_file())
                .map(|e| SummaryRow::of(&e.name, &e.dir))
                .collect(),
        };
        self.out.line(&format!("\n{summary}"));
        Ok(summary)
    }
}

/// Starts the supervisor of a local job; its exit is sent to the loop as `index`.
fn spawn_supervisor(
    dir: &ExperimentDir,
    run: RunId,
    gpus: &[u32],
    index: usize,
    exits: &mpsc::Sender<Exit>,
) -> Result<()> {
    let mut child = launcher::supervisor_command(dir, run, gpus)?
        .spawn()
        .at("start the job supervisor for", dir.path())?;
    let exits = exits.clone();
    std::thread::spawn(move || {
        let _ = child.wait();
        let _ = exits.send(Exit { index });
    });
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
