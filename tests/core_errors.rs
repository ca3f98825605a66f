//! Bad input and failing resources: each gives an error of the right kind that names the value
//! or path, never a panic, and leaves every file as it was (or whole).

mod common;

use std::path::Path;

use std::process::Stdio;
use std::time::Duration;

use common::{Guarded, Reports, Scripted, child_command, report, wait_with_deadline};
use expman::{ErrorKind, Experiment, SyncPolicy, TableWriter, Value, read_table};

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| match role {
        "scripted" => common::scripted_writer(),
        "open_on_a_full_disk" => open_on_a_full_disk(),
        other => panic!("unknown role {other}"),
    });
}

fn new_experiment(base: &Path) -> Experiment {
    Experiment::builder("errors", base)
        .attach_from_env(false)
        .create()
        .unwrap()
}

/// Asserts an InvalidName error about `what` whose message quotes `value`.
fn assert_invalid_name(result: expman::Result<impl std::fmt::Debug>, what: &str, value: &str) {
    let err = result.expect_err(&format!("{what} {value:?} must be refused"));
    assert!(
        matches!(err.kind(), ErrorKind::InvalidName { what: w, value: v, .. } if *w == what && v == value),
        "{what} {value:?}: {err:?}"
    );
    assert!(
        err.to_string().contains(&format!("{value:?}")),
        "the message names the value: {err}"
    );
}

#[test]
fn bad_experiment_names_are_refused_before_touching_the_disk() {
    let base = tempfile::tempdir().unwrap();
    for name in [
        "",
        "a/b",
        "/abs",
        "..",
        "a..b",
        "../escape",
        "a\0b",
        "a\nb",
        "tab\tname",
        "\u{7f}",
        ".hidden",
    ] {
        let result = Experiment::builder(name, base.path())
            .attach_from_env(false)
            .create();
        assert_invalid_name(result.map(|_| ()), "experiment name", name);
    }
    assert_eq!(
        std::fs::read_dir(base.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

#[test]
fn bad_field_names_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = new_experiment(base.path());
    for name in ["", "timestamp", "run_id", "a\nb", "nul\0"] {
        assert_invalid_name(exp.set(name, 1), "field name", name);
        assert_invalid_name(exp.upd_row([(name, 1)]), "field name", name);
        let mut writer = TableWriter::new(
            base.path().join("t.csv"),
            "run_0001",
            SyncPolicy::WriteThrough,
        );
        assert_invalid_name(writer.field_id(name), "field name", name);
    }
    // Nothing was half-saved by the refusals.
    exp.set("ok", 1).unwrap();
    exp.save_row().unwrap();
    assert_eq!(
        exp.load_metrics().unwrap().columns,
        ["timestamp", "run_id", "ok"]
    );
}

#[test]
fn bad_table_names_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = new_experiment(base.path());
    for name in [
        "run_0001",
        "run_0002",
        "run_10000",
        "../x",
        "a/b",
        "",
        "..",
        ".hidden",
        "x\0",
    ] {
        assert_invalid_name(exp.table(name).map(|_| ()), "table name", name);
    }
    for name in ["../x", "a/b", ""] {
        assert_invalid_name(exp.load_table(name), "table name", name);
    }
    let escaped = base.path().join("x.csv");
    assert!(!escaped.exists());
    // A name that merely resembles a run id is a fine table name.
    exp.table("run_01").unwrap().set("a", 1).unwrap();
    exp.table("run_01").unwrap().save_row().unwrap();
}

/// A CSV that expman did not write (header not `timestamp,run_id,...`) sitting in metrics/ is
/// refused by writers and readers with a Corrupt error naming it, and stays byte-identical.
#[test]
fn foreign_csv_is_refused_and_left_untouched() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = new_experiment(base.path());
    let foreign: &[(&str, &[u8])] = &[
        ("progress", b"epoch,loss\n1,0.5\n2,0.4\n"),
        (
            "swapped",
            b"run_id,timestamp,x\nrun_0001,2025-01-01T00:00:00,1\n",
        ),
        ("oneline", b"hello world\n"),
    ];
    let run_table = exp.run_id().to_string();
    let cases = foreign
        .iter()
        .copied()
        .chain([(run_table.as_str(), &b"a,b\n1,2\n"[..])]);
    for (table, bytes) in cases {
        let path = exp.layout().table_path(table);
        std::fs::write(&path, bytes).unwrap();
        let saved = if table == run_table {
            exp.set("x", 1).and_then(|()| exp.save_row())
        } else {
            let writer = exp.table(table).unwrap();
            writer
                .set("x", Value::Int(1))
                .and_then(|()| writer.save_row())
        };
        for err in [saved.unwrap_err(), read_table(&path).unwrap_err()] {
            assert!(
                matches!(err.kind(), ErrorKind::Corrupt { path: p, .. } if *p == path),
                "{table}: {err:?}"
            );
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(
                err.to_string().contains("timestamp,run_id"),
                "says what is expected: {err}"
            );
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{table} was modified");
    }
    let leftovers: Vec<_> = std::fs::read_dir(exp.layout().metrics_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Damaged state files give a Corrupt error naming the file, whichever call reads them.
#[test]
fn corrupt_state_files_are_reported_with_their_path() {
    let base = tempfile::tempdir().unwrap();
    for (file, bytes) in [
        ("config.json", &b"{ not json"[..]),
        ("config.json", b"[1, 2, 3]"),
        ("config.json", b""),
        ("status.json", b"{\"status\": \"Sleeping\"}"),
        ("status.json", b"\x00\x01garbage"),
    ] {
        let exp = new_experiment(base.path());
        let dir = exp.dir().to_path_buf();
        let path = dir.join(file);
        std::fs::write(&path, bytes).unwrap();
        let err = if file == "status.json" {
            exp.status().unwrap_err()
        } else {
            Experiment::open(&dir).err().expect("open must fail")
        };
        assert!(
            matches!(err.kind(), ErrorKind::Corrupt { path: p, .. } if *p == path),
            "{file} {bytes:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        if file == "status.json" {
            let err = Experiment::open(&dir).err().expect("open must fail");
            assert!(
                matches!(err.kind(), ErrorKind::Corrupt { path: p, .. } if *p == path),
                "{err:?}"
            );
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{file} was rewritten");
    }
}

/// `config.json` and `status.json` saved by an editor that starts files with a UTF-8
/// byte-order mark (Windows Notepad) read as they did before the save.
#[test]
fn state_files_saved_with_a_byte_order_mark_still_read() {
    let base = tempfile::tempdir().unwrap();
    let exp = new_experiment(base.path());
    let dir = exp.dir().to_path_buf();
    let status_before = exp.status().unwrap();
    drop(exp);
    for file in ["config.json", "status.json"] {
        let path = dir.join(file);
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend(std::fs::read(&path).unwrap());
        std::fs::write(&path, bytes).unwrap();
    }
    let exp = Experiment::open(&dir).unwrap();
    assert_eq!(
        exp.status().unwrap().run_id,
        status_before.run_id.map(|r| r.next())
    );
}

/// A field added to `status.json` by hand or by another tool survives expman's later writes
/// (the end of the run, the next run); before, the next write dropped it.
#[test]
fn unknown_status_fields_survive_later_writes() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = new_experiment(base.path());
    let dir = exp.dir().to_path_buf();
    let path = dir.join("status.json");
    let mut status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    status["my_note"] = serde_json::json!({"checked_by": "ana", "ok": true});
    std::fs::write(&path, status.to_string()).unwrap();
    exp.set_finished().unwrap();
    drop(exp);
    Experiment::open(&dir).unwrap().set_finished().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(status["my_note"]["checked_by"], "ana", "{status}");
    assert_eq!(status["run_id"], "run_0002", "{status}");
}

/// Opening a directory that is not an experiment says which file is missing.
#[test]
fn opening_a_non_experiment_directory_is_not_found() {
    let base = tempfile::tempdir().unwrap();
    for dir in [base.path().to_path_buf(), base.path().join("missing")] {
        let err = Experiment::open(&dir).err().expect("open must fail");
        let want = dir.join("config.json");
        assert!(
            matches!(err.kind(), ErrorKind::NotFound { path, .. } if *path == want),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&want.display().to_string()),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(base.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

/// Parses the scripted child's answer to a save: `ok` → true, an Io error naming `path` →
/// false; anything else fails the test.
fn saved(answer: &str, path: &Path) -> bool {
    if answer == "ok" {
        return true;
    }
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        answer.starts_with("err Io "),
        "expected an I/O error, got {answer}"
    );
    assert!(
        answer.contains(name),
        "the error names {}: {answer}",
        path.display()
    );
    false
}

/// Checks the table holds exactly the rows whose save answered `ok`, in order, and parses.
fn assert_exactly(table: &Path, ok_rows: &[i64]) {
    let metrics = read_table(table).unwrap();
    let got: Vec<Value> = metrics.column("n").unwrap().cloned().collect();
    let want: Vec<Value> = ok_rows.iter().map(|&n| Value::Int(n)).collect();
    assert_eq!(
        got, want,
        "the table must hold exactly the rows whose save_row returned Ok"
    );
    assert!(std::fs::read(table).unwrap().ends_with(b"\n"));
}

/// A full disk, simulated by RLIMIT_FSIZE in a child process: an append cut short mid-row and
/// a widening both fail with an Io error naming the table; the file stays parseable and holds
/// exactly the rows whose save_row returned Ok, with no partial row and no temporary file
/// left; once space is back, the same writer carries on. Both lock modes.
#[test]
fn disk_full_fails_cleanly_and_loses_nothing_saved() {
    for mode in common::LOCK_MODES {
        let base = tempfile::tempdir().unwrap();
        let table = base.path().join("full.csv");
        let size = || std::fs::metadata(&table).unwrap().len();
        let mut child = Scripted::start("child", &table, "run_0001", Some(mode));
        // Quoted lines: the part of a row written before the disk filled up ends after one of
        // its inner newlines, and must not be kept as if it were a whole row. (The scripted
        // child reads `\n` as a newline.)
        let payload = "line,".repeat(20).replace(',', ",\\n");
        let long_row = |n: i64| format!("save n=i:{n} p=s:{payload}");
        for n in 1..=3 {
            assert_eq!(child.cmd(&long_row(n)), "ok");
        }
        let before = size();
        assert_eq!(child.cmd(&long_row(4)), "ok");
        let row_len = size() - before;
        let mut ok_rows = vec![1, 2, 3, 4];

        // The next long row only half fits: its write(2) is cut in the middle of the quoted
        // lines, then fails with EFBIG.
        assert_eq!(child.cmd(&format!("fsize {}", size() + row_len / 2)), "ok");
        assert!(!saved(&child.cmd(&long_row(5)), &table), "[{mode}]");
        assert_exactly(&table, &ok_rows);
        // A short row still fits, and is not glued to anything.
        assert_eq!(child.cmd("save n=i:6"), "ok");
        ok_rows.push(6);
        assert_exactly(&table, &ok_rows);
        // A widening needs a whole new copy of the file: it fails and leaves the old file.
        assert!(
            !saved(&child.cmd("save n=i:7 wide=b:true"), &table),
            "[{mode}]"
        );
        assert_exactly(&table, &ok_rows);

        // Space again: the same writer continues, widening included.
        assert_eq!(child.cmd("fsize_off"), "ok");
        assert_eq!(child.cmd(&long_row(8)), "ok");
        assert_eq!(child.cmd("save n=i:9 wide=b:true"), "ok");
        ok_rows.extend([8, 9]);
        child.exit();
        assert_exactly(&table, &ok_rows);
        let names: Vec<String> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains("tmp")),
            "[{mode}] {names:?}"
        );
    }
}

/// A widening that fails after its rename (here: no file descriptor left for the directory
/// fsync) must not leave other writers appending to the replaced, unlinked file, and a row
/// reported as failed must not be in the table.
#[test]
fn widening_that_runs_out_of_descriptors_loses_no_row() {
    for mode in common::LOCK_MODES {
        let base = tempfile::tempdir().unwrap();
        let table = base.path().join("fds.csv");
        let mut other = Scripted::start("child", &table, "run_0001", Some(mode));
        let mut short = Scripted::start("child", &table, "run_0002", Some(mode));
        let mut ok_rows = Vec::new();
        let mut save = |who: &mut Scripted, n: i64, extra: &str| {
            // The error may be about the table or its directory.
            if saved(&who.cmd(&format!("save n=i:{n}{extra}")), base.path()) {
                ok_rows.push(n);
            }
        };
        save(&mut other, 1, ""); // `other` holds the file from before the widening
        save(&mut short, 2, "");
        assert_eq!(short.cmd("fill_fds 1"), "ok");
        save(&mut short, 3, " wide=b:true"); // the widening, one descriptor short
        save(&mut other, 4, "");
        save(&mut short, 5, "");
        save(&mut other, 6, "");
        other.exit();
        short.exit();
        assert!(
            ok_rows.contains(&4) && ok_rows.contains(&6),
            "[{mode}] {ok_rows:?}"
        );
        assert_exactly(&table, &ok_rows);
    }
}

/// Child: with RLIMIT_FSIZE at `EXPMAN_TEST_FSIZE` bytes (writes past it fail with EFBIG, as
/// on a full disk), opens the next run of `EXPMAN_TEST_DIR` when it is set, else creates an
/// experiment in `EXPMAN_TEST_BASE`; reports `ok <run>` or `err <kind code> <message>`.
fn open_on_a_full_disk() {
    common::set_fsize_limit(common::env("EXPMAN_TEST_FSIZE").parse().unwrap());
    let result = match std::env::var("EXPMAN_TEST_DIR") {
        Ok(dir) => Experiment::open(dir),
        Err(_) => Experiment::builder("full", common::env("EXPMAN_TEST_BASE"))
            .attach_from_env(false)
            .create(),
    };
    match result {
        Ok(exp) => report(format!("ok {}", exp.run_id())),
        Err(e) => report(format!("err {} {e}", expman::ffi::error_status(&e))),
    }
}

/// Runs [`open_on_a_full_disk`] with `env` and returns its answer.
fn full_disk_child(fsize: u64, env: (&str, &Path)) -> String {
    let mut child = Guarded::spawn(
        child_command("child", "open_on_a_full_disk")
            .env("EXPMAN_TEST_FSIZE", fsize.to_string())
            .env(env.0, env.1)
            .stdout(Stdio::piped()),
    );
    let answer = Reports::of(&mut child).next("the full-disk child");
    let status = wait_with_deadline(&mut child, Duration::from_secs(20), "the full-disk child");
    common::assert_success(status, "the full-disk child");
    answer
}

/// Creating an experiment, or opening its next run, on a full disk (RLIMIT_FSIZE in a child:
/// `status.json` and `config.json` cannot be written) fails with an I/O error and rolls back:
/// a new directory is removed again, and a new run's id is released (no `logs/run_NNNN.log`
/// left, the next successful open gets that same id).
#[test]
fn failed_open_on_a_full_disk_leaves_nothing_and_consumes_no_run_id() {
    let base = tempfile::tempdir().unwrap();
    // Small enough that no state file fits, large enough for the run-id hint rewrite (which
    // does not grow the lock file).
    let fsize = 16;
    for _ in 0..2 {
        let answer = full_disk_child(fsize, ("EXPMAN_TEST_BASE", base.path()));
        assert!(answer.starts_with("err 10 "), "an I/O error: {answer}");
        let left: Vec<_> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "a failed create left {left:?}");
    }

    let mut exp = new_experiment(base.path());
    exp.set("n", 1).unwrap();
    exp.save_row().unwrap();
    exp.set_finished().unwrap();
    let dir = exp.dir().to_path_buf();
    let status_before = std::fs::read(dir.join("status.json")).unwrap();
    for _ in 0..2 {
        let answer = full_disk_child(fsize, ("EXPMAN_TEST_DIR", &dir));
        assert!(answer.starts_with("err 10 "), "an I/O error: {answer}");
        assert!(
            answer.contains("status.json"),
            "the error names the file: {answer}"
        );
        assert!(
            !dir.join("logs/run_0002.log").exists(),
            "the failed open kept its run id"
        );
        assert_eq!(exp.layout().runs().unwrap(), [expman::RunId::FIRST]);
        assert_eq!(
            std::fs::read(dir.join("status.json")).unwrap(),
            status_before,
            "status.json changed"
        );
    }
    let next = Experiment::open(&dir).unwrap();
    assert_eq!(next.run_id().to_string(), "run_0002", "no id was consumed");
}

/// Names given by the caller are quoted at most 200 characters long in error messages, with
/// their total length, and state files echoing a huge value give a short message too: a 10 MB
/// input never makes a 10 MB message. Field names are at most 256 bytes.
#[test]
fn huge_inputs_are_not_echoed_in_full() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = new_experiment(base.path());
    let huge = "x".repeat(10 << 20);
    let huge_run = format!("run_{}", "1".repeat(10 << 20));
    let errors = [
        exp.set(&huge, 1).unwrap_err(),
        exp.upd_row([(huge.as_str(), 1)]).unwrap_err(),
        exp.table(&huge).map(|_| ()).unwrap_err(),
        exp.load_table(&huge).unwrap_err(),
        Experiment::builder(huge.as_str(), base.path())
            .attach_from_env(false)
            .create()
            .err()
            .unwrap(),
        huge_run.parse::<expman::RunId>().unwrap_err(),
    ];
    for err in errors {
        let text = err.to_string();
        assert!(text.len() < 1000, "{} bytes: {}…", text.len(), &text[..300]);
        assert!(text.contains("xxxxx") || text.contains("11111"), "{text}");
        assert!(
            text.contains("bytes)"),
            "says how long the input was: {text}"
        );
    }

    // The field-name limit is 256 bytes of UTF-8.
    let longest = "é".repeat(128);
    exp.set(&longest, 1).unwrap();
    exp.save_row().unwrap();
    let err = exp.set(&format!("{longest}x"), 1).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidName {
                what: "field name",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("at most 256 bytes"), "{err}");
    assert_eq!(expman::metrics::MAX_FIELD_NAME_LEN, 256);

    // A status.json naming a 10 MB state: Corrupt, naming the file, in a short message.
    let status = exp.dir().join("status.json");
    std::fs::write(&status, format!("{{\"status\": \"{huge}\"}}")).unwrap();
    let err = exp.status().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err.kind(), ErrorKind::Corrupt { .. }), "{err:?}");
    assert!(
        text.contains(&status.display().to_string()),
        "{}",
        &text[..300]
    );
    assert!(text.len() < 5000, "{} bytes", text.len());
}
