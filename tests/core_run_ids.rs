//! Run-id allocation across many processes, and ids past `run_9999`.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use common::{Guarded, Reports, child_command, report, wait_with_deadline};
use expman::{ErrorKind, Experiment, ExperimentDir, RunId};

const PROCESSES: usize = 32;
const PER_PROCESS: usize = 50;

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| match role {
        "allocate" => {
            let dir = ExperimentDir::open(common::env("EXPMAN_TEST_DIR")).unwrap();
            // Wait for the parent's go, so all processes allocate at the same time instead
            // of one after another as they start.
            let mut go = String::new();
            std::io::stdin().read_line(&mut go).unwrap();
            for _ in 0..PER_PROCESS {
                let run = expman::run_id::allocate(&dir).unwrap();
                report(run.to_string());
            }
        }
        other => panic!("unknown role {other}"),
    });
}

/// 32 processes × 50 allocations in one experiment: every id is handed out once, and together
/// with the creator's run_0001 they are exactly run_0001..=run_1601 (no gaps on a local disk).
#[test]
fn many_processes_allocate_distinct_dense_run_ids() {
    let base = tempfile::tempdir().unwrap();
    let exp = Experiment::builder("ids", base.path())
        .attach_from_env(false)
        .create()
        .unwrap();
    assert_eq!(exp.run_id().to_string(), "run_0001");

    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Guarded::spawn(
                child_command("child", "allocate")
                    .env("EXPMAN_TEST_DIR", exp.dir())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped()),
            )
        })
        .collect();
    // Every child is started and has opened the directory before any allocates.
    for child in &mut children {
        use std::io::Write;
        writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let mut all = vec![exp.run_id()];
    for child in &mut children {
        let reports = Reports::of(child);
        let mut mine = Vec::new();
        while let Some(line) = reports.try_next("an allocating child") {
            mine.push(line.parse::<RunId>().unwrap());
        }
        let status = wait_with_deadline(child, Duration::from_secs(60), "an allocating child");
        common::assert_success(status, "an allocating child");
        assert_eq!(mine.len(), PER_PROCESS);
        // Within one process the ids rise: each allocation sees the ones before it.
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        all.extend(mine);
    }

    let total = PROCESSES * PER_PROCESS + 1;
    let distinct: BTreeSet<u32> = all.iter().map(|r| r.number()).collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "some run id was handed out twice"
    );
    assert_eq!(
        distinct,
        (1..=total as u32).collect::<BTreeSet<_>>(),
        "run ids have gaps"
    );
    // Each allocation claimed its log file, and no other run log appeared.
    let dir = exp.layout();
    assert_eq!(dir.runs().unwrap().len(), total);
    let run_logs = std::fs::read_dir(dir.logs_dir())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_str().unwrap();
            name.strip_suffix(".log")
                .is_some_and(|stem| stem.parse::<RunId>().is_ok())
        })
        .count();
    assert_eq!(run_logs, total);
}

/// After run_9999 comes run_10000, and everything that lists runs orders them by number (not
/// by text, where "run_10000" < "run_9999").
#[test]
fn run_ids_past_9999_allocate_and_sort_by_number() {
    let base = tempfile::tempdir().unwrap();
    // A directory whose runs came from elsewhere (copied in, or an older expman): no run was
    // allocated here yet, so allocation starts after the highest run on disk.
    let dir = ExperimentDir::create(base.path(), "big", chrono::Local::now()).unwrap();
    std::fs::write(dir.config_path(), "{}").unwrap();
    for run in [1, 9998] {
        std::fs::write(dir.run_log(RunId::new(run).unwrap()), "").unwrap();
    }
    std::fs::write(dir.table_path("run_0001"), "timestamp,run_id,x\n").unwrap();

    let next: Vec<String> = (0..3)
        .map(|_| expman::run_id::allocate(&dir).unwrap().to_string())
        .collect();
    assert_eq!(next, ["run_9999", "run_10000", "run_10001"]);

    // A run reopened through the public API gets the next number too, and writes its table.
    let mut reopened = Experiment::open(dir.path()).unwrap();
    assert_eq!(reopened.run_id().to_string(), "run_10002");
    reopened.set("x", 2).unwrap();
    reopened.save_row().unwrap();
    assert!(dir.table_path("run_10002").is_file());
    std::fs::write(dir.table_path("run_9999"), "timestamp,run_id\n").unwrap();
    std::fs::write(dir.table_path("progress"), "timestamp,run_id\n").unwrap();

    let runs: Vec<String> = dir.runs().unwrap().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        runs,
        [
            "run_0001",
            "run_9998",
            "run_9999",
            "run_10000",
            "run_10001",
            "run_10002"
        ]
    );
    // Tables: runs by number first, then named tables.
    assert_eq!(
        dir.tables().unwrap(),
        ["run_0001", "run_9999", "run_10002", "progress"]
    );
    assert!(RunId::new(10000).unwrap() > RunId::new(9999).unwrap());
}

/// Display and parse are inverse for every valid id, and malformed ids are refused with an
/// error that names them.
#[test]
fn run_id_text_round_trips_and_rejects_malformed_ids() {
    for n in [
        1,
        9,
        10,
        999,
        1000,
        9999,
        10000,
        12345,
        99999,
        100000,
        u32::MAX,
    ] {
        let run = RunId::new(n).unwrap();
        let text = run.to_string();
        assert_eq!(text.parse::<RunId>().unwrap(), run, "{text}");
        assert_eq!(run.number(), n);
    }
    assert_eq!(RunId::new(7).unwrap().to_string(), "run_0007");
    assert_eq!(RunId::new(10000).unwrap().to_string(), "run_10000");

    for bad in [
        "run_0000",
        "run_01",
        "run_010000",
        "run_",
        "run_abcd",
        "run_12a4",
        "Run_0001",
        "run-0001",
        "0001",
        "run_ 001",
        "run_+001",
        "run_99999999999",
        "",
    ] {
        let err = bad
            .parse::<RunId>()
            .expect_err(&format!("{bad:?} must be refused"));
        assert!(
            matches!(err.kind(), ErrorKind::InvalidName { value, .. } if value == bad),
            "{bad:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{bad:?}")),
            "the message names the value: {err}"
        );
    }
    assert!(RunId::new(0).is_err());
}

/// The hint in `.expman.lock` only says where to start: a run file that another tool created
/// after the hint was recorded (`logs/run_0002.log`, or a table `metrics/run_0003.csv` copied
/// in) makes allocation skip that id; the exclusive create of the log is the guard that cannot
/// lie. Before tables were checked too, run_0003 was handed out and wrote into the copied table.
#[test]
fn run_files_made_by_another_tool_are_never_handed_out() {
    let base = tempfile::tempdir().unwrap();
    let exp = Experiment::builder("hinted", base.path()).create().unwrap();
    let dir = exp.layout().clone();
    assert_eq!(exp.run_id().to_string(), "run_0001");
    // The lock file holds the hint: the last id handed out.
    let hint = std::fs::read_to_string(dir.lock_path()).unwrap();
    assert_eq!(hint.trim(), "1", "{hint:?}");

    std::fs::write(dir.run_log(RunId::new(2).unwrap()), "another tool's log\n").unwrap();
    let copied = "timestamp,run_id,x\n2025-09-26T14:30:15,run_0003,1\n";
    std::fs::write(dir.table_path("run_0003"), copied).unwrap();

    let next = Experiment::open(dir.path()).unwrap();
    assert_eq!(next.run_id().to_string(), "run_0004");
    assert_eq!(
        std::fs::read_to_string(dir.run_log(RunId::new(2).unwrap())).unwrap(),
        "another tool's log\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.table_path("run_0003")).unwrap(),
        copied
    );
    assert_eq!(
        expman::run_id::allocate(&dir).unwrap().to_string(),
        "run_0005"
    );
}

/// The seed's `exp.set_running(pid=12345)`: the pid is recorded as given, and while no such
/// process runs the run reads as Error with a message saying that the process named by
/// set_running is not running (not that the caller crashed). A named process that is alive
/// keeps the run Running until it exits.
#[test]
fn set_running_with_another_processes_pid() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = Experiment::builder("named", base.path()).create().unwrap();

    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    exp.set_running(gone_pid).unwrap();
    let status = exp.status().unwrap();
    assert_eq!(status.pid, Some(gone_pid));
    let (state, message) = status.effective();
    assert_eq!(state, expman::RunState::Error);
    let message = message.unwrap();
    assert!(
        message.starts_with(&format!(
            "process {gone_pid} named by set_running is not running"
        )),
        "{message}"
    );

    let mut alive = std::process::Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    exp.set_running(alive.id()).unwrap();
    assert_eq!(
        exp.status().unwrap().effective().0,
        expman::RunState::Running
    );
    alive.kill().unwrap();
    alive.wait().unwrap();
    let (state, message) = exp.status().unwrap().effective();
    assert_eq!(state, expman::RunState::Error);
    assert!(
        message.unwrap().contains("named by set_running"),
        "the message says who named the pid"
    );

    // This process's own pid is no named pid: its end is a crash of the caller.
    exp.set_running(std::process::id()).unwrap();
    assert!(!exp.status().unwrap().pid_named);
}

/// Two handles on one experiment, the second opened while the first's run still runs (a
/// second process, or a notebook cell): each handle's state and end are its own run's. Before,
/// ending run_0001 made it the current run again, pushing run_0002 into the history and
/// leaving run_0001's record there Running forever.
#[test]
fn ending_an_earlier_run_after_a_later_one_started_changes_only_its_own_record() {
    let base = tempfile::tempdir().unwrap();
    let mut first = Experiment::builder("seq", base.path())
        .attach_from_env(false)
        .create()
        .unwrap();
    first.set_running(std::process::id()).unwrap();
    let mut second = Experiment::open(first.dir()).unwrap();
    assert_eq!(second.run_id().to_string(), "run_0002");
    second.set_running(std::process::id()).unwrap();
    second.set_error("oom").unwrap();
    assert_eq!(first.run_state().unwrap(), expman::RunState::Running);
    first.set_finished().unwrap();
    assert_eq!(first.run_state().unwrap(), expman::RunState::Finished);
    assert_eq!(second.run_state().unwrap(), expman::RunState::Error);
    let status = first.status().unwrap();
    assert_eq!(
        status.run_id.map(|r| r.to_string()).as_deref(),
        Some("run_0002")
    );
    assert_eq!(status.status, expman::RunState::Error);
    assert_eq!(status.error.as_deref(), Some("oom"));
    let history: Vec<(String, expman::RunState)> = status
        .history
        .iter()
        .map(|r| (r.run_id.unwrap().to_string(), r.status))
        .collect();
    assert_eq!(
        history,
        [("run_0001".to_string(), expman::RunState::Finished)]
    );
    assert!(status.history[0].finished_at.is_some());
}
