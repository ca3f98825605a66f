//! Run-id allocation latency, alone and with 16 processes allocating in the same experiment.
//!
//! `cargo bench --bench run_ids`. Goal: median < 200 µs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use expman::{ExperimentDir, run_id};

const ALONE: usize = 2_000;
const CONTENDERS: usize = 16;
const PER_CONTENDER: usize = 200;
const CHILD_ENV: &str = "EXPMAN_BENCH_RUN_ID_CHILD";

/// Allocates `n` ids in `dir`, returning each allocation's latency in microseconds.
fn allocate(dir: &ExperimentDir, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            run_id::allocate(dir).expect("allocate a run id");
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(label: &str, mut latencies: Vec<f64>) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "{label:<34} n={:<6} median {:7.1} µs   p99 {:8.1} µs",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}

fn new_experiment(base: &Path, name: &str) -> ExperimentDir {
    let exp = expman::Experiment::builder(name, base)
        .attach_from_env(false)
        .create()
        .expect("create experiment");
    ExperimentDir::open(exp.dir()).expect("open experiment")
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        // A contender: allocate and print latencies, one per line.
        let dir = ExperimentDir::open(dir).expect("open experiment");
        for latency in allocate(&dir, PER_CONTENDER) {
            println!("{latency}");
        }
        return;
    }
    let base = tempfile::tempdir_in(std::env::var("EXPMAN_BENCH_DIR").unwrap_or(".".into()))
        .expect("temp dir");

    let alone = new_experiment(base.path(), "alone");
    report("alone", allocate(&alone, ALONE));

    let shared = new_experiment(base.path(), "contended");
    let exe = std::env::current_exe().expect("bench executable");
    let children: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            Command::new(&exe)
                .env(CHILD_ENV, shared.path())
                .output_async()
        })
        .collect();
    let mut latencies = Vec::new();
    for child in children {
        let output = child.wait_with_output().expect("contender finished");
        assert!(output.status.success(), "contender failed");
        latencies.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|l| l.parse::<f64>().ok()),
        );
    }
    let runs = shared.runs().expect("list runs");
    assert_eq!(
        runs.len(),
        CONTENDERS * PER_CONTENDER + 1,
        "every id distinct"
    );
    assert_eq!(
        runs.last().map(|r| r.number() as usize),
        Some(runs.len()),
        "no gaps"
    );
    report(&format!("{CONTENDERS} processes contending"), latencies);
}

/// `Command::spawn` with piped stdout, so all contenders start before any is awaited.
trait SpawnPiped {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn contender")
    }
}
