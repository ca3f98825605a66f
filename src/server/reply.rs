//! An answer to a request: status, content type and a complete body. The HTTP layer writes it
//! (always with `Content-Length`, never chunked); the routes and the assets build it.

use crate::error::{Error, ErrorKind};

/// An answer: always a complete body with its length.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// `{"error": message}` with `status`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, &serde_json::json!({ "error": message.into() }))
    }

    /// `value` as JSON with `status`.
    pub(crate) fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            content_type: "application/json",
        }
    }

    /// A crate error as JSON, with the status its kind stands for.
    pub(crate) fn from_error(e: &Error) -> Reply {
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

    /// 200 with `body` as `content_type` (a page, an asset, or JSON built elsewhere).
    pub(crate) fn ok(body: Vec<u8>, content_type: &'static str) -> Reply {
        Reply {
            status: 200,
            body,
            content_type,
        }
    }
}
