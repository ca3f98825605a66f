//! The status server and web UI (feature `server`): `EXP <dir>`, or embedded in a training
//! process through [`Server::start`] (and the C ABI's `expman_server_start`).
//!
//! `http` holds the connections (limits, deadlines, a bounded number of them, panics answered
//! 500) and answers with a `reply`; `routes` decodes the `target` and dispatches; `access`
//! checks who is asking (Host, Origin, token); `api` answers the endpoints of `API.md`;
//! `index` keeps the listing ready (with `exception`, the last exception line in a failed run's
//! log); `tail` reads the ends of large files; `series` answers the charts (columns parsed once
//! and cached, smoothed, thinned without losing extremes); `logs` pages, searches and serves
//! whole logs; `confine` keeps every read inside the served directory; `assets` embeds the page and its modules in the binary.

mod access;
mod api;
mod assets;
mod confine;
mod exception;
mod http;
mod index;
mod logs;
mod reply;
mod routes;
mod series;
pub mod tail;
mod target;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

pub use index::{Index, Scanner, Summary};

use crate::error::{Error, IoContext, Result};
use access::Access;
use routes::State;

/// The port the seed's UI used.
pub const DEFAULT_PORT: u16 = 6066;
/// How many later ports are tried when the asked one is taken.
const PORT_TRIES: u16 = 50;

/// Where and how to serve.
///
/// ```no_run
/// use expman::server::{Server, ServerOptions};
///
/// let options = ServerOptions {
///     port: 0,
///     // Reached through a reverse proxy or an SSH alias under this name.
///     allowed_hosts: vec!["gpu-node-3".into()],
///     ..ServerOptions::default()
/// };
/// let server = Server::start("experiments".as_ref(), &options)?;
/// println!("{}", server.url());
/// # Ok::<(), expman::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind; `127.0.0.1` by default. Any other address requires the access token.
    pub host: IpAddr,
    /// Port to try first (the next free one is taken if it is busy); 0 for any.
    pub port: u16,
    /// Host names, besides the bound address, `localhost`, `127.0.0.1` and `[::1]`, that
    /// requests may name in their `Host` header (`EXP --allow-host`). Every other name is
    /// refused with 403, which is what stops DNS rebinding: a web page whose name is made to
    /// resolve to this machine still sends its own name.
    pub allowed_hosts: Vec<String>,
    /// Whether every request needs the access token on loopback too (`EXP --require-token`),
    /// as it does on any other address. On a machine shared with other users (a cluster's
    /// login node) any of them can reach 127.0.0.1; with this, only whoever has the printed
    /// URL can read or act.
    pub require_token: bool,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            host: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_PORT,
            allowed_hosts: Vec::new(),
            require_token: false,
        }
    }
}

/// A running server; stops when dropped or on [`Server::stop`].
pub struct Server {
    http: http::HttpServer,
    index: Arc<Index>,
    addr: SocketAddr,
    url: String,
    stopping: Arc<AtomicBool>,
    refresher: Option<JoinHandle<()>>,
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
        let allowed_hosts = options
            .allowed_hosts
            .iter()
            .map(|name| access::host_name(name))
            .collect::<Result<Vec<String>>>()?;
        let listener = bind(options)?;
        let addr = listener.local_addr().at("read the address of", &root)?;
        let token = random_token()?;
        let token_required = options.require_token || !options.host.is_loopback();
        let shown_host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = if token_required {
            format!("http://{shown_host}:{}/?token={token}", addr.port())
        } else {
            format!("http://{shown_host}:{}/", addr.port())
        };
        let index = Arc::new(Index::new(&root));
        let state = Arc::new(State {
            index: Arc::clone(&index),
            series: series::Cache::default(),
            root,
            access: Access {
                token,
                token_required,
                bound: addr.ip(),
                allowed_hosts,
            },
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let refresher = {
            let (index, stopping) = (Arc::clone(&index), Arc::clone(&stopping));
            std::thread::Builder::new()
                .name("expman-index".into())
                .spawn(move || index.refresher(&stopping))
                .map_err(|e| Error::invalid_state(format!("cannot start a thread: {e}")))?
        };
        let handler = Box::new(move |request: &http::Request| routes::handle(&state, request));
        let http = match http::HttpServer::start(listener, http::Limits::default(), handler) {
            Ok(http) => http,
            Err(e) => {
                stopping.store(true, Ordering::SeqCst);
                index.poke();
                let _ = refresher.join();
                return Err(Error::invalid_state(format!("cannot serve on {addr}: {e}")));
            }
        };
        Ok(Server {
            index,
            http,
            addr,
            url,
            stopping,
            refresher: Some(refresher),
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

    /// Blocks for as long as the server runs (for a program whose only job is to serve).
    pub fn wait(mut self) {
        if let Some(refresher) = self.refresher.take() {
            let _ = refresher.join();
        }
    }

    /// Stops serving and waits for the workers.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.index.poke();
        self.http.stop();
        if let Some(refresher) = self.refresher.take() {
            let _ = refresher.join();
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
