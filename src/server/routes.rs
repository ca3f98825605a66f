//! Routing: checks who is asking (`access`), decodes the target, and sends each endpoint of
//! `API.md` to its handler in `api`, or the page and its files to `assets`.

use std::path::PathBuf;
use std::sync::Arc;

use super::access::Access;
use super::api;
use super::assets;
use super::http::Request;
use super::index::Index;
use super::reply::Reply;
use super::target::Target;

/// Shared by the connection threads.
pub(crate) struct State {
    /// The served directory, canonical.
    pub(crate) root: PathBuf,
    /// The listing, kept ready by the refresher thread.
    pub(crate) index: Arc<Index>,
    /// Who may ask.
    pub(crate) access: Access,
    /// Tables parsed for the series endpoint.
    pub(crate) series: super::series::Cache,
}

/// Answers one request. Never panics on input: every failure becomes a 4xx/5xx JSON answer.
pub(crate) fn handle(state: &State, request: &Request) -> Reply {
    // Who is asking comes first, before any file is read or the page (with its token) is
    // built: a page from another site must learn nothing, not even what exists.
    route(state, request).unwrap_or_else(|refusal| refusal)
}

fn route(state: &State, request: &Request) -> api::Answer {
    state.access.check_origin(request)?;
    let target = Target::parse(&request.target)?;
    state.access.check_token(request, &target.query)?;
    let (root, query) = (state.root.as_path(), &target.query);
    match (request.method.as_str(), target.segments().as_slice()) {
        ("GET", [""]) => Ok(assets::page(&state.access.token)),
        ("GET", ["static", file]) => {
            assets::file(file).ok_or_else(|| Reply::error(404, format!("no static file {file:?}")))
        }
        ("GET", ["api", "experiments"]) => api::listing(root, &state.index, query),
        ("GET", ["api", "query"]) => api::query(&state.index, query),
        ("GET", ["api", "fields"]) => api::fields(&state.index),
        ("GET", ["api", "experiments", id]) => api::details(root, id),
        ("GET", ["api", "experiments", id, "tables", table]) => api::table(root, id, table, query),
        ("GET", ["api", "experiments", id, "tables", table, "series"]) => {
            api::table_series(root, &state.series, id, table, query)
        }
        ("GET", ["api", "experiments", id, "logs", file]) => api::log(root, id, file, query),
        ("GET", ["api", "experiments", id, "checkpoints", path @ ..]) if !path.is_empty() => {
            api::checkpoint(root, id, path)
        }
        ("POST", ["api", "experiments", id, "actions", action]) => {
            api::action(root, &state.index, id, action)
        }
        ("GET" | "POST", _) => Err(Reply::error(
            404,
            format!("no such endpoint: {}", target.path),
        )),
        _ => Err(Reply::error(405, "only GET, HEAD and POST are supported")),
    }
}
