//! The system metrics sampler's own cost: CPU time (user + system, of the sampling thread) of
//! N samples of a process tree of K processes, with and without writing the row, and with two
//! GPUs read from an injected inventory file.
//!
//! `cargo bench --bench sysmetrics`. Goal (issue 15): < 0.5 % of one core at the default
//! interval of 10 s, i.e. < 50 ms of CPU per sample. Baseline in the same run: the cheapest
//! possible probe, one read of `/proc/<root>/stat`.

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use expman::gpu::{Gpu, write_inventory};
use expman::sysmetrics::{DEFAULT_INTERVAL, InventoryGpus, SystemMetrics};
use support::thread_cpu;

const SAMPLES: usize = 300;

/// A shell with `k - 1` sleeping children that then becomes a `sleep` itself: a tree of `k`
/// processes. Returns once all exist.
fn tree(k: usize) -> Child {
    let script = format!(
        "for i in $(seq {}); do sleep 1000 & done; echo ready; exec sleep 1000",
        k - 1
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn the tree");
    let mut ready = [0u8; 6];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut ready)
        .expect("the tree says ready");
    child
}

/// Runs `f` `SAMPLES` times; returns (CPU µs per call, wall µs per call).
fn measure(mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm: the first sample opens the table
    let (cpu, wall) = (thread_cpu(), Instant::now());
    for _ in 0..SAMPLES {
        f();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / SAMPLES as f64;
    (per(thread_cpu() - cpu), per(wall.elapsed()))
}

fn report(label: &str, (cpu, wall): (f64, f64)) {
    let share = cpu / DEFAULT_INTERVAL.as_secs_f64() / 1e6 * 100.0;
    println!("{label:<44} {cpu:9.1} µs CPU {wall:9.1} µs wall   {share:.5} % of a core at 10 s");
}

fn main() {
    let base = tempfile::tempdir_in(std::env::var("EXPMAN_BENCH_DIR").unwrap_or(".".into()))
        .expect("temp dir");
    let exp = expman::Experiment::builder("sysmetrics_bench", base.path())
        .attach_from_env(false)
        .create()
        .expect("create experiment");
    let inventory = base.path().join("gpus.json");
    let gpus: Vec<Gpu> = (0..4)
        .map(|index| Gpu {
            index,
            uuid: format!("GPU-{index}"),
            name: "Bench GPU".into(),
            memory_used_mib: 1000,
            memory_total_mib: 80_000,
            utilization_percent: 50,
            processes: Vec::new(),
            power_mw: Some(300_000),
            temperature_c: Some(60),
        })
        .collect();
    write_inventory(&inventory, &gpus).expect("write the inventory");

    println!("system metrics sampler: {SAMPLES} samples each, CPU time of the sampling thread");
    let mut ok = true;
    for k in [1, 8, 64] {
        let mut child = tree(k);
        let root = child.id();
        let mut buf = Vec::new();
        report(
            &format!("K={k:<3} baseline: read /proc/<root>/stat"),
            measure(|| {
                buf.clear();
                File::open(format!("/proc/{root}/stat"))
                    .and_then(|mut f| f.read_to_end(&mut buf))
                    .expect("read stat");
            }),
        );
        let mut collector = SystemMetrics::new(root, exp.layout(), exp.run_id())
            .visible_gpus(None)
            .collector();
        report(
            &format!("K={k:<3} sample only"),
            measure(|| {
                let sample = collector.sample().expect("the tree is alive");
                assert_eq!(sample.processes as usize, k);
            }),
        );
        report(
            &format!("K={k:<3} sample + write the row"),
            measure(|| {
                assert!(collector.tick());
            }),
        );
        let mut with_gpus = SystemMetrics::new(root, exp.layout(), exp.run_id())
            .visible_gpus(Some("0,1"))
            .gpu_source(Box::new(InventoryGpus::new(&inventory)))
            .collector();
        let gpu_cost = measure(|| assert!(with_gpus.tick()));
        report(
            &format!("K={k:<3} + 2 GPUs (inventory file), written"),
            gpu_cost,
        );
        ok &= gpu_cost.0 < 0.005 * DEFAULT_INTERVAL.as_secs_f64() * 1e6;
        // SAFETY: kills the process group the tree was started in (ours alone).
        unsafe { libc::killpg(root as libc::pid_t, libc::SIGKILL) };
        let _ = child.wait();
    }
    println!(
        "goal < 0.5 % of one core at the default interval: {}",
        if ok { "met" } else { "NOT met" }
    );
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
