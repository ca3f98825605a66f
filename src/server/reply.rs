//! An answer to a request: status, content type and a complete body, or a file streamed as the
//! body (a download). The HTTP layer writes it (always with `Content-Length`, never chunked);
//! the routes and the assets build it.

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
    /// A file to send as the body instead (`body` is then empty): read and written a piece at
    /// a time, never held whole.
    pub(crate) file: Option<FileBody>,
}

/// A file sent as a body: its first `len` bytes (its size when it was opened: a log still
/// being written is sent as it was then), with a `Content-Disposition: attachment`.
#[derive(Debug)]
pub(crate) struct FileBody {
    /// The open file (opened through the confinement checks).
    pub(crate) file: std::fs::File,
    /// How many bytes to send.
    pub(crate) len: u64,
    /// The file name offered to the browser.
    pub(crate) name: String,
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
            file: None,
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
            // Not a regular file, or a state file too large: what is on disk, not the server.
            ErrorKind::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
                ) =>
            {
                422
            }
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
            file: None,
        }
    }

    /// 200 streaming `file` as an attachment named `name`.
    pub(crate) fn download(file: std::fs::File, len: u64, name: &str) -> Reply {
        Reply {
            status: 200,
            body: Vec::new(),
            content_type: "application/octet-stream",
            file: Some(FileBody {
                file,
                len,
                name: name.to_string(),
            }),
        }
    }
}
