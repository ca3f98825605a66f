//! Request handling: who may ask (Host, Origin, token), path confinement and the endpoints of
//! `API.md`.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::confine::{Place, inside, place};
use super::http::Request;
pub(crate) use super::http::Response as Reply;
use super::index::{Index, summarize, value_json};
use super::tail::{log_chunk, series, table_tail};
use crate::error::{Error, ErrorKind};
use crate::metrics::ColumnType;
use crate::scheduler::{Action, SchedulerDir};
use crate::store::{ExperimentDir, validate_name};

/// The header that carries the access token (and proves a POST is not a cross-site form).
pub(crate) const TOKEN_HEADER: &str = "X-Expman-Token";

/// Shared by the connection threads.
pub(crate) struct State {
    pub(crate) root: PathBuf,
    pub(crate) token: String,
    /// Whether every request (not only POSTs) must carry the token: true off loopback.
    pub(crate) token_required: bool,
    pub(crate) index: Arc<Index>,
    /// The address the server is bound to (a request may name it as its Host).
    pub(crate) bound: IpAddr,
    /// Further names a request may give as its Host, lowercase (`--allow-host`).
    pub(crate) allowed_hosts: Vec<String>,
}

impl Reply {
    fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            content_type: "application/json",
        }
    }

    fn from_error(e: &Error) -> Reply {
        let status = match e.kind() {
            ErrorKind::NotFound { .. } => 404,
            ErrorKind::InvalidName { .. } | ErrorKind::InvalidValue { .. } => 400,
            ErrorKind::InvalidState(_) => 409,
            ErrorKind::Corrupt { .. } => 422,
            ErrorKind::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 404,
            _ => 500,
        };
        Reply::error(status, e.to_string())
    }

    pub(crate) fn asset(body: Vec<u8>, content_type: &'static str) -> Reply {
        Reply {
            status: 200,
            body,
            content_type,
        }
    }
}

/// Answers one request. Never panics on input: every failure becomes a 4xx/5xx JSON answer.
pub(crate) fn handle(state: &State, request: &Request) -> Reply {
    // Who is asking comes first, before any file is read or the page (with its token) is
    // built: a page from another site must learn nothing, not even what exists.
    if let Err(refusal) = check_origin(state, request) {
        return refusal;
    }
    route(state, request)
}

/// A name given to `--allow-host`, checked and lowercased.
pub(crate) fn host_name(name: &str) -> crate::Result<String> {
    let plain = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !plain {
        return Err(Error::config(
            "--allow-host",
            format!(
                "{name:.80?} is not a host name: give a name such as gpu-node-3 or \
                 ui.example.org, without a scheme, a port or a path"
            ),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Refuses a request whose `Host` is not a name of this server, or whose `Origin` (when sent)
/// is another site: DNS rebinding and cross-site requests.
///
/// An IP literal cannot be rebound, so any that reaches us is accepted when bound to all
/// addresses (0.0.0.0 or ::), and loopback literals always; a name must be `localhost` or one
/// the user allowed. The port is not compared: a rebinding attack needs a name it controls,
/// and an SSH tunnel or proxy may use another port.
fn check_origin(state: &State, request: &Request) -> Result<(), Reply> {
    let Some(host) = request.header("host") else {
        return Err(Reply::error(
            400,
            "the request needs exactly one Host header naming this server (127.0.0.1:<port>)",
        ));
    };
    let name = authority_host(host).to_ascii_lowercase();
    let known = match name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => ip.is_loopback() || ip == state.bound || state.bound.is_unspecified(),
        Err(_) => name == "localhost" || state.allowed_hosts.contains(&name),
    };
    if !known {
        return Err(Reply::error(
            403,
            format!(
                "this server does not answer to the name {:.100?} (it answers to its address, \
                 localhost, 127.0.0.1 and [::1]); if you reach it under that name on purpose, \
                 start it with --allow-host {:.100}",
                name, name
            ),
        ));
    }
    if request.header_count("origin") > 0 {
        let origin = request.header("origin").unwrap_or("null");
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| same_authority(origin, authority, host));
        if !same {
            return Err(Reply::error(
                403,
                format!(
                    "requests from the page {:.100?} are refused: only pages served by this \
                     server (at {:.100}) may call it; to use another name, start the server \
                     with --allow-host and open the page under that name",
                    origin, host
                ),
            ));
        }
    }
    Ok(())
}

/// The host part of `host[:port]` or `[v6][:port]`.
fn authority_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether the Origin's authority (after its scheme) is the Host, the scheme's default port
/// being implied where either leaves it out.
fn same_authority(origin: &str, authority: &str, host: &str) -> bool {
    let default = if origin.starts_with("https://") {
        "443"
    } else {
        "80"
    };
    let split = |a: &str| -> (String, String) {
        let name = authority_host(a);
        let port = a[name.len()..].strip_prefix(':').unwrap_or(default);
        (name.to_ascii_lowercase(), port.to_string())
    };
    !authority.contains('/') && split(authority) == split(host)
}

fn route(state: &State, request: &Request) -> Reply {
    let url = request.target.as_str();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let Some(path) = percent_decode(path) else {
        return Reply::error(400, "malformed percent-encoding in the path");
    };
    let query = parse_query(query);
    let header_token = request.header(&TOKEN_HEADER.to_ascii_lowercase());
    let token_ok = header_token == Some(state.token.as_str())
        || query.iter().any(|(k, v)| k == "token" && *v == state.token);
    let method = request.method.as_str();
    if state.token_required && !token_ok {
        return Reply::error(
            403,
            "this server needs its access token: open the URL it printed (with ?token=...)",
        );
    }
    if method == "POST" && header_token != Some(state.token.as_str()) {
        return Reply::error(
            403,
            format!("state-changing requests need the {TOKEN_HEADER} header"),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = |q: &str| query.iter().find(|(k, _)| k == q).map(|(_, v)| v.as_str());
    match (method, segments.as_slice()) {
        ("GET", [""]) => super::assets::index(&state.token),
        ("GET", ["static", file]) => super::assets::file(file)
            .unwrap_or_else(|| Reply::error(404, format!("no static file {file:?}"))),
        ("GET", ["api", "experiments"]) => {
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
        ("GET", ["api", "experiments", id]) => experiment_dir(state, id)
            .and_then(|dir| details(state, id, &dir))
            .unwrap_or_else(|e| e),
        ("GET", ["api", "experiments", id, "tables", table]) => {
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
        ("GET", ["api", "experiments", id, "tables", table, "series"]) => {
            let max_points = match get("max_points").unwrap_or("2000").parse::<usize>() {
                Ok(n) => n.clamp(2, 100_000),
                Err(_) => return Reply::error(400, "max_points must be a number"),
            };
            table_file(state, id, table)
                .and_then(|path| series(&path, max_points).map_err(|e| Reply::from_error(&e)))
                .map(|body| Reply::json(200, &body))
                .unwrap_or_else(|e| e)
        }
        ("GET", ["api", "experiments", id, "logs", file]) => {
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
        ("POST", ["api", "experiments", id, "actions", action]) => {
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
        ("GET" | "POST", _) => Reply::error(404, format!("no such endpoint: {path}")),
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

fn details(state: &State, id: &str, dir: &ExperimentDir) -> Result<Reply, Reply> {
    let root = state.root.as_path();
    let summary = summarize(root, id, dir.path())
        .ok_or_else(|| Reply::error(404, format!("{id:?} is not an experiment directory")))?;
    // The state files as they are (null when missing, unreadable or outside: the summary says
    // which and why).
    let read_json = |p: PathBuf| {
        inside(root, &p)
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
            .unwrap_or(Json::Null)
    };
    // Files listed only where they resolve inside the served directory.
    let size = |p: &Path| inside(root, p).and_then(|p| std::fs::metadata(p).ok());
    let files = |d: PathBuf, ext: &str| -> Vec<Json> {
        let mut list: Vec<(String, u64)> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                if !name.ends_with(ext) || name.starts_with('.') {
                    return None;
                }
                Some((name, size(&e.path())?.len()))
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
        .filter_map(|t| {
            let size = size(&dir.table_path(&t))?.len();
            Some(json!({ "name": t, "size": size }))
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
    // `root` is canonical (Server::start resolved it).
    match place(root, &path) {
        Place::Inside(real) => Ok(real),
        Place::Outside => Err(Reply::error(
            403,
            format!(
                "{} leads outside the experiments directory (a symlink); it is not served",
                parts.join("/")
            ),
        )),
        Place::Missing => Err(Reply::error(
            404,
            format!("{} does not exist", parts.join("/")),
        )),
    }
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
