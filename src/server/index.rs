//! The experiments index behind `GET /api/experiments`: one summary per experiment directory,
//! rebuilt only for directories whose files changed, with a version counter so clients fetch
//! only what changed since their last poll, and kept pre-serialized so a request is a copy.
//! This is what keeps 10,000 experiments responsive.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value as Json;

use super::confine;
use super::exception;
use super::tail::table_tail;
use crate::catalog::state::stamp_of;
use crate::catalog::{Entry, ExperimentRecord, field_catalog};
use crate::metrics::Value;
use crate::query::{Query, QueryError};
use crate::store::{RunState, Status};

/// How many removals are remembered for incremental clients (older clients get a full list).
const REMOVALS_KEPT: usize = 10_000;
/// How often the refresher rescans when nobody pokes it.
const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// How long after a run ended in Error its log is still watched for the exception line: a
/// process that copies its own output to its log (the Python binding's capture) may write the
/// traceback's last lines after it recorded its end. Past this, a log is not even stat'ed.
const LOG_SETTLE: Duration = Duration::from_secs(60);

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
    /// For a run in Error: the last exception line in the end of its log (the last line of a
    /// Python traceback, a Rust panic, ...), if there is one.
    pub exception: Option<String>,
    /// Why the current run's table cannot be read now (a row damaged by another program), if
    /// it cannot: `metrics` then holds what was read of it before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: String,
    /// The command that runs the experiment.
    pub command: String,
    /// The host that created it.
    pub host: String,
    /// Effective parameters of the latest run (see [`crate::catalog::run_params`]).
    pub params: crate::params::Params,
    /// Summaries of the latest run's metric columns (non-finite numbers as text).
    pub metrics: crate::catalog::json::Metrics,
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

/// What a directory's summary was built from; a change in any part rebuilds it (a row added to
/// a finished run, say by a later evaluation, updates its card too).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    status: Option<(SystemTime, u64)>,
    config: Option<(SystemTime, u64)>,
    table: Option<(SystemTime, u64)>,
    /// The run's log, watched only for [`LOG_SETTLE`] after a run ended in Error.
    log: Option<(SystemTime, u64)>,
}

/// What requests read: every summary already serialized, numbered by the version it changed in.
#[derive(Default)]
struct Published {
    version: u64,
    entries: HashMap<String, Published1>,
    removals: Vec<(u64, String)>,
    scanned: bool,
    /// The parameters and metric columns of the published records, built on first use after a
    /// change (a query checks its names against them; building it visits every record).
    fields: Option<crate::query::Catalog>,
    /// The version `fields` was built at.
    fields_version: u64,
}

impl Published {
    fn fields(&mut self) -> &crate::query::Catalog {
        let entries = &self.entries;
        self.fields
            .get_or_insert_with(|| field_catalog(entries.values().map(|e| &e.record)))
    }
}

struct Published1 {
    json: Vec<u8>,
    created_at: String,
    changed_at: u64,
    /// What queries read.
    record: ExperimentRecord,
}

/// What the scanner remembers between scans (owned by the refresher, outside any lock): per
/// directory its stamp, the catalog entry (state files, incremental table summary, record) and
/// the summary last published.
#[derive(Default)]
pub struct Scanner {
    known: HashMap<String, Known>,
    /// Directories known before that this scan found no experiment in (any more).
    dropped: Vec<String>,
}

struct Known {
    stamp: Stamp,
    entry: Entry,
    summary: Summary,
}

/// The index of one served directory, shared by the request threads and one refresher thread
/// that rescans the disk every second (or at once when poked after an action). Requests never
/// wait for disk scans: they copy out pre-serialized summaries.
pub struct Index {
    base: PathBuf,
    published: Mutex<Published>,
    scanned: Condvar,
    wake: Mutex<bool>,
    woken: Condvar,
}

impl Index {
    /// An empty index of `base`; call [`Index::scan`] (or run [`Index::refresher`]) to fill it.
    pub fn new(base: &Path) -> Index {
        Index {
            base: base.to_path_buf(),
            published: Mutex::new(Published::default()),
            scanned: Condvar::new(),
            wake: Mutex::new(false),
            woken: Condvar::new(),
        }
    }

    /// Rescans the disk every second until `stop` is set; [`Index::poke`] rescans at once.
    pub fn refresher(&self, stop: &AtomicBool) {
        let mut scanner = Scanner::default();
        while !stop.load(Ordering::SeqCst) {
            self.scan(&mut scanner);
            let mut woken = self.wake.lock().unwrap_or_else(|p| p.into_inner());
            if !*woken {
                woken = self
                    .woken
                    .wait_timeout(woken, RESCAN_EVERY)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            *woken = false;
        }
    }

    /// Asks the refresher to rescan now (after an action changed something).
    pub fn poke(&self) {
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.woken.notify_all();
    }

    /// Scans the served directory once and publishes what changed.
    pub fn scan(&self, scanner: &mut Scanner) {
        let mut changed: Vec<(Summary, ExperimentRecord)> = Vec::new();
        let mut seen = HashSet::new();
        if let Ok(dir) = std::fs::read_dir(&self.base) {
            for entry in dir.flatten() {
                let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if id.starts_with('.') {
                    continue;
                }
                match scanner.visit(&self.base, &id, &entry.path()) {
                    Visit::Listed => {}
                    Visit::Changed(both) => changed.push(*both),
                    Visit::NotListed => continue,
                }
                seen.insert(id);
            }
        }
        let gone = scanner.forget_unseen(&seen);
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        published.publish(changed, gone);
        self.scanned.notify_all();
    }

    /// The JSON answer to `GET /api/experiments?since=`: what changed since `since` (everything
    /// when `None`, too old, or from another server), newest experiments first. Waits for the
    /// first scan.
    pub fn listing(&self, since: Option<u64>, base_dir: &str, scheduler_running: bool) -> Vec<u8> {
        let published = self.wait_scanned();
        let oldest_removal = published.removals.first().map_or(0, |(v, _)| *v);
        let full = match since {
            None => true,
            Some(v) => {
                v > published.version
                    || (published.removals.len() >= REMOVALS_KEPT && v < oldest_removal)
            }
        };
        let since = if full { 0 } else { since.unwrap_or(0) };
        let mut entries: Vec<&Published1> = published
            .entries
            .values()
            .filter(|e| e.changed_at > since)
            .collect();
        entries.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        let removed: Vec<&str> = if full {
            Vec::new()
        } else {
            published
                .removals
                .iter()
                .filter(|(v, _)| *v > since)
                .map(|(_, id)| id.as_str())
                .collect()
        };
        let mut out =
            Vec::with_capacity(entries.iter().map(|e| e.json.len() + 1).sum::<usize>() + 256);
        out.extend_from_slice(b"{\"version\":");
        out.extend_from_slice(published.version.to_string().as_bytes());
        out.extend_from_slice(if full {
            b",\"full\":true"
        } else {
            b",\"full\":false"
        });
        out.extend_from_slice(b",\"experiments\":[");
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&entry.json);
        }
        out.extend_from_slice(b"],\"removed\":");
        out.extend_from_slice(&serde_json::to_vec(&removed).unwrap_or_default());
        out.extend_from_slice(b",\"base_dir\":");
        out.extend_from_slice(&serde_json::to_vec(base_dir).unwrap_or_default());
        out.extend_from_slice(b",\"scheduler_running\":");
        out.extend_from_slice(if scheduler_running {
            b"true}"
        } else {
            b"false}"
        });
        out
    }
}

impl Index {
    /// The ids that `query` matches, in the listing's order (newest first), as the JSON answer
    /// to `GET /api/query`. Parameters and metrics the query names must exist in some
    /// experiment (when any is listed), or it is an error with a "did you mean".
    pub fn query(&self, query: &Query) -> Result<Vec<u8>, QueryError> {
        let mut published = self.wait_scanned();
        if !published.entries.is_empty() {
            query.check(published.fields())?;
        }
        let mut hits: Vec<&Published1> = published
            .entries
            .values()
            .filter(|e| query.matches(&e.record))
            .collect();
        hits.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        let ids: Vec<&str> = hits.iter().map(|e| e.record.id.as_str()).collect();
        Ok(serde_json::to_vec(&serde_json::json!({ "ids": ids })).unwrap_or_default())
    }

    /// Every field the query language accepts for the listed experiments, as the JSON answer
    /// to `GET /api/fields`.
    pub fn fields(&self) -> Vec<u8> {
        let mut published = self.wait_scanned();
        let fields: Vec<String> = published.fields().field_names().collect();
        serde_json::to_vec(&serde_json::json!({ "fields": fields })).unwrap_or_default()
    }

    /// The published state, once the first scan is done.
    fn wait_scanned(&self) -> std::sync::MutexGuard<'_, Published> {
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        while !published.scanned {
            published = self
                .scanned
                .wait(published)
                .unwrap_or_else(|p| p.into_inner());
        }
        published
    }
}

/// What a scan found in one directory.
enum Visit {
    /// Listed, and drawn as before.
    Listed,
    /// Listed, with a summary that draws another card than before (or a first one), and its
    /// record.
    Changed(Box<(Summary, ExperimentRecord)>),
    /// Not an experiment (any more), or a symlink leading outside: not listed, and removed
    /// from the listing if it was.
    NotListed,
}

impl Scanner {
    /// Looks at the directory `id` at `path` inside `base`, summarizing it again only when one
    /// of its files changed (or while it runs: its clock and liveness change without a write).
    fn visit(&mut self, base: &Path, id: &str, path: &Path) -> Visit {
        let status = stamp_of(&path.join("status.json"));
        let config = stamp_of(&path.join("config.json"));
        if status.is_none() && config.is_none() {
            return Visit::NotListed;
        }
        let known = self.known.remove(id);
        let stamp = Stamp {
            status,
            config,
            table: table_stamp(
                path,
                known.as_ref().and_then(|k| k.summary.run_id.as_deref()),
            ),
            log: settling_log_stamp(path, known.as_ref().map(|k| &k.summary), status),
        };
        let running = known
            .as_ref()
            .is_some_and(|k| k.summary.status == RunState::Running);
        let (entry, old) = match known {
            Some(k) if k.stamp == stamp && !running => {
                self.known.insert(id.to_string(), k);
                return Visit::Listed;
            }
            Some(k) => (Some(k.entry), Some(k.summary)),
            None => (None, None),
        };
        // Forgotten unless found again below: the scan then reports it removed.
        if old.is_some() {
            self.dropped.push(id.to_string());
        }
        let Some(real) = confine::inside(base, path) else {
            return Visit::NotListed;
        };
        let allow = |p: &Path| state_file(base, p);
        let entry = match entry {
            Some(mut entry) => entry.refresh(id, &real, &allow).map(|_| entry),
            None => Entry::open(id, &real, &allow),
        };
        let Some(entry) = entry else {
            return Visit::NotListed;
        };
        if old.is_some() {
            self.dropped.pop();
        }
        let summary = summary_of(base, id, &real, &entry);
        // Record the table stamp of the run now current, so the next scan compares like with
        // like.
        let stamp = Stamp {
            table: table_stamp(path, summary.run_id.as_deref()),
            log: settling_log_stamp(path, Some(&summary), stamp.status),
            ..stamp
        };
        let same = old.is_some_and(|old| same_card(&old, &summary));
        let record = entry.record().clone();
        self.known.insert(
            id.to_string(),
            Known {
                stamp,
                entry,
                summary: summary.clone(),
            },
        );
        if same {
            Visit::Listed
        } else {
            Visit::Changed(Box::new((summary, record)))
        }
    }

    /// Forgets every directory not `seen` in this scan; returns their ids.
    fn forget_unseen(&mut self, seen: &HashSet<String>) -> Vec<String> {
        let mut gone: Vec<String> = self
            .known
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in &gone {
            self.known.remove(id);
        }
        gone.append(&mut self.dropped);
        gone
    }
}

impl Published {
    /// Publishes a scan: each changed summary and each removal takes the next version.
    fn publish(&mut self, changed: Vec<(Summary, ExperimentRecord)>, gone: Vec<String>) {
        for (summary, record) in changed {
            self.version += 1;
            let entry = Published1 {
                json: serde_json::to_vec(&summary).unwrap_or_default(),
                created_at: summary.created_at.clone(),
                changed_at: self.version,
                record,
            };
            self.entries.insert(summary.id, entry);
        }
        for id in gone {
            self.entries.remove(&id);
            self.version += 1;
            self.removals.push((self.version, id));
        }
        if self.version != self.fields_version {
            self.fields = None;
            self.fields_version = self.version;
        }
        if self.removals.len() > REMOVALS_KEPT {
            let excess = self.removals.len() - REMOVALS_KEPT;
            self.removals.drain(..excess);
        }
        self.scanned = true;
    }
}

/// The stamp of run `run`'s table in the experiment directory `path`.
fn table_stamp(path: &Path, run: Option<&str>) -> Option<(SystemTime, u64)> {
    run.and_then(|run| stamp_of(&path.join("metrics").join(format!("{run}.csv"))))
}

/// The stamp of the current run's log while the run has just ended in Error (see
/// [`LOG_SETTLE`]); `None` otherwise, so the scan of a quiet directory stays three `stat`s.
fn settling_log_stamp(
    path: &Path,
    summary: Option<&Summary>,
    status: Option<(SystemTime, u64)>,
) -> Option<(SystemTime, u64)> {
    let summary = summary.filter(|s| s.status == RunState::Error)?;
    let run = summary.run_id.as_deref()?;
    let (ended, _) = status?;
    // A clock set back makes the age an error: still settling.
    if ended.elapsed().is_ok_and(|age| age > LOG_SETTLE) {
        return None;
    }
    stamp_of(&path.join("logs").join(format!("{run}.log")))
}

/// Whether two summaries would draw the same card (elapsed time ticks client-side).
fn same_card(a: &Summary, b: &Summary) -> bool {
    a.status == b.status
        && a.run_id == b.run_id
        && a.error == b.error
        && a.exception == b.exception
        && a.latest == b.latest
        && a.pid == b.pid
        && a.finished_at == b.finished_at
        && a.gpus == b.gpus
        && a.slurm_job_id == b.slurm_job_id
        && a.node == b.node
        && a.params == b.params
        && a.metrics == b.metrics
}

/// Reads the experiment directory `path` (named `id`) inside `root` (canonical) as a catalog
/// entry; `None` when it is not an experiment directory, or leads outside `root` through a
/// symlink. A state file that cannot be read (corrupt, not what expman writes, or a symlink
/// leading outside) makes the experiment show as Error with the reason, never as a blank
/// Pending card (the catalog's rule).
pub(crate) fn open_entry(root: &Path, id: &str, path: &Path) -> Option<(PathBuf, Entry)> {
    let real = confine::inside(root, path)?;
    let entry = Entry::open(id, &real, &|p: &Path| state_file(root, p))?;
    Some((real, entry))
}

/// Builds the summary of the experiment directory `path` inside `root` (see [`open_entry`]).
pub(crate) fn summarize(root: &Path, id: &str, path: &Path) -> Option<Summary> {
    let (real, entry) = open_entry(root, id, path)?;
    Some(summary_of(root, id, &real, &entry))
}

/// The card of the experiment at `real` from its catalog entry, plus what only the page shows:
/// the last row, the exception line of a failed run, the elapsed time.
pub(crate) fn summary_of(root: &Path, id: &str, real: &Path, entry: &Entry) -> Summary {
    let record = entry.record();
    let (config, status) = (&entry.state().config, &entry.state().status);
    let state = record.status;
    let run_id = record.run_id.clone();
    let latest = run_id
        .as_deref()
        .and_then(|run| latest_row(root, real, run))
        .unwrap_or_default();
    let exception = run_id
        .as_deref()
        .filter(|_| state == RunState::Error)
        .and_then(|run| confine::inside(root, &real.join("logs").join(format!("{run}.log"))))
        .and_then(|log| exception::in_log(&log));
    let gpus = if status.gpus.is_empty() {
        config.gpu_ids.clone()
    } else {
        status.gpus.clone()
    };
    Summary {
        id: id.to_string(),
        name: record.name.clone(),
        runs: record.runs,
        run_id,
        status: state,
        error: record.error.clone(),
        exception,
        metrics_error: record.metrics_error.clone(),
        tags: record.tags.clone(),
        description: record.description.clone(),
        command: record.command.clone(),
        host: record.host.clone(),
        params: record.params.clone(),
        metrics: record.metrics.clone(),
        gpus,
        created_at: record.created_at.clone(),
        started_at: status.started_at.clone(),
        finished_at: status.finished_at.clone(),
        elapsed_s: elapsed(status, state),
        latest,
        pid: status.pid,
        slurm_job_id: status.slurm_job_id.clone(),
        node: status.node.clone(),
    }
}

/// The last row of run `run`'s table, without its timestamp, run id and empty cells.
fn latest_row(root: &Path, real: &Path, run: &str) -> Option<serde_json::Map<String, Json>> {
    let table = confine::inside(root, &real.join("metrics").join(format!("{run}.csv")))?;
    let tail = table_tail(&table, 1).ok()?;
    let row = tail.rows.into_iter().last()?;
    let mut map = serde_json::Map::new();
    for (column, value) in tail.columns.into_iter().zip(row).skip(2) {
        if value != Value::Null {
            map.insert(column, value_json(&value));
        }
    }
    Some(map)
}

/// Run time in seconds: finished - started, or now - started while running.
fn elapsed(status: &Status, state: RunState) -> Option<f64> {
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (parse(&status.started_at), parse(&status.finished_at)) {
        (Some(start), Some(end)) => Some((end - start).as_seconds_f64()),
        (Some(start), None) if state == RunState::Running => {
            Some((chrono::Local::now().fixed_offset() - start).as_seconds_f64())
        }
        _ => None,
    }
}

/// Whether the state file at `path` may be read: it is missing (the loader says what that
/// means) or resolves inside `root`.
fn state_file(root: &Path, path: &Path) -> Result<(), String> {
    match confine::place(root, path) {
        confine::Place::Outside => Err(format!(
            "{} is a symlink leading outside the served directory, which is never read",
            path.display()
        )),
        confine::Place::Inside(_) | confine::Place::Missing => Ok(()),
    }
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
