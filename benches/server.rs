//! UI server figures, over real HTTP on 127.0.0.1:
//! - listing 10,000 experiments (cold, then warm; goal < 100 ms warm) and an incremental poll;
//! - the last 100 rows of a 1,000,000-row metrics table (goal < 50 ms);
//! - the tail of a 1 GB log (goal < 10 ms);
//! - the last 100 rows of a table that ends in a 16 MB line without a newline (a hostile or
//!   damaged file: the tail must stay linear in what it reads), and of one that ends in 40 MB
//!   without a newline (past the tail's 16 MiB window: answered 422, as fast).
//!
//! `cargo bench --features server --bench server`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

use expman::server::{Server, ServerOptions};

const EXPERIMENTS: usize = 10_000;
const TABLE_ROWS: usize = 1_000_000;
const LOG_BYTES: u64 = 1 << 30;

/// One GET; returns the body.
fn get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    get_status(addr, path, 200)
}

/// One GET answered with `status`; returns the body.
fn get_status(addr: std::net::SocketAddr, path: &str, status: u16) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    // HTTP/1.0, so the server closes the connection after the answer and read_to_end ends.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    assert!(
        head.starts_with("HTTP/1.") && head[8..].starts_with(&format!(" {status}")),
        "{head}"
    );
    response.split_off(head_end + 4)
}

fn time_ms(f: impl FnOnce() -> Vec<u8>) -> (f64, Vec<u8>) {
    let start = Instant::now();
    let body = f();
    (start.elapsed().as_secs_f64() * 1e3, body)
}

/// Writes an experiment directory the way expman lays it out (directly, without fsyncs, so
/// making 10,000 of them takes seconds).
fn fake_experiment(base: &Path, i: usize) {
    let dir = base.join(format!("exp{i:05}_2026-01-01__00-00-00"));
    std::fs::create_dir_all(dir.join("metrics")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let status = ["Finished", "Error", "Pending"][i % 3];
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"name":"exp{i:05}","command":"python train.py --seed {i}","tags":["bench"],"created_at":"2026-01-01T00:00:{:02}+00:00"}}"#, i % 60),
    )
    .unwrap();
    std::fs::write(
        dir.join("status.json"),
        format!(r#"{{"status":"{status}","run_id":"run_0001","started_at":"2026-01-01T00:00:00+00:00","finished_at":"2026-01-01T00:10:00+00:00"}}"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("metrics/run_0001.csv"),
        format!(
            "timestamp,run_id,epoch,loss,acc\n2026-01-01T00:00:00.000000,run_0001,10,{},0.9\n",
            1.0 / (i + 1) as f64
        ),
    )
    .unwrap();
    std::fs::write(dir.join("logs/run_0001.log"), "done\n").unwrap();
}

fn main() {
    let root =
        tempfile::tempdir_in(std::env::var("EXPMAN_BENCH_DIR").unwrap_or(".".into())).unwrap();
    let base = root.path().join("experiments");
    std::fs::create_dir_all(&base).unwrap();
    for i in 0..EXPERIMENTS {
        fake_experiment(&base, i);
    }
    // One experiment with a big table and a big log.
    let big = base.join("exp00000_2026-01-01__00-00-00");
    {
        let mut table =
            std::io::BufWriter::new(std::fs::File::create(big.join("metrics/big.csv")).unwrap());
        writeln!(
            table,
            "timestamp,run_id,step,loss,acc,lr,grad_norm,f1,precision,recall,epoch_time,note"
        )
        .unwrap();
        for step in 0..TABLE_ROWS {
            writeln!(
                table,
                "2026-01-01T00:00:00.000000,run_0001,{step},{},{},0.001,1.5,0.8,0.81,0.79,12.5,ok",
                1.0 / (step + 1) as f64,
                step as f64 / TABLE_ROWS as f64
            )
            .unwrap();
        }
        // 1 GB log: the file is sparse except its last megabyte of real lines, which is all a
        // tail reader should ever touch.
        let log = std::fs::File::create(big.join("logs/big.log")).unwrap();
        log.set_len(LOG_BYTES - (1 << 20)).unwrap();
        let mut log = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .append(true)
                .open(big.join("logs/big.log"))
                .unwrap(),
        );
        let mut written = 0;
        let mut n = 0;
        while written < (1 << 20) {
            let line = format!("step {n} loss=0.123 lr=0.001 elapsed=12.5s\n");
            written += line.len();
            log.write_all(line.as_bytes()).unwrap();
            n += 1;
        }
    }

    // Tables of 100 rows followed by 16 MB, and by 40 MB, without a newline.
    for (name, garbage) in [("giant_line", 16_000_000), ("giant_line_40mb", 40_000_000)] {
        let mut table = std::io::BufWriter::new(
            std::fs::File::create(big.join(format!("metrics/{name}.csv"))).unwrap(),
        );
        writeln!(table, "timestamp,run_id,step,loss").unwrap();
        for step in 0..100 {
            writeln!(table, "2026-01-01T00:00:00.000000,run_0001,{step},0.5").unwrap();
        }
        table.write_all(&vec![b'7'; garbage]).unwrap();
    }

    let server = Server::start(
        &base,
        &ServerOptions {
            port: 0,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let addr = server.addr();
    let id = "exp00000_2026-01-01__00-00-00";

    // Cold: the first request waits for the first scan of 10,000 directories.
    let (cold, body) = time_ms(|| get(addr, "/api/experiments"));
    let listing: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        listing["experiments"].as_array().map(Vec::len),
        Some(EXPERIMENTS)
    );
    let version = listing["version"].as_u64().unwrap();
    let warm = (0..5)
        .map(|_| time_ms(|| get(addr, "/api/experiments")).0)
        .fold(f64::MAX, f64::min);
    let (poll, poll_body) = time_ms(|| get(addr, &format!("/api/experiments?since={version}")));
    // 200 small requests, one connection each: the median and the 95th percentile show what
    // a single sample above cannot (a request that lands during the index's rescan).
    let mut small: Vec<f64> = (0..200)
        .map(|_| time_ms(|| get(addr, &format!("/api/experiments?since={version}"))).0)
        .collect();
    small.sort_by(f64::total_cmp);
    let (small_median, small_p95) = (small[100], small[190]);
    let (tail_cold, _) =
        time_ms(|| get(addr, &format!("/api/experiments/{id}/tables/big?tail=100")));
    let (tail, _) = time_ms(|| get(addr, &format!("/api/experiments/{id}/tables/big?tail=100")));
    let (giant, giant_body) = time_ms(|| {
        get(
            addr,
            &format!("/api/experiments/{id}/tables/giant_line?tail=100"),
        )
    });
    let giant_rows: serde_json::Value = serde_json::from_slice(&giant_body).unwrap();
    assert_eq!(giant_rows["rows"].as_array().map(Vec::len), Some(100));
    let (giant_40, _) = time_ms(|| {
        get_status(
            addr,
            &format!("/api/experiments/{id}/tables/giant_line_40mb?tail=100"),
            422,
        )
    });
    let (log_cold, _) = time_ms(|| get(addr, &format!("/api/experiments/{id}/logs/big.log")));
    let (log, log_body) = time_ms(|| get(addr, &format!("/api/experiments/{id}/logs/big.log")));
    server.stop();

    println!(
        "list {EXPERIMENTS} experiments, cold (first scan) {cold:8.1} ms  ({} KB)",
        body.len() / 1024
    );
    println!("list {EXPERIMENTS} experiments, warm              {warm:8.1} ms  (goal < 100 ms)");
    println!(
        "poll with nothing changed (?since=)         {poll:8.1} ms  ({} bytes)",
        poll_body.len()
    );
    println!(
        "last 100 rows of a {TABLE_ROWS}-row table     {:8.1} ms  (cold {tail_cold:.1} ms, goal < 50 ms)",
        tail
    );
    println!(
        "tail of a 1 GB log                        {:8.1} ms  (cold {log_cold:.1} ms, {} KB, goal < 10 ms)",
        log,
        log_body.len() / 1024
    );
    println!("200 polls, one connection each: median {small_median:.2} ms, p95 {small_p95:.2} ms");
    println!("last 100 rows before a 16 MB unterminated line {giant:8.1} ms");
    println!("tail of a table ending in 40 MB without a newline {giant_40:8.1} ms  (422)");
}
