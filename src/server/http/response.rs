//! Writing an answer: the status line and headers (the same safe headers on every answer), then
//! the body, whole within the write deadline.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::Reply;

/// The status line and headers of `reply`.
pub(super) fn head(reply: &Reply, keep_alive: bool) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nConnection: {}\r\n\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    head
}

/// Writes `reply` whole within `limit`, or fails.
pub(super) fn write_reply(
    stream: &mut TcpStream,
    reply: &Reply,
    keep_alive: bool,
    limit: Duration,
) -> std::io::Result<()> {
    let deadline = Instant::now() + limit;
    let mut head = head(reply, keep_alive);
    // One write for small answers (most of them); no copy of large ones.
    let parts: [&[u8]; 2] = if reply.body.len() <= 16 * 1024 {
        head.extend_from_slice(&reply.body);
        [&head, &[]]
    } else {
        [&head, &reply.body]
    };
    for mut part in parts {
        while !part.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            stream.set_write_timeout(Some(left))?;
            match stream.write(part) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => part = &part[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}
