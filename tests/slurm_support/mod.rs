//! Helpers for `tests/slurm.rs`: the cluster check, questions to Slurm, cleanup, and a small
//! HTTP client for the UI server.
//!
//! The tests need a running Slurm (`scripts/slurm/start.sh` starts a single-node one). Without
//! one they fail, saying so; `EXPMAN_SKIP_SLURM=1` skips them instead (for a machine that cannot
//! run Slurm at all; CI never sets it).

#![allow(dead_code)] // not every helper is used by every test

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../http_support/mod.rs"]
mod http_support;

/// The cluster the tests run on.
pub struct Cluster {
    /// The node's name (`sinfo %N`), which jobs report as `SLURMD_NODENAME`.
    pub node: String,
    /// How many GPUs the node offers as GRES (0 when none are configured).
    pub gpus: u32,
}

/// The running cluster, or `None` when `EXPMAN_SKIP_SLURM=1` (the test then returns early).
/// Fails the test, saying how to start one, when Slurm does not answer. Asked once per test
/// binary, and for at most 15 s (`sinfo` itself retries a missing config for a minute).
pub fn cluster() -> Option<Cluster> {
    if std::env::var("EXPMAN_SKIP_SLURM").as_deref() == Ok("1") {
        eprintln!("skipped: EXPMAN_SKIP_SLURM=1");
        return None;
    }
    static CLUSTER: OnceLock<Result<(String, u32), String>> = OnceLock::new();
    match CLUSTER.get_or_init(ask_sinfo) {
        Ok((node, gpus)) => Some(Cluster {
            node: node.clone(),
            gpus: *gpus,
        }),
        Err(why) => panic!(
            "{why}; start the single-node test cluster with scripts/slurm/start.sh (it installs \
             Debian's slurmctld, slurmd, slurm-client and munge when missing; \
             scripts/slurm/stop.sh stops it), or set EXPMAN_SKIP_SLURM=1 to skip the Slurm tests"
        ),
    }
}

/// The node's name and GPU count from `sinfo`, or why Slurm cannot be used.
fn ask_sinfo() -> Result<(String, u32), String> {
    let mut child = Command::new("sinfo")
        .args(["--noheader", "--format=%N|%T|%G"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("Slurm is not installed here (sinfo: {e})"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut stdout);
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let Some(status) = status else {
        return Err(format!(
            "Slurm is not reachable (sinfo gave no answer within 15 s: {})",
            stderr.trim()
        ));
    };
    if !status.success() || stdout.trim().is_empty() {
        return Err(format!(
            "Slurm is not reachable (sinfo failed: {}{})",
            stderr.trim(),
            stdout.trim()
        ));
    }
    let line = stdout.lines().next().unwrap_or_default();
    let fields: Vec<&str> = line.split('|').collect();
    if fields.len() != 3 || fields[1].starts_with("down") || fields[1].starts_with("drain") {
        return Err(format!("the Slurm node is not usable (sinfo: {line:?})"));
    }
    let gpus = fields[2]
        .split(',')
        .find_map(|g| g.strip_prefix("gpu:"))
        .and_then(|n| n.split(['(', ':']).next_back()?.parse().ok())
        .unwrap_or(0);
    Ok((fields[0].to_string(), gpus))
}

/// `scontrol show job -o <id>` as key/value pairs.
pub fn job_info(id: &str) -> HashMap<String, String> {
    let output = Command::new("scontrol")
        .args(["show", "job", "-o", id])
        .output()
        .expect("run scontrol");
    assert!(
        output.status.success(),
        "scontrol show job {id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The state of job `id` as `squeue -t all` reports it (`None` once Slurm forgot it).
pub fn job_state(id: &str) -> Option<String> {
    let output = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%T", "-j", id])
        .output()
        .expect("run squeue");
    let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!state.is_empty()).then_some(state)
}

/// How many jobs with one of `names` Slurm has queued or running now.
pub fn live_jobs(names: &[&str]) -> usize {
    let output = Command::new("squeue")
        .args([
            "-h",
            "-t",
            "pending,running,completing,configuring",
            "-o",
            "%i",
        ])
        .arg(format!("--name={}", names.join(",")))
        .output()
        .expect("run squeue");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

/// `scancel` for every Slurm job recorded under `base` (current runs and history): a test that
/// fails half way leaves nothing queued or running on the shared cluster.
pub fn cancel_jobs_under(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let mut ids = Vec::new();
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("status.json")) else {
            continue;
        };
        let Ok(status) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut records = vec![status.clone()];
        records.extend(status["history"].as_array().cloned().unwrap_or_default());
        for record in records {
            if let Some(id) = record["slurm_job_id"].as_str() {
                ids.push(id.to_string());
            }
        }
    }
    if !ids.is_empty() {
        let _ = Command::new("scancel")
            .args(&ids)
            .stderr(Stdio::null())
            .status();
    }
}

/// Cancels the Slurm jobs of a base directory when dropped (see [`cancel_jobs_under`]).
pub struct CancelOnDrop(pub std::path::PathBuf);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        cancel_jobs_under(&self.0);
    }
}

pub use http_support::Answer;

fn http(addr: SocketAddr, request: &str) -> Answer {
    // Name the server in `Host`, as a browser on this machine does (the server refuses
    // requests for any other host, and those without one).
    let (line, rest) = request.split_once("\r\n").expect("a request line");
    let request = format!("{line}\r\nHost: {addr}\r\n{rest}");
    http_support::raw(addr, request.as_bytes())
}

/// `EXP <base>` serving the UI; killed when dropped.
pub struct Served {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    token: String,
}

impl Served {
    /// Starts `EXP <base> --no-browser --port 0` and reads the page's token.
    pub fn start(exp: &str, base: &Path) -> Served {
        let mut child = Command::new(exp)
            .arg(base)
            .args(["--no-browser", "--port", "0"])
            .env("EXPMAN_EXP_BIN", exp)
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
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        let port = url
            .trim_start_matches("http://")
            .split(['/', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let page = String::from_utf8(http(addr, "GET / HTTP/1.0\r\n\r\n").body).unwrap();
        let start = page
            .find("name=\"expman-token\" content=\"")
            .expect("the token meta tag")
            + 29;
        let token = page[start..start + 32].to_string();
        Served { child, addr, token }
    }

    /// `GET path` as JSON.
    pub fn get(&self, path: &str) -> Value {
        let answer = http(self.addr, &format!("GET {path} HTTP/1.0\r\n\r\n"));
        assert_eq!(answer.status, 200, "GET {path}");
        answer.json()
    }

    /// `POST path` with the page's token.
    pub fn post(&self, path: &str) -> Answer {
        http(
            self.addr,
            &format!(
                "POST {path} HTTP/1.0\r\nX-Expman-Token: {}\r\nContent-Length: 0\r\n\r\n",
                self.token
            ),
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
