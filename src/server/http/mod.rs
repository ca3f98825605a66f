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
//!
//! `connections` keeps the registry of open connections, the handler slots and the loop that
//! serves one connection; `request` reads and checks a request against the limits; `response`
//! writes an answer within its deadline.

mod connections;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) use request::Request;

use super::reply::Reply;
use connections::Shared;

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

/// The request handler: runs on connection threads, [`Limits::handlers`] at a time.
pub(crate) type Handler = dyn Fn(&Request) -> Reply + Send + Sync + 'static;

/// A running HTTP server; stops when dropped or on [`HttpServer::stop`].
pub(crate) struct HttpServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `listener` with `handler` on background threads.
    pub(crate) fn start(
        listener: TcpListener,
        limits: Limits,
        handler: Box<Handler>,
    ) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(limits, handler));
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("expman-http-accept".into())
                .spawn(move || connections::accept_loop(&shared, &listener))?
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
        if !self.shared.begin_stopping() {
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
        self.shared.close_all(5 * SECOND);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

const SECOND: Duration = Duration::from_secs(1);
