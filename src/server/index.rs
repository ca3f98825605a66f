//! The experiments index behind `GET /api/experiments`: one summary per experiment directory,
//! rebuilt only for directories whose files changed, with a version counter so clients fetch
//! only what changed since their last poll. This is what keeps 10,000 experiments responsive.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value as Json;

use super::tail::table_tail;
use crate::metrics::Value;
use crate::store::{Config, ExperimentDir, RunState, Status};

/// How many removals are remembered for incremental clients (older clients get a full list).
const REMOVALS_KEPT: usize = 10_000;
/// Rescans closer together than this reuse the last scan.
const RESCAN_AFTER: Duration = Duration::from_millis(500);

/// One experiment as the page's cards show it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Directory name inside the served directory.
    pub id: String,
    /// Experiment name.
    pub name: String,
    /// Current run.
    pub run_id: Option<String>,
    /// Effective state (a Running run whose process is gone shows as Error).
    pub status: RunState,
    /// Error text.
    pub error: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: String,
    /// GPUs held or asked for.
    pub gpus: Vec<u32>,
    /// Creation time.
    pub created_at: String,
    /// Start of the current run.
    pub started_at: Option<String>,
    /// End of the current run.
    pub finished_at: Option<String>,
    /// Run time in seconds (until now while running).
    pub elapsed_s: Option<f64>,
    /// The last row of the current run's table.
    pub latest: serde_json::Map<String, Json>,
    /// How many runs the experiment has had.
    pub runs: usize,
    /// The job's pid.
    pub pid: Option<u32>,
    /// Slurm job id, for Slurm runs.
    pub slurm_job_id: Option<String>,
    /// Node running the job.
    pub node: Option<String>,
}

/// What a directory's summary was built from; a change in any part rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    status: Option<(SystemTime, u64)>,
    table: Option<(SystemTime, u64)>,
}

struct Entry {
    summary: Summary,
    stamp: Stamp,
    changed_at: u64,
}

/// The index of one served directory.
pub struct Index {
    base: PathBuf,
    version: u64,
    entries: HashMap<String, Entry>,
    removals: Vec<(u64, String)>,
    scanned: Option<Instant>,
}

/// An answer to `GET /api/experiments`.
#[derive(Debug, Serialize)]
pub struct Listing<'a> {
    /// The index version the client should send next time.
    pub version: u64,
    /// Whether `experiments` is the full list.
    pub full: bool,
    /// New or changed experiments (all of them when `full`).
    pub experiments: Vec<&'a Summary>,
    /// Experiments gone since the client's version.
    pub removed: Vec<&'a str>,
}

impl Index {
    /// An empty index of `base`.
    pub fn new(base: &Path) -> Index {
        Index {
            base: base.to_path_buf(),
            version: 0,
            entries: HashMap::new(),
            removals: Vec::new(),
            scanned: None,
        }
    }

    /// Brings the index up to date with the disk (at most every half second).
    pub fn refresh(&mut self) {
        if self.scanned.is_some_and(|t| t.elapsed() < RESCAN_AFTER) {
            return;
        }
        self.scanned = Some(Instant::now());
        let Ok(dir) = std::fs::read_dir(&self.base) else {
            return;
        };
        let mut seen = std::collections::HashSet::new();
        for entry in dir.flatten() {
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let status_path = path.join("status.json");
            let status_stamp = stamp_of(&status_path);
            if status_stamp.is_none() && !path.join("config.json").is_file() {
                continue;
            }
            seen.insert(id.clone());
            let run = self.entries.get(&id).and_then(|e| e.summary.run_id.clone());
            let table_stamp =
                run.and_then(|r| stamp_of(&path.join("metrics").join(format!("{r}.csv"))));
            let stamp = Stamp {
                status: status_stamp,
                table: table_stamp,
            };
            let unchanged = self
                .entries
                .get(&id)
                .is_some_and(|e| e.stamp == stamp && !(e.summary.status == RunState::Running));
            if unchanged {
                continue;
            }
            let Some(mut summary) = summarize(&id, &path) else {
                continue;
            };
            // The table stamp may refer to an older run: record the current one's.
            let stamp = Stamp {
                status: stamp.status,
                table: summary
                    .run_id
                    .as_ref()
                    .and_then(|r| stamp_of(&path.join("metrics").join(format!("{r}.csv")))),
            };
            if let Some(old) = self.entries.get(&id)
                && old.stamp == stamp
                && same_card(&old.summary, &summary)
            {
                continue;
            }
            self.version += 1;
            if summary.status != RunState::Running {
                summary.elapsed_s = summary.elapsed_s.map(|s| (s * 10.0).round() / 10.0);
            }
            self.entries.insert(
                id,
                Entry {
                    summary,
                    stamp,
                    changed_at: self.version,
                },
            );
        }
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.entries.remove(&id);
            self.version += 1;
            self.removals.push((self.version, id));
        }
        if self.removals.len() > REMOVALS_KEPT {
            let excess = self.removals.len() - REMOVALS_KEPT;
            self.removals.drain(..excess);
        }
    }

    /// Forgets the last scan time, so the next `refresh` rescans (after an action).
    pub fn invalidate(&mut self) {
        self.scanned = None;
    }

    /// What changed since `since` (everything when `None` or too old).
    pub fn listing(&self, since: Option<u64>) -> Listing<'_> {
        let oldest_removal = self.removals.first().map_or(0, |(v, _)| *v);
        let full = match since {
            None => true,
            Some(v) => {
                v > self.version || (self.removals.len() >= REMOVALS_KEPT && v < oldest_removal)
            }
        };
        let since = if full { 0 } else { since.unwrap_or(0) };
        let mut experiments: Vec<&Summary> = self
            .entries
            .values()
            .filter(|e| e.changed_at > since)
            .map(|e| &e.summary)
            .collect();
        experiments.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        let removed = if full {
            Vec::new()
        } else {
            self.removals
                .iter()
                .filter(|(v, _)| *v > since)
                .map(|(_, id)| id.as_str())
                .collect()
        };
        Listing {
            version: self.version,
            full,
            experiments,
            removed,
        }
    }

    /// The cached summary of one experiment.
    pub fn get(&self, id: &str) -> Option<&Summary> {
        self.entries.get(id).map(|e| &e.summary)
    }
}

/// Whether two summaries would draw the same card (elapsed time ticks client-side).
fn same_card(a: &Summary, b: &Summary) -> bool {
    a.status == b.status
        && a.run_id == b.run_id
        && a.error == b.error
        && a.latest == b.latest
        && a.pid == b.pid
        && a.finished_at == b.finished_at
        && a.gpus == b.gpus
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Builds the summary of the experiment directory `path`.
pub fn summarize(id: &str, path: &Path) -> Option<Summary> {
    let dir = ExperimentDir::open(path).ok()?;
    let config = Config::load(&dir).unwrap_or_default();
    let status = Status::load(&dir).unwrap_or_default();
    let (state, error) = status.effective();
    let run_id = status.run_id.map(|r| r.to_string());
    let latest = run_id
        .as_ref()
        .and_then(|run| table_tail(&dir.table_path(run), 1).ok())
        .and_then(|tail| {
            let row = tail.rows.into_iter().last()?;
            let mut map = serde_json::Map::new();
            for (column, value) in tail.columns.into_iter().zip(row).skip(2) {
                if value != Value::Null {
                    map.insert(column, value_json(&value));
                }
            }
            Some(map)
        })
        .unwrap_or_default();
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let elapsed_s = match (parse(&status.started_at), parse(&status.finished_at)) {
        (Some(start), Some(end)) => Some((end - start).as_seconds_f64()),
        (Some(start), None) if state == RunState::Running => {
            Some((chrono::Local::now().fixed_offset() - start).as_seconds_f64())
        }
        _ => None,
    };
    let gpus = if status.gpus.is_empty() {
        config.gpu_ids.clone()
    } else {
        status.gpus.clone()
    };
    Some(Summary {
        id: id.to_string(),
        name: config.name,
        runs: status.history.len() + usize::from(status.run_id.is_some()),
        run_id,
        status: state,
        error,
        tags: config.tags,
        description: config.description,
        gpus,
        created_at: config.created_at,
        started_at: status.started_at,
        finished_at: status.finished_at,
        elapsed_s,
        latest,
        pid: status.pid,
        slurm_job_id: None,
        node: None,
    })
}

/// A cell as JSON: numbers as numbers, non-finite floats as the strings pandas writes.
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) if f.is_finite() => Json::from(*f),
        Value::Float(f) => Json::String(value_text(*f)),
        Value::Str(s) => Json::String(s.clone()),
    }
}

fn value_text(f: f64) -> String {
    let mut out = Vec::new();
    crate::metrics::Value::Float(f).write_csv(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}
