//! Reading a request: the head parsed by `httparse` from a bounded buffer, the body read whole
//! when it is within its limit and refused unread when it is not, all by one deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::{Limits, Reply};

/// One request, read whole.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `POST`, ... as sent.
    pub(crate) method: String,
    /// The request target: path and query.
    pub(crate) target: String,
    /// Header names (lowercase) and values (invalid UTF-8 replaced), in order.
    pub(crate) headers: Vec<(String, String)>,
    /// HTTP/1.0 (true) or HTTP/1.1.
    http10: bool,
}

impl Request {
    /// The value of the header `name` (lowercase) if it is sent exactly once.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let first = values.next()?;
        values.next().is_none().then_some(first.1.as_str())
    }

    /// How many times the header `name` (lowercase) is sent.
    pub(crate) fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// Whether the client waits for `100 Continue` before it sends the body (RFC 9110 10.1.1;
    /// an HTTP/1.0 client never does).
    fn expects_continue(&self) -> bool {
        !self.http10
            && self
                .header("expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// Whether the client asked to keep the connection open after this request.
    pub(super) fn keep_alive(&self) -> bool {
        let connection = |token: &str| {
            self.headers.iter().any(|(n, v)| {
                n == "connection" && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        };
        if self.http10 {
            connection("keep-alive")
        } else {
            !connection("close")
        }
    }
}

/// Why no request could be read.
pub(super) enum ReadError {
    /// The client closed (or the connection was evicted): nothing to answer.
    Closed,
    /// The request did not arrive in time.
    TimedOut,
    /// The request cannot be served: answer this and close.
    Refused(Reply),
}

/// Reads one request from `stream` (after what is already in `pending`) by `deadline`.
pub(super) fn read_request(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    limits: &Limits,
    deadline: Instant,
) -> Result<Request, ReadError> {
    // The head.
    let (request, head_len, body_len) = loop {
        if !pending.is_empty()
            && let Some(parsed) = parse_head(pending, limits)?
        {
            break parsed;
        }
        if pending.len() >= limits.head_bytes {
            return Err(ReadError::Refused(Reply::error(
                431,
                format!(
                    "the request line and headers exceed {} bytes; send fewer or shorter headers",
                    limits.head_bytes
                ),
            )));
        }
        let room = limits.head_bytes - pending.len();
        read_some(stream, pending, room, deadline)?;
    };
    pending.drain(..head_len);
    // The body (at most `body_bytes`): read whole, so the next request on the connection starts
    // where it should, and set aside (no endpoint takes one).
    let body_len = usize::try_from(body_len).unwrap_or(usize::MAX);
    if body_len > pending.len() && request.expects_continue() {
        // curl and most clients wait for this (curl for a second) before sending a body.
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Closed)?;
    }
    while pending.len() < body_len {
        let room = body_len - pending.len();
        read_some(stream, pending, room, deadline)?;
    }
    pending.drain(..body_len);
    Ok(request)
}

/// Reads at most `room` more bytes onto `pending`, waiting no later than `deadline`.
fn read_some(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    room: usize,
    deadline: Instant,
) -> Result<(), ReadError> {
    let mut chunk = [0u8; 16 * 1024];
    let want = room.min(chunk.len());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::TimedOut);
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(ReadError::Closed);
        }
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => {
                pending.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(ReadError::TimedOut);
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

/// Parses a complete head in `bytes`: the request without its body, the head's length and the
/// body's length. `None` while the head is incomplete.
fn parse_head(bytes: &[u8], limits: &Limits) -> Result<Option<(Request, usize, u64)>, ReadError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.headers];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadError::Refused(Reply::error(
                431,
                format!("more than {} header lines; send fewer", limits.headers),
            )));
        }
        Err(e) => {
            return Err(ReadError::Refused(Reply::error(
                400,
                format!("malformed HTTP request ({e})"),
            )));
        }
    };
    let request = Request {
        method: parsed.method.unwrap_or_default().to_string(),
        target: parsed.path.unwrap_or_default().to_string(),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        http10: parsed.version == Some(0),
    };
    if request.header_count("transfer-encoding") > 0 {
        return Err(ReadError::Refused(Reply::error(
            501,
            "request bodies with Transfer-Encoding are not supported; send Content-Length",
        )));
    }
    if request.header_count("expect") > 0 && !request.http10 && !request.expects_continue() {
        return Err(ReadError::Refused(Reply::error(
            417,
            "the only expectation this server meets is `Expect: 100-continue`",
        )));
    }
    let body_len = body_length(&request)?;
    if body_len > limits.body_bytes {
        // Refused before a byte of it is read; the connection is closed after the answer,
        // so the unread body is never drained.
        return Err(ReadError::Refused(Reply::error(
            413,
            format!(
                "a request body of {body_len} bytes is over the limit of {} bytes",
                limits.body_bytes
            ),
        )));
    }
    Ok(Some((request, head_len, body_len)))
}

/// The body's length from `Content-Length` (0 without one); one header with a plain number,
/// else a 400.
fn body_length(request: &Request) -> Result<u64, ReadError> {
    match request.header_count("content-length") {
        0 => Ok(0),
        1 => {
            let value = request.header("content-length").unwrap_or_default().trim();
            match value.parse::<u64>() {
                Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(ReadError::Refused(Reply::error(
                    400,
                    format!("Content-Length {value:.40?} is not a byte count"),
                ))),
            }
        }
        _ => Err(ReadError::Refused(Reply::error(
            400,
            "more than one Content-Length header",
        ))),
    }
}
