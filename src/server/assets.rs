//! The page's files, embedded in the binary so `EXP <dir>` needs no build step or install: the
//! page itself, with the server's token written in, and a table of static files (name, bytes,
//! content type) served under `/static/`.

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

/// Every static file.
const ASSETS: &[Asset] = &[
    asset!("app.js", "app.js", JS),
    asset!("app.css", "app.css", CSS),
    asset!("uplot.min.js", "vendor/uplot.min.js", JS),
    asset!("uplot.min.css", "vendor/uplot.min.css", CSS),
];

const PAGE: &str = include_str!("assets/index.html");

/// `index.html` with the server's token in `<meta name="expman-token">` (a same-origin page can
/// read it and send it back as `X-Expman-Token`; a cross-site page cannot) and on the asset
/// URLs.
pub(crate) fn page(token: &str) -> Reply {
    let page = PAGE.replace("{{EXPMAN_TOKEN}}", token);
    Reply::ok(page.into_bytes(), "text/html; charset=utf-8")
}

/// A static file by name.
pub(crate) fn file(name: &str) -> Option<Reply> {
    ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(|asset| Reply::ok(asset.body.to_vec(), asset.content_type))
}
