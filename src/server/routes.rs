//! Request handling: access checks, path confinement and the endpoints of `API.md`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value as Json, json};
use tiny_http::{Header, Method, Request, Response, StatusCode};

use super::index::{Index, summarize, value_json};
use super::tail::{log_chunk, series, table_tail};
use crate::error::{Error, ErrorKind};
use crate::metrics::ColumnType;
use crate::scheduler::{Action, SchedulerDir};
use crate::store::{ExperimentDir, validate_name};

/// The header that carries the access token (and proves a POST is not a cross-site form).
pub(crate) const TOKEN_HEADER: &str = "X-Expman-Token";

/// Shared by the worker threads.
pub(crate) struct State {
    pub(crate) root: PathBuf,
    pub(crate) token: String,
    /// Whether every request (not only POSTs) must carry the token: true off loopback.
    pub(crate) token_required: bool,
    pub(crate) index: Arc<Index>,
}

/// An HTTP error answer.
pub(crate) struct Reply {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
}

impl Reply {
    fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            content_type: "application/json",
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, &json!({ "error": message.into() }))
    }

    fn from_error(e: &Error) -> Reply {
        let status = match e.kind() {
            ErrorKind::NotFound { .. } => 404,
            ErrorKind::InvalidName { .. } | ErrorKind::InvalidValue { .. } => 400,
            ErrorKind::InvalidState(_) => 409,
            ErrorKind::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 404,
            _ => 500,
        };
        Reply::error(status, e.to_string())
    }
}

/// Answers one request. Never panics on input: every failure becomes a 4xx/5xx JSON answer.
pub(crate) fn handle(state: &State, mut request: Request) {
    let reply = route(state, &mut request);
    let response = Response::from_data(reply.body)
        .with_status_code(StatusCode(reply.status))
        .with_header(header("Content-Type", reply.content_type))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Referrer-Policy", "no-referrer"));
    let _ = request.respond(response);
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

fn route(state: &State, request: &mut Request) -> Reply {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let Some(path) = percent_decode(path) else {
        return Reply::error(400, "malformed percent-encoding in the path");
    };
    let query = parse_query(query);
    let header_token = request
        .headers()
        .iter()
        .find(|h| h.field.equiv(TOKEN_HEADER))
        .map(|h| h.value.as_str().to_string());
    let token_ok = header_token.as_deref() == Some(state.token.as_str())
        || query.iter().any(|(k, v)| k == "token" && *v == state.token);
    let method = request.method().clone();
    if state.token_required && !token_ok {
        return Reply::error(
            403,
            "this server needs its access token: open the URL it printed (with ?token=...)",
        );
    }
    if method == Method::Post && header_token.as_deref() != Some(state.token.as_str()) {
        return Reply::error(
            403,
            format!("state-changing requests need the {TOKEN_HEADER} header"),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = |q: &str| query.iter().find(|(k, _)| k == q).map(|(_, v)| v.as_str());
    match (&method, segments.as_slice()) {
        (Method::Get, [""]) => super::assets::index(&state.token),
        (Method::Get, ["static", file]) => super::assets::file(file)
            .unwrap_or_else(|| Reply::error(404, format!("no static file {file:?}"))),
        (Method::Get, ["api", "experiments"]) => {
            let since = match get("since").map(str::parse::<u64>) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(_)) => return Reply::error(400, "since must be a version number"),
            };
            let running = SchedulerDir::new(&state.root)
                .scheduler_running()
                .unwrap_or(false);
            let base = state.root.display().to_string();
            Reply::asset(
                state.index.listing(since, &base, running),
                "application/json",
            )
        }
        (Method::Get, ["api", "experiments", id]) => experiment_dir(state, id)
            .and_then(|dir| details(id, &dir))
            .unwrap_or_else(|e| e),
        (Method::Get, ["api", "experiments", id, "tables", table]) => {
            let tail = match get("tail").unwrap_or("100").parse::<usize>() {
                Ok(n) => n.min(10_000),
                Err(_) => return Reply::error(400, "tail must be a row count"),
            };
            table_file(state, id, table)
                .and_then(|path| table_tail(&path, tail).map_err(|e| Reply::from_error(&e)))
                .map(|tail| {
                    let types: Vec<&str> = tail.types.iter().map(|t| type_name(*t)).collect();
                    let rows: Vec<Vec<Json>> = tail
                        .rows
                        .iter()
                        .map(|row| row.iter().map(value_json).collect())
                        .collect();
                    Reply::json(
                        200,
                        &json!({ "columns": tail.columns, "types": types, "rows": rows }),
                    )
                })
                .unwrap_or_else(|e| e)
        }
        (Method::Get, ["api", "experiments", id, "tables", table, "series"]) => {
            let max_points = match get("max_points").unwrap_or("2000").parse::<usize>() {
                Ok(n) => n.clamp(2, 100_000),
                Err(_) => return Reply::error(400, "max_points must be a number"),
            };
            table_file(state, id, table)
                .and_then(|path| series(&path, max_points).map_err(|e| Reply::from_error(&e)))
                .map(|body| Reply::json(200, &body))
                .unwrap_or_else(|e| e)
        }
        (Method::Get, ["api", "experiments", id, "logs", file]) => {
            let offset = match get("offset").map(str::parse::<u64>) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(_)) => return Reply::error(400, "offset must be a byte offset"),
            };
            let max = match get("max").unwrap_or("65536").parse::<u64>() {
                Ok(n) => n.clamp(1, 8 << 20),
                Err(_) => return Reply::error(400, "max must be a byte count"),
            };
            log_file(state, id, file)
                .and_then(|path| log_chunk(&path, offset, max).map_err(|e| Reply::from_error(&e)))
                .map(|chunk| Reply::json(200, &chunk))
                .unwrap_or_else(|e| e)
        }
        (Method::Post, ["api", "experiments", id, "actions", action]) => {
            // Drain a body we do not use, so keep-alive connections stay in sync.
            let _ = std::io::copy(&mut request.as_reader().take(1 << 20), &mut std::io::sink());
            let action = match *action {
                "retry" => Action::Retry,
                "terminate" => Action::Terminate,
                "delete" => Action::Delete,
                other => return Reply::error(404, format!("no action {other:?}")),
            };
            let dir = match experiment_dir(state, id) {
                Ok(dir) => dir,
                Err(reply) => return reply,
            };
            let result = crate::scheduler::perform(dir.path(), action);
            state.index.poke();
            match result {
                Ok(message) => Reply::json(200, &json!({ "ok": true, "message": message })),
                Err(e) => Reply::from_error(&e),
            }
        }
        (Method::Get | Method::Post, _) => Reply::error(404, format!("no such endpoint: {path}")),
        _ => Reply::error(405, "only GET and POST are supported"),
    }
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

fn details(id: &str, dir: &ExperimentDir) -> Result<Reply, Reply> {
    let summary =
        summarize(id, dir.path()).ok_or_else(|| Reply::error(404, "not an experiment"))?;
    let read_json = |p: PathBuf| {
        std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
            .unwrap_or(Json::Null)
    };
    let files = |d: PathBuf, ext: &str| -> Vec<Json> {
        let mut list: Vec<(String, u64)> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                (name.ends_with(ext) && !name.starts_with('.'))
                    .then(|| (name, e.metadata().map(|m| m.len()).unwrap_or(0)))
            })
            .collect();
        list.sort();
        list.into_iter()
            .map(|(name, size)| json!({ "name": name, "size": size }))
            .collect()
    };
    let tables: Vec<Json> = dir
        .tables()
        .map_err(|e| Reply::from_error(&e))?
        .into_iter()
        .map(|t| {
            let size = std::fs::metadata(dir.table_path(&t))
                .map(|m| m.len())
                .unwrap_or(0);
            json!({ "name": t, "size": size })
        })
        .collect();
    let runs: Vec<String> = dir
        .runs()
        .map_err(|e| Reply::from_error(&e))?
        .iter()
        .map(|r| r.to_string())
        .collect();
    Ok(Reply::json(
        200,
        &json!({
            "summary": summary,
            "config": read_json(dir.config_path()),
            "status": read_json(dir.status_path()),
            "runs": runs,
            "tables": tables,
            "logs": files(dir.logs_dir(), ".log"),
        }),
    ))
}

/// The experiment directory `id` inside the served directory, refusing anything that could
/// point elsewhere: more than one component, `..`, hidden names, and symlinks leading outside.
fn experiment_dir(state: &State, id: &str) -> Result<ExperimentDir, Reply> {
    let path = confined(&state.root, &[id])?;
    ExperimentDir::open(path).map_err(|e| Reply::from_error(&e))
}

fn table_file(state: &State, id: &str, table: &str) -> Result<PathBuf, Reply> {
    validate_name("table name", table).map_err(|e| Reply::from_error(&e))?;
    experiment_dir(state, id)?;
    confined(&state.root, &[id, "metrics", &format!("{table}.csv")])
}

fn log_file(state: &State, id: &str, file: &str) -> Result<PathBuf, Reply> {
    experiment_dir(state, id)?;
    if !file.ends_with(".log") {
        return Err(Reply::error(400, "only .log files are served from logs/"));
    }
    confined(&state.root, &[id, "logs", file])
}

/// Joins `parts` under `root` and checks that the result, with symlinks resolved, stays there.
fn confined(root: &Path, parts: &[&str]) -> Result<PathBuf, Reply> {
    let mut path = root.to_path_buf();
    for part in parts {
        let single = Path::new(part).components().count() == 1
            && matches!(
                Path::new(part).components().next(),
                Some(Component::Normal(_))
            );
        if !single || part.starts_with('.') || part.contains('\0') {
            return Err(Reply::error(
                400,
                format!("{part:?} is not a plain name inside the experiments directory"),
            ));
        }
        path.push(part);
    }
    let real_root = root
        .canonicalize()
        .map_err(|e| Reply::error(500, format!("cannot resolve {}: {e}", root.display())))?;
    let real = path
        .canonicalize()
        .map_err(|_| Reply::error(404, format!("{} does not exist", parts.join("/"))))?;
    if !real.starts_with(&real_root) {
        return Err(Reply::error(
            403,
            "that path leads outside the experiments directory",
        ));
    }
    Ok(real)
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(&v.replace('+', " "))?))
        })
        .collect()
}

/// Decodes %XX escapes; `None` for malformed escapes or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Reply {
    pub(crate) fn asset(body: Vec<u8>, content_type: &'static str) -> Reply {
        Reply {
            status: 200,
            body,
            content_type,
        }
    }
}
