//! The status server and web UI (feature `server`): `EXP <dir>`, or embedded in a training
//! process through [`Server::start`] (and the C ABI's `expman_server_start`).
//!
//! tiny_http accepts connections on its own threads; a few worker threads answer requests. The
//! page and its assets are embedded in the binary. The HTTP API is described in `API.md`.

mod assets;
mod index;
mod routes;
pub mod tail;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub use index::{Index, Scanner, Summary};

use crate::error::{Error, IoContext, Result};
use routes::State;

/// The port the seed's UI used.
pub const DEFAULT_PORT: u16 = 6066;
/// How many later ports are tried when the asked one is taken.
const PORT_TRIES: u16 = 50;
const WORKERS: usize = 4;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind; `127.0.0.1` by default. Any other address requires the access token.
    pub host: IpAddr,
    /// Port to try first (the next free one is taken if it is busy); 0 for any.
    pub port: u16,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            host: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_PORT,
        }
    }
}

/// A running server; stops when dropped or on [`Server::stop`].
pub struct Server {
    http: Arc<tiny_http::Server>,
    index: Arc<Index>,
    addr: SocketAddr,
    url: String,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Serves the experiments directory `root` on background threads.
    pub fn start(root: &Path, options: &ServerOptions) -> Result<Server> {
        if !root.is_dir() {
            return Err(Error::not_found(
                root,
                "the experiments directory to serve does not exist; pass the base_dir your \
                 scheduler or scripts write to",
            ));
        }
        let root = root.canonicalize().at("resolve", root)?;
        let listener = bind(options)?;
        let addr = listener.local_addr().at("read the address of", &root)?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::invalid_state(format!("cannot serve on {addr}: {e}")))?;
        let token = random_token()?;
        let token_required = !options.host.is_loopback();
        let shown_host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let url = if token_required {
            format!("http://{shown_host}:{}/?token={token}", addr.port())
        } else {
            format!("http://{shown_host}:{}/", addr.port())
        };
        let index = Arc::new(Index::new(&root));
        let state = Arc::new(State {
            index: Arc::clone(&index),
            root,
            token,
            token_required,
        });
        let http = Arc::new(http);
        let stopping = Arc::new(AtomicBool::new(false));
        let refresher = {
            let (index, stopping) = (Arc::clone(&index), Arc::clone(&stopping));
            std::thread::spawn(move || index.refresher(&stopping))
        };
        let mut workers: Vec<JoinHandle<()>> = (0..WORKERS)
            .map(|_| {
                let (http, state, stopping) =
                    (Arc::clone(&http), Arc::clone(&state), Arc::clone(&stopping));
                std::thread::spawn(move || {
                    while !stopping.load(Ordering::SeqCst) {
                        match http.recv_timeout(Duration::from_millis(200)) {
                            Ok(Some(request)) => routes::handle(&state, request),
                            Ok(None) => {}
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        workers.push(refresher);
        Ok(Server {
            index,
            http,
            addr,
            url,
            stopping,
            workers,
        })
    }

    /// The page's URL (with the token where one is required).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the server is stopped from another thread (or forever).
    pub fn wait(mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }

    /// Stops serving and waits for the workers.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.index.poke();
        self.http.unblock();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds the asked port, else the next free one, else any.
fn bind(options: &ServerOptions) -> Result<TcpListener> {
    let mut last_error = None;
    let ports: Vec<u16> = if options.port == 0 {
        vec![0]
    } else {
        (0..PORT_TRIES)
            .filter_map(|i| options.port.checked_add(i))
            .chain([0])
            .collect()
    };
    for port in ports {
        match TcpListener::bind((options.host, port)) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => {
                return Err(Error::config(
                    format!("{}:{port}", options.host),
                    format!("cannot listen there: {e}; choose another --host or --port"),
                ));
            }
        }
    }
    Err(Error::config(
        format!("{}:{}", options.host, options.port),
        format!(
            "no free port: {}",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}

/// 128 random bits as hex, from the kernel.
fn random_token() -> Result<String> {
    use std::io::Read;
    let path = PathBuf::from("/dev/urandom");
    let mut bytes = [0u8; 16];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .at("read random bytes from", &path)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
