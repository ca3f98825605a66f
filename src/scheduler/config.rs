//! The scheduler's TOML file: parsing, validation, and errors that point at file:line:column.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, IoContext, Result};
use crate::store::validate_name;

/// A parsed and checked scheduler configuration.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Where experiment directories go (resolved against the config file's directory).
    pub base_dir: PathBuf,
    /// How many jobs run at once.
    pub max_concurrent: usize,
    /// The GPU pool; `None` means "the GPUs NVML reports, else none".
    pub gpus: Option<Vec<u32>>,
    /// The experiments, in file order.
    pub experiments: Vec<JobSpec>,
    source: String,
}

/// One `[[experiments]]` entry.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Experiment name (directory prefix).
    pub name: String,
    /// Shell command (run with `sh -c`).
    pub command: String,
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
    /// Working directory (resolved against the config file's directory).
    pub cwd: Option<PathBuf>,
    /// Automatic retries after a failure.
    pub retries: u32,
    /// Kill the job after this long.
    pub timeout: Option<Duration>,
    /// Position of the entry in the file (0-based), the tie-breaker for equal priorities.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    base_dir: Option<String>,
    max_concurrent: Option<Spanned<i64>>,
    gpus: Option<Vec<u32>>,
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
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    #[serde(default)]
    retries: u32,
    timeout: Option<Spanned<String>>,
}

impl SchedulerConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<SchedulerConfig> {
        let source = std::fs::read_to_string(path).at("read the scheduler config", path)?;
        SchedulerConfig::parse(&source, path)
    }

    /// Parses and checks `source`, which came from `path` (used for messages and relative paths).
    pub fn parse(source: &str, path: &Path) -> Result<SchedulerConfig> {
        let at =
            |span: Option<Range<usize>>, message: String| error_at(path, source, span, message);
        let raw: RawFile = toml::from_str(source)
            .map_err(|e| at(e.span(), with_suggestion(e.message().trim())))?;
        let config_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                config_dir.join(p)
            }
        };
        let scheduler = raw.scheduler.unwrap_or(RawScheduler {
            base_dir: None,
            max_concurrent: None,
            gpus: None,
        });
        let max_concurrent = match scheduler.max_concurrent {
            None => 1,
            Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
            Some(n) => {
                return Err(at(
                    Some(n.span()),
                    format!(
                        "max_concurrent = {} but at least one job must be able to run; use 1 or more",
                        n.get_ref()
                    ),
                ));
            }
        };
        if raw.experiments.is_empty() {
            return Err(at(
                None,
                "no [[experiments]] entries; add at least one with a name and a command".into(),
            ));
        }
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        let mut experiments = Vec::new();
        for (order, entry) in raw.experiments.into_iter().enumerate() {
            let job = entry.into_inner();
            let name = job.name.get_ref().clone();
            validate_name("experiment name", &name)
                .map_err(|e| at(Some(job.name.span()), e.to_string()))?;
            if let Some(first) = seen.get(&name) {
                let (line, _) = line_col(source, first.start);
                return Err(at(
                    Some(job.name.span()),
                    format!(
                        "duplicate experiment name {name:?} (first used on line {line}); names must be unique"
                    ),
                ));
            }
            seen.insert(name.clone(), job.name.span());
            if job.command.get_ref().trim().is_empty() {
                return Err(at(
                    Some(job.command.span()),
                    format!(
                        "experiment {name:?} has an empty command; give the shell command to run"
                    ),
                ));
            }
            if let (Some(ids), Some(count)) = (&job.gpu_ids, &job.gpus) {
                return Err(at(
                    Some(count.span()),
                    format!(
                        "experiment {name:?} sets both gpu_ids = {:?} and gpus = {}; use one of them",
                        ids.get_ref(),
                        count.get_ref()
                    ),
                ));
            }
            let timeout = match &job.timeout {
                None => None,
                Some(t) => Some(humantime::parse_duration(t.get_ref()).map_err(|e| {
                    at(
                        Some(t.span()),
                        format!("timeout {:?} is not a duration ({e}); write e.g. \"90s\", \"30m\" or \"2h\"", t.get_ref()),
                    )
                })?),
            };
            experiments.push(JobSpec {
                command: job.command.into_inner(),
                priority: job.priority,
                gpu_ids_span: job.gpu_ids.as_ref().map(|ids| ids.span()),
                gpu_ids: job.gpu_ids.map(Spanned::into_inner).unwrap_or_default(),
                gpus_span: job.gpus.as_ref().map(|n| n.span()),
                gpus: job.gpus.map(Spanned::into_inner).unwrap_or(0),
                description: job.description,
                tags: job.tags,
                resume: job.resume,
                env: job.env,
                cwd: job.cwd.as_deref().map(resolve),
                retries: job.retries,
                timeout,
                order,
                name,
            });
        }
        let config = SchedulerConfig {
            path: path.to_path_buf(),
            base_dir: resolve(scheduler.base_dir.as_deref().unwrap_or("experiments")),
            max_concurrent,
            gpus: scheduler.gpus,
            experiments,
            source: source.to_string(),
        };
        if let Some(pool) = &config.gpus {
            config.check_pool(pool)?;
        }
        Ok(config)
    }

    /// Checks every experiment's GPUs against `pool`: explicit ids must be in it, and a count
    /// must fit in it.
    pub fn check_pool(&self, pool: &[u32]) -> Result<()> {
        for job in &self.experiments {
            if let Some(bad) = job.gpu_ids.iter().find(|id| !pool.contains(id)) {
                return Err(error_at(
                    &self.path,
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
                    &self.path,
                    &self.source,
                    job.gpus_span.clone(),
                    format!(
                        "experiment {:?} asks for {} GPUs but the pool has {} ({pool:?})",
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
