//! The experiment directory as the seed README shows it, its state files through a run's life,
//! concurrent creation under one name, and attaching through the environment.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::Timelike;
use common::{Guarded, Reports, child_command, report, wait_with_deadline};
use expman::{Experiment, ExperimentDir, RunId, Value};
use serde_json::Value as Json;

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| match role {
        "create_same" => {
            let now =
                chrono::DateTime::parse_from_rfc3339(&common::env("EXPMAN_TEST_NOW")).unwrap();
            let mut go = String::new();
            std::io::stdin().read_line(&mut go).unwrap();
            let dir = ExperimentDir::create(
                Path::new(&common::env("EXPMAN_TEST_BASE")),
                "twin",
                now.with_timezone(&chrono::Local),
            )
            .unwrap();
            report(dir.path().to_str().unwrap());
        }
        "attach" => {
            // The scheduler's job: a plain create, redirected by EXPMAN_EXPERIMENT_DIR and
            // EXPMAN_RUN_ID into the scheduler's run.
            let base = common::env("EXPMAN_TEST_BASE");
            match Experiment::create("job", "python train.py", &base) {
                Ok(mut exp) => {
                    report(format!(
                        "{} {} {}",
                        exp.is_attached(),
                        exp.run_id(),
                        exp.dir().display()
                    ));
                    for step in 0..3 {
                        exp.upd_row([("step", step)]).unwrap();
                        exp.save_row().unwrap();
                    }
                    let progress = exp.table("progress").unwrap();
                    progress.set("pct", 50).unwrap();
                    progress.save_row().unwrap();
                    exp.append_log("from the job").unwrap();
                }
                Err(e) => report(format!("err {e}")),
            }
        }
        other => panic!("unknown role {other}"),
    });
}

fn json(path: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The directory is `<base>/<name>_<YYYY-MM-DD__HH-MM-SS>` holding exactly the seed's tree,
/// config.json has every documented field, and status.json follows the run: Running with our
/// pid, Finished, then on a second run (Experiment::open) Running again with the first in its
/// history, then Error with the message.
#[test]
fn directory_layout_and_state_files_follow_the_seed() {
    let base = tempfile::tempdir().unwrap();
    let before = chrono::Local::now().naive_local();
    let mut exp = Experiment::builder("layout", base.path())
        .command("python train.py --lr 0.1")
        .tags(["cnn", "baseline"])
        .description("first try")
        .gpu_ids([0, 2])
        .attach_from_env(false)
        .create()
        .unwrap();
    let after = chrono::Local::now().naive_local();
    let dir = exp.dir().to_path_buf();

    assert_eq!(dir.parent(), Some(base.path()));
    let name = dir.file_name().unwrap().to_str().unwrap();
    let stamp = name
        .strip_prefix("layout_")
        .unwrap_or_else(|| panic!("{name}"));
    let created = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d__%H-%M-%S")
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        created >= before.with_nanosecond(0).unwrap() && created <= after,
        "{name}"
    );
    assert_eq!(exp.run_id().to_string(), "run_0001");

    exp.upd_row([("epoch", 1.0), ("loss", 0.5)]).unwrap();
    exp.save_row().unwrap();
    exp.append_log("training started").unwrap();
    // expman's own hidden files (locks) are not part of the user-facing tree.
    let mut tree: Vec<String> = walk(&dir)
        .into_iter()
        .filter(|p| !p.split('/').any(|c| c.starts_with('.')))
        .collect();
    tree.sort();
    assert_eq!(
        tree,
        [
            "checkpoints/",
            "config.json",
            "logs/",
            "logs/experiment.log",
            "logs/run_0001.log",
            "metrics/",
            "metrics/run_0001.csv",
            "status.json"
        ]
    );
    let log = std::fs::read_to_string(dir.join("logs/experiment.log")).unwrap();
    assert!(
        log.ends_with("training started\n") && log.contains("run_0001"),
        "{log:?}"
    );
    assert_eq!(
        exp.load_metrics().unwrap().columns,
        ["timestamp", "run_id", "epoch", "loss"]
    );

    let config = json(&dir.join("config.json"));
    assert_eq!(config["name"], "layout");
    assert_eq!(config["command"], "python train.py --lr 0.1");
    assert_eq!(config["tags"], serde_json::json!(["cnn", "baseline"]));
    assert_eq!(config["description"], "first try");
    assert_eq!(config["gpu_ids"], serde_json::json!([0, 2]));
    assert_eq!(config["expman_version"], expman::VERSION);
    assert!(config["host"].as_str().is_some_and(|h| !h.is_empty()));
    let created_at = config["created_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(created_at)
        .unwrap_or_else(|e| panic!("{created_at}: {e}"));
    let config_bytes = std::fs::read(dir.join("config.json")).unwrap();

    let status = json(&dir.join("status.json"));
    assert_eq!(status["status"], "Running");
    assert_eq!(status["run_id"], "run_0001");
    assert_eq!(status["pid"], std::process::id());
    assert!(status["started_at"].is_string() && status["host"].is_string());

    exp.set_finished().unwrap();
    let status = json(&dir.join("status.json"));
    assert_eq!(status["status"], "Finished");
    assert!(status["finished_at"].is_string());
    assert_eq!(exp.status().unwrap().status, expman::RunState::Finished);

    // A second run of the same experiment (resume / retry).
    let mut second = Experiment::open(&dir).unwrap();
    assert_eq!(second.run_id().to_string(), "run_0002");
    let status = json(&dir.join("status.json"));
    assert_eq!(status["status"], "Running");
    assert_eq!(status["run_id"], "run_0002");
    assert_eq!(status["pid"], std::process::id());
    assert_eq!(status["history"].as_array().unwrap().len(), 1);
    assert_eq!(status["history"][0]["run_id"], "run_0001");
    assert_eq!(status["history"][0]["status"], "Finished");

    second.set_error("CUDA out of memory").unwrap();
    let status = json(&dir.join("status.json"));
    assert_eq!(status["status"], "Error");
    assert_eq!(status["error"], "CUDA out of memory");
    assert!(status["finished_at"].is_string());

    let third = Experiment::open(&dir).unwrap();
    let history = third.status().unwrap().history;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].run_id, Some(RunId::new(2).unwrap()));
    assert_eq!(history[1].status, expman::RunState::Error);
    assert_eq!(history[1].error.as_deref(), Some("CUDA out of memory"));
    assert_eq!(
        std::fs::read(dir.join("config.json")).unwrap(),
        config_bytes,
        "config.json is written once"
    );
}

/// Paths under `root`, relative, directories with a trailing '/'.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            let text = path.to_str().unwrap().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.push(format!("{text}/"));
                stack.push(path);
            } else {
                out.push(text);
            }
        }
    }
    out
}

/// Eight processes create an experiment of the same name with the same timestamp at once:
/// eight directories, none shared. And two threads through the public API, in (almost
/// certainly) the same second: two complete experiments.
#[test]
fn same_name_in_the_same_second_gets_separate_directories() {
    let base = tempfile::tempdir().unwrap();
    let now = chrono::Local::now().to_rfc3339();
    let mut children: Vec<_> = (0..8)
        .map(|_| {
            Guarded::spawn(
                child_command("child", "create_same")
                    .env("EXPMAN_TEST_BASE", base.path())
                    .env("EXPMAN_TEST_NOW", &now)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped()),
            )
        })
        .collect();
    for child in &mut children {
        writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let mut dirs = BTreeSet::new();
    for child in &mut children {
        dirs.insert(Reports::of(child).next("a creating child"));
        let status = wait_with_deadline(child, Duration::from_secs(20), "a creating child");
        common::assert_success(status, "a creating child");
    }
    assert_eq!(
        dirs.len(),
        8,
        "two processes got the same directory: {dirs:?}"
    );
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 8);
    for dir in &dirs {
        for sub in ["logs", "metrics", "checkpoints"] {
            assert!(Path::new(dir).join(sub).is_dir(), "{dir}/{sub}");
        }
    }

    let threads = tempfile::tempdir().unwrap();
    let made: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let exp = Experiment::builder("twin", threads.path())
                        .attach_from_env(false)
                        .create()
                        .unwrap();
                    assert_eq!(exp.run_id().to_string(), "run_0001");
                    exp.dir().to_path_buf()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_ne!(made[0], made[1]);
    for dir in &made {
        assert!(dir.join("config.json").is_file() && dir.join("status.json").is_file());
    }
}

fn run_attach_child(base: &Path, dir: &Path, run: &str) -> String {
    let mut child = Guarded::spawn(
        child_command("child", "attach")
            .env("EXPMAN_TEST_BASE", base)
            .env(expman::ENV_EXPERIMENT_DIR, dir)
            .env(expman::ENV_RUN_ID, run)
            .stdout(Stdio::piped()),
    );
    let answer = Reports::of(&mut child).next("the attached job");
    let status = wait_with_deadline(&mut child, Duration::from_secs(20), "the attached job");
    common::assert_success(status, "the attached job");
    answer
}

/// A job started with EXPMAN_EXPERIMENT_DIR and EXPMAN_RUN_ID (as the scheduler launches it)
/// logs into that run's tables, makes no directory and no run of its own, and leaves
/// status.json to the scheduler. Bad values are errors naming what is wrong.
#[test]
fn attach_through_the_environment() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = Experiment::builder("sched", base.path())
        .attach_from_env(false)
        .create()
        .unwrap();
    exp.set("step", -1).unwrap();
    exp.save_row().unwrap();
    let dir = exp.dir().to_path_buf();
    let status_before = std::fs::read(dir.join("status.json")).unwrap();
    let job_base = base.path().join("job_base");

    let answer = run_attach_child(&job_base, &dir, "run_0001");
    assert_eq!(answer, format!("true run_0001 {}", dir.display()));
    assert!(
        !job_base.exists(),
        "the attached job made a directory of its own"
    );
    assert_eq!(
        std::fs::read(dir.join("status.json")).unwrap(),
        status_before,
        "status.json changed"
    );
    assert_eq!(
        exp.layout().runs().unwrap(),
        [RunId::FIRST],
        "the job allocated a run"
    );

    let metrics = exp.load_metrics().unwrap();
    let steps: Vec<Value> = metrics.column("step").unwrap().cloned().collect();
    assert_eq!(steps, [-1, 0, 1, 2].map(Value::Int));
    assert!(
        metrics
            .column("run_id")
            .unwrap()
            .all(|r| *r == Value::Str("run_0001".into()))
    );
    let progress = exp.load_table("progress").unwrap();
    assert_eq!(progress.rows.len(), 1);
    assert_eq!(progress.rows[0][1], Value::Str("run_0001".into()));
    let log = std::fs::read_to_string(dir.join("logs/experiment.log")).unwrap();
    assert!(log.contains("[run_0001] from the job"), "{log:?}");

    // A malformed run id, or a directory that is not an experiment: clear errors, no fallback
    // to creating a fresh experiment somewhere else.
    let bad_run = run_attach_child(&job_base, &dir, "run_01");
    assert!(
        bad_run.starts_with("err")
            && bad_run.contains("EXPMAN_RUN_ID")
            && bad_run.contains("run_01"),
        "{bad_run}"
    );
    let not_an_experiment = base.path().join("nothing");
    let bad_dir = run_attach_child(&job_base, &not_an_experiment, "run_0001");
    assert!(
        bad_dir.starts_with("err") && bad_dir.contains("config.json"),
        "{bad_dir}"
    );
    assert!(!job_base.exists());
}

/// Attaching to a run that was never allocated (a stale or mistyped `EXPMAN_RUN_ID`, or
/// `Experiment::attach` with a wrong id) is refused with a NotFound error that names the
/// directory and the run and says what to do; it creates no log, no table and no status.
#[test]
fn attaching_to_a_run_that_does_not_exist_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let exp = Experiment::builder("sched", base.path())
        .attach_from_env(false)
        .create()
        .unwrap();
    let dir = exp.dir().to_path_buf();
    let tree = || {
        let mut tree = walk(&dir);
        tree.sort();
        tree
    };
    let tree_before = tree();
    let status_before = std::fs::read(dir.join("status.json")).unwrap();

    for run in ["run_0002", "run_0042"] {
        let err = Experiment::attach(&dir, run.parse().unwrap())
            .err()
            .expect("attach must fail");
        assert!(
            matches!(err.kind(), expman::ErrorKind::NotFound { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        for needle in [run, &dir.display().to_string(), "run_0001"] {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }

        let job_base = base.path().join("job_base");
        let answer = run_attach_child(&job_base, &dir, run);
        assert!(answer.starts_with("err"), "{answer}");
        for needle in [run, "EXPMAN_RUN_ID", "EXPMAN_EXPERIMENT_DIR", "unset"] {
            assert!(answer.contains(needle), "{needle:?} missing from: {answer}");
        }
        assert!(!job_base.exists(), "no fallback to a new experiment");
    }
    assert_eq!(tree(), tree_before, "attaching created files");
    assert_eq!(
        std::fs::read(dir.join("status.json")).unwrap(),
        status_before
    );
    // The run that exists still attaches.
    let attached = Experiment::attach(&dir, RunId::FIRST).unwrap();
    assert!(attached.is_attached());

    // A directory that is no experiment: the error named config.json, not the variable.
    let job_base = base.path().join("job_base");
    let answer = run_attach_child(&job_base, &base.path().join("nowhere"), "run_0001");
    assert!(answer.starts_with("err"), "{answer}");
    for needle in ["EXPMAN_EXPERIMENT_DIR", "nowhere", "unset"] {
        assert!(answer.contains(needle), "{needle:?} missing from: {answer}");
    }
    assert!(!job_base.exists(), "no fallback to a new experiment");
}

/// `logs/` removed by hand (to save space, or by a cleanup script): attaching to the run and
/// starting the next one failed with "cannot open the run log ...: No such file or
/// directory". The directory is made again.
#[test]
fn a_removed_logs_directory_is_made_again() {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = Experiment::builder("logs_gone", tmp.path())
        .command("python train.py")
        .create()
        .unwrap();
    exp.set_finished().unwrap();
    let dir = exp.dir().to_path_buf();
    drop(exp);
    std::fs::remove_dir_all(dir.join("logs")).unwrap();
    Experiment::attach(&dir, RunId::new(1).unwrap()).expect("attach to run_0001");
    let next = Experiment::open(&dir).expect("start run_0002");
    assert!(dir.join(format!("logs/{}.log", next.run_id())).is_file());
}
