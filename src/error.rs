//! The crate's one error type.
//!
//! Every error names the path, field or value it is about and says what to do next, because the
//! person reading it is usually a researcher looking at a failed training job, not at our code.
//! Each [`ErrorKind`] maps to exactly one stable C status code; that mapping belongs to the C
//! ABI and lives in `ffi` (see `ffi::error_status`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An expman error. Boxed so that `Result<T>` stays one pointer wide on the hot path.
#[derive(Debug)]
pub struct Error(Box<ErrorKind>);

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An operating-system call on `path` failed.
    Io {
        /// What we were doing, e.g. "append a row to".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A name given by the caller (experiment, table, field, run id) is not acceptable.
    InvalidName {
        /// What the name is for: "experiment name", "field name", ...
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it is refused and what to use instead.
        reason: String,
    },
    /// A value cannot be stored (for example a non-UTF-8 string from C).
    InvalidValue {
        /// The field the value was meant for.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// A file exists but is not what expman wrote: a foreign or damaged CSV or JSON file.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<u64>,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A directory or run that should exist does not.
    NotFound {
        /// What was looked for.
        path: PathBuf,
        /// What it was expected to be and what to do.
        reason: String,
    },
    /// The caller asked for something the current state does not allow.
    InvalidState(String),
    /// A configuration file or argument is wrong.
    Config {
        /// The file, or `<argument>` for command-line input.
        origin: String,
        /// The message, including line and column where known.
        message: String,
    },
    /// This build lacks the optional feature the call needs.
    Unsupported {
        /// The Cargo feature to enable.
        feature: &'static str,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }

    /// Consumes the error and returns its kind.
    pub fn into_kind(self) -> ErrorKind {
        *self.0
    }

    /// The underlying I/O error, if this is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &*self.0 {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Error {
        ErrorKind::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
        .into()
    }

    pub(crate) fn invalid_name(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        ErrorKind::InvalidName {
            what,
            value: value.into(),
            reason: reason.into(),
        }
        .into()
    }

    pub(crate) fn corrupt(path: &Path, line: Option<u64>, reason: impl Into<String>) -> Error {
        ErrorKind::Corrupt {
            path: path.to_path_buf(),
            line,
            reason: reason.into(),
        }
        .into()
    }

    pub(crate) fn not_found(path: &Path, reason: impl Into<String>) -> Error {
        ErrorKind::NotFound {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
        .into()
    }

    pub(crate) fn invalid_state(message: impl Into<String>) -> Error {
        ErrorKind::InvalidState(message.into()).into()
    }

    /// A configuration error in `origin` (a file path or `<argument>`).
    pub fn config(origin: impl Into<String>, message: impl Into<String>) -> Error {
        ErrorKind::Config {
            origin: origin.into(),
            message: message.into(),
        }
        .into()
    }

    /// The call needs a Cargo feature this build does not have.
    pub fn unsupported(feature: &'static str) -> Error {
        ErrorKind::Unsupported { feature }.into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error(Box::new(kind))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            ErrorKind::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())?;
                match source.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
                        write!(
                            f,
                            " (free disk space or raise the quota, then retry; rows already saved are intact)"
                        )
                    }
                    // A read refused is about reading: advice about writing would mislead.
                    Some(libc::EACCES) | Some(libc::EPERM)
                        if ["read", "list", "stat", "find", "seek"]
                            .iter()
                            .any(|verb| action.starts_with(verb)) =>
                    {
                        write!(f, " (check that this user may read it)")
                    }
                    Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
                        write!(
                            f,
                            " (check that this user may write there, or choose another base_dir)"
                        )
                    }
                    _ => Ok(()),
                }
            }
            ErrorKind::InvalidName {
                what,
                value,
                reason,
            } => write!(f, "invalid {what} {}: {}", quote(value), cap(reason)),
            ErrorKind::InvalidValue { field, reason } => {
                write!(
                    f,
                    "invalid value for field {}: {}",
                    quote(field),
                    cap(reason)
                )
            }
            ErrorKind::Corrupt { path, line, reason } => match line {
                Some(line) => write!(f, "{}:{line}: {}", path.display(), cap(reason)),
                None => write!(f, "{}: {}", path.display(), cap(reason)),
            },
            ErrorKind::NotFound { path, reason } => {
                write!(f, "{} not found: {}", path.display(), cap(reason))
            }
            ErrorKind::InvalidState(message) => f.write_str(&cap(message)),
            ErrorKind::Config { origin, message } => write!(f, "{origin}: {}", cap(message)),
            ErrorKind::Unsupported { feature } => write!(
                f,
                "this build of expman lacks the `{feature}` feature; rebuild with `--features {feature}`"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How many characters of a caller's input a message quotes: a 10 MB name echoed in full would
/// make the message, the log it lands in and the terminal showing it useless.
pub(crate) const QUOTE_LIMIT: usize = 200;

/// Longest free text (a reason, a third-party parser's message) shown whole; longer text keeps
/// its start and its end, which is where such messages say what is wrong.
const TEXT_LIMIT: usize = 2000;

/// A caller's input as a message shows it: quoted and escaped like `{:?}`, and when longer
/// than [`QUOTE_LIMIT`] characters cut there, with an ellipsis and the total length:
/// `"aaaa…"… (10485760 bytes)`.
pub(crate) fn quote(value: &str) -> Quoted<'_> {
    Quoted(value)
}

/// See [`quote`].
pub(crate) struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTE_LIMIT) {
            None => write!(f, "{:?}", self.0),
            Some((end, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..end], self.0.len()),
        }
    }
}

/// `text` cut in the middle when it is longer than [`TEXT_LIMIT`] characters: every message
/// stays readable even when a reason or a parser's message embeds a huge input.
pub(crate) fn cap(text: &str) -> std::borrow::Cow<'_, str> {
    let chars = text.chars().count();
    if chars <= TEXT_LIMIT {
        return text.into();
    }
    let head_end = text
        .char_indices()
        .nth(TEXT_LIMIT / 2)
        .map_or(text.len(), |(i, _)| i);
    let tail_start = text
        .char_indices()
        .nth(chars - TEXT_LIMIT / 4)
        .map_or(text.len(), |(i, _)| i);
    format!(
        "{} … [{} bytes cut] … {}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
    .into()
}

/// Adds the path and action to a bare `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_read_gets_advice_about_reading_and_a_refused_write_about_writing() {
        let denied = || std::io::Error::from_raw_os_error(libc::EACCES);
        let path = Path::new("/exps/a/metrics/run_0001.csv");
        let read = Error::io("read the metrics table", path, denied()).to_string();
        assert!(
            read.ends_with("(check that this user may read it)"),
            "{read}"
        );
        let write = Error::io("write", path, denied()).to_string();
        assert!(write.contains("may write there"), "{write}");
    }

    #[test]
    fn quote_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(quote("a\"b").to_string(), "\"a\\\"b\"");
        let exact = "é".repeat(QUOTE_LIMIT);
        assert_eq!(quote(&exact).to_string(), format!("{exact:?}"));
        let long = "é".repeat(5_000_000);
        let shown = quote(&long).to_string();
        assert!(shown.starts_with(&format!("\"{}\"…", "é".repeat(QUOTE_LIMIT))));
        assert!(shown.ends_with("(10000000 bytes)"), "{shown}");
    }

    #[test]
    fn cap_keeps_both_ends_of_long_text() {
        assert_eq!(cap("short"), "short");
        let text = format!("start {} end", "x".repeat(10_000_000));
        let shown = cap(&text);
        assert!(shown.len() < 3 * TEXT_LIMIT, "{}", shown.len());
        assert!(shown.starts_with("start x") && shown.ends_with("x end"));
        assert!(shown.contains("bytes cut"));
    }
}
