//! The HTTP/1.1 layer under the UI: accepts connections, reads requests within fixed limits and
//! deadlines, runs the handler and writes its answer. Made for a host it must never harm (it
//! runs inside training processes): nothing a client sends can make it allocate more than the
//! limits below, hold a thread past a deadline, or unwind out of a handler.
//!
//! - One thread per connection, at most [`Limits::connections`] of them. A connection that waits
//!   on its client (for a request, a body, or to take an answer) can be evicted: when the limit
//!   is reached, a new connection closes the one that has waited longest, so clients trickling
//!   bytes (slow-loris) never lock out a client that sends a whole request at once. When every
//!   connection is busy in the server instead, the new one is refused with a 503.
//! - The request line and headers are parsed by `httparse` from a buffer of at most
//!   [`Limits::head_bytes`]; a body over [`Limits::body_bytes`] is refused (413) before a byte of
//!   it is read, and never drained: the connection is closed after the answer.
//! - A whole request (head and body) must arrive within [`Limits::request_time`] of the server
//!   starting to wait for it, and a whole answer must be taken within [`Limits::write_time`]:
//!   deadlines over the whole exchange, not timeouts per read, which a byte a second would beat.
//! - At most [`Limits::handlers`] handlers run at once (they read files); a request that waits
//!   [`Limits::handler_wait`] for one is answered 503. A handler that panics is answered 500 and
//!   its thread goes on serving.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a client may cost the server.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Request line plus headers, in bytes.
    pub(crate) head_bytes: usize,
    /// Number of header lines.
    pub(crate) headers: usize,
    /// Request body, in bytes (the API's requests have none).
    pub(crate) body_bytes: u64,
    /// From starting to wait for a request to having all of it (an idle keep-alive connection
    /// is closed after this too).
    pub(crate) request_time: Duration,
    /// For the client to take a whole answer.
    pub(crate) write_time: Duration,
    /// Open connections.
    pub(crate) connections: usize,
    /// Handlers running at once.
    pub(crate) handlers: usize,
    /// How long a complete request may wait for a handler before it is answered 503.
    pub(crate) handler_wait: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // Browsers send a few hundred bytes, plus the cookies of every local app.
            head_bytes: 32 * 1024,
            headers: 64,
            body_bytes: 64 * 1024,
            request_time: Duration::from_secs(10),
            write_time: Duration::from_secs(30),
            connections: 64,
            handlers: 4,
            handler_wait: Duration::from_secs(10),
        }
    }
}

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

    /// Whether the client asked to keep the connection open after this request.
    fn keep_alive(&self) -> bool {
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

/// An answer: always a complete body with its length (never chunked).
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// `{"error": message}` with `status`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(&serde_json::json!({ "error": message.into() }))
                .unwrap_or_default(),
        }
    }
}

/// The request handler: runs on connection threads, [`Limits::handlers`] at a time.
pub(crate) type Handler = dyn Fn(&Request) -> Response + Send + Sync + 'static;

/// A running HTTP server; stops when dropped or on [`HttpServer::stop`].
pub(crate) struct HttpServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

/// What the acceptor and the connection threads share.
struct Shared {
    limits: Limits,
    handler: Box<Handler>,
    stopping: AtomicBool,
    connections: Mutex<Connections>,
    /// Signalled when a connection ends (for `stop`).
    ended: Condvar,
    /// Free handler slots.
    slots: Mutex<usize>,
    slot_freed: Condvar,
}

/// The open connections, by id.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, Connection>,
}

struct Connection {
    /// A second handle on the socket, to shut it down from another thread.
    socket: TcpStream,
    /// Since when the connection waits on its client; `None` while the server works on it.
    waiting_since: Option<Instant>,
}

impl HttpServer {
    /// Serves `listener` with `handler` on background threads.
    pub(crate) fn start(
        listener: TcpListener,
        limits: Limits,
        handler: Box<Handler>,
    ) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            slots: Mutex::new(limits.handlers.max(1)),
            limits,
            handler,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Connections::default()),
            ended: Condvar::new(),
            slot_freed: Condvar::new(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("expman-http-accept".into())
                .spawn(move || accept_loop(&shared, &listener))?
        };
        Ok(HttpServer {
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    #[cfg(test)]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and waits (a few seconds at most) for the
    /// handlers still running to finish.
    pub(crate) fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // The acceptor blocks in accept(): a connection of our own wakes it to see the flag.
        let wake = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let woken =
            TcpStream::connect_timeout(&SocketAddr::new(wake, self.addr.port()), SECOND).is_ok();
        if let Some(acceptor) = self.acceptor.take()
            && woken
        {
            let _ = acceptor.join();
        }
        let mut connections = self.shared.lock_connections();
        for connection in connections.open.values() {
            let _ = connection.socket.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + 5 * SECOND;
        while !connections.open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            connections = self
                .shared
                .ended
                .wait_timeout(connections, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

const SECOND: Duration = Duration::from_secs(1);

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => admit(shared, stream),
            // Out of file descriptors or memory for a moment: back off instead of spinning.
            Err(e) if e.kind() != ErrorKind::Interrupted => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => {}
        }
    }
}

/// Registers a new connection (evicting the longest-waiting one at the limit) and starts its
/// thread, or refuses it with a 503 when every connection is busy in the server.
fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(socket) = stream.try_clone() else {
        return;
    };
    let id = {
        let mut connections = shared.lock_connections();
        if connections.open.len() >= shared.limits.connections {
            let oldest = connections
                .open
                .iter()
                .filter_map(|(id, c)| c.waiting_since.map(|since| (since, *id)))
                .min();
            match oldest {
                Some((_, id)) => {
                    if let Some(evicted) = connections.open.remove(&id) {
                        let _ = evicted.socket.shutdown(Shutdown::Both);
                    }
                }
                None => {
                    drop(connections);
                    refuse(stream);
                    return;
                }
            }
        }
        let id = connections.next_id;
        connections.next_id += 1;
        connections.open.insert(
            id,
            Connection {
                socket,
                waiting_since: Some(Instant::now()),
            },
        );
        id
    };
    let thread_shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("expman-http".into())
        .spawn(move || {
            let _registered = Registered {
                shared: &thread_shared,
                id,
            };
            // A bug in this layer ends this connection only, never the process.
            let _ = catch_unwind(AssertUnwindSafe(|| serve(&thread_shared, id, stream)));
        });
    if spawned.is_err() {
        shared.lock_connections().open.remove(&id);
    }
}

/// Answers 503 on a connection that will not be served, without blocking the acceptor.
fn refuse(stream: TcpStream) {
    let response = Response::error(
        503,
        "the server is busy with other connections; try again in a moment",
    );
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write_all(&head(&response, false));
    let _ = (&stream).write_all(&response.body);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Removes its connection from the registry when the thread ends, by return or by panic.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.lock_connections().open.remove(&self.id);
        self.shared.ended.notify_all();
    }
}

impl Shared {
    fn lock_connections(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the connection as waiting on its client (evictable) or busy in the server.
    fn set_waiting(&self, id: u64, waiting: bool) {
        if let Some(connection) = self.lock_connections().open.get_mut(&id) {
            connection.waiting_since = waiting.then(Instant::now);
        }
    }

    /// Runs the handler in a free slot, turning a panic into a 500.
    fn run_handler(&self, request: &Request) -> Response {
        let deadline = Instant::now() + self.limits.handler_wait;
        let mut free = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopping.load(Ordering::SeqCst) {
                return Response::error(
                    503,
                    "the server is busy answering other requests; try again in a moment",
                );
            }
            free = self
                .slot_freed
                .wait_timeout(free, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *free -= 1;
        drop(free);
        let _slot = Slot(self);
        match catch_unwind(AssertUnwindSafe(|| (self.handler)(request))) {
            Ok(response) => response,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Response::error(
                    500,
                    format!(
                        "internal error while answering {} {}: {what}; please report it",
                        request.method, request.target
                    ),
                )
            }
        }
    }
}

/// A taken handler slot, given back on drop (also when the handler panics).
struct Slot<'a>(&'a Shared);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.slots.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.slot_freed.notify_one();
    }
}

/// Why no request could be read.
enum ReadError {
    /// The client closed (or the connection was evicted): nothing to answer.
    Closed,
    /// The request did not arrive in time.
    TimedOut,
    /// The request cannot be served: answer this and close.
    Refused(Response),
}

/// Serves the requests of one connection until it closes, fails or times out.
fn serve(shared: &Shared, id: u64, mut stream: TcpStream) {
    let limits = &shared.limits;
    // Bytes received but not yet used: a partial request, or the next pipelined one.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        shared.set_waiting(id, true);
        let deadline = Instant::now() + limits.request_time;
        let request = match read_request(&mut stream, &mut pending, limits, deadline) {
            Ok(request) => request,
            Err(ReadError::Closed) => return,
            Err(ReadError::TimedOut) => {
                let response = Response::error(
                    408,
                    format!(
                        "the request did not arrive within {:?}; send it whole",
                        limits.request_time
                    ),
                );
                let _ = write_response(&mut stream, &response, false, limits.write_time);
                return;
            }
            Err(ReadError::Refused(response)) => {
                let _ = write_response(&mut stream, &response, false, limits.write_time);
                let _ = stream.shutdown(Shutdown::Write);
                return;
            }
        };
        shared.set_waiting(id, false);
        let response = shared.run_handler(&request);
        let keep = request.keep_alive() && !shared.stopping.load(Ordering::SeqCst);
        shared.set_waiting(id, true);
        if write_response(&mut stream, &response, keep, limits.write_time).is_err() || !keep {
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Reads one request from `stream` (after what is already in `pending`) by `deadline`.
fn read_request(
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
            return Err(ReadError::Refused(Response::error(
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
            return Err(ReadError::Refused(Response::error(
                431,
                format!("more than {} header lines; send fewer", limits.headers),
            )));
        }
        Err(e) => {
            return Err(ReadError::Refused(Response::error(
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
        return Err(ReadError::Refused(Response::error(
            501,
            "request bodies with Transfer-Encoding are not supported; send Content-Length",
        )));
    }
    let body_len = match request.header_count("content-length") {
        0 => 0,
        1 => {
            let value = request.header("content-length").unwrap_or_default().trim();
            match value.parse::<u64>() {
                Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(ReadError::Refused(Response::error(
                        400,
                        format!("Content-Length {value:.40?} is not a byte count"),
                    )));
                }
            }
        }
        _ => {
            return Err(ReadError::Refused(Response::error(
                400,
                "more than one Content-Length header",
            )));
        }
    };
    if body_len > limits.body_bytes {
        // Refused before a byte of it is read; the connection is closed after the answer,
        // so the unread body is never drained.
        return Err(ReadError::Refused(Response::error(
            413,
            format!(
                "a request body of {body_len} bytes is over the limit of {} bytes",
                limits.body_bytes
            ),
        )));
    }
    Ok(Some((request, head_len, body_len)))
}

/// The status line and headers of `response`.
fn head(response: &Response, keep_alive: bool) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nConnection: {}\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    head
}

/// Writes `response` whole within `limit`, or fails.
fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    keep_alive: bool,
    limit: Duration,
) -> std::io::Result<()> {
    let deadline = Instant::now() + limit;
    let mut head = head(response, keep_alive);
    // One write for small answers (most of them); no copy of large ones.
    let parts: [&[u8]; 2] = if response.body.len() <= 16 * 1024 {
        head.extend_from_slice(&response.body);
        [&head, &[]]
    } else {
        [&head, &response.body]
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

#[cfg(test)]
mod tests {
    //! The layer's own guarantees over real sockets on 127.0.0.1, with short limits and
    //! handlers made to panic or to block.

    use super::*;
    use std::sync::mpsc;

    fn start(limits: Limits, handler: Box<Handler>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        HttpServer::start(listener, limits, handler).expect("start")
    }

    /// Sends `request` and reads until the server closes, for at most 10 s.
    fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.write_all(request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    const GET: &[u8] = b"GET /x HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";

    fn ok(_: &Request) -> Response {
        Response {
            status: 200,
            content_type: "text/plain",
            body: b"fine".to_vec(),
        }
    }

    #[test]
    fn a_panicking_handler_is_answered_500_and_no_capacity_is_lost() {
        let limits = Limits {
            handlers: 2,
            ..Limits::default()
        };
        let server = start(
            limits,
            Box::new(|r: &Request| {
                if r.target == "/boom" {
                    panic!("boom on purpose");
                }
                ok(r)
            }),
        );
        // More panics than handler slots and than connections would survive if each cost one.
        for _ in 0..10 {
            let (status, text) = exchange(
                server.addr(),
                b"GET /boom HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            );
            assert_eq!(status, 500, "{text}");
            assert!(text.contains("boom on purpose"), "{text}");
        }
        let (status, text) = exchange(server.addr(), GET);
        assert_eq!(status, 200, "{text}");
    }

    #[test]
    fn slow_requests_time_out_and_oversized_heads_and_bodies_are_refused() {
        let limits = Limits {
            request_time: Duration::from_millis(300),
            head_bytes: 1024,
            body_bytes: 100,
            ..Limits::default()
        };
        let server = start(limits, Box::new(ok));
        let addr = server.addr();
        // A head that never ends, trickled a byte every 20 ms: the connection is ended when the
        // deadline passes, though every single read would have succeeded in time.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        slow.write_all(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .unwrap();
        let mut writer = slow.try_clone().unwrap();
        let trickle = std::thread::spawn(move || {
            for _ in 0..100 {
                if writer.write_all(b"a").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            writer
        });
        let started = Instant::now();
        let mut answer = Vec::new();
        let _ = slow.read_to_end(&mut answer);
        let took = started.elapsed();
        let answer = String::from_utf8_lossy(&answer);
        assert!(took < Duration::from_millis(1500), "ended after {took:?}");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        drop(trickle.join());
        // Too many header bytes, and a body over the limit (refused unread).
        let big = format!(
            "GET /x HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(2000)
        );
        assert_eq!(exchange(addr, big.as_bytes()).0, 431);
        let (status, text) = exchange(
            addr,
            b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 18446744073709551615\r\n\r\n",
        );
        assert_eq!(status, 413, "{text}");
        assert_eq!(
            exchange(
                addr,
                b"POST /x HTTP/1.1\r\nHost: 1\r\nContent-Length: 99999999999999999999999\r\n\r\n"
            )
            .0,
            400
        );
        assert_eq!(
            exchange(
                addr,
                b"POST /x HTTP/1.1\r\nHost: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .0,
            501
        );
        // A body within the limit is read whole.
        assert_eq!(
            exchange(
                addr,
                b"POST /x HTTP/1.0\r\nHost: 1\r\nContent-Length: 5\r\n\r\nhello"
            )
            .0,
            200
        );
    }

    #[test]
    fn keep_alive_serves_several_requests_on_one_connection() {
        let server = start(Limits::default(), Box::new(ok));
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Two pipelined requests, then one that closes.
        stream
            .write_all(
                b"GET /a HTTP/1.1\r\nHost: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: 1\r\n\r\n\
                  GET /c HTTP/1.1\r\nHost: 1\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");
    }

    #[test]
    fn at_the_connection_limit_waiting_clients_are_evicted_and_busy_ones_refused() {
        let limits = Limits {
            connections: 4,
            handlers: 4,
            ..Limits::default()
        };
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let entered_tx = Mutex::new(entered_tx);
        let server = start(
            limits,
            Box::new(move |r: &Request| {
                if r.target == "/block" {
                    let _ = entered_tx.lock().unwrap().send(());
                    let _ = release_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(20));
                }
                ok(r)
            }),
        );
        let addr = server.addr();
        // Four idle connections (waiting on their client) fill the limit; a fifth, whole
        // request still gets its answer by evicting the oldest.
        let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        assert_eq!(exchange(addr, GET).0, 200);
        drop(idle);
        // Four connections busy in the handler: a fifth is refused at once, not queued.
        let blocked: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    exchange(addr, b"GET /block HTTP/1.0\r\nHost: 1\r\n\r\n").0
                })
            })
            .collect();
        for _ in 0..4 {
            entered_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the handler is entered");
        }
        let (status, text) = exchange(addr, GET);
        assert!(status == 503 || status == 0, "{text}");
        for _ in 0..4 {
            release_tx.send(()).unwrap();
        }
        for b in blocked {
            assert_eq!(b.join().unwrap(), 200);
        }
        assert_eq!(exchange(addr, GET).0, 200);
    }
}
