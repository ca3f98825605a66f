//! `EXP ls` (issue 13) with the real binary over directories made by the real API: the default
//! columns (status, name, differing params, metrics), `--where`, `--sort`, `--columns`,
//! `--limit`, the three formats, and query errors with a caret and exit status 2.
#![cfg(feature = "ui")]

mod catalog_support;

use std::path::Path;
use std::process::{Command, Output};

use catalog_support::sweep;
use serde_json::{Value as Json, json};

const EXP: &str = env!("CARGO_BIN_EXE_EXP");

fn ls(base: &Path, args: &[&str]) -> Output {
    Command::new(EXP)
        .arg("ls")
        .arg(base)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn json_rows_are_keyed_by_field_names() {
    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let out = ls(
        base.path(),
        &[
            "--where",
            "params.lr < 0.05",
            "--sort",
            "-metrics.val_acc.max",
            "--format",
            "json",
        ],
    );
    let rows: Json = serde_json::from_str(&stdout(&out)).unwrap();
    // Default columns: status, name, the params that differ (depth, lr; model and batch_size
    // are the same everywhere), then metrics, then what --where and --sort name that is not
    // shown yet (the sort key).
    assert_eq!(
        rows,
        json!([
            {"status": "Finished", "name": "resnet_b", "params.depth": 18, "params.lr": 0.01,
             "metrics.val_acc.last": 0.88, "metrics.val_acc.max": 0.9},
            {"status": "Finished", "name": "vit_c", "params.depth": 50, "params.lr": 0.001,
             "metrics.val_acc.last": 0.8, "metrics.val_acc.max": 0.8},
        ])
    );
    let csv = ls(
        base.path(),
        &[
            "--where",
            "params.lr < 0.05 and metrics.val_acc.min < 9",
            "--sort",
            "-metrics.val_acc.max",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        stdout(&csv).lines().next(),
        Some(
            "status,name,params.depth,params.lr,metrics.val_acc.last,metrics.val_acc.min,\
             metrics.val_acc.max"
        )
    );
    let chosen = ls(
        base.path(),
        &[
            "--columns",
            "name,tag,runs,metrics.val_acc.max,metrics.val_acc.count,params.nope",
            "--sort=-name",
            "--limit",
            "2",
            "--format",
            "json",
        ],
    );
    let rows: Json = serde_json::from_str(&stdout(&chosen)).unwrap();
    assert_eq!(
        rows,
        json!([
            {"name": "vit_c", "tag": ["sweep"], "runs": 1, "metrics.val_acc.max": 0.8,
             "metrics.val_acc.count": 2, "params.nope": null},
            {"name": "resnet_b", "tag": ["sweep"], "runs": 1, "metrics.val_acc.max": 0.9,
             "metrics.val_acc.count": 3, "params.nope": null},
        ])
    );
}

#[test]
fn table_and_csv() {
    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let table = stdout(&ls(base.path(), &["--sort", "params.lr"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("status "), "{table}");
    for field in ["name", "params.lr", "params.depth", "metrics.val_acc.last"] {
        assert!(lines[0].contains(field), "{field} in {table}");
    }
    assert!(
        lines[1].contains("vit_c") && lines[1].contains("0.001"),
        "{table}"
    );
    assert!(
        lines[4].contains("empty_d"),
        "missing lr sorts last: {table}"
    );
    // Columns line up: every row's name starts where the header's does.
    let at = lines[0].find("name").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[at..].starts_with(|c: char| c != ' ')),
        "{table}"
    );

    let csv = stdout(&ls(
        base.path(),
        &[
            "--columns",
            "name,params.lr,description",
            "--sort",
            "name",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(
        csv,
        "name,params.lr,description\nempty_d,,\nresnet_a,0.1,\nresnet_b,0.01,\nvit_c,0.001,\n"
    );
}

#[test]
fn query_errors_show_a_caret_and_exit_2() {
    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let out = ls(base.path(), &["--where", "params.lr <<< 1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].contains("column 12"), "{err}");
    assert_eq!(lines[1], "params.lr <<< 1");
    assert_eq!(lines[2], "           ^");
    let out = ls(base.path(), &["--where", "params.lrr < 1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("did you mean `params.lr`") && err.contains("^^^^^^^^^^"),
        "{err}"
    );
    let out = ls(base.path(), &["--sort", "-nme"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ls(base.path(), &["--columns", "name,metrics.acc"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ls(&base.path().join("nowhere"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
}

/// A `config.json` edited by hand into something expman cannot read (params as a list) is
/// listed as Error and named on stderr with the reason, not shown silently.
#[test]
fn a_hand_broken_config_is_named_on_stderr() {
    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let dir = std::fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("config.json").is_file())
        .unwrap();
    let path = dir.join("config.json");
    let mut config: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["params"] = json!({"lr": [1, 2]});
    std::fs::write(&path, config.to_string()).unwrap();
    let out = ls(
        base.path(),
        &["--format", "json", "--columns", "name,status"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&dir.display().to_string()) && stderr.contains("config.json is unreadable"),
        "{stderr}"
    );
    let rows: Json = serde_json::from_str(&stdout(&out)).unwrap();
    let broken = dir.file_name().unwrap().to_str().unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == broken && r["status"] == "Error"),
        "{rows}"
    );
}

/// A metrics table damaged by another program (a row with a cell too many) is named on stderr
/// with the reason, and the JSON record carries it as `metrics_error`; the experiment stays
/// listed in its own state, and the others are unaffected.
#[test]
fn a_damaged_metrics_table_is_named_on_stderr() {
    let base = tempfile::tempdir().unwrap();
    let made = sweep(base.path());
    let table = made[1].dir.join("metrics/run_0001.csv");
    let mut text = std::fs::read_to_string(&table).unwrap();
    text.push_str("2026-01-01T00:00:00.000000,run_0001,9,9,9,9,9,9,9\n");
    std::fs::write(&table, text).unwrap();
    let out = ls(
        base.path(),
        &["--format", "json", "--columns", "name,status"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&made[1].dir.display().to_string())
            && warnings[0].contains("its metrics cannot be read")
            && warnings[0].contains("cells but the header has"),
        "{stderr}"
    );
    let rows: Json = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "Finished"),
        "{rows}"
    );
}
