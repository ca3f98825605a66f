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
