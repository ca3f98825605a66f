//! A plain HTTP/1.0 client for the tests that talk to the server over a real socket: bytes go
//! out as given (hostile ones too), and the whole answer comes back as status, head and body.
//! HTTP/1.0, so the server closes the connection and the body is never chunked.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// How long [`raw`] and [`get`] wait for a whole answer.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// An HTTP answer.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (a test failure naming the start of the body if it is not).
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }
}

/// Sends `request` as it is and reads the whole answer within `limit`; the error says which
/// step failed.
pub fn exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> Result<Answer, String> {
    let deadline = Instant::now() + limit;
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if Instant::now() > deadline {
            return Err(format!("no complete answer within {limit:?}"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read: {e} after {} bytes", response.len())),
        }
    }
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {:?}", String::from_utf8_lossy(&response)))?;
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok(Answer {
        status,
        head,
        body: response[head_end + 4..].to_vec(),
    })
}

/// Sends `request` and reads the answer; any failure fails the test.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    exchange(addr, request, PATIENCE).unwrap_or_else(|e| {
        let line = String::from_utf8_lossy(request.split(|&b| b == b'\r').next().unwrap_or(b""));
        panic!("{line}: {e}")
    })
}

/// A GET as a browser on this machine sends it (`Host: 127.0.0.1:port`).
pub fn get(addr: SocketAddr, path: &str) -> Answer {
    raw(
        addr,
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}
