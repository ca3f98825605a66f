//! The Rust examples, run with the commands the README and their doc comments give:
//! `cargo run --example quickstart` and `cargo run --release --example rust_train -- --epochs 20
//! --lr 0.5` (without `--release`, which only makes it faster and would cost the test suite a
//! release build of its own, about 100 s on two cores). Each runs in a temp directory (they
//! write `./experiments`), so `--manifest-path` names this repository; cargo builds them on
//! first use (it does not hold the build lock while tests run).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `cargo run --manifest-path <repo>/Cargo.toml <args>` in `cwd`.
fn cargo_run(cwd: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(cargo)
        .arg("run")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(args)
        .current_dir(cwd)
        // A target dir of its own: building the examples (default features) in the test
        // run's own would replace the library that the doctests, compiled after the tests,
        // link against (all features), and they would fail to find `expman::arrow`.
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples-build"),
        )
        .env_remove(expman::ENV_EXPERIMENT_DIR)
        .env_remove(expman::ENV_RUN_ID)
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo run {args:?} failed: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The only experiment directory under `<cwd>/experiments`.
fn only_experiment(cwd: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(cwd.join("experiments"))
        .expect("the example made ./experiments")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

#[test]
fn quickstart_runs_as_documented() {
    let cwd = tempfile::tempdir().unwrap();
    let out = cargo_run(cwd.path(), &["--example", "quickstart"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("run id: run_0001"), "{stdout}");
    let dir = only_experiment(cwd.path());
    let metrics = expman::read_table(&dir.join("metrics/run_0001.csv")).unwrap();
    assert_eq!(metrics.rows.len(), 11, "a configuration row and ten epochs");
    let status = expman::Status::load(&expman::ExperimentDir::open(&dir).unwrap()).unwrap();
    assert_eq!(status.status, expman::RunState::Finished);
}

/// The training example learns (validation accuracy in its last row), writes its checkpoint,
/// and its output, captured with `Experiment::capture_output`, is in the run's log as well as
/// on stdout.
#[test]
fn rust_train_runs_as_documented() {
    let cwd = tempfile::tempdir().unwrap();
    let out = cargo_run(
        cwd.path(),
        &[
            "--example",
            "rust_train",
            "--",
            "--epochs",
            "20",
            "--lr",
            "0.5",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("epoch 20/20"), "{stdout}");
    let dir = only_experiment(cwd.path());
    let metrics = expman::read_table(&dir.join("metrics/run_0001.csv")).unwrap();
    let val_acc = metrics.column_index("val_acc").expect("a val_acc column");
    let last = metrics.rows.last().unwrap()[val_acc].as_f64().unwrap();
    assert!(last > 0.9, "validation accuracy {last}");
    assert!(
        std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .next()
            .is_some(),
        "a checkpoint"
    );
    let log = std::fs::read_to_string(dir.join("logs/run_0001.log")).unwrap();
    assert!(
        log.contains("epoch 1/20") && log.contains("epoch 20/20"),
        "{log}"
    );
}
