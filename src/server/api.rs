//! The JSON endpoints of `API.md`, one function each, over the served directory `root`
//! (canonical). Every name from the request reaches the disk only through [`confined`]. A
//! handler's `Err` is an answer too (a 4xx/5xx JSON error), so they compose with `?`.

use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};

use super::confine::{confined, inside};
use super::index::{Index, open_entry, summarize, summary_of, value_json};
use super::logs;
use super::reply::Reply;
use super::series::{self, Cache};
use super::tail::table_tail;
use super::target::Query;
use crate::catalog::run_infos;
use crate::error::IoContext;
use crate::metrics::ColumnType;
use crate::query::ParseOptions;
use crate::scheduler::{Action, SchedulerDir};
use crate::store::{ExperimentDir, validate_name};

/// What a handler answers: the reply, or the refusal.
pub(crate) type Answer = Result<Reply, Reply>;

/// `GET /api/experiments?since=`: the listing, whole or since a version.
pub(crate) fn listing(root: &Path, index: &Index, query: &Query) -> Answer {
    let since = query.number::<u64>("since", "a version number")?;
    let running = SchedulerDir::new(root).scheduler_running().unwrap_or(false);
    let base = root.display().to_string();
    Ok(Reply::ok(
        index.listing(since, &base, running),
        "application/json",
    ))
}

/// `GET /api/query?q=&tz=`: the ids of the experiments the query matches, in the listing's
/// order; a query that does not parse is a 400 naming the span (character offsets into `q`).
pub(crate) fn query(index: &Index, query: &Query) -> Answer {
    let text = query.get("q").unwrap_or("");
    let mut options = ParseOptions::new();
    if let Some(minutes) = query.number::<i32>("tz", "minutes east of UTC")? {
        // Less than a day either way (what a fixed offset can be).
        if !(-1439..=1439).contains(&minutes) {
            return Err(Reply::error(
                400,
                format!("tz={minutes} is no time zone: give minutes east of UTC, -1439 to 1439"),
            ));
        }
        options = options.utc_offset(minutes * 60);
    }
    let parsed = crate::query::Query::parse_with(text, options);
    match parsed.and_then(|q| index.query(&q)) {
        Ok(body) => Ok(Reply::ok(body, "application/json")),
        Err(e) => {
            let start = text[..e.offset()].chars().count();
            let end = start + text[e.offset()..e.offset() + e.len()].chars().count();
            Err(Reply::json(
                400,
                &json!({ "error": e.to_string(), "start": start, "end": end }),
            ))
        }
    }
}

/// `GET /api/fields`: every field a query may name for the served experiments.
pub(crate) fn fields(index: &Index) -> Answer {
    Ok(Reply::ok(index.fields(), "application/json"))
}

/// `GET /api/experiments/<id>`: summary, state files, runs (with their params and metric
/// summaries), tables and logs.
pub(crate) fn details(root: &Path, id: &str) -> Answer {
    let dir = experiment_dir(root, id)?;
    let (real, entry) = open_entry(root, id, dir.path())
        .ok_or_else(|| Reply::error(404, format!("{id:?} is not an experiment directory")))?;
    let summary = summary_of(root, id, &real, &entry);
    // A damaged directory (metrics/ replaced by a file, a symlink loop) still shows what can
    // be read; what cannot is named in `problems`.
    let mut problems: Vec<String> = Vec::new();
    let tables: Vec<Json> = dir
        .tables()
        .unwrap_or_else(|e| {
            problems.push(e.to_string());
            Vec::new()
        })
        .into_iter()
        .filter_map(|t| {
            let size = size_inside(root, &dir.table_path(&t))?;
            Some(json!({ "name": t, "size": size }))
        })
        .collect();
    let run_ids: Vec<String> = dir
        .runs()
        .unwrap_or_else(|e| {
            // runs() lists metrics/ too: the same problem is named once.
            let problem = e.to_string();
            if !problems.contains(&problem) {
                problems.push(problem);
            }
            Vec::new()
        })
        .iter()
        .map(|r| r.to_string())
        // A metrics/ linked out of the served directory lists another place's files.
        .filter(|run| inside(root, &dir.table_path(run)).is_some())
        .collect();
    let runs = run_infos(entry.state(), &run_ids, |run| {
        inside(root, &dir.table_path(run))
    });
    Ok(Reply::json(
        200,
        &json!({
            "summary": summary,
            "config": state_json(root, &dir.config_path()),
            "status": state_json(root, &dir.status_path()),
            "runs": runs,
            "tables": tables,
            "logs": log_files(root, &dir.logs_dir()),
            "checkpoints": checkpoint_files(root, &dir.checkpoints_dir()),
            "problems": problems,
        }),
    ))
}

/// `GET /api/experiments/<id>/tables/<table>?tail=`: the last rows, typed.
pub(crate) fn table(root: &Path, id: &str, table: &str, query: &Query) -> Answer {
    let tail = query
        .number::<usize>("tail", "a row count")?
        .unwrap_or(100)
        .min(10_000);
    let path = table_file(root, id, table)?;
    let tail = table_tail(&path, tail).map_err(|e| Reply::from_error(&e))?;
    let types: Vec<&str> = tail.types.iter().map(|t| type_name(*t)).collect();
    let rows: Vec<Vec<Json>> = tail
        .rows
        .iter()
        .map(|row| row.iter().map(value_json).collect())
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "columns": tail.columns, "types": types, "rows": rows }),
    ))
}

/// `GET /api/experiments/<id>/tables/<table>/series?columns=&x=&max_points=&from=&to=&smooth=
/// &log_y=&run=`: numeric columns to chart, M4-thinned per x bucket, smoothed on the full data
/// (see `series`).
pub(crate) fn table_series(
    root: &Path,
    cache: &Cache,
    id: &str,
    table: &str,
    query: &Query,
) -> Answer {
    let path = table_file(root, id, table)?;
    series::answer(cache, &path, query)
}

/// `GET /api/experiments/<id>/logs/<file>?offset=&length=` (or `max=`), `?before=&length=`,
/// `?search=&regex=&ignore_case=&max=&from=`, `?download=1`: a log's tail, pages forward and
/// back, search over the whole file, the whole file (see `logs`).
pub(crate) fn log(root: &Path, id: &str, file: &str, query: &Query) -> Answer {
    let path = log_file(root, id, file)?;
    logs::answer(&path, file, query)
}

/// `GET /api/experiments/<id>/checkpoints/<path>`: a checkpoint file, streamed as a download.
/// Every component is a plain name, and the file, symlinks resolved, must stay inside the
/// served directory (403 otherwise).
pub(crate) fn checkpoint(root: &Path, id: &str, path: &[&str]) -> Answer {
    experiment_dir(root, id)?;
    let mut parts = vec![id, "checkpoints"];
    parts.extend_from_slice(path);
    let real = confined(root, &parts)?;
    let error = |e: crate::Error| Reply::from_error(&e);
    if real.is_dir() {
        return Err(Reply::error(
            404,
            format!("checkpoints/{} is a directory, not a file", path.join("/")),
        ));
    }
    let file = crate::store::open_regular(&real)
        .at("open the checkpoint", &real)
        .map_err(error)?;
    let meta = file.metadata().at("stat", &real).map_err(error)?;
    let name = path.last().copied().unwrap_or("checkpoint");
    Ok(Reply::download(file, meta.len(), name))
}

/// `POST /api/experiments/<id>/actions/<action>`: retry, terminate or delete, through the
/// scheduler's control path; the index rescans at once so the next poll shows the change.
pub(crate) fn action(root: &Path, index: &Index, id: &str, action: &str) -> Answer {
    let action = match action {
        "retry" => Action::Retry,
        "terminate" => Action::Terminate,
        "delete" => Action::Delete,
        other => return Err(Reply::error(404, format!("no action {other:?}"))),
    };
    // A link inside the directory to another experiment lists as a card of its own; deleting
    // through it would delete the experiment it points to (another card's data).
    let linked = std::fs::symlink_metadata(root.join(id)).is_ok_and(|m| m.file_type().is_symlink());
    if action == Action::Delete && linked {
        return Err(Reply::error(
            409,
            format!(
                "{id} is a link to another directory; deleting through it would delete what it \
                 points to: remove the link itself, or delete that experiment"
            ),
        ));
    }
    let dir = experiment_dir(root, id)?;
    let result = crate::scheduler::perform(dir.path(), action);
    index.poke();
    let message = result.map_err(|e| Reply::from_error(&e))?;
    if action != Action::Retry {
        return Ok(Reply::json(200, &json!({ "ok": true, "message": message })));
    }
    // The message is the scheduler's own account: "queued" when a running scheduler took the
    // run into its queue, "started" or "submitted" when it was launched here. The new run's
    // id and state are read back for the page.
    let after = summarize(root, id, dir.path());
    let status = after.as_ref().map(|s| s.status);
    let run_id = after.and_then(|s| s.run_id);
    Ok(Reply::json(
        200,
        &json!({ "ok": true, "message": message, "run_id": run_id, "status": status }),
    ))
}

fn type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Null => "null",
        ColumnType::Bool => "bool",
        ColumnType::Int => "int",
        ColumnType::Float => "float",
        ColumnType::Str => "str",
    }
}

/// A state file as it is: null when missing, unreadable or outside (the summary says which
/// and why).
fn state_json(root: &Path, path: &Path) -> Json {
    inside(root, path)
        .and_then(|p| crate::store::read_bounded(&p, crate::store::STATE_FILE_LIMIT).ok())
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .unwrap_or(Json::Null)
}

/// The size of the file at `path`, if it resolves inside `root` (files elsewhere are not
/// listed).
fn size_inside(root: &Path, path: &Path) -> Option<u64> {
    inside(root, path)
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
}

/// The `.log` files of `logs`, by name, with their sizes.
fn log_files(root: &Path, logs: &Path) -> Vec<Json> {
    let mut list: Vec<(String, u64)> = std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if !name.ends_with(".log") || name.starts_with('.') {
                return None;
            }
            Some((name, size_inside(root, &e.path())?))
        })
        .collect();
    list.sort();
    list.into_iter()
        .map(|(name, size)| json!({ "name": name, "size": size }))
        .collect()
}

/// How deep and how many checkpoint files are listed (a checkpoint directory is the user's:
/// the listing must stay small whatever is in it).
const CHECKPOINT_DEPTH: usize = 4;
const CHECKPOINT_FILES: usize = 1000;

/// The files under `checkpoints/` (at most [`CHECKPOINT_FILES`], [`CHECKPOINT_DEPTH`] levels
/// down), by path relative to it, with sizes and modification times (Unix seconds). Hidden
/// names and anything leading outside the served directory are left out.
fn checkpoint_files(root: &Path, dir: &Path) -> Vec<Json> {
    let mut found: Vec<(String, u64, f64)> = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((path, prefix, depth)) = pending.pop() {
        let Some(real) = inside(root, &path) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&real) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || found.len() >= CHECKPOINT_FILES {
                continue;
            }
            let Some(target) = inside(root, &entry.path()) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&target) else {
                continue;
            };
            let relative = format!("{prefix}{name}");
            if meta.is_dir() {
                if depth + 1 < CHECKPOINT_DEPTH {
                    pending.push((entry.path(), format!("{relative}/"), depth + 1));
                }
            } else if meta.is_file() {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0.0, |d| d.as_secs_f64());
                found.push((relative, meta.len(), mtime));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
        .into_iter()
        .map(|(name, size, mtime)| json!({ "name": name, "size": size, "mtime": mtime }))
        .collect()
}

/// The experiment directory `id` inside the served directory, refusing anything that could
/// point elsewhere: more than one component, `..`, hidden names, and symlinks leading outside.
fn experiment_dir(root: &Path, id: &str) -> Result<ExperimentDir, Reply> {
    let path = confined(root, &[id])?;
    ExperimentDir::open(path).map_err(|e| Reply::from_error(&e))
}

fn table_file(root: &Path, id: &str, table: &str) -> Result<PathBuf, Reply> {
    validate_name("table name", table).map_err(|e| Reply::from_error(&e))?;
    experiment_dir(root, id)?;
    confined(root, &[id, "metrics", &format!("{table}.csv")])
}

fn log_file(root: &Path, id: &str, file: &str) -> Result<PathBuf, Reply> {
    experiment_dir(root, id)?;
    if !file.ends_with(".log") {
        return Err(Reply::error(400, "only .log files are served from logs/"));
    }
    confined(root, &[id, "logs", file])
}
