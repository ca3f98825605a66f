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
        format!(
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
        format!(
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

/// The steps of putting a queue on disk at which a debug build of `EXP` can be made to kill
/// itself (`EXPMAN_TEST_CRASH_AT=<step>:<n>`, see `src/scheduler/fault.rs`): an experiment
/// built whole in the scheduler's staging area; recorded in the journal with the directory it
/// will get; (without RENAME_NOREPLACE) that directory claimed empty and the claim recorded;
/// moved into place. Each with and without `EXPMAN_TEST_NO_RENAME_NOREPLACE`, the path taken
/// on NFS.
#[cfg(debug_assertions)]
const CREATION_STEPS: [(&str, bool); 7] = [
    ("queue:staged", false),
    ("queue:journaled", false),
    ("queue:published", false),
    ("queue:staged", true),
    ("queue:journaled", true),
    ("queue:claimed", true),
    ("queue:published", true),
];

/// A scheduler killed (SIGKILL) at each step of creating its queue on disk, while creating the
/// first or the second experiment, and then started again: every queued name runs exactly
/// once, every experiment directory is whole (config.json and status.json) and Finished, no
/// directory is left Pending, and nothing half-created stays anywhere under the base
/// directory (not even in the scheduler's own staging area).
#[cfg(debug_assertions)]
#[test]
fn kill_while_creating_the_queue_leaves_no_orphan_and_runs_each_name_once() {
    use std::os::unix::process::ExitStatusExt;

    for (step, nfs) in CREATION_STEPS {
        for nth in [1, 2] {
            let sb = Sandbox::new();
            let ran = sb.join("ran");
            let entries: String = ["a", "b", "c"]
                .iter()
                .map(|name| {
                    format!(
                        "\n[[experiments]]\nname = \"{name}\"\ncommand = \"echo {name} $EXPMAN_RUN_ID >> {}\"\n",
                        ran.display()
                    )
                })
                .collect();
            let config = sb.write(
                "queue.toml",
                format!("[scheduler]\nbase_dir = \"experiments\"\ngpus = []\n{entries}"),
            );
            let crash = format!("{step}:{nth}");
            let fallback = if nfs { "1" } else { "0" };
            let env = [
                ("EXPMAN_TEST_CRASH_AT", crash.as_str()),
                ("EXPMAN_TEST_NO_RENAME_NOREPLACE", fallback),
            ];
            let crash = format!("{crash}, without RENAME_NOREPLACE: {nfs}");
            let first = Running::scheduler_with_env(&config, &env).wait(LIMIT);
            assert_eq!(
                first.status.signal(),
                Some(libc::SIGKILL),
                "[{crash}] the scheduler must die at the crash point\n--- stdout\n{}\n--- stderr\n{}",
                first.stdout,
                first.stderr
            );
            assert!(!ran.exists(), "[{crash}] nothing ran before the crash");

            let second = Running::scheduler_with_env(
                &config,
                &[("EXPMAN_TEST_NO_RENAME_NOREPLACE", fallback)],
            )
            .wait(LIMIT);
            second.expect_code(0);
            let mut runs: Vec<String> = std::fs::read_to_string(&ran)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            runs.sort();
            assert_eq!(
                runs,
                ["a run_0001", "b run_0001", "c run_0001"],
                "[{crash}] each name ran exactly once\n{}",
                second.stdout
            );

            // Every entry of the base directory is a whole experiment of the queue, Finished.
            let found = experiments(&sb.base());
            assert_eq!(
                found.keys().collect::<Vec<_>>(),
                ["a", "b", "c"],
                "[{crash}]"
            );
            for entry in std::fs::read_dir(sb.base()).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().unwrap() == ".expman" {
                    continue;
                }
                assert!(
                    found.values().any(|dir| *dir == path),
                    "[{crash}] {} is left over from an interrupted creation",
                    path.display()
                );
                let state = status(&path);
                assert_eq!(
                    state["status"],
                    "Finished",
                    "[{crash}] {}: {state}",
                    path.display()
                );
            }
            // Nothing staged is left behind either: no config.json under the hidden directory.
            let mut stack = vec![sb.base().join(".expman")];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                    let path = entry.unwrap().path();
                    assert_ne!(
                        path.file_name().unwrap(),
                        "config.json",
                        "[{crash}] a staged experiment was left at {}",
                        path.display()
                    );
                    if path.is_dir() {
                        stack.push(path);
                    }
                }
            }
        }
    }
}

/// `resume = true` with a kill before and after the next run is allocated: after the restart
/// the experiment has exactly one new run, which ran once, and no run is left Pending in its
/// history.
#[cfg(debug_assertions)]
#[test]
fn kill_while_resuming_gives_exactly_one_new_run() {
    use std::os::unix::process::ExitStatusExt;

    for step in ["queue:resume-recorded", "queue:resumed"] {
        let sb = Sandbox::new();
        let ran = sb.join("ran");
        let config = sb.write(
            "resume.toml",
            format!(
                "[scheduler]\nbase_dir = \"experiments\"\ngpus = []\n\n[[experiments]]\nname = \"r\"\nresume = true\ncommand = \"echo $EXPMAN_RUN_ID >> {}\"\n",
                ran.display()
            ),
        );
        run_scheduler(&config).expect_code(0);
        let first =
            Running::scheduler_with_env(&config, &[("EXPMAN_TEST_CRASH_AT", step)]).wait(LIMIT);
        assert_eq!(
            first.status.signal(),
            Some(libc::SIGKILL),
            "[{step}] the scheduler must die at the crash point\n{}{}",
            first.stdout,
            first.stderr
        );
        run_scheduler(&config).expect_code(0);
        let runs = std::fs::read_to_string(&ran).unwrap();
        let dir = experiment(&sb.base(), "r");
        let state = status(&dir);
        let last = state["run_id"].as_str().unwrap().to_string();
        assert_eq!(
            runs.lines().collect::<Vec<_>>(),
            ["run_0001", last.as_str()],
            "[{step}] one new run, run once: {state}"
        );
        assert_eq!(state["status"], "Finished", "[{step}] {state}");
        let history = state["history"].as_array().unwrap();
        assert!(
            history.iter().all(|h| h["status"] != "Pending"),
            "[{step}] a run was left Pending: {state}"
        );
    }
}

/// A scheduler killed after recording an experiment it had not moved into place yet, then
/// restarted with a config that no longer has that experiment: the staged copy is removed
/// rather than published (nobody would run it), and the rest of the queue runs.
#[cfg(debug_assertions)]
#[test]
fn staged_experiment_dropped_from_the_config_is_removed() {
    use std::os::unix::process::ExitStatusExt;

    let sb = Sandbox::new();
    let entry = |name: &str| format!("\n[[experiments]]\nname = \"{name}\"\ncommand = \"true\"\n");
    let header = "[scheduler]\nbase_dir = \"experiments\"\ngpus = []\n";
    let config = sb.write(
        "queue.toml",
        format!("{header}{}{}", entry("a"), entry("b")),
    );
    let first =
        Running::scheduler_with_env(&config, &[("EXPMAN_TEST_CRASH_AT", "queue:journaled")])
            .wait(LIMIT);
    assert_eq!(
        first.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        first.stderr
    );
    let config = sb.write("queue.toml", format!("{header}{}", entry("b")));
    run_scheduler(&config).expect_code(0);
    assert_eq!(experiments(&sb.base()).keys().collect::<Vec<_>>(), ["b"]);
    let staging = sb.base().join(".expman/staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staged copies left: {left:?}");
}
