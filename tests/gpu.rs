//! GPU inventory, assignment and `EXP gpus` output, without a GPU.
//!
//! Discovery reads the environment, so every test of `discover()` runs in a child process (this
//! test binary again, `--exact child`, with `EXPMAN_TEST_ROLE` set) whose environment the
//! parent controls; no test changes this process's environment. The child prints one line,
//! `@@ ` followed by a JSON object describing what `discover()` returned.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use expman::ErrorKind;
use expman::gpu::{
    ENV_GPU_INVENTORY, Gpu, GpuProcess, Inventory, Source, discover, format_table, pick,
    read_inventory, try_discover, write_inventory,
};
use serde_json::{Value as Json, json};

const ROLE_ENV: &str = "EXPMAN_TEST_ROLE";
const MARK: &str = "@@ ";

fn gpu(index: u32, used: u64, total: u64) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-0000000{index}-aaaa-bbbb-cccc-dddddddddddd"),
        name: "NVIDIA Test GPU".into(),
        memory_used_mib: used,
        memory_total_mib: total,
        utilization_percent: 10 * index,
        processes: Vec::new(),
        power_mw: None,
        temperature_c: None,
    }
}

fn none_busy() -> HashSet<u32> {
    HashSet::new()
}

// ---------------------------------------------------------------------------------------------
// The child process.

/// In a child: reports what `discover()` and `try_discover()` see. In the parent: nothing.
#[test]
fn child() {
    if std::env::var(ROLE_ENV).as_deref() != Ok("discover") {
        return;
    }
    let inv = discover();
    let (kind, detail) = match &inv.source {
        Source::Injected(path) => ("injected", path.display().to_string()),
        Source::Nvml => ("nvml", String::new()),
        Source::Unavailable(why) => ("unavailable", why.clone()),
    };
    let report = json!({
        "kind": kind,
        "detail": detail,
        "gpus": inv.gpus,
        "warnings": inv.warnings,
        "table": format_table(&inv),
        "try_discover_error": try_discover().err().map(|e| e.to_string()),
    });
    println!("{MARK}{report}");
}

/// Runs `discover()` in a child with `EXPMAN_GPU_INVENTORY` set to `inventory` (or unset).
fn discover_in_child(inventory: Option<&Path>) -> Json {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args([
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env(ROLE_ENV, "discover")
    .env_remove(ENV_GPU_INVENTORY)
    .stdin(Stdio::null());
    if let Some(path) = inventory {
        cmd.env(ENV_GPU_INVENTORY, path);
    }
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(MARK))
        .unwrap_or_else(|| panic!("child printed no report:\n{stdout}"));
    serde_json::from_str(line).expect("the child's report is JSON")
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// Injected inventories.

#[test]
fn inventory_file_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpus.json");
    let mut gpus = vec![gpu(1, 2048, 24_576), gpu(0, 100, 81_559)];
    gpus[0].processes = vec![
        GpuProcess {
            pid: 4242,
            used_memory_mib: Some(2000),
        },
        GpuProcess {
            pid: 4343,
            used_memory_mib: None,
        },
    ];
    write_inventory(&path, &gpus).unwrap();
    let back = read_inventory(&path).unwrap();
    // Read back sorted by index.
    gpus.sort_by_key(|g| g.index);
    assert_eq!(back, gpus);
}

#[test]
fn hand_written_inventory_may_leave_out_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "gpus.json",
        r#"[{"index": 0, "uuid": "GPU-x", "name": "A100", "memory_used_mib": 1,
             "memory_total_mib": 40960, "utilization_percent": 0}]"#,
    );
    let gpus = read_inventory(&path).unwrap();
    assert_eq!(gpus.len(), 1);
    assert!(gpus[0].processes.is_empty());
    assert_eq!(gpus[0].memory_free_mib(), 40959);
}

#[test]
fn injected_inventory_reaches_a_child_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpus.json");
    let gpus: Vec<Gpu> = (0..8)
        .map(|i| gpu(i, 1000 * u64::from(i), 16_000))
        .collect();
    write_inventory(&path, &gpus).unwrap();

    let report = discover_in_child(Some(&path));
    assert_eq!(report["kind"], "injected", "{report}");
    assert_eq!(report["detail"], path.display().to_string());
    let seen: Vec<Gpu> = serde_json::from_value(report["gpus"].clone()).unwrap();
    assert_eq!(seen, gpus);
    assert_eq!(report["warnings"], json!([]));
    assert_eq!(report["try_discover_error"], Json::Null);
}

#[test]
fn empty_variable_counts_as_unset() {
    let report = discover_in_child(Some(Path::new("")));
    assert_ne!(report["kind"], "injected", "{report}");
}

#[test]
fn malformed_inventory_is_one_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "broken.json", "[{\"index\": 0,\n  \"uuid\": }]");

    let err = read_inventory(&path).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Config { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a GPU inventory"), "{msg}");
    assert!(msg.contains("line 2 column"), "{msg}");

    // discover() reports the same sentence as Unavailable; try_discover() as the error.
    let report = discover_in_child(Some(&path));
    assert_eq!(report["kind"], "unavailable", "{report}");
    assert_eq!(report["detail"], msg.as_str());
    assert_eq!(report["try_discover_error"], msg.as_str());
    assert_eq!(report["table"], format!("{msg}\n"));
}

#[test]
fn missing_inventory_file_names_the_file_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.json");
    let err = read_inventory(&path).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Config { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains(ENV_GPU_INVENTORY), "{msg}");

    let report = discover_in_child(Some(&path));
    assert_eq!(report["kind"], "unavailable", "{report}");
    assert_eq!(report["detail"], msg.as_str());
}

#[test]
fn misspelled_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "gpus.json",
        r#"[{"index": 0, "uuid": "GPU-x", "name": "A100", "memory_used_mib": 1,
             "memory_total_mib": 40960, "utilization_percent": 0, "proceses": []}]"#,
    );
    let msg = read_inventory(&path).unwrap_err().to_string();
    assert!(msg.contains("unknown field `proceses`"), "{msg}");
}

#[test]
fn duplicate_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpus.json");
    write_inventory(&path, &[gpu(0, 0, 100), gpu(3, 0, 100), gpu(3, 5, 100)]).unwrap();
    let msg = read_inventory(&path).unwrap_err().to_string();
    assert!(msg.contains("GPU index 3 appears twice"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Discovery without an injected file, on whatever machine runs the tests.

#[test]
fn without_inventory_nvml_or_one_clear_message() {
    let report = discover_in_child(None);
    let kind = report["kind"].as_str().unwrap();
    let detail = report["detail"].as_str().unwrap();
    eprintln!("discover() without {ENV_GPU_INVENTORY}: {kind}: {detail}");
    if cfg!(feature = "gpu") {
        match kind {
            // A machine with a driver: whatever NVML reports, listed by index.
            "nvml" => {
                let gpus: Vec<Gpu> = serde_json::from_value(report["gpus"].clone()).unwrap();
                assert!(gpus.windows(2).all(|w| w[0].index < w[1].index));
            }
            "unavailable" => {
                assert!(detail.starts_with("NVML not available: "), "{detail}");
                assert!(!detail.contains('\n'), "one line: {detail}");
                assert_eq!(report["gpus"], json!([]));
                // Not an error: the scheduler falls back to its pool.
                assert_eq!(report["try_discover_error"], Json::Null);
                assert_eq!(report["table"], format!("{detail}\n"));
            }
            other => panic!("unexpected source {other}: {report}"),
        }
    } else {
        assert_eq!(kind, "unavailable", "{report}");
        assert!(
            detail.contains("built without the `gpu` feature"),
            "{detail}"
        );
        assert!(detail.contains("--features gpu"), "{detail}");
        assert_eq!(report["try_discover_error"], Json::Null);
    }
}

/// On a machine without the NVIDIA driver (no libnvidia-ml.so.1 anywhere the loader looks), the
/// message is exactly the one the docs promise.
#[cfg(feature = "gpu")]
#[test]
fn without_driver_the_message_says_the_library_is_missing() {
    let driver_present = ["/dev/nvidiactl", "/proc/driver/nvidia"]
        .iter()
        .any(|p| Path::new(p).exists());
    if driver_present {
        eprintln!("skipped: this machine has an NVIDIA driver");
        return;
    }
    let report = discover_in_child(None);
    let detail = report["detail"].as_str().unwrap();
    // The library may still be installed without a loaded kernel driver (e.g. in a container
    // image built for GPUs); then NVML answers "driver not loaded" instead.
    assert!(
        detail
            == "NVML not available: libnvidia-ml.so.1 not found; is the NVIDIA driver installed?"
            || detail.starts_with("NVML not available: the NVIDIA kernel driver is not loaded"),
        "{detail}"
    );
}

// ---------------------------------------------------------------------------------------------
// pick()

#[test]
fn pick_prefers_free_memory() {
    let inventory = [
        gpu(0, 15_000, 16_000), // 1000 free
        gpu(1, 1_000, 16_000),  // 15000 free
        gpu(2, 0, 80_000),      // 80000 free
        gpu(3, 8_000, 16_000),  // 8000 free
    ];
    assert_eq!(pick(&inventory, 1, &none_busy()), Some(vec![2]));
    // The two freest, returned in index order.
    assert_eq!(pick(&inventory, 2, &none_busy()), Some(vec![1, 2]));
    assert_eq!(pick(&inventory, 3, &none_busy()), Some(vec![1, 2, 3]));
    assert_eq!(pick(&inventory, 4, &none_busy()), Some(vec![0, 1, 2, 3]));
}

#[test]
fn pick_breaks_ties_by_index() {
    let inventory = [
        gpu(3, 0, 100),
        gpu(1, 0, 100),
        gpu(2, 0, 100),
        gpu(0, 50, 100),
    ];
    assert_eq!(pick(&inventory, 1, &none_busy()), Some(vec![1]));
    assert_eq!(pick(&inventory, 2, &none_busy()), Some(vec![1, 2]));
}

#[test]
fn pick_skips_busy_gpus() {
    let inventory = [gpu(0, 0, 80_000), gpu(1, 0, 16_000), gpu(2, 10_000, 16_000)];
    let busy = HashSet::from([0]);
    assert_eq!(pick(&inventory, 1, &busy), Some(vec![1]));
    assert_eq!(pick(&inventory, 2, &busy), Some(vec![1, 2]));
    // A busy GPU is never chosen, even with everything else full.
    let busy = HashSet::from([0, 1]);
    assert_eq!(pick(&inventory, 1, &busy), Some(vec![2]));
}

#[test]
fn pick_returns_none_when_short() {
    let inventory = [gpu(0, 0, 100), gpu(1, 0, 100)];
    assert_eq!(pick(&inventory, 3, &none_busy()), None);
    assert_eq!(pick(&inventory, 2, &HashSet::from([1])), None);
    assert_eq!(pick(&[], 1, &none_busy()), None);
    // Zero GPUs can always be had.
    assert_eq!(pick(&[], 0, &none_busy()), Some(vec![]));
}

#[test]
fn pick_never_repeats_an_index() {
    let inventory = [gpu(0, 0, 100), gpu(0, 0, 100), gpu(1, 90, 100)];
    assert_eq!(pick(&inventory, 2, &none_busy()), Some(vec![0, 1]));
    assert_eq!(pick(&inventory, 3, &none_busy()), None);
}

/// Jobs taking GPUs one after another, as the scheduler does: no GPU is handed out twice.
#[test]
fn repeated_picks_never_double_book() {
    let inventory: Vec<Gpu> = (0..8).map(|i| gpu(i, (i as u64 * 37) % 5, 100)).collect();
    let mut busy = HashSet::new();
    for _ in 0..4 {
        let got = pick(&inventory, 2, &busy).unwrap();
        for index in got {
            assert!(busy.insert(index), "GPU {index} given twice");
        }
    }
    assert_eq!(busy.len(), 8);
    assert_eq!(pick(&inventory, 1, &busy), None);
}

// ---------------------------------------------------------------------------------------------
// format_table()

#[test]
fn format_table_lists_every_gpu() {
    let mut gpus = vec![gpu(0, 1024, 81_559), gpu(1, 22_000, 24_576)];
    gpus[0].name = "NVIDIA H100 80GB HBM3".into();
    gpus[1].processes = vec![
        GpuProcess {
            pid: 1,
            used_memory_mib: Some(10),
        },
        GpuProcess {
            pid: 2,
            used_memory_mib: None,
        },
    ];
    let inv = Inventory {
        gpus,
        source: Source::Nvml,
        warnings: vec!["GPU 2 left out: NVML cannot read it (GPU is lost)".into()],
    };
    let expected = "\
GPU  NAME                   MEMORY             UTIL  PROCS  UUID
  0  NVIDIA H100 80GB HBM3  1024 / 81559 MiB     0%      0  GPU-00000000-aaaa-bbbb-cccc-dddddddddddd
  1  NVIDIA Test GPU        22000 / 24576 MiB   10%      2  GPU-00000001-aaaa-bbbb-cccc-dddddddddddd
warning: GPU 2 left out: NVML cannot read it (GPU is lost)
";
    assert_eq!(format_table(&inv), expected);
}

#[test]
fn format_table_says_where_an_injected_list_came_from() {
    let inv = Inventory {
        gpus: vec![gpu(0, 0, 100)],
        source: Source::Injected("/tmp/gpus.json".into()),
        warnings: Vec::new(),
    };
    let table = format_table(&inv);
    assert!(
        table.ends_with("(injected: EXPMAN_GPU_INVENTORY=/tmp/gpus.json)\n"),
        "{table}"
    );

    let empty = Inventory {
        gpus: Vec::new(),
        ..inv
    };
    assert_eq!(format_table(&empty), "no GPUs listed in /tmp/gpus.json\n");
}

#[test]
fn format_table_without_inventory_is_the_message() {
    let inv = Inventory::unavailable("NVML not available: something");
    assert_eq!(
        inv.unavailable_reason(),
        Some("NVML not available: something")
    );
    assert_eq!(format_table(&inv), "NVML not available: something\n");

    let none = Inventory {
        gpus: Vec::new(),
        source: Source::Nvml,
        warnings: Vec::new(),
    };
    assert_eq!(
        format_table(&none),
        "no GPUs: NVML reports none on this machine\n"
    );
}

/// `EXP gpus` with `EXPMAN_GPU_INVENTORY` set to `inventory` (or unset, and no NVML here).
#[cfg(feature = "ui")]
fn exp_gpus(inventory: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_EXP"));
    cmd.arg("gpus").env_remove(ENV_GPU_INVENTORY);
    if let Some(path) = inventory {
        cmd.env(ENV_GPU_INVENTORY, path);
    }
    cmd.output().unwrap()
}

#[cfg(feature = "ui")]
#[test]
fn exp_gpus_fails_on_an_inventory_it_cannot_read_and_lists_one_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let misspelt = write_file(
        dir.path(),
        "gpus.json",
        r#"[{"index": 0, "uuid": "GPU-0", "name": "T", "memory_used_mib": 1,
             "memory_total_mb": 80000, "utilization_percent": 0}]"#,
    );
    let missing = dir.path().join("nowhere.json");
    for (path, named) in [
        (&misspelt, "memory_total_mb"),
        (&missing, ENV_GPU_INVENTORY),
    ] {
        let out = exp_gpus(Some(path));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.starts_with(&format!("EXP: {}", path.display())),
            "{stderr}"
        );
        assert!(stderr.contains(named), "{stderr}");
    }
    let good = dir.path().join("good.json");
    write_inventory(&good, &[gpu(0, 100, 80_000)]).unwrap();
    let out = exp_gpus(Some(&good));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("NVIDIA Test GPU"));
    // No GPU and no driver is a fact about the machine, not a failure.
    let out = exp_gpus(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
}
