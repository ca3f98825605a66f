//! System metrics on real processes: a tree spawned by the test (a shell, two children
//! burning CPU, one holding 200 MiB), sampled into a real experiment's `system` table; GPU
//! columns from an injected inventory file; the sampler thread's start, stop and end.
//!
//! The memory child is this test binary run again (`child` below, role in
//! `EXPMAN_SYSMETRICS_ROLE`); it says "@@ready" on stdout once its memory is touched, and lives
//! until its stdin closes. Waits are on those events or on rows appearing, polled with a
//! deadline; the one sleep is the window the CPU use is measured over.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use expman::gpu::{Gpu, write_inventory};
use expman::sysmetrics::{InventoryGpus, MIN_INTERVAL, SystemMetrics};
use expman::{ErrorKind, Experiment, Metrics, Value};

const ROLE: &str = "EXPMAN_SYSMETRICS_ROLE";
const LIMIT: Duration = Duration::from_secs(20);

/// The child process's side: hold 200 MiB (every page touched) until stdin closes.
#[test]
fn child() {
    if std::env::var(ROLE).as_deref() != Ok("hold-memory") {
        return;
    }
    let mut memory = vec![0u8; 200 << 20];
    for page in memory.chunks_mut(4096) {
        page[0] = 1;
    }
    // On a line of its own: libtest has printed "test child ... " without a newline.
    println!("\n@@ready");
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    assert!(memory.iter().step_by(4096).all(|b| *b == 1));
}

/// A tree: `sh` running two busy loops in the background and the memory child in the
/// foreground, in a process group of its own. Returns once the memory child is ready.
struct Tree {
    shell: Child,
}

impl Tree {
    fn spawn() -> Tree {
        let me = std::env::current_exe().unwrap();
        let script = r#"while :; do :; done >/dev/null & while :; do :; done >/dev/null & "$0" --exact child --nocapture --test-threads=1; kill $(jobs -p) 2>/dev/null; wait"#;
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(me)
            .env(ROLE, "hold-memory")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = shell.stdout.take().unwrap();
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "@@ready");
        assert!(ready, "the memory child never said ready");
        Tree { shell }
    }

    fn pid(&self) -> u32 {
        self.shell.id()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // The whole group: the shell, its busy loops and the memory child.
        // SAFETY: killpg on our own child's group; no memory is involved.
        unsafe {
            libc::killpg(self.shell.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = self.shell.wait();
    }
}

fn experiment(base: &Path) -> Experiment {
    Experiment::builder("sysmetrics", base)
        .attach_from_env(false)
        .create()
        .unwrap()
}

fn floats(table: &Metrics, column: &str) -> Vec<Option<f64>> {
    table
        .column(column)
        .unwrap_or_else(|| panic!("no column {column} in {:?}", table.columns))
        .map(Value::as_f64)
        .collect()
}

fn wait_until<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rows(exp: &Experiment) -> usize {
    exp.load_table("system").map_or(0, |t| t.rows.len())
}

#[test]
fn a_tree_of_busy_and_big_processes_is_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let tree = Tree::spawn();
    let mut collector = SystemMetrics::new(tree.pid(), exp.layout(), exp.run_id())
        .visible_gpus(None)
        .collector();
    assert!(collector.tick());
    // The window the CPU use is measured over: two busy loops for half a second.
    std::thread::sleep(Duration::from_millis(500));
    assert!(collector.tick());

    let table = exp.load_table("system").unwrap();
    assert_eq!(table.rows.len(), 2);
    assert_eq!(
        &table.columns[..10],
        [
            "timestamp",
            "run_id",
            "elapsed_s",
            "cpu_percent",
            "rss_mib",
            "processes",
            "threads",
            "host_mem_available_mib",
            "disk_read_mib",
            "disk_write_mib",
        ]
    );
    assert!(
        table
            .column("run_id")
            .unwrap()
            .all(|v| *v == Value::Str("run_0001".into()))
    );
    let cpu = floats(&table, "cpu_percent");
    assert_eq!(cpu[0], None, "no CPU figure without a previous sample");
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    let busy = cpu[1].unwrap();
    // Two loops that never sleep: well above idle even on a loaded machine, and never more
    // than every core.
    assert!(
        busy > 20.0 && busy <= 100.0 * cores + 5.0,
        "cpu_percent {busy}"
    );
    // sh, its two background subshells and the memory child.
    let processes = floats(&table, "processes");
    assert!(processes.iter().all(|p| p.unwrap() >= 4.0), "{processes:?}");
    let rss = floats(&table, "rss_mib");
    assert!(rss.iter().all(|r| r.unwrap() >= 200.0), "rss_mib {rss:?}");
    let available = floats(&table, "host_mem_available_mib");
    assert!(available.iter().all(|m| m.unwrap() > 0.0));
    let elapsed = floats(&table, "elapsed_s");
    assert!(elapsed[1].unwrap() >= elapsed[0].unwrap() + 0.5);
    // No GPU was assigned: no GPU columns.
    assert!(!table.columns.iter().any(|c| c.starts_with("gpu")));
}

fn gpu(index: u32, used: u64, util: u32, power_mw: Option<u32>) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index}0000000-aaaa"),
        name: "Test GPU".into(),
        memory_used_mib: used,
        memory_total_mib: 16_000,
        utilization_percent: util,
        processes: Vec::new(),
        power_mw,
        temperature_c: power_mw.map(|_| 60 + index),
    }
}

#[test]
fn gpu_columns_come_from_the_inventory_for_the_visible_gpus_only() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let inventory = tmp.path().join("gpus.json");
    let mut gpus = vec![
        gpu(0, 100, 5, Some(50_000)),
        gpu(1, 2_000, 10, None),
        gpu(2, 300, 15, Some(70_000)),
        gpu(3, 8_000, 20, Some(250_500)),
    ];
    write_inventory(&inventory, &gpus).unwrap();
    let mut collector = SystemMetrics::new(std::process::id(), exp.layout(), exp.run_id())
        .visible_gpus(Some("3,GPU-1"))
        .gpu_source(Box::new(InventoryGpus::new(&inventory)))
        .collector();
    assert!(collector.tick());
    // The readings change between samples; the inventory is read again at each.
    gpus[3].utilization_percent = 95;
    gpus[1].memory_used_mib = 4_000;
    write_inventory(&inventory, &gpus).unwrap();
    assert!(collector.tick());

    let table = exp.load_table("system").unwrap();
    let gpu_columns: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.starts_with("gpu"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        gpu_columns,
        [
            "gpu3_util_percent",
            "gpu3_mem_used_mib",
            "gpu3_mem_total_mib",
            "gpu3_power_w",
            "gpu3_temp_c",
            "gpu1_util_percent",
            "gpu1_mem_used_mib",
            "gpu1_mem_total_mib",
        ],
        "only the GPUs CUDA_VISIBLE_DEVICES names, GPU 1 without power or temperature"
    );
    assert_eq!(
        floats(&table, "gpu3_util_percent"),
        [Some(20.0), Some(95.0)]
    );
    assert_eq!(floats(&table, "gpu3_power_w"), [Some(250.5), Some(250.5)]);
    assert_eq!(floats(&table, "gpu3_temp_c"), [Some(63.0), Some(63.0)]);
    assert_eq!(
        floats(&table, "gpu1_mem_used_mib"),
        [Some(2_000.0), Some(4_000.0)]
    );
    assert_eq!(floats(&table, "gpu1_mem_total_mib"), [Some(16_000.0); 2]);
}

#[test]
fn a_broken_gpu_source_is_reported_once_and_sampling_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let missing = tmp.path().join("no-such-inventory.json");
    let mut collector = SystemMetrics::new(std::process::id(), exp.layout(), exp.run_id())
        .visible_gpus(Some("0"))
        .gpu_source(Box::new(InventoryGpus::new(&missing)))
        .collector();
    for _ in 0..3 {
        assert!(collector.tick());
    }
    assert_eq!(rows(&exp), 3, "the rows go on without GPU columns");
    let log = std::fs::read_to_string(exp.layout().run_log(exp.run_id())).unwrap();
    let reports: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("system metrics:"))
        .collect();
    assert_eq!(reports.len(), 1, "{log}");
    assert!(
        reports[0].contains("no-such-inventory.json"),
        "{}",
        reports[0]
    );
}

#[test]
fn an_unwritable_table_is_reported_once_and_never_fails_the_caller() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let metrics = exp.dir().join("metrics");
    std::fs::remove_dir_all(&metrics).unwrap();
    std::fs::write(&metrics, "not a directory").unwrap();
    let mut collector = SystemMetrics::new(std::process::id(), exp.layout(), exp.run_id())
        .visible_gpus(None)
        .collector();
    for _ in 0..3 {
        assert!(collector.tick(), "a failed write does not end sampling");
    }
    let log = std::fs::read_to_string(exp.layout().run_log(exp.run_id())).unwrap();
    let reports = log
        .lines()
        .filter(|l| l.contains("cannot write the system metrics"));
    assert_eq!(reports.count(), 1, "{log}");
}

#[test]
fn the_sampler_thread_samples_at_start_and_stops_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = experiment(tmp.path());
    exp.start_system_metrics(Duration::from_millis(20)).unwrap();
    assert!(exp.is_sampling_system());
    wait_until("three rows", || (rows(&exp) >= 3).then_some(()));

    // An hour's interval: the first row comes at once, and stopping does not wait it out.
    exp.start_system_metrics(Duration::from_secs(3600)).unwrap();
    let before = rows(&exp);
    wait_until("the first row of the new sampler", || {
        (rows(&exp) > before).then_some(())
    });
    let stopping = Instant::now();
    exp.stop_system_metrics();
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(1), "stopping took {took:?}");
    assert!(!exp.is_sampling_system());
    let after = rows(&exp);
    // Stopped means joined: nothing can write any more.
    exp.stop_system_metrics();
    assert_eq!(rows(&exp), after);
}

#[test]
fn the_sampler_ends_by_itself_when_its_tree_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let mut cat = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
    let sampler = SystemMetrics::new(cat.id(), exp.layout(), exp.run_id())
        .interval(Duration::from_millis(20))
        .start()
        .unwrap();
    wait_until("a row", || (rows(&exp) >= 1).then_some(()));
    drop(cat.stdin.take());
    cat.wait().unwrap();
    wait_until("the sampler to end", || {
        (!sampler.is_running()).then_some(())
    });
    sampler.stop();
}

#[test]
fn too_short_an_interval_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = experiment(tmp.path());
    let err = exp
        .start_system_metrics(MIN_INTERVAL / 2)
        .expect_err("5 ms is below the minimum");
    assert!(
        matches!(err.kind(), ErrorKind::InvalidValue { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("10ms"), "{err}");
    assert!(!exp.is_sampling_system());
    assert!(!exp.dir().join("metrics/system.csv").exists());
}
