//! The page's files, embedded in the binary so `EXP <dir>` needs no build step or install: the
//! page itself, with the server's token written in, and a table of static files (name, bytes,
//! content type) served under `/static/`.
//!
//! The script is a set of native ES modules (`assets/js/`, no bundler). Off loopback every
//! request must carry the token, and a module's `import './util.js'` cannot add `?token=` by
//! itself: the page's import map, written here from the table, maps each module's URL to the
//! same URL with the token, so the static files stay exactly as protected as the API.

use std::fmt::Write;

use super::reply::Reply;

/// One embedded file, served as `/static/<name>`.
struct Asset {
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// An [`Asset`] named `$name`, embedded from `assets/$file`.
macro_rules! asset {
    ($name:literal, $file:literal, $content_type:expr) => {
        Asset {
            name: $name,
            body: include_bytes!(concat!("assets/", $file)),
            content_type: $content_type,
        }
    };
}

/// Every static file. A module missing here fails `every_module_import_is_served` below.
const ASSETS: &[Asset] = &[
    asset!("main.js", "js/main.js", JS),
    asset!("util.js", "js/util.js", JS),
    asset!("api.js", "js/api.js", JS),
    asset!("notify.js", "js/notify.js", JS),
    asset!("commands.js", "js/commands.js", JS),
    asset!("state.js", "js/state.js", JS),
    asset!("header.js", "js/header.js", JS),
    asset!("poll.js", "js/poll.js", JS),
    asset!("board.js", "js/board.js", JS),
    asset!("actions.js", "js/actions.js", JS),
    asset!("logtail.js", "js/logtail.js", JS),
    asset!("ansi.js", "js/ansi.js", JS),
    asset!("charts.js", "js/charts.js", JS),
    asset!("drawer.js", "js/drawer.js", JS),
    asset!("drawer-overview.js", "js/drawer-overview.js", JS),
    asset!("drawer-metrics.js", "js/drawer-metrics.js", JS),
    asset!("drawer-compare.js", "js/drawer-compare.js", JS),
    asset!("drawer-logs.js", "js/drawer-logs.js", JS),
    asset!("monitor.js", "js/monitor.js", JS),
    asset!("table.js", "js/table.js", JS),
    asset!("query.js", "js/query.js", JS),
    asset!("parcoords.js", "js/parcoords.js", JS),
    asset!("urlstate.js", "js/urlstate.js", JS),
    asset!("app.css", "app.css", CSS),
    asset!("uplot.min.js", "vendor/uplot.min.js", JS),
    asset!("uplot.min.css", "vendor/uplot.min.css", CSS),
];

const PAGE: &str = include_str!("assets/index.html");

/// `index.html` with the server's token in `<meta name="expman-token">` (a same-origin page can
/// read it and send it back as `X-Expman-Token`; a cross-site page cannot), on the asset URLs,
/// and in the import map that carries it to every module.
pub(crate) fn page(token: &str) -> Reply {
    let page = PAGE
        .replace("{{EXPMAN_IMPORTS}}", &import_map(token))
        .replace("{{EXPMAN_TOKEN}}", token);
    Reply::ok(page.into_bytes(), "text/html; charset=utf-8")
}

/// A static file by name.
pub(crate) fn file(name: &str) -> Option<Reply> {
    ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(|asset| Reply::ok(asset.body.to_vec(), asset.content_type))
}

/// `{"imports": {"/static/util.js": "/static/util.js?token=...", ...}}` for every script. The
/// token is hex, so it needs no escaping in JSON or HTML.
fn import_map(token: &str) -> String {
    let mut map = String::from("{\"imports\": {");
    let scripts = ASSETS.iter().filter(|asset| asset.content_type == JS);
    for (i, asset) in scripts.enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        let name = asset.name;
        let _ = write!(
            map,
            "{separator}\"/static/{name}\": \"/static/{name}?token={token}\""
        );
    }
    map.push_str("}}");
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relative imports (`from './x.js'`) of a module's source.
    fn imports(source: &str) -> Vec<&str> {
        source
            .split("from './")
            .skip(1)
            .filter_map(|rest| rest.split_once('\''))
            .map(|(name, _)| name)
            .collect()
    }

    #[test]
    fn every_module_import_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/assets/js");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut modules: Vec<&str> = ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") && a.name != "uplot.min.js")
            .map(|a| a.name)
            .collect();
        modules.sort();
        assert_eq!(on_disk, modules, "assets.rs lists every file of {dir:?}");
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let source = std::str::from_utf8(asset.body).unwrap();
            for import in imports(source) {
                assert!(
                    file(import).is_some(),
                    "{} imports ./{import}, which is not in ASSETS",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn the_page_carries_the_token_to_every_module() {
        let token = "0123456789abcdef0123456789abcdef";
        let page = String::from_utf8(page(token).body).unwrap();
        assert!(!page.contains("{{"), "every placeholder is replaced");
        assert!(page.contains(&format!("<meta name=\"expman-token\" content=\"{token}\">")));
        assert!(page.contains(&format!(
            "\"/static/util.js\": \"/static/util.js?token={token}\""
        )));
        let map_start = page.find("<script type=\"importmap\">").unwrap();
        let module = page.find("<script type=\"module\"").unwrap();
        assert!(map_start < module, "the import map comes before any module");
    }
}
