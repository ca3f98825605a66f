//! The catalog (issue 13) over 10,000 experiments × 30 params × 20 metric columns on disk, made
//! by the real API, each figure with a baseline in the same run:
//!
//! * C1 listing with params and summaries, warm (goal < 100 ms): `Catalog::refresh` of an
//!   unchanged directory plus every record as JSON (what `EXP ls --format json` writes), against
//!   reading every `config.json` and `status.json` with serde_json (no summaries at all).
//! * C2 a query over them (goal < 20 ms): `Catalog::select` with the issue's example, against
//!   the same predicate written by hand over the same records.
//! * C3 summary upkeep while 50 runs append 100 rows/s each (goal < 5 % of one core): the CPU
//!   time the refreshing thread spends per second of appends, refreshing once a second as the
//!   server does; against summarising the 50 growing tables from scratch each second.
//!
//! * C4 (with `--features server`): the same over real HTTP: `GET /api/experiments` (the full
//!   listing with params and summaries, pre-serialized by the index) and `GET /api/query`.
//!
//! `cargo bench --features server --bench catalog` (`EXPMAN_BENCH_EXPERIMENTS` changes the count,
//! `EXPMAN_BENCH_DIR` where the directories go, `EXPMAN_BENCH_SECONDS` how long C3 appends).

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use expman::catalog::Catalog;
use expman::query::{FieldPath, FieldValue, Query, Record};
use expman::{Experiment, SyncPolicy, TableSummary, TableWriter, Value};
use support::{Rng, env_or, thread_cpu};

const PARAMS: usize = 30;
const METRICS: usize = 20;
const ROWS: usize = 20;
const APPENDING: usize = 50;
const ROWS_PER_SECOND: u64 = 100;
const ROUNDS: usize = 15;
const EXAMPLE: &str = r#"params.lr < 1e-3 and metrics.val_acc.max >= 0.85 and (tag = cnn or tag = vit) and status in (finished, error) and name ~ "resnet*""#;

fn metric_name(i: usize) -> String {
    if i == 0 {
        "val_acc".to_string()
    } else {
        format!("metric_{i:02}")
    }
}

/// Makes experiment `i`: 30 params in `config.json`, `ROWS` rows of 20 metrics, Finished.
fn make(base: &Path, i: usize, rng: &mut Rng) -> PathBuf {
    let family = ["resnet", "vit", "mlp"][i % 3];
    let mut exp = Experiment::builder(format!("{family}_{i}"), base)
        .command(format!("python train.py --seed {i}"))
        .tags([["cnn", "vit", "baseline"][i % 3]])
        .sync(SyncPolicy::WriteThrough)
        .create()
        .expect("create an experiment");
    let mut params = serde_json::Map::new();
    params.insert("lr".into(), (10f64.powf(-1.0 - 4.0 * rng.unit())).into());
    params.insert("depth".into(), [18, 34, 50][i % 3].into());
    params.insert("optimizer".into(), ["adam", "sgd"][i % 2].into());
    for p in 3..PARAMS {
        params.insert(format!("p{p:02}"), (rng.next() % 1000).into());
    }
    let path = exp.dir().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["params"] = params.into();
    let tmp = exp.dir().join(".config.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&config).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    for step in 0..ROWS {
        exp.set("step", step as i64).unwrap();
        for m in 0..METRICS {
            exp.set(&metric_name(m), rng.unit()).unwrap();
        }
        exp.save_row().unwrap();
    }
    exp.set_finished().unwrap();
    exp.dir().to_path_buf()
}

/// Best and median of `ROUNDS` runs of `f`.
fn time<T>(mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut last = None;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        last = Some(black_box(f()));
        times.push(start.elapsed());
    }
    times.sort();
    (times[0], times[ROUNDS / 2], last.expect("ROUNDS > 0"))
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let n: usize = env_or("EXPMAN_BENCH_EXPERIMENTS", 10_000);
    let seconds: u64 = env_or("EXPMAN_BENCH_SECONDS", 5);
    // tmpfs when there is one: making 10,000 experiments fsyncs their state files, which on a
    // disk takes minutes and measures the disk, not the catalog (the listing runs warm anyway).
    let holder = match std::env::var_os("EXPMAN_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None if Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm"),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory");
    let base = holder.path();
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dirs: Vec<PathBuf> = (0..n).map(|i| make(base, i, &mut rng)).collect();
    println!(
        "{n} experiments × {PARAMS} params × {METRICS} metric columns × {ROWS} rows made in {:.1} s (in {})",
        started.elapsed().as_secs_f64(),
        base.display()
    );

    // C1: listing, warm.
    let mut catalog = Catalog::new(base);
    let cold = Instant::now();
    catalog.refresh().unwrap();
    let cold = cold.elapsed();
    let (best, median, listed) = time(|| {
        catalog.refresh().unwrap();
        catalog.select(&Query::parse("").unwrap(), &[]).len()
    });
    let (refresh_best, refresh_median, _) = time(|| catalog.refresh().unwrap());
    let (fresh_best, fresh_median, _) =
        time(|| catalog.select(&Query::parse("").unwrap(), &[]).len());
    let (json_best, json_median, bytes) = time(|| {
        let records: Vec<_> = catalog.records().collect();
        serde_json::to_vec(&records).unwrap().len()
    });
    let (base_best, base_median, _) = time(|| {
        let mut read = 0usize;
        for dir in &dirs {
            for file in ["config.json", "status.json"] {
                let bytes = std::fs::read(dir.join(file)).unwrap();
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                read += value.as_object().map_or(0, |o| o.len());
            }
        }
        read
    });
    println!("C1 listing with params and summaries, warm (goal < 100 ms)");
    println!(
        "   refresh + select all ({listed})     best {}  median {}  (cold first read {})",
        ms(best),
        ms(median),
        ms(cold)
    );
    println!(
        "     of which refresh (3 stats/exp) best {}  median {}",
        ms(refresh_best),
        ms(refresh_median)
    );
    println!(
        "   select all, records already fresh (a request to a refreshed index) best {}  median {}",
        ms(fresh_best),
        ms(fresh_median)
    );
    println!(
        "   all records as JSON ({} KiB)   best {}  median {}  (EXP ls --format json, Python)",
        bytes / 1024,
        ms(json_best),
        ms(json_median)
    );
    println!(
        "   baseline: serde_json read of every config.json + status.json  best {}  median {}",
        ms(base_best),
        ms(base_median)
    );

    // C2: a query.
    let query = Query::parse(EXAMPLE).unwrap();
    let (best, median, matched) = time(|| catalog.select(&query, &[]).len());
    let lr = FieldPath::parse("params.lr").unwrap();
    let by_hand = |r: &&expman::catalog::ExperimentRecord| {
        matches!(r.field(&lr), FieldValue::Float(x) if x < 1e-3)
            && r.metric("val_acc").is_some_and(|m| m.max >= 0.85)
            && r.tags.iter().any(|t| t == "cnn" || t == "vit")
            && matches!(
                r.status,
                expman::RunState::Finished | expman::RunState::Error
            )
            && r.name.starts_with("resnet")
    };
    let (hand_best, hand_median, expected) =
        time(|| catalog.records().filter(|r| by_hand(r)).count());
    assert_eq!(
        matched, expected,
        "the query and the hand-written predicate disagree"
    );
    println!("C2 the issue's example query ({matched} match; goal < 20 ms)");
    println!(
        "   Catalog::select                  best {}  median {}",
        ms(best),
        ms(median)
    );
    println!(
        "   baseline: by hand                best {}  median {}",
        ms(hand_best),
        ms(hand_median)
    );

    #[cfg(feature = "server")]
    server_figures(base, matched);

    // C3: upkeep while 50 runs append.
    let appending: Vec<PathBuf> = dirs.iter().take(APPENDING).cloned().collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, appending) = (Arc::clone(&stop), appending.clone());
        std::thread::spawn(move || {
            let mut writers: Vec<TableWriter> = appending
                .iter()
                .map(|d| {
                    TableWriter::new(
                        d.join("metrics").join("run_0001.csv"),
                        "run_0001",
                        SyncPolicy::WriteThrough,
                    )
                })
                .collect();
            let mut rng = Rng(7);
            let started = Instant::now();
            let mut rows = 0u64;
            while !stop.load(Ordering::SeqCst) {
                // 100 rows/s per run: one row each every 10 ms, paced against the clock.
                for w in &mut writers {
                    w.set("step", (ROWS as u64 + rows) as i64).unwrap();
                    for m in 0..METRICS {
                        w.set(&metric_name(m), Value::Float(rng.unit())).unwrap();
                    }
                    w.save_row().unwrap();
                }
                rows += 1;
                let due = started + Duration::from_millis(rows * 1000 / ROWS_PER_SECOND);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            rows * appending.len() as u64
        })
    };
    let mut refresh_cpu = Duration::ZERO;
    let mut scratch_cpu = Duration::ZERO;
    let mut changed = 0;
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let before = thread_cpu();
        changed += catalog.refresh().unwrap();
        refresh_cpu += thread_cpu() - before;
        let before = thread_cpu();
        for dir in &appending {
            black_box(TableSummary::of(dir.join("metrics").join("run_0001.csv")).unwrap());
        }
        scratch_cpu += thread_cpu() - before;
    }
    stop.store(true, Ordering::SeqCst);
    let rows = writer.join().unwrap();
    // What a refresh costs with nothing appended: the stats of every directory, not upkeep.
    let before = thread_cpu();
    for _ in 0..seconds {
        catalog.refresh().unwrap();
    }
    let idle_cpu = thread_cpu() - before;
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / seconds as f64;
    println!(
        "C3 upkeep while {APPENDING} runs append {ROWS_PER_SECOND} rows/s each ({rows} rows in {seconds} s, {changed} record updates; goal < 5 % of one core)"
    );
    println!(
        "   refresh once a second            {:5.2} % of a core (idle refresh alone {:5.2} %, so summaries {:5.2} %)",
        pct(refresh_cpu),
        pct(idle_cpu),
        pct(refresh_cpu.saturating_sub(idle_cpu))
    );
    println!(
        "   baseline: the {APPENDING} tables from scratch each second  {:5.2} % of a core",
        pct(scratch_cpu)
    );
}

/// C4: the server's listing and query endpoints over real HTTP on 127.0.0.1.
#[cfg(feature = "server")]
fn server_figures(base: &Path, matched: usize) {
    use std::io::{Read, Write};

    use expman::server::{Server, ServerOptions};

    let options = ServerOptions {
        port: 0,
        ..ServerOptions::default()
    };
    let server = Server::start(base, &options).expect("start the server");
    let addr = server.addr();
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut body = Vec::new();
        stream.read_to_end(&mut body).unwrap();
        assert!(
            body.starts_with(b"HTTP/1.1 200"),
            "{path}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        body
    };
    let cold = Instant::now();
    let size = get("/api/experiments").len();
    let cold = cold.elapsed();
    let (best, median, _) = time(|| get("/api/experiments").len());
    println!("C4 over HTTP (the server's index, built on the catalog)");
    println!(
        "   GET /api/experiments, warm ({} KiB)  best {}  median {}  (first, waiting for the first scan: {})",
        size / 1024,
        ms(best),
        ms(median),
        ms(cold)
    );
    let q: String = EXAMPLE
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (best, median, body) = time(|| get(&format!("/api/query?q={q}")));
    let at = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head")
        + 4;
    let answer: serde_json::Value = serde_json::from_slice(&body[at..]).expect("JSON");
    let ids = answer["ids"].as_array().map_or(0, Vec::len);
    assert_eq!(ids, matched, "the server and the catalog disagree");
    println!(
        "   GET /api/query (the example; {ids} ids)        best {}  median {}",
        ms(best),
        ms(median)
    );
    server.stop();
}
