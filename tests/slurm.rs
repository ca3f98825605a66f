//! The Slurm backend against a real Slurm: `EXP run` with `backend = "slurm"` submits real
//! jobs with sbatch, which run the real supervisor (`EXP __job`) on the node; the tests check
//! what `status.json`, the run logs, the metrics tables, Slurm itself (`scontrol`, `squeue`) and
//! the UI's API say afterwards.
//!
//! They need a running cluster: `scripts/slurm/start.sh` brings up a single-node one (Debian's
//! slurmctld, slurmd and munge) with 16 CPUs and 2 fake GPUs, `scripts/slurm/stop.sh` stops it;
//! `scripts/test-all` does both around `cargo test --all-features --test slurm`. Without Slurm
//! these tests fail and say so, unless `EXPMAN_SKIP_SLURM=1`.

#![cfg(feature = "ui")]

mod scheduler_support;
mod slurm_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scheduler_support::*;
use slurm_support::*;

/// The cluster, or return from the test when `EXPMAN_SKIP_SLURM=1`.
macro_rules! cluster_or_skip {
    () => {
        match cluster() {
            Some(cluster) => cluster,
            None => return,
        }
    };
}

/// `status.json` of an experiment directory (a name the tests' `status` variables leave free).
fn read_status(dir: &Path) -> serde_json::Value {
    status(dir)
}

/// A job's `slurm_job_id` from `status.json`.
fn job_id(status: &serde_json::Value) -> String {
    status["slurm_job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no slurm_job_id in {status}"))
        .to_string()
}

fn log_of(dir: &Path, run: &str) -> String {
    std::fs::read_to_string(dir.join("logs").join(format!("{run}.log"))).unwrap_or_default()
}

/// Submit, succeed, fail with an exit code, the environment (the config's `env`, the
/// submitter's, `EXPMAN_*`, Slurm's GPUs), metrics written back through the Rust API,
/// `time` as `--time` (with a per-experiment override), logs in `logs/<run>.log`, and
/// `max_concurrent` bounding how many jobs are in Slurm at once.
#[test]
fn jobs_succeed_fail_and_see_their_environment() {
    let cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let script = sb.job_script();
    let rec = sb.join("records");
    let mut config = format!(
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"
max_concurrent = 2
time = "5m"

[[experiments]]
name = "basic_ok"
command = "{script} basic_ok {rec} 1; echo SEED=$SEED FROM=$FROM_SUBMITTER node=$SLURMD_NODENAME job=$SLURM_JOB_ID"
env = {{ SEED = "7" }}

[[experiments]]
name = "basic_fails"
command = "{script} basic_fails {rec} 1; echo failing on purpose >&2; exit 3"

[[experiments]]
name = "basic_metrics"
command = "{script} basic_metrics {rec} 0; $EXPMAN_EXP_BIN __toy --seconds 1 --lr 0.1"
time = "2h"
"#,
        rec = rec.display()
    );
    let mut names = vec!["basic_ok", "basic_fails", "basic_metrics"];
    if cluster.gpus > 0 {
        config.push_str(&format!(
            "\n[[experiments]]\nname = \"basic_gpu\"\ncommand = \"{script} basic_gpu {} 1\"\ngpus = 1\n",
            rec.display()
        ));
        names.push("basic_gpu");
    }
    let path = sb.write("slurm.toml", &config);

    // How many of these jobs Slurm holds at once, sampled while the scheduler runs.
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (most, done) = (Arc::clone(&most), Arc::clone(&done));
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        std::thread::spawn(move || {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(live_jobs(&names), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let out = Running::scheduler_with_env(&path, &[("FROM_SUBMITTER", "yes")]).wait(LIMIT);
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    out.expect_code(1); // one experiment fails
    assert!(
        out.stdout.contains("as Slurm job"),
        "submissions are reported:\n{}",
        out.stdout
    );
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&most),
        "max_concurrent = 2 but Slurm held {most} of the jobs at once"
    );

    let records = read_records(&rec);
    let record = |name: &str| {
        records
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} left no record: {records:?}"))
            .clone()
    };

    // Succeeded: Finished, exit 0, job id and node recorded, the environment passed through.
    let ok = experiment(&sb.base(), "basic_ok");
    let status = read_status(&ok);
    assert_eq!(status["status"], "Finished", "{status}");
    assert_eq!(status["exit_code"], 0);
    let id = job_id(&status);
    assert_eq!(status["node"], cluster.node.as_str(), "{status}");
    let log = log_of(&ok, "run_0001");
    assert!(
        log.contains(&format!("SEED=7 FROM=yes node={} job={id}", cluster.node)),
        "env, submitter's env, SLURMD_NODENAME and SLURM_JOB_ID reach the job:\n{log}"
    );
    assert!(
        log.contains("[expman]") && log.contains("run_0001 start"),
        "{log}"
    );
    let r = record("basic_ok");
    assert_eq!(r.run_id, "run_0001");
    assert_eq!(Path::new(&r.experiment_dir), ok.as_path());
    assert_eq!(r.device_order, "PCI_BUS_ID");
    if cluster.gpus > 0 {
        // With GPU GRES configured, Slurm owns CUDA_VISIBLE_DEVICES: a job without GPUs has
        // none (the supervisor does not set it to an empty list of its own).
        assert_eq!(
            r.gpus, None,
            "a job without gpus gets no CUDA_VISIBLE_DEVICES"
        );
    }
    let info = job_info(&id);
    assert_eq!(info["JobName"], "basic_ok");
    assert_eq!(info["JobState"], "COMPLETED");
    assert_eq!(info["TimeLimit"], "00:05:00", "time = \"5m\" is --time");
    assert_eq!(
        Path::new(&info["StdOut"]),
        ok.join("logs/run_0001.log"),
        "Slurm writes into the run log"
    );

    // Failed: Error with the command's exit code, which Slurm sees too (the supervisor exits
    // with it).
    let fails = experiment(&sb.base(), "basic_fails");
    let status = read_status(&fails);
    assert_eq!(status["status"], "Error");
    assert_eq!(status["exit_code"], 3);
    assert_eq!(status["error"], "exited with code 3");
    let info = job_info(&job_id(&status));
    assert_eq!(info["JobState"], "FAILED");
    assert_eq!(info["ExitCode"], "3:0");
    assert!(log_of(&fails, "run_0001").contains("failing on purpose"));

    // Metrics written back by the job, into the scheduler's run, through the Rust API.
    let metrics = experiment(&sb.base(), "basic_metrics");
    let status = read_status(&metrics);
    assert_eq!(status["status"], "Finished", "{status}");
    let table = std::fs::read_to_string(metrics.join("metrics/run_0001.csv")).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(rows.len() >= 4, "the toy logs 4 rows a second:\n{table}");
    assert!(table.lines().next().unwrap().contains("loss"), "{table}");
    assert!(rows.iter().all(|r| r.split(',').nth(1) == Some("run_0001")));
    assert!(metrics.join("metrics/progress.csv").is_file());
    let info = job_info(&job_id(&status));
    assert_eq!(
        info["TimeLimit"], "02:00:00",
        "the per-experiment time wins"
    );

    // GPUs: Slurm picks one (--gres=gpu:1) and sets CUDA_VISIBLE_DEVICES; status.json records
    // it.
    if cluster.gpus > 0 {
        let gpu = experiment(&sb.base(), "basic_gpu");
        let status = read_status(&gpu);
        assert_eq!(status["status"], "Finished", "{status}");
        let seen = record("basic_gpu")
            .gpus
            .expect("Slurm sets CUDA_VISIBLE_DEVICES");
        assert_eq!(seen.len(), 1, "one GPU: {seen:?}");
        assert!(seen[0] < cluster.gpus);
        assert_eq!(status["gpus"], serde_json::json!(seen));
        let info = job_info(&job_id(&status));
        assert!(
            info.get("TresPerNode")
                .is_some_and(|t| t.ends_with("gpu:1")),
            "--gres=gpu:1: {info:?}"
        );
    } else {
        eprintln!("note: the cluster has no GPU GRES; the GPU part was not run");
    }
}

/// `EXP terminate` on a running Slurm job (scancel; the run is Error "terminated", its
/// processes are gone) and on one still pending in Slurm's queue ("cancelled before it
/// started", and out of Slurm's queue).
#[test]
fn terminate_cancels_running_and_pending_jobs() {
    let _cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let path = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"
max_concurrent = 2

[[experiments]]
name = "term_runs"
command = "sleep 300"
retries = 2

[[experiments]]
name = "term_held"
command = "echo never"
extra_sbatch_args = ["--begin=now+1hour"]
retries = 2
"#,
    );
    let scheduler = Running::scheduler(&path);
    let runs = wait_until("term_runs to appear", LIMIT, || {
        experiments(&sb.base()).remove("term_runs")
    });
    let held = wait_until("term_held to appear", LIMIT, || {
        experiments(&sb.base()).remove("term_held")
    });
    let running = wait_for_status(&runs, "the job's pid", |s| s["pid"].is_u64());
    let job = pid_field(&running, "pid");
    let runs_id = job_id(&running);
    let pending = wait_for_status(&held, "a Slurm job id", |s| s["slurm_job_id"].is_string());
    assert_eq!(pending["status"], "Pending");
    let held_id = job_id(&pending);
    assert_eq!(job_state(&held_id).as_deref(), Some("PENDING"));

    let out = control("terminate", &runs);
    out.expect_code(0);
    assert!(out.stdout.contains("terminated"), "{}", out.stdout);
    let status = wait_for_state(&runs, "Error");
    assert_eq!(status["error"], "terminated");
    wait_until("the job's process to be gone", LIMIT, || {
        (!alive(job)).then_some(())
    });
    wait_until("Slurm to record the cancel", LIMIT, || {
        (job_state(&runs_id).as_deref() == Some("CANCELLED")).then_some(())
    });

    let out = control("terminate", &held);
    out.expect_code(0);
    assert!(out.stdout.contains("cancelled"), "{}", out.stdout);
    let status = wait_for_state(&held, "Error");
    assert_eq!(status["error"], "cancelled before it started");
    assert_eq!(job_state(&held_id).as_deref(), Some("CANCELLED"));

    // Both are done (terminated jobs are not retried), so the scheduler ends.
    let out = scheduler.wait(LIMIT);
    out.expect_code(1);
    assert_eq!(status_of_runs(&runs), vec!["run_0001"]);
    assert_eq!(status_of_runs(&held), vec!["run_0001"]);
}

/// The run ids an experiment has had (history and current).
fn status_of_runs(dir: &Path) -> Vec<String> {
    let status = read_status(dir);
    let mut runs: Vec<String> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    runs.push(status["run_id"].as_str().unwrap().to_string());
    runs
}

/// Jobs that end without their supervisor recording anything are marked Error with Slurm's
/// JobState, ExitCode and Reason: one cancelled by someone else while pending, one whose
/// supervisor is killed (as a node failure or Slurm's time limit would).
#[test]
fn jobs_slurm_ends_get_slurms_record() {
    let _cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let path = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"
max_concurrent = 2

[[experiments]]
name = "ended_held"
command = "echo never"
extra_sbatch_args = ["--begin=now+1hour"]

[[experiments]]
name = "ended_killed"
command = "sleep 300"
"#,
    );
    let scheduler = Running::scheduler(&path);
    let held = wait_until("ended_held to appear", LIMIT, || {
        experiments(&sb.base()).remove("ended_held")
    });
    let killed = wait_until("ended_killed to appear", LIMIT, || {
        experiments(&sb.base()).remove("ended_killed")
    });
    let pending = wait_for_status(&held, "a Slurm job id", |s| s["slurm_job_id"].is_string());
    let running = wait_for_state(&killed, "Running");

    // Someone else cancels the pending job.
    let held_id = job_id(&pending);
    let status = std::process::Command::new("scancel")
        .arg(&held_id)
        .status()
        .unwrap();
    assert!(status.success());
    // The supervisor (the batch script itself: `exec EXP __job`) dies without a word.
    signal(pid_field(&running, "supervisor_pid"), libc::SIGKILL);

    let status = wait_for_state(&held, "Error");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "Slurm job {held_id} ended CANCELLED before it started"
        )) && error.contains("JobState=CANCELLED")
            && error.contains("Reason="),
        "{error}"
    );
    let status = wait_for_state(&killed, "Error");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("without expman's supervisor recording a result")
            && error.contains("JobState=")
            && error.contains("ExitCode=0:9"),
        "{error}"
    );
    assert_eq!(status["exit_code"], 128 + 9, "{status}");
    scheduler.wait(LIMIT).expect_code(1);
}

/// The per-experiment `timeout` ends a Slurm job as it ends a local one (the supervisor kills
/// it), long before Slurm's own time limit would.
#[test]
fn timeout_ends_a_slurm_job() {
    let _cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let path = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"

[[experiments]]
name = "times_out"
command = "sleep 300"
timeout = "2s"
time = "10:00"
"#,
    );
    let started = Instant::now();
    let out = Running::scheduler(&path).wait(LIMIT);
    out.expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(30));
    let dir = experiment(&sb.base(), "times_out");
    let status = read_status(&dir);
    assert_eq!(status["status"], "Error");
    assert_eq!(status["error"], "timed out after 2s");
    assert_eq!(job_info(&job_id(&status))["TimeLimit"], "00:10:00");
}

/// A scheduler killed with `kill -9` loses nothing: Slurm keeps running its job, and the
/// scheduler started again follows that job (by the id in `status.json`) instead of submitting
/// it twice, then submits what was still queued.
#[test]
fn a_restarted_scheduler_follows_its_jobs_again() {
    let _cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let path = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"

[[experiments]]
name = "re_first"
command = "sleep 3"

[[experiments]]
name = "re_second"
command = "echo second"
"#,
    );
    let first_scheduler = Running::scheduler(&path);
    let first = wait_until("re_first to appear", LIMIT, || {
        experiments(&sb.base()).remove("re_first")
    });
    let running = wait_for_state(&first, "Running");
    first_scheduler.kill9();
    let id = job_id(&running);
    assert_eq!(job_state(&id).as_deref(), Some("RUNNING"));

    let out = Running::scheduler(&path).wait(LIMIT);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains(&format!("followed again: {}", first.display()))
            && out.stdout.contains(&format!("(Slurm job {id})")),
        "{}",
        out.stdout
    );
    let status = read_status(&first);
    assert_eq!(status["status"], "Finished");
    assert_eq!(job_id(&status), id, "the same job, not a second one");
    assert_eq!(status_of_runs(&first), vec!["run_0001"]);
    let second = experiment(&sb.base(), "re_second");
    assert_eq!(read_status(&second)["status"], "Finished");
    assert_eq!(status_of_runs(&second), vec!["run_0001"]);
}

/// `EXP retry` without a scheduler resubmits into a new run (run_0002), with what config.json
/// recorded; the first run's job id stays in the history.
#[test]
fn retry_resubmits_into_a_new_run() {
    let _cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let path = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"
time = "7m"

[[experiments]]
name = "retried"
command = "echo run $EXPMAN_RUN_ID; exit 4"
"#,
    );
    Running::scheduler(&path).wait(LIMIT).expect_code(1);
    let dir = experiment(&sb.base(), "retried");
    let first = job_id(&read_status(&dir));

    let out = control("retry", &dir);
    out.expect_code(0);
    assert!(
        out.stdout.contains("run_0002 submitted as Slurm job"),
        "{}",
        out.stdout
    );
    let status = wait_for_status(&dir, "run_0002 to end", |s| {
        s["run_id"] == "run_0002" && s["status"] == "Error"
    });
    assert_eq!(status["exit_code"], 4);
    let second = job_id(&status);
    assert_ne!(first, second);
    assert_eq!(status["history"][0]["run_id"], "run_0001");
    assert_eq!(status["history"][0]["slurm_job_id"], first.as_str());
    assert!(log_of(&dir, "run_0002").contains("run run_0002"));
    assert_eq!(
        job_info(&second)["TimeLimit"],
        "00:07:00",
        "the retry is submitted with the recorded settings"
    );
}

/// The UI lists Slurm jobs like local ones, with their job id and node, and its Terminate and
/// Rerun act on them (through a running scheduler, and without one).
#[test]
fn the_ui_shows_slurm_jobs_and_acts_on_them() {
    let cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let path = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"
max_concurrent = 2

[[experiments]]
name = "ui_quick"
command = "echo quick"

[[experiments]]
name = "ui_long"
command = "sleep 300"
"#,
    );
    let scheduler = Running::scheduler(&path);
    let quick = wait_until("ui_quick to appear", LIMIT, || {
        experiments(&sb.base()).remove("ui_quick")
    });
    let long = wait_until("ui_long to appear", LIMIT, || {
        experiments(&sb.base()).remove("ui_long")
    });
    let quick_status = wait_for_state(&quick, "Finished");
    let long_status = wait_for_state(&long, "Running");
    let served = Served::start(EXP, &sb.base());
    let id_of = |dir: &PathBuf| dir.file_name().unwrap().to_str().unwrap().to_string();

    let listing = served.get("/api/experiments");
    let card = |listing: &serde_json::Value, dir: &PathBuf| {
        listing["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id_of(dir).as_str())
            .unwrap_or_else(|| panic!("{dir:?} not listed: {listing}"))
            .clone()
    };
    for (dir, status) in [(&quick, &quick_status), (&long, &long_status)] {
        let card = card(&listing, dir);
        assert_eq!(card["slurm_job_id"], status["slurm_job_id"], "{card}");
        assert_eq!(card["node"], cluster.node.as_str(), "{card}");
    }
    assert_eq!(card(&listing, &long)["status"], "Running");

    // Terminate through the UI, with the scheduler running: it goes through the scheduler.
    let answer = served.post(&format!(
        "/api/experiments/{}/actions/terminate",
        id_of(&long)
    ));
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let status = wait_for_state(&long, "Error");
    assert_eq!(status["error"], "terminated");
    scheduler.wait(LIMIT).expect_code(1);

    // Rerun through the UI, without a scheduler: submitted into run_0002 by the server.
    let answer = served.post(&format!("/api/experiments/{}/actions/retry", id_of(&quick)));
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("run_0002 submitted as Slurm job"),
        "{}",
        answer.json()
    );
    let status = wait_for_status(&quick, "run_0002 to finish", |s| {
        s["run_id"] == "run_0002" && s["status"] == "Finished"
    });
    let card = wait_until("the listing to show run_0002", LIMIT, || {
        let card = card(&served.get("/api/experiments"), &quick);
        (card["run_id"] == "run_0002" && card["status"] == "Finished").then_some(card)
    });
    assert_eq!(card["slurm_job_id"], status["slurm_job_id"]);
    assert_ne!(card["slurm_job_id"], quick_status["slurm_job_id"]);
    assert_eq!(card["runs"], 2);
}

/// Several Slurm jobs, provably alive at the same moment, each start a run in one shared
/// experiment (concurrent run-id allocation) and append rows to one table with
/// `EXPMAN_LOCK=flock`, the protocol expman uses on network filesystems: every run id is
/// distinct, and every row is there once and whole.
#[test]
fn concurrent_jobs_allocate_runs_and_append_with_flock() {
    let _cluster = cluster_or_skip!();
    const JOBS: usize = 6;
    const ROWS: usize = 300;
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let mut shared = expman::Experiment::builder("shared", sb.join("shared_base"))
        .attach_from_env(false)
        .create()
        .expect("create the shared experiment");
    let shared_dir = shared.layout().path().to_path_buf();
    shared.set_finished().unwrap();
    drop(shared);
    let barrier = sb.join("barrier");
    std::fs::create_dir(&barrier).unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut config = String::from(
        "[scheduler]\nbase_dir = \"experiments\"\nbackend = \"slurm\"\nmax_concurrent = 6\n",
    );
    for job in 0..JOBS {
        config.push_str(&format!(
            r#"
[[experiments]]
name = "appender_{job}"
command = '{exe} --exact append_job --nocapture --test-threads=1'
env = {{ EXPMAN_LOCK = "flock", EXPMAN_TEST_APPEND_DIR = '{shared}', EXPMAN_TEST_BARRIER = '{barrier}', EXPMAN_TEST_JOBS = "{JOBS}", EXPMAN_TEST_ROWS = "{ROWS}" }}
"#,
            exe = exe.display(),
            shared = shared_dir.display(),
            barrier = barrier.display(),
        ));
    }
    let path = sb.write("slurm.toml", &config);
    let out = Running::scheduler(&path).wait(LIMIT);
    out.expect_code(0);

    let table = std::fs::read_to_string(shared_dir.join("metrics/shared.csv")).unwrap();
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("timestamp,run_id,job,i,run"));
    let mut seen = BTreeSet::new();
    let mut runs = BTreeSet::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 5, "a whole row: {line:?}");
        assert_eq!(
            fields[1], fields[4],
            "a row carries its writer's run: {line:?}"
        );
        assert!(
            seen.insert((fields[2].to_string(), fields[3].to_string())),
            "row written twice: {line:?}"
        );
        runs.insert(fields[1].to_string());
    }
    assert_eq!(seen.len(), JOBS * ROWS, "every row is there");
    let expected: BTreeSet<String> = (2..=JOBS + 1).map(|n| format!("run_{n:04}")).collect();
    assert_eq!(
        runs, expected,
        "distinct, dense run ids after the creator's run_0001"
    );
    // Under flock the lock file holds only the append record (a few bytes written with
    // pwrite), never the shared-memory page a local disk maps (4096 bytes).
    let lock_file = shared_dir.join("metrics/.shared.csv.lock");
    let len = std::fs::metadata(&lock_file).map_or(0, |m| m.len());
    assert!(
        len < 4096,
        "EXPMAN_LOCK=flock: no shared-memory page in {} ({len} bytes)",
        lock_file.display()
    );
}

/// Not a test on its own: the job that `concurrent_jobs_allocate_runs_and_append_with_flock`
/// submits runs this test binary with only this function selected and `EXPMAN_TEST_*` set.
/// Without them it does nothing.
#[test]
fn append_job() {
    let Ok(shared) = std::env::var("EXPMAN_TEST_APPEND_DIR") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let barrier = PathBuf::from(var("EXPMAN_TEST_BARRIER"));
    let jobs: usize = var("EXPMAN_TEST_JOBS").parse().unwrap();
    let rows: usize = var("EXPMAN_TEST_ROWS").parse().unwrap();
    let me = var("SLURM_JOB_ID");
    assert_eq!(std::env::var("EXPMAN_LOCK").as_deref(), Ok("flock"));
    // Every job waits for all the others, so they allocate and append at the same time.
    std::fs::write(barrier.join(&me), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&barrier).unwrap().count() < jobs {
        assert!(Instant::now() < deadline, "not all {jobs} jobs ran at once");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut exp = expman::Experiment::open(&shared).unwrap();
    let run = exp.run_id().to_string();
    let table = exp.table("shared").unwrap();
    for i in 0..rows {
        table.set("job", me.as_str()).unwrap();
        table.set("i", i as i64).unwrap();
        table.set("run", run.as_str()).unwrap();
        table.save_row().unwrap();
    }
    exp.set_finished().unwrap();
    println!("job {me}: {rows} rows as {run}");
}

/// A sweep on Slurm: each point is one Slurm job, named after the point, whose command has
/// the point's values substituted (a hostile string arriving as one word) and whose
/// environment holds `EXPMAN_PARAMS`; `config.json` records the params; a retry of a point is
/// resubmitted with the same params.
#[test]
fn sweep_points_are_one_slurm_job_each_with_their_params() {
    let _cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    sb.write(
        "seen.sh",
        "printf '%s\\n' \"$#\" \"$1\" \"$2\" > \"$EXPMAN_EXPERIMENT_DIR/args_$EXPMAN_RUN_ID\"\n\
         printf '%s' \"$EXPMAN_PARAMS\" > \"$EXPMAN_EXPERIMENT_DIR/params_$EXPMAN_RUN_ID\"\n",
    );
    let hostile = "a b;echo INJECTED 'q' $(echo SUB)";
    let path = sb.write(
        "slurm.toml",
        format!(
            "[scheduler]\nbase_dir = \"experiments\"\nbackend = \"slurm\"\nmax_concurrent = 4\n\
             time = \"5m\"\n\n[[experiments]]\nname = \"sw\"\n\
             command = \"sh {} {{word}} {{lr}}\"\nparams = {{ word = {} }}\n\
             [experiments.sweep]\ngrid = {{ lr = [0.1, 0.01, 0.001] }}\n",
            sb.path().join("seen.sh").display(),
            toml_str(hostile)
        ),
    );
    let out = Running::scheduler(&path).wait(LIMIT);
    out.expect_code(0);
    let dirs = experiments(&sb.base());
    assert_eq!(
        dirs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["sw_lr=0.001", "sw_lr=0.01", "sw_lr=0.1"]
    );
    let mut ids = BTreeSet::new();
    for (name, lr) in [
        ("sw_lr=0.1", 0.1),
        ("sw_lr=0.01", 0.01),
        ("sw_lr=0.001", 0.001),
    ] {
        let dir = &dirs[name];
        let status = read_status(dir);
        assert_eq!(status["status"], "Finished", "{name}: {status}");
        let id = job_id(&status);
        assert_eq!(job_info(&id)["JobName"], name);
        ids.insert(id);
        let args = std::fs::read_to_string(dir.join("args_run_0001")).unwrap();
        assert_eq!(args, format!("2\n{hostile}\n{lr}\n"), "{name}");
        let expected = serde_json::json!({"lr": lr, "word": hostile});
        let seen: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("params_run_0001")).unwrap())
                .unwrap();
        assert_eq!(seen, expected, "{name}: EXPMAN_PARAMS in the Slurm job");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["params"], expected, "{name}: config.json");
    }
    assert_eq!(ids.len(), 3, "one Slurm job per point");

    // A retry (no scheduler running) resubmits the point with the params of its run.
    let dir = &dirs["sw_lr=0.01"];
    control("retry", dir).expect_code(0);
    wait_for_status(dir, "run_0002 to end", |s| {
        s["run_id"] == "run_0002" && s["status"] == "Finished"
    });
    assert_eq!(
        std::fs::read_to_string(dir.join("params_run_0002")).unwrap(),
        std::fs::read_to_string(dir.join("params_run_0001")).unwrap()
    );
}

/// Slurm's own time limit (`time`, as `--time`) killing a job: the run is Error with
/// JobState=TIMEOUT and Reason=TimeLimit. Slurm enforces limits at minute granularity and
/// checks them every 30 s, so this takes 60 to 90 s: run it with `--ignored`.
#[test]
#[ignore = "takes 60-90 s: Slurm's time limits are whole minutes, checked every 30 s"]
fn slurm_time_limit_ends_a_run_as_timeout() {
    let _cluster = cluster_or_skip!();
    let sb = Sandbox::new();
    let _cancel = CancelOnDrop(sb.base());
    let path = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"

[[experiments]]
name = "slurm_timeout"
command = "sleep 300"
time = "1"
"#,
    );
    let out = Running::scheduler(&path).wait(Duration::from_secs(150));
    out.expect_code(1);
    let status = read_status(&experiment(&sb.base(), "slurm_timeout"));
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("ended TIMEOUT") && error.contains("Reason=TimeLimit"),
        "{error}"
    );
}
