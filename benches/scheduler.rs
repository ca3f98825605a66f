//! The scheduler's cost per job, and GPU hand-out under contention, measured on the real
//! `EXP run` (release build).
//!
//! `cargo bench --features ui --bench scheduler`.
//!
//! 1. Overhead: 500 jobs running `true` at `max_concurrent = 2`. The wall time of `EXP run`
//!    divided by 500, minus the bare cost of spawning `sh -c true` (measured in the same run,
//!    500 times one after another), is what the scheduler adds per job: creating the
//!    experiment directory, the supervisor process, the status updates, the bookkeeping.
//!    Goal: < 10 ms.
//! 2. GPUs: 100 queued jobs with `gpus = 1` on 8 injected GPUs (`max_concurrent = 16`, so the
//!    GPUs are what limits). Each job records `CUDA_VISIBLE_DEVICES` and its start and end
//!    times; the bench fails if one GPU was given to two jobs at once, and reports the time to
//!    drain the queue next to the ideal (100 / 8 jobs back to back).
//!
//! The experiments go to a temp dir under `$EXPMAN_BENCH_DIR` (default: the current directory).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use expman::gpu::{Gpu, write_inventory};

/// The `EXP` binary cargo built for this bench (a release build under `cargo bench`).
const EXP: &str = env!("CARGO_BIN_EXE_EXP");

const OVERHEAD_JOBS: usize = 500;
/// Repetitions of the overhead measurement (the machine may be busy: median and best count).
const REPS: usize = 3;
const GPU_JOBS: usize = 100;
const GPUS: u32 = 8;
/// How long each GPU job holds its GPU, so that jobs overlap and contend.
const GPU_JOB_SECONDS: f64 = 0.05;

fn main() {
    let root = std::env::var("EXPMAN_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let tmp = tempfile::Builder::new()
        .prefix("expman-bench-scheduler-")
        .tempdir_in(root)
        .expect("temp dir");
    println!("EXP: {EXP}");
    overhead(tmp.path());
    gpus(tmp.path());
}

/// Runs `EXP run --config <config>` and returns its wall time; panics unless it exits 0.
fn run_scheduler(config: &Path, env: &[(&str, &Path)]) -> Duration {
    let mut cmd = Command::new(EXP);
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .env("EXPMAN_EXP_BIN", EXP)
        .env_remove("EXPMAN_GPU_INVENTORY")
        .env_remove("EXPMAN_EXPERIMENT_DIR")
        .env_remove("EXPMAN_RUN_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let start = Instant::now();
    let status = cmd.status().expect("run EXP");
    let took = start.elapsed();
    assert!(status.success(), "EXP run --config {config:?}: {status}");
    took
}

/// One repetition of the overhead measurement, in seconds.
struct Sample {
    /// 500 x `sh -c true`, one after another.
    bare: f64,
    /// `EXP run` from spawn to exit.
    wall: f64,
    /// From the first experiment created (Pending) to the last.
    create: f64,
    /// From the first job's start to the last job's end.
    run: f64,
}

fn overhead(root: &Path) {
    let mut samples: Vec<Sample> = (0..REPS)
        .map(|rep| overhead_once(&root.join(format!("overhead{rep}"))))
        .collect();
    let ms_per_job = |s: f64| s * 1e3 / OVERHEAD_JOBS as f64;
    let per_job = |s: &Sample| ms_per_job(s.wall) - ms_per_job(s.bare);
    samples.sort_by(|a, b| per_job(a).total_cmp(&per_job(b)));
    println!(
        "{OVERHEAD_JOBS} jobs `true`, max_concurrent = 2, {REPS} runs (each beside its own \
         baseline of {OVERHEAD_JOBS} x `sh -c true` run one after another):"
    );
    for (label, s) in [("best", &samples[0]), ("median", &samples[REPS / 2])] {
        println!(
            "  {label:<6} wall {:6.2} s = {:5.2} ms/job; baseline {:5.2} ms/job; \
             creating the Pending experiments {:5.2} ms/job, running them {:5.2} ms/job",
            s.wall,
            ms_per_job(s.wall),
            ms_per_job(s.bare),
            ms_per_job(s.create),
            ms_per_job(s.run),
        );
    }
    let median = per_job(&samples[REPS / 2]);
    println!(
        "scheduler overhead per job: median {median:.2} ms, best {:.2} ms (goal < 10 ms){}",
        per_job(&samples[0]),
        if median < 10.0 {
            ""
        } else {
            "  ** over goal **"
        }
    );
}

fn overhead_once(dir: &Path) -> Sample {
    std::fs::create_dir_all(dir).unwrap();
    let mut config =
        String::from("[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = 2\ngpus = []\n");
    for i in 0..OVERHEAD_JOBS {
        write!(
            config,
            "\n[[experiments]]\nname = \"job{i:03}\"\ncommand = \"true\"\n"
        )
        .unwrap();
    }
    let config_path = dir.join("overhead.toml");
    std::fs::write(&config_path, config).unwrap();

    // The baseline: what running the commands alone costs, one after another.
    let start = Instant::now();
    for _ in 0..OVERHEAD_JOBS {
        let status = Command::new("sh")
            .args(["-c", "true"])
            .stdin(Stdio::null())
            .status()
            .expect("sh -c true");
        assert!(status.success());
    }
    let bare = start.elapsed().as_secs_f64();

    let wall = run_scheduler(&config_path, &[]).as_secs_f64();

    // Where the time went, from the times the experiments recorded.
    let (mut created, mut started, mut ended) = (Vec::new(), Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir.join("experiments"))
        .unwrap()
        .flatten()
    {
        let read = |file: &str| -> Option<serde_json::Value> {
            serde_json::from_slice(&std::fs::read(entry.path().join(file)).ok()?).ok()
        };
        let (Some(config), Some(status)) = (read("config.json"), read("status.json")) else {
            continue; // .expman
        };
        assert_eq!(status["status"], "Finished", "{status}");
        let time = |v: &serde_json::Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
                .expect("an RFC 3339 time")
                .timestamp_micros()
        };
        created.push(time(&config["created_at"]));
        started.push(time(&status["started_at"]));
        ended.push(time(&status["finished_at"]));
    }
    assert_eq!(created.len(), OVERHEAD_JOBS, "every job finished");
    let span = |from: &[i64], to: &[i64]| {
        (to.iter().max().unwrap() - from.iter().min().unwrap()) as f64 / 1e6
    };
    Sample {
        bare,
        wall,
        create: span(&created, &created),
        run: span(&started, &ended),
    }
}

fn gpus(root: &Path) {
    let dir = root.join("gpus");
    std::fs::create_dir_all(&dir).unwrap();
    let inventory = dir.join("gpus.json");
    let gpus: Vec<Gpu> = (0..GPUS)
        .map(|index| Gpu {
            index,
            uuid: format!("GPU-bench-{index}"),
            name: "Injected Bench GPU".into(),
            memory_used_mib: u64::from(index) * 100,
            memory_total_mib: 80_000,
            utilization_percent: 0,
            processes: Vec::new(),
            power_mw: None,
            temperature_c: None,
        })
        .collect();
    write_inventory(&inventory, &gpus).expect("write the inventory");

    let records = dir.join("records");
    let script = dir.join("job.sh");
    std::fs::write(
        &script,
        format!(
            "s=$(date +%s%N); sleep {GPU_JOB_SECONDS}; e=$(date +%s%N)\n\
             echo \"$1 $s $e $CUDA_VISIBLE_DEVICES\" >> {}\n",
            records.display()
        ),
    )
    .unwrap();
    let mut config = String::from("[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = 16\n");
    for i in 0..GPU_JOBS {
        write!(
            config,
            "\n[[experiments]]\nname = \"gpu_job{i:03}\"\ngpus = 1\ncommand = \"sh {} {i}\"\n",
            script.display()
        )
        .unwrap();
    }
    let config_path = dir.join("gpus.toml");
    std::fs::write(&config_path, config).unwrap();

    let drain = run_scheduler(&config_path, &[("EXPMAN_GPU_INVENTORY", &inventory)]);

    struct Rec {
        job: String,
        start: u128,
        end: u128,
        gpu: u32,
    }
    let text = std::fs::read_to_string(&records).unwrap();
    let recs: Vec<Rec> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(
                f.len(),
                4,
                "a job saw CUDA_VISIBLE_DEVICES of one GPU: {line:?}"
            );
            Rec {
                job: f[0].to_string(),
                start: f[1].parse().unwrap(),
                end: f[2].parse().unwrap(),
                gpu: f[3].parse().unwrap_or_else(|_| panic!("one GPU: {line:?}")),
            }
        })
        .collect();
    assert_eq!(recs.len(), GPU_JOBS, "every job ran once");
    let mut peak = 0;
    for (i, a) in recs.iter().enumerate() {
        assert!(a.gpu < GPUS, "GPU {} is not in the inventory", a.gpu);
        let mut at_once = 1;
        for b in &recs[i + 1..] {
            if a.start < b.end && b.start < a.end {
                assert_ne!(
                    a.gpu, b.gpu,
                    "GPU {} given to jobs {} and {} at the same time",
                    a.gpu, a.job, b.job
                );
            }
        }
        for b in &recs {
            if !std::ptr::eq(a, b) && b.start <= a.start && a.start < b.end {
                at_once += 1;
            }
        }
        peak = peak.max(at_once);
    }
    let ideal = GPU_JOBS as f64 / f64::from(GPUS) * GPU_JOB_SECONDS;
    println!(
        "{GPU_JOBS} jobs x gpus = 1 on {GPUS} injected GPUs: no GPU double-assigned, \
         at most {peak} jobs at once"
    );
    println!(
        "time to drain: {:.2} s (the jobs' own {GPU_JOB_SECONDS} s each, back to back on \
         {GPUS} GPUs: {ideal:.2} s)",
        drain.as_secs_f64()
    );
}
