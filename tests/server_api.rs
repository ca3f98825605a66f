//! The UI server's JSON API over real HTTP on 127.0.0.1, served by the real `EXP <dir>` process
//! over experiments made by a real scheduled run (`EXP run`): listing (full and incremental),
//! details, table tails, series, log following by offset, actions, and the security rules
//! (path confinement, symlinks, token, CSRF, malformed requests).
#![cfg(feature = "ui")]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

#[path = "http_support/mod.rs"]
mod http_support;

use http_support::{Answer, get, raw};
use serde_json::Value as Json;

const EXP: &str = env!("CARGO_BIN_EXE_EXP");

fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> Answer {
    let header = token.map_or(String::new(), |t| format!("X-Expman-Token: {t}\r\n"));
    raw(
        addr,
        format!("POST {path} HTTP/1.0\r\nHost: {addr}\r\n{header}Content-Length: 0\r\n\r\n")
            .as_bytes(),
    )
}

/// The page's token, as a browser reads it from the meta tag.
fn page_token(addr: SocketAddr) -> String {
    let page = String::from_utf8(get(addr, "/").body).unwrap();
    let start = page
        .find("name=\"expman-token\" content=\"")
        .expect("token meta tag")
        + 29;
    page[start..start + 32].to_string()
}

/// Runs `config` through `EXP run` in `dir` and returns the base directory.
fn scheduled_run(dir: &Path, config: &str) -> PathBuf {
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let output = Command::new(EXP)
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .env("EXPMAN_EXP_BIN", EXP)
        .output()
        .expect("run EXP");
    assert!(
        output.status.code().is_some(),
        "EXP run crashed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir.join("experiments")
}

const CONFIG: &str = r#"
[scheduler]
base_dir = "experiments"
max_concurrent = 2

[[experiments]]
name = "trains"
command = "$EXPMAN_EXP_BIN __toy --seconds 0.5 --lr 0.1"
tags = ["toy"]

[[experiments]]
name = "fails"
command = "echo about to fail; exit 3"
"#;

/// `EXP <dir>` running in the background; killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn addr(&self) -> SocketAddr {
        let port = self
            .url
            .trim_start_matches("http://")
            .split(['/', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a port in the URL");
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn stop(self) {}
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `EXP <base> --no-browser --port 0 [--host host]` and waits for the URL it prints.
fn serve_on(base: &Path, host: &str) -> Served {
    let mut child = Command::new(EXP)
        .arg(base)
        .args(["--no-browser", "--port", "0", "--host", host])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start EXP");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("EXP prints its URL");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    Served { child, url }
}

fn serve(base: &Path) -> Served {
    serve_on(base, "127.0.0.1")
}

/// Waits for `check` to hold, re-evaluating it on real state, for at most `limit`.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn experiment_id(listing: &Json, name: &str) -> String {
    listing["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no experiment {name} in {listing}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn listing_details_tables_and_logs_of_a_real_run() {
    let tmp = tempfile::tempdir().unwrap();
    let base = scheduled_run(tmp.path(), CONFIG);
    let server = serve(&base);
    let addr = server.addr();

    let listing = get(addr, "/api/experiments").json();
    assert_eq!(listing["full"], true);
    let cards = listing["experiments"].as_array().unwrap();
    assert_eq!(cards.len(), 2);
    let trains = cards.iter().find(|c| c["name"] == "trains").unwrap();
    assert_eq!(trains["status"], "Finished");
    assert_eq!(trains["run_id"], "run_0001");
    assert_eq!(trains["tags"], serde_json::json!(["toy"]));
    assert!(trains["latest"]["loss"].is_number(), "{trains}");
    assert!(trains["elapsed_s"].as_f64().unwrap() > 0.0);
    let fails = cards.iter().find(|c| c["name"] == "fails").unwrap();
    assert_eq!(fails["status"], "Error");
    assert_eq!(fails["error"], "exited with code 3");

    // Nothing changed: an incremental poll is empty.
    let version = listing["version"].as_u64().unwrap();
    let poll = get(addr, &format!("/api/experiments?since={version}")).json();
    assert_eq!(poll["full"], false);
    assert_eq!(poll["experiments"], serde_json::json!([]));

    let id = experiment_id(&listing, "trains");
    let details = get(addr, &format!("/api/experiments/{id}")).json();
    assert_eq!(details["config"]["name"], "trains");
    assert_eq!(details["status"]["status"], "Finished");
    // Runs are objects since issue 13: the id, and the run's params and metric summaries.
    assert_eq!(details["runs"][0]["run_id"], "run_0001");
    assert_eq!(details["runs"].as_array().unwrap().len(), 1);
    let tables: Vec<&str> = details["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // `system`: the job supervisor's system metrics (on by default for jobs of `EXP run`).
    assert_eq!(tables, ["run_0001", "progress", "system"]);
    assert_eq!(details["logs"][1]["name"], "run_0001.log");

    let tail = get(
        addr,
        &format!("/api/experiments/{id}/tables/run_0001?tail=2"),
    )
    .json();
    assert_eq!(
        tail["columns"],
        serde_json::json!(["timestamp", "run_id", "step", "loss", "accuracy", "lr"])
    );
    assert_eq!(tail["rows"].as_array().unwrap().len(), 2);
    assert_eq!(tail["types"][2], "int");
    let series = get(
        addr,
        &format!("/api/experiments/{id}/tables/progress/series"),
    )
    .json();
    assert_eq!(series["x"], "step");
    assert!(series["series"]["fraction"].as_array().unwrap().len() >= 2);

    // Logs: the tail, then only what is appended after it.
    let log_url = format!("/api/experiments/{id}/logs/run_0001.log");
    let first = get(addr, &log_url).json();
    assert!(
        first["text"].as_str().unwrap().contains("step 2/2"),
        "{first}"
    );
    let end = first["end"].as_u64().unwrap();
    let log_path = base.join(&id).join("logs/run_0001.log");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap()
        .write_all("appended line ✓\n".as_bytes())
        .unwrap();
    let next = get(addr, &format!("{log_url}?offset={end}")).json();
    assert_eq!(next["text"], "appended line ✓\n");
    assert_eq!(next["start"].as_u64(), Some(end));
    let big = "x".repeat(100) + "\n";
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    for _ in 0..2000 {
        file.write_all(big.as_bytes()).unwrap();
    }
    let tail = get(addr, &format!("{log_url}?max=1000")).json();
    let text = tail["text"].as_str().unwrap();
    assert!(text.len() <= 1000 && text.starts_with('x') && text.ends_with('\n'));
    server.stop();
}

#[test]
fn actions_go_through_the_control_path() {
    let tmp = tempfile::tempdir().unwrap();
    let base = scheduled_run(
        tmp.path(),
        &format!("{CONFIG}\n[[experiments]]\nname = \"waits\"\ncommand = \"true\"\n"),
    );
    let server = serve(&base);
    let addr = server.addr();
    let token = page_token(addr);
    let listing = get(addr, "/api/experiments").json();
    let fails = experiment_id(&listing, "fails");
    let trains = experiment_id(&listing, "trains");

    // Rerun of the errored experiment: run_0002 in the same directory, run by a supervisor.
    let retry = post(
        addr,
        &format!("/api/experiments/{fails}/actions/retry"),
        Some(&token),
    );
    assert_eq!(
        retry.status,
        200,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );
    assert!(
        retry.json()["message"]
            .as_str()
            .unwrap()
            .contains("run_0002")
    );
    let status_path = base.join(&fails).join("status.json");
    assert!(eventually(Duration::from_secs(20), || {
        let status: Json = serde_json::from_slice(&std::fs::read(&status_path).unwrap()).unwrap();
        status["run_id"] == "run_0002" && status["status"] == "Error"
    }));
    let status: Json = serde_json::from_slice(&std::fs::read(&status_path).unwrap()).unwrap();
    assert_eq!(status["error"], "exited with code 3");
    assert_eq!(status["history"][0]["run_id"], "run_0001");

    // Delete with the token removes the directory; the listing reports it removed.
    let version = get(addr, "/api/experiments").json()["version"]
        .as_u64()
        .unwrap();
    let delete = post(
        addr,
        &format!("/api/experiments/{trains}/actions/delete"),
        Some(&token),
    );
    assert_eq!(delete.status, 200);
    assert!(!base.join(&trains).exists());
    assert!(eventually(Duration::from_secs(5), || {
        get(addr, &format!("/api/experiments?since={version}")).json()["removed"]
            .as_array()
            .is_some_and(|r| r.iter().any(|id| id == trains.as_str()))
    }));

    // Terminating something that is not running is refused with a 409 and a reason.
    let refused = post(
        addr,
        &format!("/api/experiments/{fails}/actions/terminate"),
        Some(&token),
    );
    assert_eq!(refused.status, 409);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("only a running")
    );
    server.stop();
}

#[test]
fn state_changes_need_the_token_header() {
    let tmp = tempfile::tempdir().unwrap();
    let base = scheduled_run(tmp.path(), CONFIG);
    let server = serve(&base);
    let addr = server.addr();
    let id = experiment_id(&get(addr, "/api/experiments").json(), "trains");
    let action = format!("/api/experiments/{id}/actions/delete");

    // A cross-site form post carries no custom header; a GET is no action at all.
    assert_eq!(post(addr, &action, None).status, 403);
    assert_eq!(
        post(addr, &action, Some("0123456789abcdef0123456789abcdef")).status,
        403
    );
    assert_eq!(get(addr, &action).status, 404);
    // The token in the query string does not authorise a POST either.
    let token = page_token(addr);
    assert_eq!(
        post(addr, &format!("{action}?token={token}"), None).status,
        403
    );
    assert!(base.join(&id).exists(), "nothing was deleted");
    server.stop();
}

#[test]
fn off_loopback_every_request_needs_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let base = scheduled_run(tmp.path(), CONFIG);
    let server = serve_on(&base, "0.0.0.0");
    let url = server.url().to_string();
    let token = url
        .split("?token=")
        .nth(1)
        .expect("the URL carries the token");
    assert_eq!(token.len(), 32);
    let addr = server.addr();
    assert_eq!(get(addr, "/").status, 403);
    assert_eq!(get(addr, "/api/experiments").status, 403);
    assert_eq!(get(addr, "/static/app.js").status, 403);
    assert_eq!(get(addr, &format!("/?token={token}")).status, 200);
    let with_header = raw(
        addr,
        format!("GET /api/experiments HTTP/1.0\r\nHost: {addr}\r\nX-Expman-Token: {token}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(with_header.status, 200);
    server.stop();
}

#[test]
fn files_outside_the_directory_are_never_served() {
    let tmp = tempfile::tempdir().unwrap();
    let base = scheduled_run(tmp.path(), CONFIG);
    let secret = tmp.path().join("secret.log");
    std::fs::write(&secret, "TOP SECRET\n").unwrap();
    let server = serve(&base);
    let addr = server.addr();
    let id = experiment_id(&get(addr, "/api/experiments").json(), "trains");

    // A symlinked log and a symlinked experiment directory, both pointing outside.
    std::os::unix::fs::symlink(&secret, base.join(&id).join("logs/leak.log")).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("logs")).unwrap();
    std::fs::write(outside.join("config.json"), "{}").unwrap();
    std::fs::write(outside.join("logs/run_0001.log"), "TOP SECRET\n").unwrap();
    std::os::unix::fs::symlink(&outside, base.join("linked")).unwrap();

    let attempts = [
        format!("/api/experiments/{id}/logs/leak.log"),
        "/api/experiments/linked/logs/run_0001.log".to_string(),
        "/api/experiments/linked".to_string(),
        format!("/api/experiments/{id}/logs/..%2F..%2Fsecret.log"),
        format!("/api/experiments/{id}/logs/%2e%2e"),
        "/api/experiments/../secret.log".to_string(),
        "/api/experiments/%2e%2e/logs/secret.log".to_string(),
        format!("/api/experiments/{id}/logs/%2Ftmp%2Fsecret.log"),
        format!("/api/experiments/{id}/tables/..%2F..%2Fconfig"),
        "/static/..%2F..%2Fsecret.log".to_string(),
    ];
    for path in attempts {
        let answer = get(addr, &path);
        assert!(
            (400..500).contains(&answer.status),
            "{path} answered {}",
            answer.status
        );
        assert!(
            !String::from_utf8_lossy(&answer.body).contains("TOP SECRET"),
            "{path} leaked the file"
        );
        answer.json(); // always a JSON error
    }
    server.stop();
}

#[test]
fn malformed_requests_get_a_4xx_and_the_server_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let base = scheduled_run(tmp.path(), CONFIG);
    let server = serve(&base);
    let addr = server.addr();
    let id = experiment_id(&get(addr, "/api/experiments").json(), "trains");
    for path in [
        "/api/experiments?since=abc".to_string(),
        format!("/api/experiments/{id}/tables/run_0001?tail=-1"),
        format!("/api/experiments/{id}/logs/run_0001.log?offset=x"),
        format!("/api/experiments/{id}/logs/config.json"),
        "/api/experiments/%ZZ".to_string(),
        "/api/experiments/no_such_experiment".to_string(),
        "/api/nothing".to_string(),
    ] {
        let answer = get(addr, &path);
        assert!(
            (400..500).contains(&answer.status),
            "{path}: {}",
            answer.status
        );
        assert!(answer.json()["error"].is_string());
    }
    let delete = raw(
        addr,
        format!("DELETE /api/experiments HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
    );
    assert_eq!(delete.status, 405);
    assert!(
        delete.head.contains("Allow: GET, HEAD, POST\r\n"),
        "{}",
        delete.head
    );
    // HEAD: GET's status and length, no body.
    let head = raw(
        addr,
        format!("HEAD /api/experiments HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
    );
    assert_eq!(head.status, 200, "{}", head.head);
    assert!(head.body.is_empty());
    assert!(head.head.contains("Content-Length: "), "{}", head.head);
    // Garbage on the socket, then an ordinary request still works.
    let mut stream = TcpStream::connect(addr).unwrap();
    let _ = stream.write_all(b"\x00\xff\xfe garbage \r\n\r\n");
    drop(stream);
    assert_eq!(get(addr, "/api/experiments").status, 200);
    server.stop();
}

/// A job that fails the way a Python user's training script does: an uncaught exception.
const RAISES: &str = "import sys\n\
print('epoch 1: loss=0.31', flush=True)\n\
lr = 0.5\n\
raise ValueError(f'learning rate {lr} diverged')\n";

#[test]
fn a_failed_run_shows_the_last_exception_line_of_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("train.py");
    std::fs::write(&script, RAISES).unwrap();
    let config = format!(
        "[scheduler]\nbase_dir = \"experiments\"\n\n\
         [[experiments]]\nname = \"diverges\"\ncommand = \"python3 {}\"\n\n\
         [[experiments]]\nname = \"trains\"\ncommand = \"echo fine\"\n",
        script.display()
    );
    let base = scheduled_run(tmp.path(), &config);
    let server = serve(&base);
    let addr = server.addr();

    let listing = get(addr, "/api/experiments").json();
    let card = |name: &str| {
        listing["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {listing}"))
    };
    let diverges = card("diverges");
    assert_eq!(diverges["status"], "Error", "{diverges}");
    assert_eq!(diverges["error"], "exited with code 1");
    assert_eq!(
        diverges["exception"], "ValueError: learning rate 0.5 diverged",
        "{diverges}"
    );
    // A finished run has none, and the details carry the same summary.
    assert_eq!(card("trains")["exception"], Json::Null);
    let id = diverges["id"].as_str().unwrap();
    let details = get(addr, &format!("/api/experiments/{id}")).json();
    assert_eq!(
        details["summary"]["exception"],
        "ValueError: learning rate 0.5 diverged"
    );
    server.stop();
}

/// `EXP run` in the background, interrupted (it then terminates its jobs) when dropped.
struct Scheduler(Child);

impl Scheduler {
    fn start(dir: &Path, config: &str) -> Scheduler {
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let child = Command::new(EXP)
            .args(["run", "--config"])
            .arg(dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start EXP run");
        Scheduler(child)
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

/// The state in `status.json` of the experiment named `name` under `base`, once it exists.
fn state_of(base: &Path, name: &str) -> Option<Json> {
    let dir = std::fs::read_dir(base).ok()?.flatten().find(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{name}_"))
    })?;
    serde_json::from_slice(&std::fs::read(dir.path().join("status.json")).ok()?).ok()
}

/// `EXP run` in `dir` with one slot: once `fails` has failed, `holds_the_slot` runs for a
/// minute, so a rerun of `fails` has to wait in the scheduler's queue. Returns the scheduler
/// and its experiments directory, once both have got there.
fn scheduler_with_its_only_slot_busy(dir: &Path) -> (Scheduler, PathBuf) {
    let scheduler = Scheduler::start(
        dir,
        "[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = 1\n\n\
         [[experiments]]\nname = \"fails\"\npriority = 10\ncommand = \"echo about to fail; exit 3\"\n\n\
         [[experiments]]\nname = \"holds_the_slot\"\ncommand = \"exec sleep 60\"\n",
    );
    let base = dir.join("experiments");
    assert!(
        eventually(Duration::from_secs(30), || {
            state_of(&base, "fails").is_some_and(|s| s["status"] == "Error")
                && state_of(&base, "holds_the_slot").is_some_and(|s| s["status"] == "Running")
        }),
        "the scheduler ran `fails` and then `holds_the_slot`"
    );
    (scheduler, base)
}

#[test]
fn a_rerun_queued_by_a_running_scheduler_says_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let (scheduler, base) = scheduler_with_its_only_slot_busy(tmp.path());
    let server = serve(&base);
    let addr = server.addr();
    let token = page_token(addr);
    let fails = experiment_id(&get(addr, "/api/experiments").json(), "fails");

    let retry = post(
        addr,
        &format!("/api/experiments/{fails}/actions/retry"),
        Some(&token),
    )
    .json();
    assert_eq!(retry["ok"], true, "{retry}");
    assert_eq!(retry["run_id"], "run_0002", "{retry}");
    assert_eq!(retry["status"], "Pending", "{retry}");
    let message = retry["message"].as_str().unwrap();
    assert!(
        message.contains("run_0002 queued") && !message.contains("started"),
        "{message}"
    );
    assert_eq!(state_of(&base, "fails").unwrap()["status"], "Pending");
    server.stop();
    drop(scheduler);
}

/// The command line says the same as the page: `EXP retry` of an experiment whose directory a
/// running scheduler holds, while its only slot is busy, is queued, not started.
#[test]
fn a_command_line_rerun_queued_by_a_running_scheduler_says_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let (scheduler, base) = scheduler_with_its_only_slot_busy(tmp.path());
    let dir = std::fs::read_dir(&base)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("fails_"))
        .unwrap()
        .path();
    let out = Command::new(EXP).arg("retry").arg(&dir).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("run_0002 queued") && !text.contains("started"),
        "{text}"
    );
    drop(scheduler);
}
