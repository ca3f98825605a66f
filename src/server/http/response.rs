//! Writing an answer: the status line and headers (the same safe headers on every answer), then
//! the body, whole within the write deadline; a file body (a download) a piece at a time, each
//! piece within the deadline.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use super::Reply;

/// The status line and headers of `reply`.
pub(super) fn head(reply: &Reply, keep_alive: bool) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    let length = reply
        .file
        .as_ref()
        .map_or(reply.body.len() as u64, |f| f.len);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\n\
         X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'none'\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        length,
    );
    if let Some(file) = &reply.file {
        let _ = write!(head, "Content-Disposition: {}\r\n", disposition(&file.name));
    }
    if reply.status == 405 {
        head.extend_from_slice(b"Allow: GET, HEAD, POST\r\n");
    }
    let _ = write!(
        head,
        "Connection: {}\r\n\r\n",
        if keep_alive { "keep-alive" } else { "close" }
    );
    head
}

/// `attachment` with the name: plain ASCII in `filename` (anything else replaced by `_`, so
/// no quote or control character reaches the header), the exact name in `filename*` (RFC 6266).
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Bytes of a file body read and written at a time; each piece must be taken within the
/// write limit, so a download of any size keeps going while the client keeps reading.
const PIECE: usize = 256 * 1024;

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
    for part in parts {
        write_within(stream, part, deadline)?;
    }
    let Some(body) = &reply.file else {
        return Ok(());
    };
    let mut piece = vec![0u8; PIECE];
    let mut sent = 0u64;
    while sent < body.len {
        let n = PIECE.min((body.len - sent) as usize);
        // A file cut shorter since it was opened cannot fill the promised length: the
        // connection is closed, which the client sees as a short body.
        body.file.read_exact_at(&mut piece[..n], sent)?;
        write_within(stream, &piece[..n], Instant::now() + limit)?;
        sent += n as u64;
    }
    Ok(())
}

/// Writes the head of `reply` alone (the answer to a HEAD request).
pub(super) fn write_head(
    stream: &mut TcpStream,
    reply: &Reply,
    keep_alive: bool,
    limit: Duration,
) -> std::io::Result<()> {
    write_within(stream, &head(reply, keep_alive), Instant::now() + limit)
}

/// Writes `part` whole before `deadline`, or fails.
fn write_within(stream: &mut TcpStream, mut part: &[u8], deadline: Instant) -> std::io::Result<()> {
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
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn a_file_name_cannot_break_out_of_its_header() {
        assert_eq!(
            disposition("run_0001.log"),
            "attachment; filename=\"run_0001.log\"; filename*=UTF-8''run_0001.log"
        );
        let hostile = disposition("a\"b\r\nSet-Cookie: x=1;ü.pt");
        assert!(!hostile.contains(['\r', '\n']));
        assert!(hostile.starts_with("attachment; filename=\"a_b__Set-Cookie: x=1;_.pt\""));
        assert!(hostile.ends_with("filename*=UTF-8''a%22b%0D%0ASet-Cookie%3A%20x%3D1%3B%C3%BC.pt"));
    }
}
