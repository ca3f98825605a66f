//! The page's files, embedded in the binary so `EXP <dir>` needs no build step or install.

use super::routes::Reply;

const INDEX: &str = include_str!("assets/index.html");

/// `index.html` with the server's token in `<meta name="expman-token">`: a same-origin page can
/// read it and send it back as `X-Expman-Token`; a cross-site page cannot.
pub(crate) fn index(token: &str) -> Reply {
    let page = INDEX.replace("{{EXPMAN_TOKEN}}", token);
    Reply::asset(page.into_bytes(), "text/html; charset=utf-8")
}

/// A static file by name.
pub(crate) fn file(name: &str) -> Option<Reply> {
    let (body, content_type): (&[u8], &'static str) = match name {
        "app.js" => (
            include_bytes!("assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "app.css" => (include_bytes!("assets/app.css"), "text/css; charset=utf-8"),
        "uplot.min.js" => (
            include_bytes!("assets/vendor/uplot.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "uplot.min.css" => (
            include_bytes!("assets/vendor/uplot.min.css"),
            "text/css; charset=utf-8",
        ),
        _ => return None,
    };
    Some(Reply::asset(body.to_vec(), content_type))
}
