//! System metrics of `EXP run` jobs: the job supervisor samples its job's process tree into the
//! run's `system` table, with the GPUs the scheduler gave the job (from an injected inventory
//! here), as `[scheduler] system_metrics` and `system_metrics_interval` say.
//!
//! The sampling job waits (with a deadline) until the sampler has written three rows, so the
//! test waits on the rows themselves, not on a guess of how long sampling takes.

#![cfg(feature = "ui")]

mod scheduler_support;

use scheduler_support::*;

/// A job that ends once `metrics/system.csv` has a header and three rows (at most 30 s).
const WAIT_FOR_ROWS: &str = r#"i=0; while [ "$(cat "$EXPMAN_EXPERIMENT_DIR/metrics/system.csv" 2>/dev/null | wc -l)" -lt 4 ]; do i=$((i+1)); [ $i -gt 600 ] && exit 3; sleep 0.05; done"#;

fn inventory(sb: &Sandbox) -> String {
    let gpus: Vec<String> = (0..3)
        .map(|i| {
            format!(
                r#"{{"index": {i}, "uuid": "GPU-{i}", "name": "Test GPU", "memory_used_mib": {},
                "memory_total_mib": 24000, "utilization_percent": {}, "power_mw": 150000,
                "temperature_c": 55}}"#,
                1000 * (i + 1),
                30 + i
            )
        })
        .collect();
    let path = sb.write("gpus.json", format!("[{}]", gpus.join(",")));
    path.display().to_string()
}

fn csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    (lines.next().expect("a header"), lines.collect())
}

#[test]
fn a_job_gets_its_system_table_with_its_gpus_only() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
gpus = [0, 1, 2]
system_metrics_interval = "50ms"

[[experiments]]
name = "sampled"
command = {}
gpu_ids = [1]
"#,
            toml_str(WAIT_FOR_ROWS)
        ),
    );
    let gpus = inventory(&sb);
    Running::scheduler_with_env(&config, &[("EXPMAN_GPU_INVENTORY", &gpus)])
        .wait(LIMIT)
        .expect_code(0);
    let dir = experiment(&sb.base(), "sampled");
    assert_eq!(status(&dir)["status"], "Finished");
    let (header, rows) = csv(&dir.join("metrics/system.csv"));
    assert!(rows.len() >= 3, "{rows:?}");
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    for row in &rows {
        assert_eq!(row[at("run_id")], "run_0001");
        // The job's shell at least, and the `sleep` it runs now and then.
        assert!(row[at("processes")].parse::<u32>().unwrap() >= 1);
        assert!(row[at("rss_mib")].parse::<f64>().unwrap() > 0.0);
        assert_eq!(row[at("gpu1_util_percent")], "31");
        assert_eq!(row[at("gpu1_mem_used_mib")], "2000");
        assert_eq!(row[at("gpu1_power_w")], "150.0");
    }
    let gpu_columns: Vec<&String> = header.iter().filter(|h| h.starts_with("gpu")).collect();
    assert!(
        gpu_columns.iter().all(|h| h.starts_with("gpu1_")),
        "only the job's GPU: {gpu_columns:?}"
    );
    // What the run was launched with says how it was sampled, for a retry to repeat.
    assert_eq!(status(&dir)["launch"]["system_metrics_ms"], 50);
}

#[test]
fn system_metrics_false_writes_nothing() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.toml",
        r#"[scheduler]
base_dir = "experiments"
system_metrics = false

[[experiments]]
name = "quiet"
command = "echo done"
"#,
    );
    run_scheduler(&config).expect_code(0);
    let dir = experiment(&sb.base(), "quiet");
    assert_eq!(status(&dir)["status"], "Finished");
    assert!(!dir.join("metrics/system.csv").exists());
    assert_eq!(status(&dir)["launch"]["system_metrics_ms"], 0);
}

#[test]
fn a_bad_interval_is_a_config_error_at_its_line() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.toml",
        r#"[scheduler]
system_metrics_interval = "1ms"

[[experiments]]
name = "x"
command = "true"
"#,
    );
    let out = run_scheduler(&config);
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains(":2:") && out.stderr.contains("too short"),
        "{}",
        out.stderr
    );
    assert!(!sb.base().exists(), "nothing is created");
}
