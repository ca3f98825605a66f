//! The `Experiment`: the seed framework's API (create, `upd_row`/`save_row`, status, logs) over
//! the directory layout, run-id allocation and metrics tables.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::metrics::{Metrics, SyncPolicy, TableWriter, Value, read_table};
use crate::params::{self, ENV_PARAMS, ParamValue, Params};
use crate::run_id::{self, RunId};
use crate::store::{
    Config, ExperimentDir, Launch, LockFile, ProcessId, RunLaunch, RunState, Status, validate_name,
};
use crate::sysmetrics::{SystemMetrics, SystemSampler};

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
    params_from_env: bool,
    /// Parameters given to [`params`](Self::params), validated by `create`.
    params: Vec<(String, ParamValue)>,
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
    /// Hyperparameters to record (see [`crate::params`]): `config.json` `"params"` and the
    /// first run's own record in `status.json`. Names are flattened names (`optimizer.lr`);
    /// values anything that converts into a [`ParamValue`] (integers, floats, booleans, text).
    /// An already built [`Params`] map works as it is. Calls add up; a later value of the same
    /// name wins. `create` refuses a bad name or a non-finite float, naming the parameter,
    /// before it writes anything.
    ///
    /// These explicit values win over `EXPMAN_PARAMS` (see
    /// [`params_from_env`](Self::params_from_env)); when `create` attaches to a scheduler's run
    /// they are logged into it as [`Experiment::log_params`] does.
    ///
    /// ```no_run
    /// # fn main() -> expman::Result<()> {
    /// let exp = expman::Experiment::builder("resnet", "./experiments")
    ///     .params([("lr", 0.01), ("momentum", 0.9)])
    ///     .params([("depth", 18)])
    ///     .params([("optimizer.name", "sgd")])
    ///     .create()?;
    /// assert_eq!(exp.params()["depth"], expman::params::ParamValue::Int(18));
    /// # Ok(()) }
    /// ```
    pub fn params<I, K, V>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<ParamValue>,
    {
        self.params
            .extend(params.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }
    /// Whether `create` records the parameters in the `EXPMAN_PARAMS` environment variable (a
    /// JSON object; the scheduler sets it for its jobs) by itself (default true).
    ///
    /// A new experiment records `EXPMAN_PARAMS` overridden by the explicit
    /// [`params`](Self::params). When attaching to a scheduler's run, a parameter of
    /// `EXPMAN_PARAMS` is added to `config.json` and to the run's record only where the name is
    /// missing there: what the scheduler recorded stays. Text that is not a JSON object of
    /// names to numbers, booleans or strings fails `create` with a
    /// [`Config`](crate::ErrorKind::Config) error naming the variable.
    pub fn params_from_env(mut self, from_env: bool) -> Self {
        self.params_from_env = from_env;
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
    ///
    /// Parameters (see [`params`](Self::params) and
    /// [`params_from_env`](Self::params_from_env)) are checked before anything is written.
    pub fn create(mut self) -> Result<Experiment> {
        let explicit = checked_params(std::mem::take(&mut self.params))?;
        let from_env = if self.params_from_env {
            env_params()?
        } else {
            Params::new()
        };
        if self.attach_from_env
            && let (Some(dir), Some(run)) = (
                std::env::var_os(ENV_EXPERIMENT_DIR),
                std::env::var_os(ENV_RUN_ID),
            )
        {
            let mut exp = Experiment::attach_from_env(PathBuf::from(dir), &run)?;
            exp.set_sync(self.sync);
            // What the scheduler recorded stays; the environment only fills gaps.
            exp.merge_params(from_env, false)?;
            exp.merge_params(explicit, true)?;
            return Ok(exp);
        }
        let mut params = from_env;
        params.extend(explicit);
        self.params = params.into_iter().collect();
        let dir = ExperimentDir::create(&self.base_dir, &self.name, chrono::Local::now())?;
        self.fill(dir)
    }

    /// Creates the experiment at exactly `root` (which must not exist), as Pending or Running
    /// as set: the scheduler stages its queue's experiments this way before moving them into
    /// place. Never attaches.
    ///
    /// Records the explicit [`params`](Self::params) only: the scheduler's own environment
    /// is no job's.
    #[cfg(feature = "scheduler")]
    pub(crate) fn create_at(mut self, root: &Path) -> Result<Experiment> {
        validate_name("experiment name", &self.name)?;
        self.params = checked_params(std::mem::take(&mut self.params))?
            .into_iter()
            .collect();
        let dir = ExperimentDir::create_at(root)?;
        self.fill(dir)
    }

    /// Gives the freshly claimed `dir` its first run and then its `config.json`; on failure
    /// removes `dir`, which nobody else can have opened (it has no `config.json`).
    ///
    /// `self.params` are checked already. They go into `config.json` and into the first run's
    /// record in `status.json`, so the run keeps its values when a later run changes them.
    fn fill(mut self, dir: ExperimentDir) -> Result<Experiment> {
        let params: Params = self.params.into_iter().collect();
        if self.launch.cwd.is_none() {
            // Where the command ran (`python train.py` from a shell, or the scheduler's own
            // directory for a job without `cwd`): a retry, from the UI's server or any other
            // directory, must run it there too.
            self.launch.cwd = std::env::current_dir()
                .ok()
                .map(|dir| dir.to_string_lossy().into_owned());
        }
        let config = Config {
            name: self.name,
            command: self.command,
            tags: self.tags,
            description: self.description,
            gpu_ids: self.gpu_ids,
            priority: self.priority,
            launch: self.launch,
            params: params.clone(),
            ..Config::default()
        };
        let result =
            Experiment::start_run_with(dir.clone(), config, self.state, self.sync, None, params)
                .and_then(|exp| exp.config.save(&dir).map(|()| exp));
        if result.is_err() {
            dir.discard();
        }
        result
    }
}

/// Checks every parameter with [`params::validate`] (an error names it) and collects them; a
/// later value of the same name wins.
fn checked_params(params: impl IntoIterator<Item = (String, ParamValue)>) -> Result<Params> {
    let mut checked = Params::new();
    for (name, value) in params {
        params::validate(&name, &value)?;
        checked.insert(name, value);
    }
    Ok(checked)
}

/// Keeps every run but `except` at the values it ran with while `config.json`'s parameters
/// change from `before` to `after`: a changed name's old value becomes the own value of each
/// run that has none for it (a run's effective parameters are config.json's overridden by its
/// own). A name config.json did not have before pins nothing.
fn pin_changed(status: &mut Status, except: Option<RunId>, before: &Params, after: &Params) {
    let changed: Vec<(&String, &ParamValue)> = before
        .iter()
        .filter(|(name, value)| after.get(*name) != Some(*value))
        .collect();
    if changed.is_empty() {
        return;
    }
    let current = std::iter::once((status.run_id, &mut status.params));
    let earlier = status.history.iter_mut().map(|h| (h.run_id, &mut h.params));
    for (run, record) in current.chain(earlier) {
        if run.is_none() || run == except {
            continue;
        }
        for (name, value) in &changed {
            if !record.contains_key(*name) {
                record.insert((*name).clone(), (*value).clone());
            }
        }
    }
}

/// The parameters `run` recorded as its own in `status`, current run or history.
fn own_params(status: &Status, run: RunId) -> Params {
    if status.run_id == Some(run) {
        return status.params.clone();
    }
    status
        .history
        .iter()
        .find(|h| h.run_id == Some(run))
        .map(|h| h.params.clone())
        .unwrap_or_default()
}

/// The parameters of `EXPMAN_PARAMS` (none when it is unset), with every error naming the
/// variable.
fn env_params() -> Result<Params> {
    let Some(text) = std::env::var_os(ENV_PARAMS) else {
        return Ok(Params::new());
    };
    let Some(text) = text.to_str() else {
        return Err(Error::config(
            ENV_PARAMS,
            "is not valid UTF-8; set it to a JSON object of parameters, such as {\"lr\": 0.01}",
        ));
    };
    params::parse_env(text).map_err(|e| match e.kind() {
        ErrorKind::Config { .. } => e,
        _ => Error::config(
            ENV_PARAMS,
            format!(
                "{e}; set it to a JSON object of names to numbers, booleans or strings, such \
                 as {{\"lr\": 0.01, \"optimizer\": {{\"name\": \"adam\"}}}}, or unset it"
            ),
        ),
    })
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
    /// The run's effective parameters: `config.json`'s, overridden by the run's own record.
    params: Params,
    /// The system metrics sampler this handle started (see
    /// [`Experiment::start_system_metrics`]).
    system: Option<SystemSampler>,
}

impl Drop for Experiment {
    /// Stops this handle's system metrics sampler and output capture, so everything printed
    /// before is in the log.
    fn drop(&mut self) {
        self.stop_system_metrics();
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
            params_from_env: true,
            params: Vec::new(),
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
        let dir = ExperimentDir::open(&dir).map_err(|_| {
            Error::config(
                ENV_EXPERIMENT_DIR,
                format!(
                    "{} is not an expman experiment directory (it has no config.json); `EXP \
                     run` sets {ENV_EXPERIMENT_DIR} and {ENV_RUN_ID} for the jobs it launches: \
                     unset both to create a new experiment instead",
                    dir.display()
                ),
            )
        })?;
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
        crate::store::open_log(&log)?;
        // The run may have recorded parameters of its own (the scheduler's, for its job).
        let own = own_params(&Status::load(&dir)?, run);
        let mut exp = Experiment::new(dir, config, run, SyncPolicy::default());
        exp.params.extend(own);
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
        Experiment::start_run_with(dir, config, state, sync, None, Params::new())
    }

    /// [`Experiment::start_run`] with the launch of the new run given (`None`: as above) and
    /// the parameters recorded as the new run's own (`status.json` `params`).
    fn start_run_with(
        dir: ExperimentDir,
        config: Config,
        state: RunState,
        sync: SyncPolicy,
        launch: Option<RunLaunch>,
        run_params: Params,
    ) -> Result<Experiment> {
        let run = run_id::allocate_and(&dir, |lock, run| {
            Status::update_locked(&dir, lock, |status| {
                let previous = status.launch.clone();
                status.begin_run(run, state);
                status.params = run_params;
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
    ///
    /// Parameters: `update`'s are merged over the recorded ones (a parameter the file does not
    /// name keeps its value, logged ones included), checked first, and recorded as the new
    /// run's own, so the earlier runs keep theirs in `status.json`'s history. The
    /// read-modify-write of `config.json` holds the experiment lock, as `log_params` does.
    #[cfg(feature = "scheduler")]
    pub(crate) fn resume_pending(dir: impl Into<PathBuf>, update: Config) -> Result<Experiment> {
        let dir = ExperimentDir::open(dir)?;
        let run_params = checked_params(update.params.clone())?;
        let config = {
            let lock = LockFile::acquire(&dir.lock_path())?;
            let old = Config::load(&dir)?;
            let mut params = old.params.clone();
            params.extend(run_params.clone());
            let config = Config {
                name: old.name.clone(),
                created_at: old.created_at.clone(),
                host: old.host.clone(),
                expman_version: old.expman_version.clone(),
                params,
                ..update
            };
            if config.params != old.params {
                Status::update_locked(&dir, &lock, |status| {
                    pin_changed(status, None, &old.params, &config.params);
                })?;
            }
            if config != old {
                config.save(&dir)?;
            }
            config
        };
        let launch = RunLaunch::from_config(&config);
        Experiment::start_run_with(
            dir,
            config,
            RunState::Pending,
            SyncPolicy::default(),
            Some(launch),
            run_params,
        )
    }

    fn new(dir: ExperimentDir, config: Config, run: RunId, sync: SyncPolicy) -> Experiment {
        let run_text = run.to_string();
        Experiment {
            params: config.params.clone(),
            metrics: TableWriter::new(dir.table_path(&run_text), &run_text, sync),
            dir,
            config,
            run,
            tables: HashMap::new(),
            sync,
            attached: false,
            capture: None,
            system: None,
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
    /// `config.json` as this handle last read or wrote it (at creation, opening, attaching
    /// and [`log_params`](Self::log_params)).
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The run's effective parameters: `config.json`'s `"params"` overridden by what this run
    /// recorded as its own (`status.json`), as of this handle's last read or
    /// [`log_params`](Self::log_params).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Records hyperparameters: merged into `config.json` `"params"` (other names keep their
    /// values, whoever recorded them) and into this run's own record in `status.json`
    /// (`params` of the current run, kept in `history` once later runs start), so a run that
    /// changes a parameter keeps its value after the next run changes it again. Other runs
    /// keep theirs too: a run with no value of its own for a changed name (a retry, a run
    /// opened without logging it) gets the old value recorded as its own.
    ///
    /// Every name and value is checked first (a name with an empty dotted part or a control
    /// character, a non-finite float): an error names the parameter and nothing is written.
    /// Both files are rewritten atomically (temporary file, fsync, rename) under the
    /// experiment's lock, so concurrent writers (the scheduler, another process attached to
    /// the run) never lose each other's parameters. Input as for
    /// [`ExperimentBuilder::params`].
    ///
    /// ```no_run
    /// # fn main() -> expman::Result<()> {
    /// let mut exp = expman::Experiment::create("sweep", "./train", "./experiments")?;
    /// exp.log_params([("lr", 0.01)])?;
    /// exp.log_params([("optimizer.name", "adam")])?;
    /// exp.log_params([("epochs", 90), ("batch_size", 256)])?;
    /// # Ok(()) }
    /// ```
    pub fn log_params<I, K, V>(&mut self, params: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<ParamValue>,
    {
        let params = checked_params(params.into_iter().map(|(k, v)| (k.into(), v.into())))?;
        self.merge_params(params, true)
    }

    /// Merges checked `params` into `config.json` and this run's record under the experiment
    /// lock; `overwrite` false adds only names missing there (the environment's parameters
    /// when attaching to the scheduler's run).
    fn merge_params(&mut self, params: Params, overwrite: bool) -> Result<()> {
        if params.is_empty() {
            return Ok(());
        }
        let merge = |into: &mut Params| {
            for (name, value) in &params {
                if overwrite || !into.contains_key(name) {
                    into.insert(name.clone(), value.clone());
                }
            }
        };
        let run = self.run;
        let lock = LockFile::acquire(&self.dir.lock_path())?;
        let mut config = Config::load(&self.dir)?;
        let before = config.params.clone();
        merge(&mut config.params);
        let mut own = Params::new();
        // status.json first: should config.json's rewrite never happen (a crash), the values
        // pinned on the other runs are still config.json's, so nothing changes.
        Status::update_locked(&self.dir, &lock, |status| {
            pin_changed(status, Some(run), &before, &config.params);
            let record = if status.run_id == Some(run) {
                &mut status.params
            } else if let Some(i) = status.history.iter().position(|h| h.run_id == Some(run)) {
                &mut status.history[i].params
            } else {
                // status.json lost this run (deleted by hand): record it again, as the status
                // setters do.
                status.begin_run(run, RunState::Pending);
                &mut status.params
            };
            merge(record);
            own = record.clone();
        })?;
        if config.params != before {
            config.save(&self.dir)?;
        }
        drop(lock);
        self.params = config.params.clone();
        self.params.extend(own);
        self.config = config;
        Ok(())
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
        if pid == 0 {
            // C's default for "I don't know": it names no process, so the run would read as
            // Error at once.
            return Err(crate::ErrorKind::InvalidValue {
                field: "pid".into(),
                reason: "0 is no process; pass the pid of the process that does the run (this \
                         one's: getpid(), os.getpid())"
                    .into(),
            }
            .into());
        }
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
        Status::update(&self.dir, |status| match status.run_id {
            // A later run has started since (another process opened one): this run is in
            // the history now, and only its record there changes. Making it current again
            // would push the later run into the history and leave both wrong.
            Some(current) if current > run => status.change_past_run(run, change),
            Some(current) if current == run => change(status),
            _ => {
                status.begin_run(run, RunState::Pending);
                change(status);
            }
        })?;
        Ok(())
    }

    /// The state of this handle's run: the current run's as [`Status::effective`] reads it,
    /// or, once a later run has started, the one its history records.
    pub fn run_state(&self) -> Result<RunState> {
        let status = self.status()?;
        Ok(match status.run_id {
            Some(current) if current == self.run => status.effective().0,
            _ => status
                .history
                .iter()
                .rev()
                .find(|r| r.run_id == Some(self.run))
                .map_or(RunState::Pending, |r| r.status),
        })
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

    /// Samples this process and its descendants (CPU, memory, I/O) and the GPUs named by
    /// `CUDA_VISIBLE_DEVICES` every `interval` into the run's `system` table
    /// (`metrics/system.csv`), on a background thread; the first row is written at once. See
    /// [`crate::sysmetrics`] for the columns. Opt-in for Rust programs (the Python binding
    /// starts it for every experiment it creates; a job of `EXP run` is sampled by its
    /// supervisor). Starting again restarts with the new interval.
    ///
    /// The sampler runs until [`stop_system_metrics`](Self::stop_system_metrics) or until
    /// this handle is dropped; stopping is prompt. Its failures are reported once into the
    /// run's log and never reach the caller. Errors: an interval below
    /// [`MIN_INTERVAL`](crate::sysmetrics::MIN_INTERVAL), or a thread that cannot start.
    ///
    /// ```no_run
    /// # fn main() -> expman::Result<()> {
    /// let mut exp = expman::Experiment::create("by_hand", "./train", "./experiments")?;
    /// exp.start_system_metrics(expman::sysmetrics::DEFAULT_INTERVAL)?;
    /// // ... train: metrics/system.csv gets a row every 10 s ...
    /// exp.stop_system_metrics();
    /// # Ok(()) }
    /// ```
    pub fn start_system_metrics(&mut self, interval: Duration) -> Result<()> {
        self.stop_system_metrics();
        let sampler = SystemMetrics::new(std::process::id(), &self.dir, self.run)
            .interval(interval)
            .start()?;
        self.system = Some(sampler);
        Ok(())
    }

    /// Stops the sampler started by [`start_system_metrics`](Self::start_system_metrics) and
    /// waits for its thread (woken at once, not waited out). A no-op without one.
    pub fn stop_system_metrics(&mut self) {
        if let Some(sampler) = self.system.take() {
            sampler.stop();
        }
    }

    /// Whether this handle's system metrics sampler is running.
    pub fn is_sampling_system(&self) -> bool {
        self.system.as_ref().is_some_and(SystemSampler::is_running)
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
