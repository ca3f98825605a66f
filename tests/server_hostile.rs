//! The UI server against hostile clients, over real sockets on 127.0.0.1 only: oversized
//! `Content-Length`, slow headers and slow bodies on more connections than the server keeps,
//! tables ending in a giant unterminated line, requests for another `Host` or from another
//! `Origin` (DNS rebinding), symlinks leading out of the served directory, and unreadable state
//! files. Throughout, a normal client must get its answer within a second, and the server
//! process (the real `EXP <dir>`, or the library embedded in this test process) must never exit.
//!
//! Every loop is bounded in count and in time; every socket has a read timeout, so a server that
//! hangs fails a test instead of hanging it.
#![cfg(feature = "ui")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[path = "http_support/mod.rs"]
mod http_support;

use http_support::{Answer, exchange, get};
use serde_json::Value as Json;

const EXP: &str = env!("CARGO_BIN_EXE_EXP");
/// What a normal client may wait for an answer while the server is under attack.
const PROMPT: Duration = Duration::from_secs(1);

/// One hostile scenario at a time: each loads both cores of a small machine with its own
/// attackers, and the 1 s promise is about one server under attack, not seven at once.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
/// How long any hostile request may take before the test calls the server hung.
const PATIENCE: Duration = Duration::from_secs(20);
/// More connections than the server serves at once (its connection limit is 64).
const MANY: usize = 80;

/// A GET with the given header lines (each ending in CRLF).
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.0\r\n{headers}\r\n");
    exchange(addr, request.as_bytes(), PATIENCE).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The server answers a normal listing request within [`PROMPT`].
fn assert_prompt(addr: SocketAddr, when: &str) {
    let start = Instant::now();
    let answer = exchange(
        addr,
        format!("GET /api/experiments HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
        PROMPT,
    )
    .unwrap_or_else(|e| panic!("{when}: a normal client got no answer: {e}"));
    let took = start.elapsed();
    assert_eq!(answer.status, 200, "{when}: {}", answer.text());
    assert!(took < PROMPT, "{when}: a normal client waited {took:?}");
}

/// `EXP <dir>` in the background; killed when dropped.
struct Served {
    child: Child,
    addr: SocketAddr,
    /// The URL the server printed.
    url: String,
}

impl Served {
    fn start(base: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(EXP)
            .arg(base)
            .args(["--no-browser", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start EXP");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("EXP prints its URL");
        let port: u16 = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .and_then(|url| url.trim_start_matches("http://").split(['/', ':']).nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no URL with a port in {line:?}"));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_default()
            .to_string();
        Served {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            url,
        }
    }

    /// Fails the test if the server process has exited.
    fn assert_alive(&mut self, when: &str) {
        let status = self.child.try_wait().expect("query EXP");
        assert!(status.is_none(), "{when}: the server exited: {status:?}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an experiment directory the way expman lays it out, with `rows` rows in the table of
/// its current run; returns its path.
fn experiment(base: &Path, id: &str, rows: usize) -> PathBuf {
    let dir = base.join(id);
    std::fs::create_dir_all(dir.join("metrics")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"name":"{id}","command":"true","tags":[],"created_at":"2026-01-01T00:00:00+00:00"}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("status.json"),
        r#"{"status":"Finished","run_id":"run_0001","started_at":"2026-01-01T00:00:00+00:00","finished_at":"2026-01-01T00:10:00+00:00"}"#,
    )
    .unwrap();
    let mut table = String::from("timestamp,run_id,step,loss\n");
    for step in 0..rows {
        table.push_str(&format!(
            "2026-01-01T00:00:00.000000,run_0001,{step},{}\n",
            step as f64 / 10.0
        ));
    }
    std::fs::write(dir.join("metrics/run_0001.csv"), table).unwrap();
    std::fs::write(dir.join("logs/run_0001.log"), "started\n").unwrap();
    dir
}

/// The page's token, read as a browser on the right origin reads it.
fn page_token(addr: SocketAddr) -> String {
    let page = get(addr, "/").text();
    let start = page
        .find("name=\"expman-token\" content=\"")
        .expect("token meta tag")
        + 29;
    page[start..start + 32].to_string()
}

fn cards(addr: SocketAddr) -> Vec<Json> {
    get(addr, "/api/experiments").json()["experiments"]
        .as_array()
        .expect("a list of experiments")
        .clone()
}

/// Sends one request head declaring `content_length` body bytes, none of which follow, then
/// half-closes; the answer (or a reset) is read and ignored.
fn declare_body(addr: SocketAddr, method_path: &str, content_length: &str) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let _ = write!(
        stream,
        "{method_path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {content_length}\r\n\r\n"
    );
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.read_to_end(&mut Vec::new());
}

#[test]
fn oversized_content_lengths_neither_abort_nor_stop_the_server() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), "e1", 3);
    let mut served = Served::start(tmp.path(), &[]);
    let addr = served.addr;
    assert_prompt(addr, "before");
    // 1 TiB and usize::MAX, each on more connections than the server has workers, on a GET
    // (body never read) and on a POST (body drained by the old server).
    for length in ["1099511627776", "18446744073709551615"] {
        for i in 0..8 {
            let target = if i % 2 == 0 {
                "GET /api/experiments"
            } else {
                "POST /api/experiments/nope/actions/retry"
            };
            declare_body(addr, target, length);
        }
        served.assert_alive(&format!("after Content-Length: {length}"));
        assert_prompt(addr, &format!("after Content-Length: {length}"));
    }
    // The answer to such a request is a refusal, not a wait for a terabyte.
    let answer = exchange(
        addr,
        format!(
            "POST /api/experiments/nope/actions/retry HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Length: 1099511627776\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
        PATIENCE,
    )
    .expect("an answer");
    assert_eq!(answer.status, 413, "{}", answer.text());
    served.assert_alive("at the end");
}

#[test]
fn embedded_server_survives_oversized_content_lengths() {
    let _serial = one_at_a_time();
    // The server inside this very process, as a training process embeds it: an abort here
    // would end this test binary.
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), "e1", 3);
    let server = expman::server::Server::start(
        tmp.path(),
        &expman::server::ServerOptions {
            port: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let addr = server.addr();
    for length in ["1099511627776", "18446744073709551615"] {
        for _ in 0..8 {
            declare_body(addr, "GET /api/experiments", length);
        }
        assert_prompt(addr, &format!("after Content-Length: {length}"));
    }
    server.stop();
}

/// Opens [`MANY`] connections that each send a request slowly, a byte at a time: half stall in
/// their headers, half in a declared body. Returns a flag that stops the trickling and the
/// thread doing it.
fn slow_clients(addr: SocketAddr, token: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let mut streams: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    for i in 0..MANY {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            continue;
        };
        let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
        let rest: Vec<u8> = if i % 2 == 0 {
            // Slow headers: the request line, then a header that never ends.
            let _ = write!(
                stream,
                "GET /api/experiments HTTP/1.1\r\nHost: {addr}\r\nX-Slow: "
            );
            vec![b'a'; 1000]
        } else {
            // Slow body: a complete head (for a GET, and for a POST with the right token),
            // then 4,000 declared bytes that arrive one at a time.
            let target = if i % 4 == 1 {
                "GET /api/experiments".to_string()
            } else {
                "POST /api/experiments/nope/actions/retry".to_string()
            };
            let _ = write!(
                stream,
                "{target} HTTP/1.1\r\nHost: {addr}\r\nX-Expman-Token: {token}\r\n\
                 Content-Length: 4000\r\n\r\n"
            );
            vec![b'{'; 4000]
        };
        streams.push((stream, rest));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let trickler = std::thread::spawn(move || {
        // At most 60 rounds of one byte per connection, 4 bytes a second.
        for round in 0..60 {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            for (stream, rest) in &mut streams {
                if let Some(&byte) = rest.get(round) {
                    let _ = stream.write_all(&[byte]);
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    (stop, trickler)
}

#[test]
fn slow_headers_and_slow_bodies_on_many_connections_do_not_block_the_ui() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), "e1", 3);
    let mut served = Served::start(tmp.path(), &[]);
    let addr = served.addr;
    let token = page_token(addr);
    let (stop, trickler) = slow_clients(addr, &token);
    // A normal client, several times over about three seconds of the attack.
    for i in 0..6 {
        assert_prompt(addr, &format!("during the slow clients, round {i}"));
        served.assert_alive("during the slow clients");
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    trickler.join().unwrap();
    assert_prompt(addr, "after the slow clients");
    served.assert_alive("after the slow clients");
}

/// Appends `bytes` bytes without any newline to the table of `dir`'s current run.
fn append_unterminated(dir: &Path, bytes: usize) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("metrics/run_0001.csv"))
        .unwrap();
    let chunk = vec![b'7'; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        file.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
}

#[test]
fn a_giant_unterminated_last_line_is_answered_promptly() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), "big", 100);
    append_unterminated(&dir, 16_000_000);
    let far = experiment(tmp.path(), "far", 100);
    append_unterminated(&far, 40_000_000);
    experiment(tmp.path(), "small", 3);
    let mut served = Served::start(tmp.path(), &[]);
    let addr = served.addr;

    // The listing (which reads each table's last row) answers, with the last complete row.
    let listing = exchange(
        addr,
        format!("GET /api/experiments HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
        Duration::from_secs(5),
    )
    .expect("the listing answers");
    let big = listing.json()["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "big")
        .cloned()
        .expect("big is listed");
    assert_eq!(big["latest"]["step"], 99, "{big}");

    // Tails of both tables, on more connections than there are workers at once, while a normal
    // client keeps getting prompt answers.
    let tails: Vec<_> = (0..8)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/api/experiments/big/tables/run_0001?tail=100"
            } else {
                "/api/experiments/far/tables/run_0001?tail=100"
            };
            std::thread::spawn(move || {
                exchange(
                    addr,
                    format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    assert_prompt(addr, "while tails of giant lines are read");
    for (i, tail) in tails.into_iter().enumerate() {
        let answer = tail.join().unwrap().expect("the tail answers");
        if i % 2 == 0 {
            // The unterminated line is a write in progress: skipped, the 100 rows before it shown.
            assert_eq!(answer.status, 200, "{}", answer.text());
            let rows = answer.json()["rows"].as_array().unwrap().clone();
            assert_eq!(rows.len(), 100);
            assert_eq!(rows[99][2], 99);
        } else {
            // 40 MB without a newline is no write in progress: said so, not silently empty.
            assert_eq!(answer.status, 422, "{}", answer.text());
            let error = answer.json()["error"].as_str().unwrap().to_string();
            assert!(
                error.contains("run_0001.csv") && error.contains("newline"),
                "{error}"
            );
        }
    }
    assert_prompt(addr, "after the tails");
    served.assert_alive("after the tails");
}

#[test]
fn requests_for_another_host_or_from_another_origin_are_refused() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), "secret_run", 3);
    let mut served = Served::start(tmp.path(), &["--allow-host", "Workstation.Example"]);
    let addr = served.addr;
    let port = addr.port();
    let token = page_token(addr);

    // What a page whose name was rebound to 127.0.0.1 sends: its own name as Host. Every path
    // is refused, the page and static files too, before anything is read.
    for path in [
        "/",
        "/static/app.js",
        "/api/experiments",
        "/api/experiments/secret_run",
    ] {
        for host in [
            format!("evil.example:{port}"),
            "evil.example".to_string(),
            format!("127.0.0.1.evil.example:{port}"),
            format!("localhost.evil.example:{port}"),
            // Text after an IPv6 literal's `]` was ignored, so these read as [::1].
            "[::1]evil.example".to_string(),
            "[::1]:evil.example".to_string(),
        ] {
            let answer = get_with(addr, path, &format!("Host: {host}\r\n"));
            assert_eq!(
                answer.status,
                403,
                "{path} with Host {host}: {}",
                answer.text()
            );
            let text = answer.text();
            assert!(!text.contains(&token), "{path} leaked the token");
            assert!(!text.contains("secret_run"), "{path} leaked an experiment");
            assert!(
                text.contains("--allow-host"),
                "the refusal says what to do: {text}"
            );
        }
    }
    // No Host at all is refused too.
    assert_eq!(get_with(addr, "/api/experiments", "").status, 400);

    // A matching Host but a foreign Origin (a cross-site fetch, or a rebound page's POST).
    for origin in [
        "http://evil.example".to_string(),
        format!("http://evil.example:{port}"),
        "null".to_string(),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        let answer = get_with(
            addr,
            "/api/experiments",
            &format!("Host: {addr}\r\nOrigin: {origin}\r\n"),
        );
        assert_eq!(answer.status, 403, "Origin {origin}: {}", answer.text());
        assert!(!answer.text().contains("secret_run"));
    }
    let post = exchange(
        addr,
        format!(
            "POST /api/experiments/secret_run/actions/delete HTTP/1.0\r\nHost: {addr}\r\n\
             Origin: http://evil.example:{port}\r\nX-Expman-Token: {token}\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .as_bytes(),
        PATIENCE,
    )
    .unwrap();
    assert_eq!(post.status, 403);
    assert!(
        tmp.path().join("secret_run").exists(),
        "nothing was deleted"
    );

    // The names that do reach this server: its address, loopback names, the allowed name (any
    // case), with and without a port, and an Origin equal to the Host.
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
        format!("workstation.example:{port}"),
        "WORKSTATION.EXAMPLE".to_string(),
    ] {
        let answer = get_with(
            addr,
            "/api/experiments",
            &format!("Host: {host}\r\nOrigin: http://{host}\r\n"),
        );
        assert_eq!(answer.status, 200, "Host {host}: {}", answer.text());
        assert_eq!(
            get_with(addr, "/", &format!("Host: {host}\r\n")).status,
            200
        );
    }
    served.assert_alive("at the end");
}

#[test]
fn symlinks_leading_out_of_the_served_directory_are_not_followed() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("experiments");
    std::fs::create_dir_all(&base).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();

    // An experiment outside, linked in whole; its table holds a value that must not show.
    let away = experiment(&outside, "away", 0);
    std::fs::write(
        away.join("metrics/run_0001.csv"),
        "timestamp,run_id,secret\n2026-01-01T00:00:00.000000,run_0001,424242\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&away, base.join("linked_out")).unwrap();
    // An experiment inside whose state files and table are links to files outside.
    let inside = experiment(&base, "inside", 3);
    let secret_config = outside.join("config.json");
    std::fs::write(
        &secret_config,
        r#"{"name":"SECRET_NAME","command":"cat /etc/secret","tags":[],"created_at":"x"}"#,
    )
    .unwrap();
    std::fs::remove_file(inside.join("config.json")).unwrap();
    std::os::unix::fs::symlink(&secret_config, inside.join("config.json")).unwrap();
    std::fs::remove_file(inside.join("metrics/run_0001.csv")).unwrap();
    std::os::unix::fs::symlink(
        away.join("metrics/run_0001.csv"),
        inside.join("metrics/run_0001.csv"),
    )
    .unwrap();
    // An experiment whose metrics/ is a link to a folder outside: its file names are not
    // listed as runs (they were).
    let leaky = experiment(&base, "leaky", 0);
    let foreign = outside.join("foreign_metrics");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("run_0042.csv"), "timestamp,run_id\n").unwrap();
    std::fs::remove_dir_all(leaky.join("metrics")).unwrap();
    std::os::unix::fs::symlink(&foreign, leaky.join("metrics")).unwrap();
    // A link that stays inside is fine.
    let real = experiment(&base, "real", 3);
    std::os::unix::fs::symlink(&real, base.join("alias")).unwrap();

    let mut served = Served::start(&base, &[]);
    let addr = served.addr;
    let listing = get(addr, "/api/experiments");
    let text = listing.text();
    assert!(
        !text.contains("424242"),
        "a row from outside leaked: {text}"
    );
    assert!(
        !text.contains("SECRET_NAME"),
        "a config from outside leaked: {text}"
    );
    let ids: Vec<String> = cards(addr)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!ids.contains(&"linked_out".to_string()), "{ids:?}");
    assert!(
        ids.contains(&"alias".to_string()) && ids.contains(&"real".to_string()),
        "{ids:?}"
    );

    for path in [
        "/api/experiments/linked_out",
        "/api/experiments/linked_out/tables/run_0001",
        "/api/experiments/linked_out/logs/run_0001.log",
        "/api/experiments/inside/tables/run_0001",
        "/api/experiments/inside/tables/run_0001/series",
    ] {
        let answer = get(addr, path);
        assert!(
            (400..500).contains(&answer.status),
            "{path}: {}",
            answer.status
        );
        assert!(!answer.text().contains("424242"), "{path} leaked a row");
    }
    let details = get(addr, "/api/experiments/inside");
    assert!(
        !details.text().contains("SECRET_NAME"),
        "{}",
        details.text()
    );
    assert!(!details.text().contains("424242"), "{}", details.text());
    let details = get(addr, "/api/experiments/leaky");
    assert!(!details.text().contains("run_0042"), "{}", details.text());
    assert_eq!(get(addr, "/api/experiments/alias").status, 200);
    assert_eq!(
        get(addr, "/api/experiments/alias/tables/run_0001").status,
        200
    );
    served.assert_alive("at the end");
}

#[test]
fn unreadable_state_files_are_shown_as_errors_with_the_reason() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let bad_status = experiment(tmp.path(), "bad_status", 3);
    std::fs::write(bad_status.join("status.json"), "{\"status\": \"Runn").unwrap();
    let null_status = experiment(tmp.path(), "null_status", 3);
    std::fs::write(null_status.join("status.json"), "null").unwrap();
    let bad_config = experiment(tmp.path(), "bad_config", 3);
    std::fs::write(bad_config.join("config.json"), "{\"name\": 12").unwrap();
    // serde reads a struct from an array: `[]` was a config of empty fields.
    let array_config = experiment(tmp.path(), "array_config", 3);
    std::fs::write(array_config.join("config.json"), " []\n").unwrap();
    // A config.json that is not a file made the experiment vanish from the listing.
    let dir_config = experiment(tmp.path(), "dir_config", 3);
    std::fs::remove_file(dir_config.join("config.json")).unwrap();
    std::fs::create_dir(dir_config.join("config.json")).unwrap();
    experiment(tmp.path(), "fine", 3);
    let mut served = Served::start(tmp.path(), &[]);
    let addr = served.addr;

    let cards = cards(addr);
    let card = |id: &str| {
        cards
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {cards:?}"))
            .clone()
    };
    for (id, file) in [
        ("bad_status", "status.json"),
        ("null_status", "status.json"),
        ("bad_config", "config.json"),
        ("array_config", "config.json"),
        ("dir_config", "config.json"),
    ] {
        let c = card(id);
        assert_eq!(c["status"], "Error", "{c}");
        let error = c["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(file) && error.contains("unreadable"),
            "{id}: {c}"
        );
        assert!(!c["name"].as_str().unwrap_or_default().is_empty(), "{c}");
        let details = get(addr, &format!("/api/experiments/{id}")).json();
        assert_eq!(details["summary"]["error"], c["error"]);
    }
    assert_eq!(card("bad_config")["name"], "bad_config");
    assert_eq!(card("fine")["status"], "Finished");
    assert!(card("fine")["error"].is_null());
    served.assert_alive("at the end");
}

/// Log searches with regexes that can run across line ends (`a[\s\S]*`, `(?s)quick.*`,
/// `quick[^z]*`): the server found each matching line by the leftmost match, which for these
/// runs to the end of the 4 MiB buffer, once per line: minutes of CPU on a 1 MB log, and four
/// such requests left every other client with 503s. Now each finishes with the lines a grep
/// would give, and a normal client is answered promptly while they run.
#[test]
fn regexes_that_run_across_lines_neither_hang_the_search_nor_the_ui() {
    let _one = one_at_a_time();
    let base = tempfile::tempdir().unwrap();
    let dir = experiment(base.path(), "noisy", 10);
    let mut log = String::new();
    for i in 0..40_000 {
        log.push_str(if i % 1000 == 0 {
            "the quick brown fox\n"
        } else {
            "a line of the log\n"
        });
    }
    std::fs::write(dir.join("logs/run_0001.log"), &log).unwrap();
    let mut served = Served::start(base.path(), &[]);
    let addr = served.addr;
    // (pattern, lines matching, first matching line)
    let searches = [
        ("a%5B%5Cs%5CS%5D%2A", 39_960, 2), // a[\s\S]*: every line but the fox's has an `a`
        ("%28%3Fs%29quick.%2A", 40, 1),    // (?s)quick.*
        ("quick%5B%5Ez%5D%2A", 40, 1),     // quick[^z]*
    ];
    let attackers: Vec<_> = searches
        .iter()
        .chain(searches.iter())
        .map(|&(pattern, lines, first_line)| {
            std::thread::spawn(move || {
                let path = format!(
                    "/api/experiments/noisy/logs/run_0001.log?search={pattern}&regex=1&max=5"
                );
                let answer = get_with(addr, &path, &format!("Host: {addr}\r\n"));
                assert_eq!(answer.status, 200, "{path}: {}", answer.text());
                let found = answer.json();
                assert_eq!(found["count"], lines, "{path}: {found}");
                let first = &found["matches"][0];
                assert_eq!(first["line"], first_line, "{found}");
                assert!(!first["text"].as_str().unwrap().contains('\n'), "{found}");
            })
        })
        .collect();
    assert_prompt(addr, "while regex searches run");
    for attacker in attackers {
        attacker.join().expect("a search answered");
    }
    served.assert_alive("after the searches");
}

/// What a hostile page's browser sends: a subresource request (an `<img>` or `<script>` of the
/// API, which carries no Origin) marked cross-site or same-site by fetch metadata is refused,
/// as is framing the UI (`X-Frame-Options`, `frame-ancestors`); opening the UI from a link on
/// another site (a top-level navigation), from the address bar, and the page's own requests
/// still work.
#[test]
fn another_sites_subresources_and_frames_are_refused() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), "run", 3);
    let served = Served::start(tmp.path(), &[]);
    let addr = served.addr;
    let host = format!("Host: {addr}\r\n");
    let fetch = |site: &str, mode: &str, dest: &str| {
        format!(
            "{host}Sec-Fetch-Site: {site}\r\nSec-Fetch-Mode: {mode}\r\nSec-Fetch-Dest: {dest}\r\n"
        )
    };
    for (path, site, mode, dest) in [
        ("/api/experiments", "cross-site", "no-cors", "image"),
        (
            "/api/experiments/run/logs/run_0001.log?search=x",
            "cross-site",
            "no-cors",
            "script",
        ),
        ("/api/experiments", "same-site", "cors", "empty"),
        ("/", "cross-site", "navigate", "iframe"),
    ] {
        let answer = get_with(addr, path, &fetch(site, mode, dest));
        assert_eq!(
            answer.status,
            403,
            "{path} {site} {mode} {dest}: {}",
            answer.text()
        );
    }
    for (path, site, mode, dest) in [
        ("/", "cross-site", "navigate", "document"),
        ("/", "none", "navigate", "document"),
        ("/api/experiments", "same-origin", "cors", "empty"),
    ] {
        let answer = get_with(addr, path, &fetch(site, mode, dest));
        assert_eq!(
            answer.status,
            200,
            "{path} {site} {mode} {dest}: {}",
            answer.text()
        );
    }
    let page = get_with(addr, "/", &host);
    let head = page.head.to_ascii_lowercase();
    assert!(
        head.contains("x-frame-options: deny")
            && head.contains("content-security-policy: frame-ancestors 'none'"),
        "{}",
        page.head
    );
}

/// A link inside the served directory to another experiment shows as a card of its own:
/// Delete on it must not delete the experiment it points to (before, it did, leaving the link
/// dangling). It is refused with 409; Delete on the experiment itself works.
#[test]
fn delete_through_a_link_to_another_experiment_is_refused() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let victim = experiment(tmp.path(), "victim", 3);
    std::os::unix::fs::symlink(&victim, tmp.path().join("alias")).unwrap();
    let served = Served::start(tmp.path(), &[]);
    let addr = served.addr;
    let token = page_token(addr);
    let delete = |id: &str| {
        let request = format!(
            "POST /api/experiments/{id}/actions/delete HTTP/1.0\r\nHost: {addr}\r\n\
             X-Expman-Token: {token}\r\nContent-Length: 0\r\n\r\n"
        );
        exchange(addr, request.as_bytes(), PATIENCE).expect("an answer")
    };
    let answer = delete("alias");
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert!(answer.text().contains("link"), "{}", answer.text());
    assert!(
        victim.join("config.json").is_file(),
        "the linked experiment was deleted"
    );
    let answer = delete("victim");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(!victim.exists());
}

/// An experiment directory damaged by hand (`metrics/` or `logs/` replaced by a file): its
/// details still answer (200) with what can be read and the problem named, and the listing
/// keeps it; before, the details were a 500.
#[test]
fn details_of_a_damaged_directory_show_what_can_be_read() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    for (id, part) in [("no_metrics", "metrics"), ("no_logs", "logs")] {
        let dir = experiment(tmp.path(), id, 3);
        std::fs::remove_dir_all(dir.join(part)).unwrap();
        std::fs::write(dir.join(part), b"a file where a directory was").unwrap();
    }
    let served = Served::start(tmp.path(), &[]);
    let addr = served.addr;
    assert_eq!(cards(addr).len(), 2);
    for (id, part) in [("no_metrics", "metrics"), ("no_logs", "logs")] {
        let answer = get_with(
            addr,
            &format!("/api/experiments/{id}"),
            &format!("Host: {addr}\r\n"),
        );
        assert_eq!(answer.status, 200, "{id}: {}", answer.text());
        let details = answer.json();
        assert_eq!(details["summary"]["id"], id, "{details}");
        if part == "metrics" {
            let problems = details["problems"].to_string();
            assert!(problems.contains("metrics"), "{details}");
        }
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// FIFOs where files belong (a status.json, a log, a checkpoint, a metrics table) and a 64 MB
/// status.json: opening a FIFO blocked until a writer came, which froze the index (the listing
/// never changed again) and, after four requests, every handler (503 for all); the big file
/// was read whole by every listing. Now each is shown as an error naming the file, and the
/// server keeps answering and noticing changes.
#[test]
fn fifos_and_oversized_state_files_are_refused_without_blocking() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let piped = experiment(tmp.path(), "piped", 3);
    std::fs::remove_file(piped.join("status.json")).unwrap();
    mkfifo(&piped.join("status.json"));
    let files = experiment(tmp.path(), "files", 3);
    mkfifo(&files.join("logs/pipe.log"));
    std::fs::create_dir_all(files.join("checkpoints")).unwrap();
    mkfifo(&files.join("checkpoints/pipe.pt"));
    mkfifo(&files.join("metrics/pipe.csv"));
    let big = experiment(tmp.path(), "big", 3);
    std::fs::File::create(big.join("status.json"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mut served = Served::start(tmp.path(), &[]);
    let addr = served.addr;

    let listed = cards(addr);
    for (id, what) in [("piped", "FIFO"), ("big", "bytes")] {
        let card = listed
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {listed:?}"));
        assert_eq!(card["status"], "Error", "{card}");
        let error = card["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("status.json") && error.contains(what),
            "{card}"
        );
    }
    // More requests for FIFOs than the server has handlers.
    for _ in 0..3 {
        for path in [
            "/api/experiments/files/logs/pipe.log",
            "/api/experiments/files/logs/pipe.log?download=1",
            "/api/experiments/files/checkpoints/pipe.pt",
            "/api/experiments/files/tables/pipe",
            "/api/experiments/files/tables/pipe/series?x=step&y=loss",
        ] {
            let answer = get(addr, path);
            assert!(
                (400..500).contains(&answer.status),
                "{path}: {} {}",
                answer.status,
                answer.text()
            );
        }
    }
    assert_prompt(addr, "after the FIFO requests");
    // The index still sees changes.
    experiment(tmp.path(), "later", 3);
    let deadline = Instant::now() + PATIENCE;
    while !cards(addr).iter().any(|c| c["id"] == "later") {
        assert!(
            Instant::now() < deadline,
            "a new experiment never showed up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    served.assert_alive("at the end");
}

/// A log of control bytes is six times as long in JSON (`\u0001` for each), and pages of
/// 8 MiB made 50 MB answers, each built whole in memory: sixteen clients that did not read
/// held a gigabyte. A page is at most 1 MiB of the file now (the UI asks for 256 KiB).
#[test]
fn a_log_page_is_bounded_however_the_log_escapes() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), "ctrl", 3);
    std::fs::write(dir.join("logs/ctrl.log"), vec![1u8; 3 << 20]).unwrap();
    let mut served = Served::start(tmp.path(), &[]);
    let answer = get(
        served.addr,
        "/api/experiments/ctrl/logs/ctrl.log?offset=0&length=8388608",
    );
    assert_eq!(answer.status, 200);
    assert!(answer.body.len() < 7 << 20, "{} bytes", answer.body.len());
    let page = answer.json();
    assert_eq!(page["start"], 0);
    assert_eq!(page["end"], 1 << 20, "{}", page["end"]);
    served.assert_alive("at the end");
}

/// `--require-token` on 127.0.0.1: any process of a shared machine can reach loopback, so with
/// it nothing is answered without the printed URL's token, the page, its modules and every
/// experiment included, and the page that has it works.
#[test]
fn require_token_keeps_loopback_to_whoever_has_the_printed_url() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), "private", 3);
    let mut served = Served::start(tmp.path(), &["--require-token"]);
    let addr = served.addr;
    let token = served
        .url
        .split_once("?token=")
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| panic!("no token in the printed URL {:?}", served.url));
    for path in ["/", "/api/experiments", "/api/experiments/private"] {
        let answer = get(addr, path);
        assert_eq!(answer.status, 403, "{path}: {}", answer.text());
        assert!(!answer.text().contains("private"), "{path} leaked");
        let answer = get(addr, &format!("{path}?token={token}"));
        assert_eq!(
            answer.status,
            200,
            "{path} with the token: {}",
            answer.text()
        );
    }
    let listed = get(addr, &format!("/api/experiments?token={token}")).json();
    assert_eq!(listed["experiments"][0]["id"], "private", "{listed}");
    served.assert_alive("at the end");
}
