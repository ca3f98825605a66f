//! Experiment directories for the catalog tests (`catalog`, `exp_ls`, `server_catalog`): made by
//! the real Rust API, with parameters in `config.json` as the scheduler records them and the
//! seed's config row in the metrics table.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use expman::Experiment;
use serde_json::{Value as Json, json};

/// One experiment of a small sweep.
pub struct Made {
    /// Its directory.
    pub dir: PathBuf,
    /// Its id (directory name).
    pub id: String,
}

/// Creates experiment `name` in `base` with `params` in its `config.json`, a config row
/// (`model`, `batch_size`), `val_acc` values over `steps` steps (with `step`), and ends it
/// Finished (or leaves it Running when `finish` is false).
pub fn make(base: &Path, name: &str, params: Json, accs: &[f64], finish: bool) -> Made {
    let mut exp = Experiment::builder(name, base)
        .command(format!("python train.py --name {name}"))
        .tags(["sweep"])
        .create()
        .unwrap();
    set_params(exp.dir(), params);
    exp.upd_row([
        ("model", expman::Value::from("resnet")),
        ("batch_size", 32i64.into()),
    ])
    .unwrap();
    exp.save_row().unwrap();
    for (step, acc) in accs.iter().enumerate() {
        exp.upd_row([
            ("step", expman::Value::from(step as i64)),
            ("val_acc", (*acc).into()),
        ])
        .unwrap();
        exp.save_row().unwrap();
    }
    if finish {
        exp.set_finished().unwrap();
    }
    let dir = exp.dir().to_path_buf();
    let id = dir.file_name().unwrap().to_str().unwrap().to_string();
    Made { dir, id }
}

/// Writes `params` into `config.json` the way the scheduler records a sweep point (an atomic
/// rename, as every state file is written).
pub fn set_params(dir: &Path, params: Json) {
    let path = dir.join("config.json");
    let mut config: Json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["params"] = params;
    let tmp = dir.join(".config.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Three finished experiments of an lr sweep and one with no params and no rows.
pub fn sweep(base: &Path) -> Vec<Made> {
    vec![
        make(
            base,
            "resnet_a",
            json!({"lr": 0.1, "depth": 18}),
            &[0.5, 0.7, 0.6],
            true,
        ),
        make(
            base,
            "resnet_b",
            json!({"lr": 0.01, "depth": 18}),
            &[0.6, 0.9, 0.88],
            true,
        ),
        make(
            base,
            "vit_c",
            json!({"lr": 0.001, "depth": 50}),
            &[0.4, 0.8],
            true,
        ),
        make(base, "empty_d", json!({}), &[], true),
    ]
}
