//! The `Experiment`: the seed framework's API (create, `upd_row`/`save_row`, status, logs) over
//! the directory layout, run-id allocation and metrics tables.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::metrics::{Metrics, SyncPolicy, TableWriter, Value, read_table};
use crate::run_id::{self, RunId};
use crate::store::{
    Config, ExperimentDir, Launch, ProcessId, RunLaunch, RunState, Status, validate_name,
};

/// Set by the scheduler for the jobs it launches: the experiment directory to attach to.
pub const ENV_EXPERIMENT_DIR: &str = "EXPMAN_EXPERIMENT_DIR";
/// Set by the scheduler for the jobs it launches: the run to attach to.
pub const ENV_RUN_ID: &str = "EXPMAN_RUN_ID";

/// Options for creating an experiment; see [`Experiment::builder`].
#[derive(Debug, Clone)]
pub struct ExperimentBuilder {
    name: String,
    base_dir: PathBuf,
    command: String,
    tags: Vec<String>,
    description: String,
    gpu_ids: Vec<u32>,
    priority: i64,
    launch: Launch,
    sync: SyncPolicy,
    attach_from_env: bool,
    state: RunState,
}

impl ExperimentBuilder {
    /// The command that runs the experiment (recorded in `config.json`).
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = command.into();
        self
    }
    /// Tags (recorded in `config.json`).
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
    /// A description (recorded in `config.json`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
    /// The GPUs the experiment uses (recorded in `config.json`).
    pub fn gpu_ids(mut self, gpu_ids: impl IntoIterator<Item = u32>) -> Self {
        self.gpu_ids = gpu_ids.into_iter().collect();
        self
    }
    /// Scheduler priority, recorded in `config.json`.
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }
    /// How the scheduler launches the command (recorded in `config.json`).
    pub fn launch(mut self, launch: Launch) -> Self {
        self.launch = launch;
        self
    }
    /// Durability of saved rows (default: write-through, survives a killed process).
    pub fn sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }
    /// Whether `EXPMAN_EXPERIMENT_DIR`/`EXPMAN_RUN_ID` make `create` attach instead (default
    /// true, so a script launched by the scheduler logs into the scheduler's run).
    pub fn attach_from_env(mut self, attach: bool) -> Self {
        self.attach_from_env = attach;
        self
    }
    /// Create the run as Pending (queued) rather than Running in this process. The scheduler
    /// uses this.
    pub fn pending(mut self) -> Self {
        self.state = RunState::Pending;
        self
    }

    /// Creates the experiment directory and its first run (or attaches, see
    /// [`attach_from_env`](Self::attach_from_env)).
    ///
    /// The directory is claimed, filled (subdirectories, the first run, `status.json`) and
    /// published by writing `config.json` last: until then no reader takes it for an
    /// experiment. If any step fails (a full disk), the directory is removed again and the
    /// error returned; nothing is left behind.
    pub fn create(self) -> Result<Experiment> {
        if self.attach_from_env
            && let (Some(dir), Some(run)) = (
                std::env::var_os(ENV_EXPERIMENT_DIR),
                std::env::var_os(ENV_RUN_ID),
            )
        {
            let mut exp = Experiment::attach_from_env(PathBuf::from(dir), &run)?;
            exp.set_sync(self.sync);
            return Ok(exp);
        }
        let dir = ExperimentDir::create(&self.base_dir, &self.name, chrono::Local::now())?;
        self.fill(dir)
    }

    /// Creates the experiment at exactly `root` (which must not exist), as Pending or Running
    /// as set: the scheduler stages its queue's experiments this way before moving them into
    /// place. Never attaches.
    #[cfg(feature = "scheduler")]
    pub(crate) fn create_at(self, root: &Path) -> Result<Experiment> {
        validate_name("experiment name", &self.name)?;
        let dir = ExperimentDir::create_at(root)?;
        self.fill(dir)
    }

    /// Gives the freshly claimed `dir` its first run and then its `config.json`; on failure
    /// removes `dir`, which nobody else can have opened (it has no `config.json`).
    fn fill(self, dir: ExperimentDir) -> Result<Experiment> {
        let config = Config {
            name: self.name,
            command: self.command,
            tags: self.tags,
            description: self.description,
            gpu_ids: self.gpu_ids,
            priority: self.priority,
            launch: self.launch,
            ..Config::default()
        };
        let result = Experiment::start_run(dir.clone(), config, self.state, self.sync)
            .and_then(|exp| exp.config.save(&dir).map(|()| exp));
        if result.is_err() {
            dir.discard();
        }
        result
    }
}

/// Why `run` is not a run of `dir`, or `None` when it is one: its log or table exists, or
/// `status.json` names it.
fn missing_run(dir: &ExperimentDir, run: RunId) -> Option<String> {
    if dir.run_log(run).exists() || dir.table_path(&run.to_string()).exists() {
        return None;
    }
    let status = Status::load(dir).ok();
    let known = status
        .as_ref()
        .is_some_and(|s| s.run_id == Some(run) || s.history.iter().any(|h| h.run_id == Some(run)));
    if known {
        return None;
    }
    Some(
        match dir.runs().ok().and_then(|runs| runs.last().copied()) {
            Some(last) => format!("its latest run is {last}"),
            None => "it has no runs yet".to_string(),
        },
    )
}

/// One experiment directory and the run this process works on.
///
/// ```no_run
/// # fn main() -> expman::Result<()> {
/// let mut exp = expman::Experiment::builder("my_experiment", "./experiments")
///     .command("cargo run --example quickstart")
///     .tags(["deep-learning"])
///     .create()?;
/// exp.upd_row([("epoch", 1.0), ("loss", 0.5)])?;
/// exp.save_row()?;
/// exp.set_finished()?;
/// # Ok(()) }
/// ```
pub struct Experiment {
    dir: ExperimentDir,
    config: Config,
    run: RunId,
    metrics: TableWriter,
    tables: HashMap<String, TableWriter>,
    sync: SyncPolicy,
    attached: bool,
    /// The output capture this handle started (see [`Experiment::capture_output`]).
    capture: Option<u64>,
}

impl Drop for Experiment {
    /// Stops this handle's output capture, so everything printed before is in the log.
    fn drop(&mut self) {
        let _ = self.stop_capture();
    }
}

impl Experiment {
    /// Starts building a new experiment named `name` under `base_dir`.
    pub fn builder(name: impl Into<String>, base_dir: impl Into<PathBuf>) -> ExperimentBuilder {
        ExperimentBuilder {
            name: name.into(),
            base_dir: base_dir.into(),
            command: String::new(),
            tags: Vec::new(),
            description: String::new(),
            gpu_ids: Vec::new(),
            priority: 0,
            launch: Launch::default(),
            sync: SyncPolicy::default(),
            attach_from_env: true,
            state: RunState::Running,
        }
    }

    /// Creates an experiment with default options (the seed's `Experiment(name, command,
    /// base_dir)`).
    pub fn create(
        name: impl Into<String>,
        command: impl Into<String>,
        base_dir: impl Into<PathBuf>,
    ) -> Result<Experiment> {
        Experiment::builder(name, base_dir)
            .command(command)
            .create()
    }

    /// Starts the next run in an existing experiment directory (resume, retry).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Experiment> {
        let dir = ExperimentDir::open(dir)?;
        let config = Config::load(&dir)?;
        Experiment::start_run(dir, config, RunState::Running, SyncPolicy::default())
    }

    /// Starts the next run of an existing experiment as Pending (queued, no process yet).
    pub fn open_pending(dir: impl Into<PathBuf>) -> Result<Experiment> {
        let dir = ExperimentDir::open(dir)?;
        let config = Config::load(&dir)?;
        Experiment::start_run(dir, config, RunState::Pending, SyncPolicy::default())
    }

    /// Attaches to an existing run, as a job launched by the scheduler does. The run's status
    /// stays with whoever created the run.
    ///
    /// The run must exist (allocated by [`Experiment::open`], the builder or the scheduler):
    /// attaching never creates a run's log or table, so a wrong run id is refused with a
    /// [`NotFound`](crate::ErrorKind::NotFound) error instead of leaving a run nobody started.
    pub fn attach(dir: impl Into<PathBuf>, run: RunId) -> Result<Experiment> {
        let dir = ExperimentDir::open(dir)?;
        if let Some(missing) = missing_run(&dir, run) {
            return Err(Error::not_found(
                &dir.run_log(run),
                format!(
                    "{run} does not exist in {} ({missing}); attach to one of its runs, or \
                     open the directory to start a new run",
                    dir.path().display()
                ),
            ));
        }
        Experiment::attach_existing(dir, run)
    }

    /// [`Experiment::attach`] for the run named by `EXPMAN_EXPERIMENT_DIR` and `EXPMAN_RUN_ID`,
    /// with errors that name the variables.
    fn attach_from_env(dir: PathBuf, run: &std::ffi::OsStr) -> Result<Experiment> {
        let text = run.to_string_lossy();
        let run: RunId = text.parse().map_err(|e: Error| {
            Error::config(
                ENV_RUN_ID,
                format!("{e} (the scheduler sets this variable)"),
            )
        })?;
        let dir = ExperimentDir::open(dir)?;
        if let Some(missing) = missing_run(&dir, run) {
            return Err(Error::not_found(
                &dir.run_log(run),
                format!(
                    "{ENV_RUN_ID}={run} names a run that does not exist in \
                     {ENV_EXPERIMENT_DIR}={} ({missing}); `EXP run` sets these variables for \
                     the jobs it launches: unset both to create a new experiment instead",
                    dir.path().display()
                ),
            ));
        }
        Experiment::attach_existing(dir, run)
    }

    fn attach_existing(dir: ExperimentDir, run: RunId) -> Result<Experiment> {
        let config = Config::load(&dir)?;
        let log = dir.run_log(run);
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .at("open the run log", &log)?;
        let mut exp = Experiment::new(dir, config, run, SyncPolicy::default());
        exp.attached = true;
        Ok(exp)
    }

    /// Allocates the next run and records it in `status.json` under one hold of the lock; a
    /// failure undoes the allocation (see [`run_id::allocate_and`]).
    ///
    /// A Pending run (one expman will launch) records what it will execute: the previous run's
    /// launch when there is one (a retry repeats that run exactly), else `config`'s.
    fn start_run(
        dir: ExperimentDir,
        config: Config,
        state: RunState,
        sync: SyncPolicy,
    ) -> Result<Experiment> {
        Experiment::start_run_with(dir, config, state, sync, None)
    }

    /// [`Experiment::start_run`] with the launch of the new run given (`None`: as above).
    fn start_run_with(
        dir: ExperimentDir,
        config: Config,
        state: RunState,
        sync: SyncPolicy,
        launch: Option<RunLaunch>,
    ) -> Result<Experiment> {
        let run = run_id::allocate_and(&dir, |lock, run| {
            Status::update_locked(&dir, lock, |status| {
                let previous = status.launch.clone();
                status.begin_run(run, state);
                if state == RunState::Pending {
                    status.launch = Some(
                        launch
                            .or(previous)
                            .unwrap_or_else(|| RunLaunch::from_config(&config)),
                    );
                }
                if state == RunState::Running {
                    status.mark_running(ProcessId::current());
                }
            })
            .map(drop)
        })?;
        Ok(Experiment::new(dir, config, run, sync))
    }

    /// Starts the next run of the existing experiment in `dir` as Pending, executing what
    /// `update` says now (the scheduler's `resume = true`): `config.json` takes `update`'s
    /// command, tags, description, GPUs, priority and launch settings (keeping its name,
    /// creation time, host and version), and the new run records that launch.
    #[cfg(feature = "scheduler")]
    pub(crate) fn resume_pending(dir: impl Into<PathBuf>, update: Config) -> Result<Experiment> {
        let dir = ExperimentDir::open(dir)?;
        let old = Config::load(&dir)?;
        let config = Config {
            name: old.name.clone(),
            created_at: old.created_at.clone(),
            host: old.host.clone(),
            expman_version: old.expman_version.clone(),
            ..update
        };
        if config != old {
            config.save(&dir)?;
        }
        let launch = RunLaunch::from_config(&config);
        Experiment::start_run_with(
            dir,
            config,
            RunState::Pending,
            SyncPolicy::default(),
            Some(launch),
        )
    }

    fn new(dir: ExperimentDir, config: Config, run: RunId, sync: SyncPolicy) -> Experiment {
        let run_text = run.to_string();
        Experiment {
            metrics: TableWriter::new(dir.table_path(&run_text), &run_text, sync),
            dir,
            config,
            run,
            tables: HashMap::new(),
            sync,
            attached: false,
            capture: None,
        }
    }

    /// Changes the durability of saved rows for the run's table and every named table.
    pub fn set_sync(&mut self, sync: SyncPolicy) {
        self.sync = sync;
        self.metrics.set_sync(sync);
        for table in self.tables.values_mut() {
            table.set_sync(sync);
        }
    }

    /// The experiment directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The directory's layout helper.
    pub fn layout(&self) -> &ExperimentDir {
        &self.dir
    }
    /// The experiment's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
    /// `config.json` as written at creation.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The run this process works on (the seed's `current_run_id`).
    pub fn run_id(&self) -> RunId {
        self.run
    }
    /// Whether this handle attached to a run created by someone else (the scheduler).
    pub fn is_attached(&self) -> bool {
        self.attached
    }

    /// Merges fields into the pending row of the run's metrics table.
    pub fn upd_row<K, V>(&mut self, fields: impl IntoIterator<Item = (K, V)>) -> Result<()>
    where
        K: AsRef<str>,
        V: Into<Value>,
    {
        self.metrics.upd_row(fields)
    }

    /// Sets one field of the pending row.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> Result<()> {
        self.metrics.set(name, value)
    }

    /// Appends the pending row to `metrics/<run_id>.csv` and clears it.
    pub fn save_row(&mut self) -> Result<()> {
        self.metrics.save_row()
    }

    /// The run's own table writer (for [`FieldId`](crate::FieldId)-based hot loops).
    pub fn metrics(&mut self) -> &mut TableWriter {
        &mut self.metrics
    }

    /// The named table `metrics/<name>.csv` (for example `progress`), created on first save.
    pub fn table(&mut self, name: &str) -> Result<&mut TableWriter> {
        if !self.tables.contains_key(name) {
            validate_name("table name", name)?;
            if name.parse::<RunId>().is_ok() {
                return Err(Error::invalid_name(
                    "table name",
                    name,
                    "names like run_0001 are the runs' own tables; choose another name",
                ));
            }
            let writer =
                TableWriter::new(self.dir.table_path(name), &self.run.to_string(), self.sync);
            self.tables.insert(name.to_string(), writer);
        }
        Ok(self.tables.get_mut(name).expect("inserted above"))
    }

    /// Reads this run's metrics back. Before the first saved row (the file is created with it)
    /// the table reads as empty: `timestamp` and `run_id`, no rows.
    pub fn load_metrics(&self) -> Result<Metrics> {
        read_or_empty(self.metrics.path())
    }

    /// Reads a named table (or another run's table, `run_0002`) back. A table never written
    /// reads as empty, as in [`Experiment::load_metrics`].
    pub fn load_table(&self, name: &str) -> Result<Metrics> {
        validate_name("table name", name)?;
        read_or_empty(&self.dir.table_path(name))
    }

    /// The current `status.json`.
    pub fn status(&self) -> Result<Status> {
        Status::load(&self.dir)
    }

    /// Marks the run Running in process `pid`.
    ///
    /// A pid other than this process's is recorded as given (the seed's
    /// `set_running(pid=12345)`), and readers apply the same liveness check to it: once no such
    /// process runs on this host, [`Status::effective`] reports the run as Error, saying that
    /// the process named by `set_running` is not running.
    pub fn set_running(&mut self, pid: u32) -> Result<()> {
        let process = ProcessId::of(pid).unwrap_or(ProcessId {
            pid,
            start_time: None,
        });
        let named = pid != std::process::id();
        self.update_run(|status| {
            status.mark_running(process);
            status.pid_named = named;
        })
    }

    /// Marks the run Finished.
    pub fn set_finished(&mut self) -> Result<()> {
        self.sync_if_durable()?;
        self.update_run(|status| status.mark_ended(None, None))
    }

    /// Marks the run Error with a message.
    pub fn set_error(&mut self, message: &str) -> Result<()> {
        self.sync_if_durable()?;
        let message = message.to_string();
        self.update_run(|status| status.mark_ended(None, Some(message)))
    }

    /// Under an fsync policy, makes every table durable before the run is marked ended.
    fn sync_if_durable(&mut self) -> Result<()> {
        self.metrics.sync_if_durable()?;
        self.tables
            .values_mut()
            .try_for_each(TableWriter::sync_if_durable)
    }

    fn update_run(&mut self, change: impl FnOnce(&mut Status)) -> Result<()> {
        let run = self.run;
        Status::update(&self.dir, |status| {
            if status.run_id != Some(run) {
                status.begin_run(run, RunState::Pending);
            }
            change(status);
        })?;
        Ok(())
    }

    /// Tees this process's stdout and stderr (file descriptors 1 and 2, so output of C code and
    /// child processes counts too) into the run's log, `logs/<run_id>.log`, while they still
    /// reach the terminal; the log is the one the UI shows for the run. Opt-in: a run started
    /// by hand otherwise has an empty log (a job launched by `EXP run` has its output there
    /// already, and this is then a no-op).
    ///
    /// The capture lasts until [`stop_capture`](Self::stop_capture), until this handle is
    /// dropped, or until another experiment in this process starts capturing (the descriptors
    /// are the process's: one capture at a time). Stopping returns once everything written
    /// before it is in the log. `std::process::exit` skips destructors: stop the capture first.
    /// See the `capture` module documentation for how it works.
    ///
    /// ```no_run
    /// # fn main() -> expman::Result<()> {
    /// let mut exp = expman::Experiment::create("by_hand", "./train", "./experiments")?;
    /// exp.capture_output()?;
    /// println!("epoch 1: loss 0.5"); // on the terminal and in logs/run_0001.log
    /// exp.stop_capture()?;
    /// # Ok(()) }
    /// ```
    pub fn capture_output(&mut self) -> Result<()> {
        self.stop_capture()?;
        self.capture = crate::capture::start(&self.dir.run_log(self.run))?;
        Ok(())
    }

    /// Stops the capture started by [`capture_output`](Self::capture_output), once everything
    /// written before is in the log. A no-op without one (or when another experiment's
    /// capture has replaced it).
    pub fn stop_capture(&mut self) -> Result<()> {
        match self.capture.take() {
            Some(id) => crate::capture::stop(id),
            None => Ok(()),
        }
    }

    /// Whether this handle's output capture is the one running in this process.
    pub fn is_capturing(&self) -> bool {
        self.capture.is_some()
            && crate::capture::active_log().as_deref() == Some(self.dir.run_log(self.run).as_path())
    }

    /// Appends a timestamped line to `logs/experiment.log`.
    pub fn append_log(&self, message: &str) -> Result<()> {
        let path = self.dir.experiment_log();
        let now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f");
        let line = format!("{now} [{}] {message}\n", self.run);
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .at("append to", &path)
    }
}

/// [`read_table`], except that a table whose file does not exist (no row was ever saved to it:
/// writers create the file with the first row) reads as empty. The one rule every binding
/// gets through the C ABI.
fn read_or_empty(path: &Path) -> Result<Metrics> {
    match read_table(path) {
        Err(e)
            if e.io_error()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
        {
            Ok(Metrics::empty())
        }
        result => result,
    }
}
