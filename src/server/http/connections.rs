//! The connections: the acceptor, the registry of open connections (with eviction of the one
//! that has waited longest on its client), the handler slots, and the loop that serves the
//! requests of one connection.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::request::{ReadError, Request, read_request};
use super::response::{head, write_head, write_reply};
use super::{Handler, Limits, Reply};

/// What the acceptor and the connection threads share.
pub(super) struct Shared {
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

impl Shared {
    /// The state of a server that has not accepted anything yet.
    pub(super) fn new(limits: Limits, handler: Box<Handler>) -> Shared {
        Shared {
            slots: Mutex::new(limits.handlers.max(1)),
            limits,
            handler,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Connections::default()),
            ended: Condvar::new(),
            slot_freed: Condvar::new(),
        }
    }

    /// Sets the stopping flag; false if it was already set (the server is stopping).
    pub(super) fn begin_stopping(&self) -> bool {
        !self.stopping.swap(true, Ordering::SeqCst)
    }

    /// Shuts every open connection down and waits, at most `within`, for their threads to end.
    pub(super) fn close_all(&self, within: Duration) {
        let mut connections = self.lock_connections();
        for connection in connections.open.values() {
            let _ = connection.socket.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + within;
        while !connections.open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            connections = self
                .ended
                .wait_timeout(connections, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

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
    fn run_handler(&self, request: &Request) -> Reply {
        let deadline = Instant::now() + self.limits.handler_wait;
        let mut free = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopping.load(Ordering::SeqCst) {
                return Reply::error(
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
            Ok(reply) => reply,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Reply::error(
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

/// Accepts connections until the server stops.
pub(super) fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
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
    let reply = Reply::error(
        503,
        "the server is busy with other connections; try again in a moment",
    );
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write_all(&head(&reply, false));
    let _ = (&stream).write_all(&reply.body);
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

/// A taken handler slot, given back on drop (also when the handler panics).
struct Slot<'a>(&'a Shared);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.slots.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.slot_freed.notify_one();
    }
}

/// Serves the requests of one connection until it closes, fails or times out.
fn serve(shared: &Shared, id: u64, mut stream: TcpStream) {
    let limits = &shared.limits;
    // Bytes received but not yet used: a partial request, or the next pipelined one.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        shared.set_waiting(id, true);
        let deadline = Instant::now() + limits.request_time;
        let mut request = match read_request(&mut stream, &mut pending, limits, deadline) {
            Ok(request) => request,
            Err(ReadError::Closed) => return,
            Err(ReadError::TimedOut) if pending.is_empty() => {
                // An idle connection (kept alive, or opened ahead by a browser): closing it
                // says enough, and a 408 there could meet the client's next request.
                let _ = stream.shutdown(Shutdown::Write);
                return;
            }
            Err(ReadError::TimedOut) => {
                let reply = Reply::error(
                    408,
                    format!(
                        "the request did not arrive within {:?}; send it whole",
                        limits.request_time
                    ),
                );
                let _ = write_reply(&mut stream, &reply, false, limits.write_time);
                return;
            }
            Err(ReadError::Refused(reply)) => {
                let _ = write_reply(&mut stream, &reply, false, limits.write_time);
                let _ = stream.shutdown(Shutdown::Write);
                return;
            }
        };
        shared.set_waiting(id, false);
        // HEAD is GET without the body (RFC 9110 9.3.2): the same status and headers.
        let head_only = request.method == "HEAD";
        if head_only {
            request.method = "GET".to_string();
        }
        let reply = shared.run_handler(&request);
        let keep = request.keep_alive() && !shared.stopping.load(Ordering::SeqCst);
        shared.set_waiting(id, true);
        let written = match head_only {
            true => write_head(&mut stream, &reply, keep, limits.write_time),
            false => write_reply(&mut stream, &reply, keep, limits.write_time),
        };
        if written.is_err() || !keep {
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
    }
}
