//! The scheduler's TOML file: parsing, validation, and errors that point at file:line:column.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::config_slurm::{Located, RawSlurm, check_slurm, merge_slurm, reject_slurm_keys};
use super::sweep::{self, RawSweep, RawValue};
use super::template;
use crate::error::{Error, IoContext, Result, quote};
use crate::params::{ENV_PARAMS, Params};
use crate::store::{SlurmLaunch, validate_name};

/// Where the scheduler runs jobs (`[scheduler] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// On this machine, each job under a supervisor process (the default).
    #[default]
    Local,
    /// Submitted to Slurm with `sbatch`; Slurm picks the node and the GPUs.
    Slurm,
}

impl Backend {
    /// The name as written in the TOML file.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Slurm => "slurm",
        }
    }
}

/// A parsed and checked scheduler configuration.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The file it came from (absolute).
    pub path: PathBuf,
    /// Where experiment directories go (resolved against the config file's directory;
    /// absolute).
    pub base_dir: PathBuf,
    /// Where jobs run.
    pub backend: Backend,
    /// How many jobs run at once (with Slurm: how many are submitted and not yet ended).
    pub max_concurrent: usize,
    /// The GPU pool; `None` means "the GPUs NVML reports, else none".
    pub gpus: Option<Vec<u32>>,
    /// How often each job's supervisor samples its system metrics (`[scheduler]
    /// system_metrics_interval`, default every 10 s); `None` with `system_metrics = false`.
    pub system_metrics: Option<Duration>,
    /// The experiments, in file order.
    pub experiments: Vec<JobSpec>,
    /// The path as given, for messages (file:line:column as the user typed it).
    written: PathBuf,
    source: String,
}

/// One experiment to run: an `[[experiments]]` entry, or one point of its sweep.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Experiment name (directory prefix); for a sweep point, the entry's name and the point's
    /// values.
    pub name: String,
    /// Shell command (run with `sh -c`), with `{name}` references to `params` substituted.
    pub command: String,
    /// The parameters (`params`, and a sweep point's values), recorded in `config.json` and
    /// handed to the job as `EXPMAN_PARAMS` (also in `env`).
    pub params: Params,
    /// Higher runs first; ties keep file order.
    pub priority: i64,
    /// Explicit GPUs.
    pub gpu_ids: Vec<u32>,
    /// How many GPUs to take from the pool (when `gpu_ids` is empty).
    pub gpus: u32,
    /// Description for `config.json`.
    pub description: String,
    /// Tags for `config.json`.
    pub tags: Vec<String>,
    /// Start the next run in the newest existing directory of this name.
    pub resume: bool,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory (resolved against the config file's directory; absolute).
    pub cwd: Option<PathBuf>,
    /// Automatic retries after a failure.
    pub retries: u32,
    /// Kill the job after this long.
    pub timeout: Option<Duration>,
    /// The `sbatch` settings (the `[scheduler]` ones with this entry's overrides), with
    /// `backend = "slurm"`; `None` on the local backend.
    pub slurm: Option<SlurmLaunch>,
    /// The system metrics interval of `[scheduler]` (recorded in the job's launch settings);
    /// `None`: off.
    pub system_metrics: Option<Duration>,
    /// Position in the file (0-based, counting each sweep point), the tie-breaker for equal
    /// priorities.
    pub order: usize,
    gpu_ids_span: Option<Range<usize>>,
    gpus_span: Option<Range<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    scheduler: Option<RawScheduler>,
    #[serde(default)]
    experiments: Vec<Spanned<RawJob>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    base_dir: Option<String>,
    max_concurrent: Option<Spanned<i64>>,
    gpus: Option<Spanned<Vec<u32>>>,
    backend: Option<Spanned<String>>,
    system_metrics: Option<bool>,
    system_metrics_interval: Option<Spanned<String>>,
    partition: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    time: Option<Spanned<String>>,
    cpus_per_task: Option<Spanned<u32>>,
    mem: Option<Spanned<String>>,
    extra_sbatch_args: Option<Spanned<Vec<String>>>,
}

/// Moves the Slurm keys of a `RawScheduler` or `RawJob` into a [`RawSlurm`].
macro_rules! raw_slurm {
    ($raw:expr) => {
        RawSlurm {
            partition: $raw.partition.take(),
            account: $raw.account.take(),
            time: $raw.time.take(),
            cpus_per_task: $raw.cpus_per_task.take(),
            mem: $raw.mem.take(),
            extra_sbatch_args: $raw.extra_sbatch_args.take(),
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    command: Spanned<String>,
    #[serde(default)]
    priority: i64,
    gpu_ids: Option<Spanned<Vec<u32>>>,
    gpus: Option<Spanned<u32>>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    resume: bool,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, Spanned<String>>,
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    retries: u32,
    timeout: Option<Spanned<String>>,
    params: Option<Spanned<RawValue>>,
    sweep: Option<Spanned<RawSweep>>,
    partition: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    time: Option<Spanned<String>>,
    cpus_per_task: Option<Spanned<u32>>,
    mem: Option<Spanned<String>>,
    extra_sbatch_args: Option<Spanned<Vec<String>>>,
}

impl SchedulerConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<SchedulerConfig> {
        let bytes = std::fs::read(path).at("read the scheduler config", path)?;
        let source = String::from_utf8(bytes).map_err(|e| {
            // Where the bad byte is, counted like every other position in these messages.
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            let (line, column) = line_col(prefix, valid);
            Error::config(
                format!("{}:{line}:{column}", path.display()),
                format!(
                    "the file is not UTF-8 (byte 0x{:02x} here); save it as UTF-8",
                    bytes[valid]
                ),
            )
        })?;
        SchedulerConfig::parse(&source, path)
    }

    /// Parses and checks `source`, which came from `path` (used for messages and relative paths).
    pub fn parse(source: &str, path: &Path) -> Result<SchedulerConfig> {
        let at =
            |span: Option<Range<usize>>, message: String| error_at(path, source, span, message);
        let raw: RawFile = toml::from_str(source)
            .map_err(|e| at(e.span(), with_suggestion(e.message().trim())))?;
        // Paths in the file are relative to the file, and made absolute here: jobs run in
        // their own `cwd`, so a relative experiment directory handed to them (or written into
        // a state file) would point somewhere else there.
        let config_dir = crate::store::resolve_path(
            Path::new("."),
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        );
        let resolve = |p: &str| crate::store::resolve_path(&config_dir, Path::new(p));
        let mut scheduler = raw.scheduler.unwrap_or_default();
        let (backend, slurm_defaults) =
            check_scheduler(&mut scheduler).map_err(|(s, m)| at(s, m))?;
        let max_concurrent = check_max_concurrent(&scheduler).map_err(|(s, m)| at(s, m))?;
        let system_metrics = check_system_metrics(&scheduler).map_err(|(s, m)| at(s, m))?;
        if raw.experiments.is_empty() {
            return Err(at(
                None,
                "no [[experiments]] entries; add at least one with a name and a command".into(),
            ));
        }
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        let mut experiments: Vec<JobSpec> = Vec::new();
        for entry in raw.experiments {
            let job = entry.into_inner();
            let span = job.name.span();
            let swept = job.sweep.is_some();
            let specs = job_spec(
                experiments.len(),
                job,
                slurm_defaults.as_ref(),
                &resolve,
                source,
            )
            .map_err(|(s, m)| at(s, m))?;
            let total = experiments.len() + specs.len();
            if total as u64 > sweep::MAX_POINTS {
                return Err(at(
                    Some(span),
                    format!(
                        "with this entry the config makes {total} experiments, more than the {} \
                         one config may make; split it into several configs or sweep fewer \
                         values",
                        sweep::MAX_POINTS
                    ),
                ));
            }
            for spec in specs {
                if let Some(first) = seen.get(&spec.name) {
                    let (line, _) = line_col(source, first.start);
                    let what = if swept {
                        "a point of this sweep is named"
                    } else {
                        "duplicate experiment name"
                    };
                    return Err(at(
                        Some(span),
                        format!(
                            "{what} {:?} (first used on line {line}); names must be unique",
                            spec.name
                        ),
                    ));
                }
                seen.insert(spec.name.clone(), span.clone());
                experiments.push(JobSpec {
                    system_metrics,
                    ..spec
                });
            }
        }
        let config = SchedulerConfig {
            path: crate::store::resolve_path(Path::new("."), path),
            base_dir: resolve(scheduler.base_dir.as_deref().unwrap_or("experiments")),
            backend,
            max_concurrent,
            gpus: scheduler.gpus.map(Spanned::into_inner),
            system_metrics,
            experiments,
            written: path.to_path_buf(),
            source: source.to_string(),
        };
        if let Some(pool) = &config.gpus {
            config.check_pool(pool)?;
        }
        Ok(config)
    }

    /// Checks every experiment's GPUs against `pool`: explicit ids must be in it, and a count
    /// must fit in it.
    ///
    /// With Slurm there is no pool: Slurm assigns GPUs, and this checks nothing.
    pub fn check_pool(&self, pool: &[u32]) -> Result<()> {
        if self.backend == Backend::Slurm {
            return Ok(());
        }
        for job in &self.experiments {
            if let Some(bad) = job.gpu_ids.iter().find(|id| !pool.contains(id)) {
                return Err(error_at(
                    &self.written,
                    &self.source,
                    job.gpu_ids_span.clone(),
                    format!(
                        "experiment {:?} asks for GPU {bad}, which is not in the pool {pool:?}; \
                         use one of those ids or add it to [scheduler] gpus",
                        job.name
                    ),
                ));
            }
            if job.gpus as usize > pool.len() {
                return Err(error_at(
                    &self.written,
                    &self.source,
                    job.gpus_span.clone(),
                    format!(
                        "experiment {:?} asks for {} GPUs but the pool has {} ({pool:?}): ask \
                         for fewer, list this machine's GPUs in [scheduler] gpus (`EXP gpus` \
                         shows them; without NVML, describe them in a file named by \
                         EXPMAN_GPU_INVENTORY), or drop `gpus` to run without",
                        job.name,
                        job.gpus,
                        pool.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The experiments in launch order: priority high to low, ties in file order.
    pub fn in_priority_order(&self) -> Vec<&JobSpec> {
        let mut jobs: Vec<&JobSpec> = self.experiments.iter().collect();
        jobs.sort_by_key(|job| (std::cmp::Reverse(job.priority), job.order));
        jobs
    }
}

/// Checks `[scheduler]`: its backend, and with Slurm its default Slurm settings; takes its
/// Slurm keys out of `scheduler`.
fn check_scheduler(
    scheduler: &mut RawScheduler,
) -> std::result::Result<(Backend, Option<SlurmLaunch>), Located> {
    let backend = match &scheduler.backend {
        None => Backend::Local,
        Some(b) => match b.get_ref().as_str() {
            "local" => Backend::Local,
            "slurm" => Backend::Slurm,
            other => {
                return Err((
                    Some(b.span()),
                    format!(
                        "backend = {} is not a backend; use \"local\" (jobs run on \
                         this machine) or \"slurm\" (jobs are submitted with sbatch)",
                        quote(other)
                    ),
                ));
            }
        },
    };
    let scheduler_slurm = raw_slurm!(scheduler);
    let slurm_defaults = match backend {
        Backend::Local => {
            reject_slurm_keys(&scheduler_slurm, "[scheduler]")?;
            None
        }
        Backend::Slurm => {
            if let Some(pool) = &scheduler.gpus {
                return Err((
                    Some(pool.span()),
                    "[scheduler] gpus is the GPU pool of this machine, but with backend = \
                     \"slurm\" Slurm assigns the GPUs; remove it and give each experiment \
                     gpus = N"
                        .into(),
                ));
            }
            Some(check_slurm(scheduler_slurm)?.0)
        }
    };
    if let Some(pool) = &scheduler.gpus {
        check_unique(pool.get_ref()).map_err(|gpu| {
            (
                Some(pool.span()),
                format!(
                    "GPU {gpu} is listed twice in the pool gpus = {:?}; list each GPU once",
                    pool.get_ref()
                ),
            )
        })?;
    }
    Ok((backend, slurm_defaults))
}

/// `max_concurrent`: 1 by default, at least 1.
fn check_max_concurrent(scheduler: &RawScheduler) -> std::result::Result<usize, Located> {
    match &scheduler.max_concurrent {
        None => Ok(1),
        Some(n) if *n.get_ref() >= 1 => Ok(*n.get_ref() as usize),
        Some(n) => Err((
            Some(n.span()),
            format!(
                "max_concurrent = {} but at least one job must be able to run; use 1 or more",
                n.get_ref()
            ),
        )),
    }
}

/// `[scheduler] system_metrics` (default true) and `system_metrics_interval` (a duration,
/// default 10 s, at least 10 ms): the interval, or `None` when off.
fn check_system_metrics(
    scheduler: &RawScheduler,
) -> std::result::Result<Option<Duration>, Located> {
    let interval = match &scheduler.system_metrics_interval {
        None => crate::sysmetrics::DEFAULT_INTERVAL,
        Some(text) => {
            let interval = humantime::parse_duration(text.get_ref()).map_err(|e| {
                (
                    Some(text.span()),
                    format!(
                        "system_metrics_interval {} is not a duration ({e}); write e.g. \
                         \"10s\" or \"1m\"",
                        quote(text.get_ref())
                    ),
                )
            })?;
            if interval < crate::sysmetrics::MIN_INTERVAL {
                return Err((
                    Some(text.span()),
                    format!(
                        "system_metrics_interval {} is too short; sample at most every 10ms \
                         (or turn them off with system_metrics = false)",
                        quote(text.get_ref())
                    ),
                ));
            }
            interval
        }
    };
    Ok(scheduler.system_metrics.unwrap_or(true).then_some(interval))
}

/// Checks one `[[experiments]]` entry and expands its sweep: one spec, or one per point, their
/// `order` counting from `order` (names' uniqueness is checked by the caller).
fn job_spec(
    order: usize,
    mut job: RawJob,
    slurm_defaults: Option<&SlurmLaunch>,
    resolve: &dyn Fn(&str) -> PathBuf,
    source: &str,
) -> std::result::Result<Vec<JobSpec>, Located> {
    let job_slurm = raw_slurm!(job);
    let name = job.name.get_ref().clone();
    validate_name("experiment name", &name).map_err(|e| (Some(job.name.span()), e.to_string()))?;
    check_command(&name, &job.command)?;
    let slurm = check_job_gpus_and_slurm(&name, &job, job_slurm, slurm_defaults)?;
    let env = check_env(&name, job.env)?;
    let fixed = match &job.params {
        Some(raw) => sweep::fixed_params(&name, raw)?,
        None => Vec::new(),
    };
    let points = match &job.sweep {
        Some(spec) => sweep::expand(&name, spec, &fixed)?,
        None => vec![sweep::Point(Vec::new())],
    };
    // Commands of entries without parameters run as written (see template.rs).
    let templated = job.params.is_some() || job.sweep.is_some();
    let cwd = match job.cwd {
        None => None,
        Some(cwd) => Some(
            check_cwd(&name, cwd.get_ref(), &resolve(cwd.get_ref()))
                .map_err(|m| (Some(cwd.span()), m))?,
        ),
    };
    if let Some(ids) = &job.gpu_ids {
        check_unique(ids.get_ref()).map_err(|gpu| {
            (
                Some(ids.span()),
                format!(
                    "experiment {name:?} lists GPU {gpu} twice in gpu_ids = {:?}; list each \
                     GPU once",
                    ids.get_ref()
                ),
            )
        })?;
    }
    let timeout = match &job.timeout {
        None => None,
        Some(t) => Some(humantime::parse_duration(t.get_ref()).map_err(|e| {
            (
                Some(t.span()),
                format!(
                    "timeout {} is not a duration ({e}); write e.g. \"90s\", \"30m\" or \"2h\"",
                    quote(t.get_ref())
                ),
            )
        })?),
    };
    let base = JobSpec {
        command: job.command.get_ref().clone(),
        params: Params::new(),
        priority: job.priority,
        gpu_ids_span: job.gpu_ids.as_ref().map(|ids| ids.span()),
        gpu_ids: job.gpu_ids.map(Spanned::into_inner).unwrap_or_default(),
        gpus_span: job.gpus.as_ref().map(|n| n.span()),
        gpus: job.gpus.map(Spanned::into_inner).unwrap_or(0),
        description: job.description,
        tags: job.tags,
        resume: job.resume,
        env,
        cwd,
        retries: job.retries,
        timeout,
        slurm,
        // Set from [scheduler] by the caller.
        system_metrics: None,
        order,
        name,
    };
    let names = match &job.sweep {
        Some(_) => sweep::point_names(&base.name, &points),
        None => vec![base.name.clone()],
    };
    let mut specs = Vec::with_capacity(points.len());
    for (i, (point, point_name)) in points.iter().zip(names).enumerate() {
        let params = sweep::merged(&fixed, point);
        let command = if templated {
            template::substitute(&base.command, &params)
                .map_err(|(at, message)| (Some(command_span(source, &job.command, at)), message))?
        } else {
            base.command.clone()
        };
        sweep::check_point_name(&point_name)
            .map_err(|e| (job.sweep.as_ref().map(Spanned::span), e.to_string()))?;
        let mut env = base.env.clone();
        if !params.is_empty() {
            let json = serde_json::to_string(&params).map_err(|e| (None, e.to_string()))?;
            env.insert(ENV_PARAMS.to_string(), json);
        }
        specs.push(JobSpec {
            name: point_name,
            command,
            params,
            env,
            order: order + i,
            ..base.clone()
        });
    }
    Ok(specs)
}

/// Where byte `at` of the command's value is in the file: exact when the string is written
/// without escapes (the usual case), else the string's start.
fn command_span(source: &str, command: &Spanned<String>, at: usize) -> Range<usize> {
    let span = command.span();
    let raw = &source[span.clone()];
    let delimiter = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else {
        1
    };
    if raw.len() >= 2 * delimiter {
        let mut start = delimiter;
        let mut body = &raw[delimiter..raw.len() - delimiter];
        // A newline right after a multi-line string's opening delimiter is not part of it.
        if delimiter == 3 {
            for newline in ["\r\n", "\n"] {
                if let Some(rest) = body.strip_prefix(newline) {
                    body = rest;
                    start += newline.len();
                    break;
                }
            }
        }
        if body == command.get_ref() {
            let offset = span.start + start + at;
            return offset..offset + 1;
        }
    }
    span
}

/// A command must be something `sh -c` can be given.
fn check_command(name: &str, command: &Spanned<String>) -> std::result::Result<(), Located> {
    if command.get_ref().contains('\0') {
        return Err((
            Some(command.span()),
            format!(
                "experiment {name:?} has a NUL character in its command, which no \
                 program can be given; remove it"
            ),
        ));
    }
    if command.get_ref().trim().is_empty() {
        return Err((
            Some(command.span()),
            format!("experiment {name:?} has an empty command; give the shell command to run"),
        ));
    }
    Ok(())
}

/// Checks an experiment's GPUs (`gpu_ids` or `gpus`) and its Slurm keys against the backend
/// (`slurm_defaults` is `Some` with Slurm). Returns its Slurm settings.
fn check_job_gpus_and_slurm(
    name: &str,
    job: &RawJob,
    job_slurm: RawSlurm,
    slurm_defaults: Option<&SlurmLaunch>,
) -> std::result::Result<Option<SlurmLaunch>, Located> {
    if let (Some(ids), Some(count)) = (&job.gpu_ids, &job.gpus) {
        return Err((
            Some(count.span()),
            format!(
                "experiment {name:?} sets both gpu_ids = {:?} and gpus = {}; use one of them",
                ids.get_ref(),
                count.get_ref()
            ),
        ));
    }
    let slurm = match slurm_defaults {
        None => {
            reject_slurm_keys(&job_slurm, &format!("experiment {name:?}"))?;
            None
        }
        Some(defaults) => {
            if let Some(ids) = &job.gpu_ids {
                return Err((
                    Some(ids.span()),
                    format!(
                        "experiment {name:?} names GPUs of one machine (gpu_ids), but \
                         with backend = \"slurm\" Slurm picks them; write gpus = {} \
                         instead",
                        ids.get_ref().len()
                    ),
                ));
            }
            let (overrides, extra) = check_slurm(job_slurm)?;
            Some(merge_slurm(defaults, overrides, extra))
        }
    };
    Ok(slurm)
}

/// The first GPU id that `ids` lists twice, as the error.
fn check_unique(ids: &[u32]) -> std::result::Result<(), u32> {
    let mut seen = std::collections::HashSet::new();
    match ids.iter().find(|id| !seen.insert(**id)) {
        Some(&twice) => Err(twice),
        None => Ok(()),
    }
}

/// Checks an experiment's `env`: each name non-empty and without `=` or NUL (the environment
/// stores `NAME=value` as one C string), each value without NUL.
fn check_env(
    name: &str,
    env: BTreeMap<Spanned<String>, Spanned<String>>,
) -> std::result::Result<BTreeMap<String, String>, Located> {
    let mut checked = BTreeMap::new();
    for (key, value) in env {
        let problem = if key.get_ref().is_empty() {
            Some((key.span(), "an empty variable name"))
        } else if key.get_ref().contains('=') {
            Some((key.span(), "a variable name with '=' in it"))
        } else if key.get_ref().contains('\0') {
            Some((key.span(), "a variable name with a NUL character in it"))
        } else if value.get_ref().contains('\0') {
            Some((value.span(), "a value with a NUL character in it"))
        } else if key.get_ref() == ENV_PARAMS {
            return Err((
                Some(key.span()),
                format!(
                    "experiment {name:?} sets {ENV_PARAMS} in env, but the scheduler sets it \
                     from the experiment's parameters; write them as params = {{ lr = 0.01 }}"
                ),
            ));
        } else {
            None
        };
        if let Some((span, what)) = problem {
            return Err((
                Some(span),
                format!(
                    "experiment {name:?} sets {what} in env ({} = {}); the environment holds \
                     NAME=value pairs as C strings, so names need at least one character and no \
                     '=' or NUL, and values no NUL",
                    quote(key.get_ref()),
                    quote(value.get_ref())
                ),
            ));
        }
        checked.insert(key.into_inner(), value.into_inner());
    }
    Ok(checked)
}

/// Checks that an experiment's `cwd` (as written, and `resolved` against the config file's
/// directory) is a directory now, rather than failing every run of it later.
fn check_cwd(name: &str, written: &str, resolved: &Path) -> std::result::Result<PathBuf, String> {
    let problem = if written.contains('\0') {
        "has a NUL character in it".to_string()
    } else {
        match std::fs::metadata(resolved) {
            Ok(meta) if meta.is_dir() => return Ok(resolved.to_path_buf()),
            Ok(_) => format!("is not a directory ({})", resolved.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("does not exist ({})", resolved.display())
            }
            Err(e) => format!("cannot be used ({}: {e})", resolved.display()),
        }
    };
    Err(format!(
        "experiment {name:?}: cwd = {} {problem}; create it, or give the directory the job \
         should run in (relative paths are relative to this file)",
        quote(written)
    ))
}

fn error_at(path: &Path, source: &str, span: Option<Range<usize>>, message: String) -> Error {
    let origin = match span {
        Some(span) => {
            let (line, column) = line_col(source, span.start);
            format!("{}:{line}:{column}", path.display())
        }
        None => path.display().to_string(),
    };
    Error::config(origin, message)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Adds "did you mean ...?" to serde's unknown-field message when a known key is close.
fn with_suggestion(message: &str) -> String {
    let Some(unknown) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        // Edit distance is quadratic, and nothing that long is a typo of a key.
        .filter(|unknown| unknown.len() <= 64)
    else {
        return message.to_string();
    };
    // serde lists the keys it expected: "unknown field `x`, expected one of `a`, `b`".
    let expected = message.split('`').skip(3).step_by(2);
    let best = expected
        .map(|key| (strsim::damerau_levenshtein(unknown, key), key))
        .min();
    match best {
        Some((distance, key)) if distance <= 2 || (distance <= 3 && unknown.len() > 6) => {
            format!("{message}; did you mean `{key}`?")
        }
        _ => message.to_string(),
    }
}
