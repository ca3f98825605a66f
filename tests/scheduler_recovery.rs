//! Crash recovery: `kill -9` of the scheduler, then `EXP run` again on the same config and
//! base directory.

#![cfg(feature = "ui")]

mod scheduler_support;

use scheduler_support::*;

/// The first scheduler runs two jobs (max_concurrent = 2) with a third queued, and is killed
/// with -9. One running job keeps going under its supervisor; the other job's supervisor is
/// killed too. The restarted scheduler:
/// - adopts the job that still runs instead of starting it again (it counts its starts), and
///   records its exit code when it ends;
/// - marks the job whose supervisor vanished as Error with a reason, and kills what is left of
///   its process group;
/// - runs the job that was still Pending, once;
/// - creates no second directory for anything.
#[test]
fn restart_after_kill_9_adopts_running_jobs_and_runs_the_rest_once() {
    let sb = Sandbox::new();
    let starts = sb.join("long.starts");
    let release = sb.join("release");
    let doomed_child = sb.join("doomed.pid");
    let later_starts = sb.join("later.starts");
    let config = sb.write(
        "recover.toml",
        &format!(
            r#"[scheduler]
base_dir = "experiments"
max_concurrent = 2
gpus = []

[[experiments]]
name = "long"
priority = 10
command = "echo $EXPMAN_RUN_ID >> {starts}; while [ ! -e {release} ]; do sleep 0.02; done; exit 7"

[[experiments]]
name = "doomed"
priority = 9
command = "sleep 1000 & echo $! > {doomed_child}; wait"

[[experiments]]
name = "later"
priority = 1
command = "echo $EXPMAN_RUN_ID >> {later_starts}"
"#,
            starts = starts.display(),
            release = release.display(),
            doomed_child = doomed_child.display(),
            later_starts = later_starts.display(),
        ),
    );

    // First scheduler: both long jobs start, then it dies.
    let first = Running::scheduler(&config);
    wait_for_file(&starts);
    let doomed_grandchild: u32 = wait_for_file(&doomed_child).trim().parse().unwrap();
    let long = experiment(&sb.base(), "long");
    let doomed = experiment(&sb.base(), "doomed");
    let later = experiment(&sb.base(), "later");
    // Running, with the job's pid recorded (the supervisor does that just after spawning it).
    let running_with_pid = |s: &serde_json::Value| s["status"] == "Running" && s["pid"].is_u64();
    let long_status = wait_for_status(&long, "Running with a pid", running_with_pid);
    let doomed_status = wait_for_status(&doomed, "Running with a pid", running_with_pid);
    assert_eq!(status(&later)["status"], "Pending");
    first.kill9();

    // The doomed job loses its supervisor too; its job is orphaned but alive.
    let doomed_supervisor = pid_field(&doomed_status, "supervisor_pid");
    let doomed_group = pid_field(&doomed_status, "pid");
    signal(doomed_supervisor, libc::SIGKILL);
    wait_until("the doomed supervisor to die", LIMIT, || {
        (!alive(doomed_supervisor)).then_some(())
    });
    assert!(alive(doomed_grandchild));
    let long_supervisor = pid_field(&long_status, "supervisor_pid");
    assert!(
        alive(long_supervisor),
        "the long job's supervisor outlives the scheduler"
    );
    assert!(!later_starts.exists(), "nothing ran the pending job yet");

    // Second scheduler on the same config and base directory.
    let second = Running::scheduler(&config);
    // The pending job runs beside the adopted one (the slot of the dead job is free).
    wait_for_file(&later_starts);
    let doomed_after = wait_for_state(&doomed, "Error");
    let reason = doomed_after["error"].as_str().unwrap();
    assert!(reason.contains("supervisor"), "{doomed_after}");
    assert!(
        !alive(doomed_grandchild),
        "the orphaned job of the dead supervisor was killed"
    );
    assert_eq!(group_members(doomed_group), Vec::<u32>::new());
    assert_eq!(status(&long)["status"], "Running", "still running, adopted");

    std::fs::write(&release, "").unwrap();
    let out = second.wait(LIMIT);
    out.expect_code(1);
    assert!(out.stdout.contains("adopted"), "{}", out.stdout);

    let starts = std::fs::read_to_string(&starts).unwrap();
    assert_eq!(
        starts.lines().collect::<Vec<_>>(),
        ["run_0001"],
        "started once"
    );
    let long_after = status(&long);
    assert_eq!(long_after["status"], "Error", "{long_after}");
    assert_eq!(
        long_after["exit_code"], 7,
        "the adopted job's exit code: {long_after}"
    );
    assert_eq!(long_after["run_id"], "run_0001", "{long_after}");

    let later_runs = std::fs::read_to_string(&later_starts).unwrap();
    assert_eq!(later_runs.lines().collect::<Vec<_>>(), ["run_0001"]);
    assert_eq!(status(&later)["status"], "Finished");
    assert_eq!(
        experiments(&sb.base()).len(),
        3,
        "no directory was created twice"
    );
}

/// One scheduler per base directory: a second `EXP run` on it while the first runs is refused
/// with the first one's pid, and creates nothing.
#[test]
fn second_scheduler_on_the_same_base_dir_is_refused() {
    let sb = Sandbox::new();
    let release = sb.join("release");
    let config = sb.write(
        "one.toml",
        &format!(
            "[scheduler]\nbase_dir = \"experiments\"\ngpus = []\n\n[[experiments]]\nname = \"holder\"\ncommand = \"while [ ! -e {} ]; do sleep 0.02; done\"\n",
            release.display()
        ),
    );
    let first = Running::scheduler(&config);
    let holder = wait_until("the experiment to appear", LIMIT, || {
        experiments(&sb.base()).remove("holder")
    });
    wait_for_state(&holder, "Running");

    let second = run_scheduler(&config);
    second.expect_code(2);
    assert!(
        second
            .stderr
            .contains(&format!("another scheduler (pid {} on", first.pid())),
        "{}",
        second.stderr
    );
    assert_eq!(
        experiments(&sb.base()).len(),
        1,
        "the second one created nothing"
    );

    std::fs::write(&release, "").unwrap();
    first.wait(LIMIT).expect_code(0);
}
