//! Jobs that fail: exit codes and logs in the run directory, automatic retries, `EXP retry`
//! without a scheduler, and timeouts that kill the whole process group.

#![cfg(feature = "ui")]

mod scheduler_support;

use scheduler_support::*;

/// A failing job ends as Error with its exit code in `status.json` and its stderr in
/// `logs/run_0001.log`; `retries = 1` runs it again as `run_0002` in the same directory.
#[test]
fn failing_job_records_exit_code_log_and_retries_in_place() {
    let sb = Sandbox::new();
    let config = sb.write(
        "fail.toml",
        r#"[scheduler]
base_dir = "experiments"
max_concurrent = 2
gpus = []

[[experiments]]
name = "broken"
command = "echo attempt-of-$EXPMAN_RUN_ID; echo boom-on-stderr >&2; exit 3"

[[experiments]]
name = "flaky"
retries = 1
command = "echo flaky-$EXPMAN_RUN_ID >&2; exit 4"
"#,
    );

    let out = run_scheduler(&config);
    // Not every job finished: the scheduler says so with exit code 1.
    out.expect_code(1);
    assert!(out.stdout.contains("broken"), "summary: {}", out.stdout);

    let broken = experiment(&sb.base(), "broken");
    let status = status(&broken);
    assert_eq!(status["status"], "Error", "{status}");
    assert_eq!(status["exit_code"], 3, "{status}");
    assert_eq!(status["run_id"], "run_0001", "{status}");
    assert!(
        status["error"].as_str().unwrap().contains('3'),
        "the error names the code: {status}"
    );
    let log = std::fs::read_to_string(broken.join("logs/run_0001.log")).unwrap();
    assert!(
        log.contains("boom-on-stderr"),
        "stderr in the run log: {log}"
    );
    assert!(
        log.contains("attempt-of-run_0001"),
        "stdout in the run log: {log}"
    );
    assert!(!broken.join("logs/run_0002.log").exists());

    // One automatic retry, in the same directory, as the next run id.
    let flaky = experiment(&sb.base(), "flaky");
    let status = scheduler_support::status(&flaky);
    assert_eq!(status["status"], "Error", "{status}");
    assert_eq!(status["run_id"], "run_0002", "{status}");
    assert_eq!(status["exit_code"], 4, "{status}");
    let history = status["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{status}");
    assert_eq!(history[0]["run_id"], "run_0001");
    assert_eq!(history[0]["exit_code"], 4);
    for run in ["run_0001", "run_0002"] {
        let log = std::fs::read_to_string(flaky.join(format!("logs/{run}.log"))).unwrap();
        assert!(log.contains(&format!("flaky-{run}")), "{run}: {log}");
    }
    assert!(
        !flaky.join("logs/run_0003.log").exists(),
        "retried only once"
    );
    assert_eq!(experiments(&sb.base()).len(), 2);
}

/// `EXP retry <dir>` with no scheduler running starts `run_0002` in the same directory, and
/// it runs to the end on its own (its supervisor records the result).
#[test]
fn exp_retry_without_a_scheduler_runs_the_next_run() {
    let sb = Sandbox::new();
    let marker = sb.join("failed-once");
    let config = sb.write(
        "retry.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
gpus = []

[[experiments]]
name = "second_time_lucky"
env = {{ MARKER = {} }}
command = "if [ -e \"$MARKER\" ]; then echo fine-in-$EXPMAN_RUN_ID; else touch \"$MARKER\"; exit 5; fi"
"#,
            toml_path(&marker)
        ),
    );
    run_scheduler(&config).expect_code(1);
    let dir = experiment(&sb.base(), "second_time_lucky");
    assert_eq!(status(&dir)["exit_code"], 5);

    let out = control("retry", &dir);
    out.expect_code(0);
    assert!(out.stdout.contains("run_0002"), "{}", out.stdout);

    let status = wait_for_state(&dir, "Finished");
    assert_eq!(status["run_id"], "run_0002", "{status}");
    assert_eq!(status["exit_code"], 0, "{status}");
    assert_eq!(status["history"][0]["status"], "Error", "{status}");
    let log = std::fs::read_to_string(dir.join("logs/run_0002.log")).unwrap();
    assert!(log.contains("fine-in-run_0002"), "{log}");
    assert_eq!(experiments(&sb.base()).len(), 1, "no new directory");
}

/// `timeout = "1s"` on a job that would sleep for a minute: it ends as Error "timed out", and
/// nothing of its process group survives (a background grandchild included).
#[test]
fn timeout_kills_the_process_group() {
    let sb = Sandbox::new();
    let grandchild = sb.join("grandchild.pid");
    let config = sb.write(
        "timeout.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
gpus = []

[[experiments]]
name = "sleepy"
timeout = "1s"
command = "sleep 60 & echo $! > {}; sleep 60"
"#,
            grandchild.display()
        ),
    );
    let started = std::time::Instant::now();
    run_scheduler(&config).expect_code(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the timeout did not cut the minute-long job short"
    );

    let dir = experiment(&sb.base(), "sleepy");
    let status = status(&dir);
    assert_eq!(status["status"], "Error", "{status}");
    let error = status["error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{status}");
    let pgid = pid_field(&status, "pid");
    assert_eq!(
        group_members(pgid),
        Vec::<u32>::new(),
        "process group {pgid} survived"
    );
    let grandchild: u32 = std::fs::read_to_string(&grandchild)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !alive(grandchild),
        "the background sleep {grandchild} survived"
    );
}

/// A job that takes `gpus = 2` from the pool, retried with `EXP retry` when no scheduler runs
/// (so there is no pool to draw from): the new run gets the GPUs its last run held, never none.
#[test]
fn exp_retry_without_a_scheduler_keeps_the_runs_gpus() {
    let sb = Sandbox::new();
    let seen = sb.join("seen");
    let config = sb.write(
        "gpus.toml",
        format!(
            "[scheduler]\nbase_dir = \"experiments\"\ngpus = [3, 5, 7]\n\n[[experiments]]\nname = \"on_gpus\"\ngpus = 2\ncommand = \"echo $EXPMAN_RUN_ID=$CUDA_VISIBLE_DEVICES >> {}\"\n",
            seen.display()
        ),
    );
    run_scheduler(&config).expect_code(0);
    let dir = experiment(&sb.base(), "on_gpus");
    let first = status(&dir)["gpus"].clone();
    assert_eq!(first.as_array().map(Vec::len), Some(2), "{first}");

    control("retry", &dir).expect_code(0);
    let second = wait_for_status(&dir, "run_0002 Finished", |s| {
        s["run_id"] == "run_0002" && s["status"] == "Finished"
    });
    assert_eq!(second["gpus"], first);
    let seen = std::fs::read_to_string(&seen).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines.len(), 2, "{seen}");
    let devices = |line: &str| line.split_once('=').unwrap().1.to_string();
    assert!(!devices(lines[0]).is_empty(), "{seen}");
    assert_eq!(devices(lines[0]), devices(lines[1]), "{seen}");
}
