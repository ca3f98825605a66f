//! Tables that expman did not write itself, or not all of: hand edits, stray quotes, files of
//! other tools, half-copied files, writers killed mid-row, full disks and zombie writers.
//!
//! The rule under test: a repair removes only bytes that expman can prove are an unacknowledged
//! fragment of its own append; everything else stays, byte for byte, and the new row starts a
//! record of its own; readers never silently return fewer rows than the file's records.
//!
//! Scenarios that depend on the lock mode run in child processes with `EXPMAN_LOCK` set, so
//! both modes run in one `cargo test` without touching the test process's environment.

#![cfg(feature = "fault-injection")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Guarded, LOCK_MODES, assert_success, child_command, env, wait_with_deadline};
use expman::store::faults::{Fault, FaultInjector, IoOp, install};
use expman::{ErrorKind, SyncPolicy, TableWriter, Value, read_table};

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| match role {
        "scenario" => scenario(
            &env("EXPMAN_TEST_SCENARIO"),
            Path::new(&env("EXPMAN_TEST_DIR")),
        ),
        "die_in" => die_in(&env("EXPMAN_TEST_OP"), Path::new(&env("EXPMAN_TEST_TABLE"))),
        "full_disk" => full_disk(
            Path::new(&env("EXPMAN_TEST_TABLE")),
            Path::new(&env("EXPMAN_TEST_FILLER")),
        ),
        other => panic!("unknown role {other}"),
    });
}

/// Runs `name` in a child with `EXPMAN_LOCK=mode`; the child does the asserting.
fn in_child(name: &str, mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = child_command("child", "scenario");
    cmd.env("EXPMAN_TEST_SCENARIO", name)
        .env("EXPMAN_TEST_DIR", dir.path())
        .env("EXPMAN_LOCK", mode)
        .stdout(Stdio::inherit());
    let mut child = Guarded::spawn(&mut cmd);
    let status = wait_with_deadline(&mut child, Duration::from_secs(60), name);
    assert_success(status, &format!("scenario {name} under EXPMAN_LOCK={mode}"));
}

fn scenario(name: &str, dir: &Path) {
    match name {
        "stray_quote_mid_field" => stray_quote_mid_field(dir),
        "unclosed_quote_in_old_row" => unclosed_quote_in_old_row(dir),
        "file_without_newline" => file_without_newline(dir),
        "unterminated_last_line" => unterminated_last_line(dir),
        "unterminated_open_quote" => unterminated_open_quote(dir),
        "any_bytes" => any_bytes(dir),
        "fault_walk" => fault_walk(dir),
        "replaced_while_open" => replaced_while_open(dir),
        other => panic!("unknown scenario {other}"),
    }
}

fn table(dir: &Path) -> PathBuf {
    dir.join("t.csv")
}

/// Writes `n` rows (`step`, `loss`) with a writer that is then dropped.
fn write_rows(path: &Path, run: &str, from: i64, n: i64) {
    let mut writer = TableWriter::new(path, run, SyncPolicy::WriteThrough);
    for step in from..from + n {
        writer.set("step", step).unwrap();
        writer.set("loss", 1.0 / (step as f64 + 1.0)).unwrap();
        writer.save_row().unwrap();
    }
}

fn save_one(path: &Path, step: i64) -> expman::Result<()> {
    let mut writer = TableWriter::new(path, "run_0002", SyncPolicy::WriteThrough);
    writer.set("step", step)?;
    writer.set("loss", 0.5)?;
    writer.save_row()
}

/// Runs `save` and checks that every byte the table held before is still there, in place (a
/// repair may only add after them); returns the table's bytes after the save.
fn keeps_every_byte(path: &Path, save: impl FnOnce()) -> Vec<u8> {
    let before = std::fs::read(path).unwrap();
    save();
    let after = std::fs::read(path).unwrap();
    assert!(
        after.starts_with(&before),
        "a byte before the new row changed"
    );
    after
}

/// Replaces the first occurrence of `from` in the file with `to` (a hand edit in place).
fn hand_edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn steps(path: &Path) -> Vec<Value> {
    read_table(path)
        .unwrap()
        .column("step")
        .unwrap()
        .cloned()
        .collect()
}

/// Defect 1 and 4: a `"` typed into the middle of an old cell. The next writer keeps all rows
/// (it used to cut everything after the quote) and every reader reads them all, as pandas does.
fn stray_quote_mid_field(dir: &Path) {
    let path = table(dir);
    write_rows(&path, "run_0001", 0, 100);
    hand_edit(&path, ",0.5\n", ",0.5\"\n");
    keeps_every_byte(&path, || save_one(&path, 100).unwrap());
    let steps = steps(&path);
    assert_eq!(steps.len(), 101, "every row, the edited one included");
    assert_eq!(steps[100], Value::Int(100));
}

/// Defect 1 and 4: a quote at the start of an old cell that never closes. Nothing is cut, the
/// new row is a record of its own, and the reader names the line instead of returning 2 rows.
fn unclosed_quote_in_old_row(dir: &Path) {
    let path = table(dir);
    write_rows(&path, "run_0001", 0, 100);
    hand_edit(&path, ",1,0.5\n", ",1,\"0.5\n");
    let after = keeps_every_byte(&path, || save_one(&path, 100).unwrap());
    assert!(after.ends_with(b",100,0.5\n"), "the new row ends the file");
    let err = read_table(&path).unwrap_err();
    match err.kind() {
        ErrorKind::Corrupt { line, reason, .. } => {
            assert_eq!(*line, Some(3), "the line where the quote opens: {reason}");
            assert!(reason.contains("never closes"), "{reason}");
        }
        other => panic!("expected a corrupt-table error, got {other:?}"),
    }
}

/// Defect 2: a file with no newline at all (another tool's, or half-copied) used to be cut to
/// 0 bytes by the next `save_row`, which returned Ok.
fn file_without_newline(dir: &Path) {
    let path = table(dir);
    let foreign = vec![b'x'; 1 << 20];
    std::fs::write(&path, &foreign).unwrap();
    let err = save_one(&path, 0).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Corrupt { .. }),
        "expected a corrupt-table error, got {err}"
    );
    assert!(err.to_string().contains("t.csv"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), foreign, "every byte kept");
}

/// Defect 3: an unterminated last line that expman did not write, appended while a writer has
/// the table open. The writer's next row starts on a line of its own (it used to be glued onto
/// the fragment), the fragment stays, and the table reads.
fn unterminated_last_line(dir: &Path) {
    let path = table(dir);
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    for step in 0..3 {
        writer.set("step", step).unwrap();
        writer.set("loss", 0.25).unwrap();
        writer.save_row().unwrap();
    }
    append_bytes(&path, b"2025-09-26T14:30:15,run_0009,7,0.12");
    keeps_every_byte(&path, || {
        writer.set("step", 3).unwrap();
        writer.set("loss", 0.25).unwrap();
        writer.save_row().unwrap();
    });
    let steps = steps(&path);
    assert_eq!(
        steps,
        [0, 1, 2, 7, 3].map(Value::Int).to_vec(),
        "the fragment is a row of its own, and so is the new one"
    );
}

/// Defect 3: the fragment opens a quoted cell; the acknowledged row used to vanish inside it.
fn unterminated_open_quote(dir: &Path) {
    let path = table(dir);
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    writer.set("step", 0).unwrap();
    writer.set("loss", 0.25).unwrap();
    writer.save_row().unwrap();
    append_bytes(&path, b"2025-09-26T14:30:15,run_0009,\"8");
    keeps_every_byte(&path, || {
        writer.set("step", 1).unwrap();
        writer.set("loss", 0.25).unwrap();
        writer.save_row().unwrap();
    });
    let table = read_table(&path).unwrap();
    let steps: Vec<Value> = table.column("step").unwrap().cloned().collect();
    assert_eq!(steps.len(), 3);
    assert_eq!(
        steps[2],
        Value::Int(1),
        "the acknowledged row is a row of its own"
    );
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

/// A header edited to name a column twice (`acc` renamed `loss`, or a second `timestamp`):
/// readers took the second column and the writer the first, so readers showed the wrong values
/// and rows appended after the edit lost theirs. Now every reader and the writer refuse it,
/// naming line 1, the column and both positions, and no byte changes.
#[test]
fn a_header_naming_a_column_twice_is_refused_by_readers_and_writer() {
    for (from, to, twice) in [
        (
            "step,loss\n",
            "step,step\n",
            "`step` twice (columns 3 and 4)",
        ),
        (
            "run_id,step,loss\n",
            "run_id,step,timestamp\n",
            "`timestamp` twice (columns 1 and 4)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = table(dir.path());
        write_rows(&path, "run_0001", 0, 3);
        hand_edit(&path, from, to);
        let before = std::fs::read(&path).unwrap();
        let refused = |result: expman::Error| {
            let text = result.to_string();
            assert!(matches!(result.kind(), ErrorKind::Corrupt { .. }), "{text}");
            assert!(text.contains(":1: ") && text.contains(twice), "{text}");
        };
        refused(read_table(&path).unwrap_err());
        refused(expman::metrics::read_columns(&path, 1).err().unwrap());
        refused(save_one(&path, 3).unwrap_err());
        assert_eq!(std::fs::read(&path).unwrap(), before, "a byte changed");
    }
}

/// Another program saves the table the way editors, `sed -i` and LibreOffice do (a new file
/// renamed over it), deletes it, or truncates it, while a writer holds it open: every row the
/// writer saves afterwards is in the file at that path. The writer used to look at the link
/// count once a second, so with the default lock mode up to a second of acknowledged rows went
/// to the replaced file; after a truncation to nothing it appended rows without a header.
fn replaced_while_open(dir: &Path) {
    let path = table(dir);
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    let mut save = |step: i64| {
        writer.set("step", step).unwrap();
        writer.set("loss", 0.5).unwrap();
        writer.save_row().unwrap();
    };
    for step in 0..5 {
        save(step);
    }
    // An atomic save by another program: the same bytes, a new file.
    let copy = dir.join("t.csv.saved");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::rename(&copy, &path).unwrap();
    for step in 5..10 {
        save(step);
    }
    assert_eq!(steps(&path), (0..10).map(Value::Int).collect::<Vec<_>>());
    // Deleted: the rows saved afterwards start a new table.
    std::fs::remove_file(&path).unwrap();
    for step in 10..15 {
        save(step);
    }
    assert_eq!(steps(&path), (10..15).map(Value::Int).collect::<Vec<_>>());
    // Truncated in place to nothing: the next row comes with a header again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    for step in 15..20 {
        save(step);
    }
    assert_eq!(steps(&path), (15..20).map(Value::Int).collect::<Vec<_>>());
}

#[test]
fn rows_saved_after_another_program_replaced_the_table_are_in_it() {
    for mode in LOCK_MODES {
        in_child("replaced_while_open", mode);
    }
}

#[test]
fn a_stray_quote_in_an_old_row_loses_no_row() {
    for mode in LOCK_MODES {
        in_child("stray_quote_mid_field", mode);
    }
}

#[test]
fn an_unclosed_quote_in_an_old_row_is_kept_and_named() {
    for mode in LOCK_MODES {
        in_child("unclosed_quote_in_old_row", mode);
    }
}

#[test]
fn a_file_without_a_newline_is_refused_and_kept() {
    for mode in LOCK_MODES {
        in_child("file_without_newline", mode);
    }
}

#[test]
fn an_unterminated_foreign_line_gets_a_line_end_before_the_next_row() {
    for mode in LOCK_MODES {
        in_child("unterminated_last_line", mode);
        in_child("unterminated_open_quote", mode);
    }
}

/// Kills the calling process at the operation named by `EXPMAN_TEST_OP`, after letting a
/// row's write put `EXPMAN_TEST_BYTES` bytes in first (a torn row).
struct KillAt {
    op: IoOp,
    torn_bytes: Option<usize>,
}

impl FaultInjector for KillAt {
    fn before(&mut self, op: IoOp, _path: &Path) -> Option<Fault> {
        if op != self.op {
            return None;
        }
        if op == IoOp::Write
            && let Some(n) = self.torn_bytes.take()
        {
            return Some(Fault::ShortWrite(n));
        }
        // SAFETY: kill(2) on our own pid; SIGKILL ends the process here, holding the lock.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        unreachable!("SIGKILL does not return");
    }
}

/// Child: writes 10 rows, then dies at `op` in the next save (or widening, with `Rename`).
fn die_in(op: &str, path: &Path) {
    write_rows(path, "run_0001", 0, 10);
    let (op, torn_bytes) = match op {
        "write" => (IoOp::Write, None),
        "torn_write" => (IoOp::Write, Some(12)),
        "rename" => (IoOp::Rename, None),
        other => panic!("unknown op {other}"),
    };
    let mut writer = TableWriter::new(path, "run_0001", SyncPolicy::WriteThrough);
    writer.set("step", 10).unwrap();
    writer.set("loss", 0.1).unwrap();
    writer.save_row().unwrap();
    let _faults = install(Box::new(KillAt { op, torn_bytes }));
    writer.set("step", 11).unwrap();
    if op == IoOp::Rename {
        writer.set("a_new_column", 1).unwrap();
    }
    writer.save_row().unwrap();
    panic!("the fault should have killed this process");
}

/// Starts a `die_in` child and returns it unreaped once it is dead (a zombie).
fn killed_writer(op: &str, path: &Path, mode: &str) -> Guarded {
    let mut cmd = child_command("child", "die_in");
    cmd.env("EXPMAN_TEST_OP", op)
        .env("EXPMAN_TEST_TABLE", path)
        .env("EXPMAN_LOCK", mode);
    let child = Guarded::spawn(&mut cmd);
    // Wait for its death without reaping it: waitid with WNOWAIT leaves the zombie in place.
    // SAFETY: siginfo_t is plain old data; all zeros is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child's pid with a valid siginfo buffer.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            child.id(),
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(rc, 0, "waitid");
    child
}

/// Defect 6: a writer SIGKILLed while holding the shared lock stays a zombie until its parent
/// reaps it; the parent logging to the same table used to wait for it forever.
#[test]
fn a_zombie_lock_owner_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let path = table(dir.path());
    // This test process is the zombie's parent and must not reap it before saving.
    let child = killed_writer("write", &path, "shm");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    assert!(
        stat.contains(") Z "),
        "the killed writer is a zombie: {stat}"
    );
    let (done, finished) = std::sync::mpsc::channel();
    let saver_path = path.clone();
    std::thread::spawn(move || {
        // Shared-lock mode is what a local disk gets without EXPMAN_LOCK.
        let _ = done.send(save_one(&saver_path, 12));
    });
    let saved = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("save_row waited for a zombie that holds the lock");
    saved.unwrap();
    drop(child);
    let steps = steps(&path);
    assert_eq!(steps.len(), 12, "10 rows, the 11th, and the survivor's");
}

/// A writer killed after putting half a row in, holding the lock: the next writer proves the
/// fragment an unacknowledged append of expman (the record in the shared page, or in the lock
/// file under flock) and cuts it; a writer killed before writing anything leaves nothing to cut.
#[test]
fn a_torn_row_is_cut_only_when_provably_ours() {
    for mode in LOCK_MODES {
        for op in ["write", "torn_write"] {
            let dir = tempfile::tempdir().unwrap();
            let path = table(dir.path());
            let mut dead = killed_writer(op, &path, mode);
            let _ = dead.0.wait();
            let before = std::fs::read(&path).unwrap();
            save_one(&path, 12).unwrap();
            let after = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&after).into_owned();
            let rows = read_table(&path).unwrap().rows.len();
            if op == "torn_write" {
                assert_eq!(
                    text.lines().count(),
                    13,
                    "{mode} {op}: fragment cut: {text}"
                );
            } else {
                assert!(after.starts_with(&before), "{mode} {op}");
            }
            assert_eq!(rows, 12, "{mode} {op}: {text}");
        }
    }
}

/// Defect 16: a writer killed mid-widening leaves its temporary copy; the next writer to open
/// the table removes it.
#[test]
fn a_temporary_copy_of_a_killed_widening_is_removed() {
    for mode in LOCK_MODES {
        let dir = tempfile::tempdir().unwrap();
        let path = table(dir.path());
        let mut dead = killed_writer("rename", &path, mode);
        let _ = dead.0.wait();
        let tmp = dir.path().join(".t.csv.rewrite.tmp");
        assert!(tmp.exists(), "{mode}: the killed widening left its copy");
        save_one(&path, 12).unwrap();
        assert!(!tmp.exists(), "{mode}: the stale copy is gone");
        assert_eq!(steps(&path).len(), 12);
    }
}

/// The lock modes' children: the property test and the fault walk run in each.
#[test]
fn any_preexisting_bytes_keep_every_byte_and_every_record() {
    for mode in LOCK_MODES {
        in_child("any_bytes", mode);
    }
}

#[test]
fn a_failure_at_any_file_operation_loses_no_acknowledged_row() {
    for mode in LOCK_MODES {
        in_child("fault_walk", mode);
    }
}

/// Pieces that table files written by hand, other tools, crashes and copies are made of.
const TOKENS: [&str; 14] = [
    "a",
    "1.5",
    ",",
    "\"",
    "\"\"",
    "\n",
    "\r\n",
    "\r",
    "\0",
    "\u{feff}",
    " ",
    "2025-09-26T14:30:15",
    "run_0001",
    "\u{e9}",
];

/// Headers a table may start with, or not.
const HEADERS: [&[u8]; 6] = [
    b"timestamp,run_id,a\n",
    b"timestamp,run_id,a\r\n",
    b"\xef\xbb\xbftimestamp,run_id,a\n",
    b"timestamp,run_id,\"a\"\n",
    b"",
    b"step,loss\n",
];

/// Records of `bytes` as rust-csv reads them, the last one only if terminated.
fn complete_records(bytes: &[u8]) -> Vec<csv::ByteRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = Vec::new();
    let mut record = csv::ByteRecord::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        records.push(record.clone());
    }
    let terminated = bytes.last().is_none_or(|b| matches!(b, b'\n' | b'\r'));
    if !terminated {
        records.pop();
    }
    records
}

/// One case of the property: a table file holding `header` + `body`, one `save_row`.
fn check_any_bytes(dir: &Path, header: &[u8], body: &[u8]) -> Result<(), String> {
    let path = dir.join("t.csv");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join(".t.csv.lock"));
    let mut old = header.to_vec();
    old.extend_from_slice(body);
    std::fs::write(&path, &old).unwrap();
    let saved = {
        let mut writer = TableWriter::new(&path, "run_0042", SyncPolicy::WriteThrough);
        writer.set("a", 1.5).unwrap();
        writer.save_row()
    };
    let new = std::fs::read(&path).unwrap();
    if let Err(e) = saved {
        if new != old {
            return Err(format!("a failed save ({e}) changed the file"));
        }
        if !matches!(e.kind(), ErrorKind::Corrupt { .. }) {
            return Err(format!(
                "a failed save says {e}, not what is wrong with the file"
            ));
        }
        return Ok(());
    }
    if !new.starts_with(&old) {
        return Err("a pre-existing byte was removed or altered".into());
    }
    let records = complete_records(&new);
    let ours = records
        .last()
        .is_some_and(|r| r.len() == 3 && &r[1] == b"run_0042" && &r[2] == b"1.5");
    match read_table(&path) {
        Ok(table) => {
            if !ours {
                return Err(format!(
                    "the new row is not a record of its own: {records:?}"
                ));
            }
            // Every record of the file after the header is a row, none dropped silently.
            let expected = records.len() - 1;
            if table.rows.len() != expected {
                return Err(format!(
                    "read {} rows of {expected} records",
                    table.rows.len()
                ));
            }
        }
        Err(e) => match e.kind() {
            ErrorKind::Corrupt { line: Some(_), .. } => {}
            _ => return Err(format!("an unreadable table must name the line: {e}")),
        },
    }
    #[cfg(feature = "arrow")]
    {
        // The Arrow reader splits records with the same state machine: the same rows, or an
        // error naming a line.
        let plain = read_table(&path).map(|t| t.rows.len());
        match (expman::arrow::read_table(&path), plain) {
            (Ok(batch), Ok(rows)) if batch.num_rows() == rows => {}
            (Err(e), Err(_)) if matches!(e.kind(), ErrorKind::Corrupt { line: Some(_), .. }) => {}
            (arrow, plain) => {
                return Err(format!(
                    "the Arrow reader disagrees: {:?} vs {plain:?}",
                    arrow.map(|b| b.num_rows())
                ));
            }
        }
    }
    Ok(())
}

fn any_bytes(dir: &Path) {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let case = (
        proptest::sample::select(HEADERS.to_vec()),
        proptest::collection::vec(proptest::sample::select(TOKENS.to_vec()), 0..24),
    );
    runner
        .run(&case, |(header, tokens)| {
            let body = tokens.concat();
            check_any_bytes(dir, header, body.as_bytes()).map_err(TestCaseError::fail)
        })
        .unwrap();
}

/// Fails the `n`th file operation (counting from 0) with ENOSPC, after first letting it write
/// a few bytes when `torn`.
struct FailNth {
    n: usize,
    seen: usize,
    torn: bool,
    fired: std::rc::Rc<std::cell::Cell<bool>>,
}

impl FaultInjector for FailNth {
    fn before(&mut self, op: IoOp, _path: &Path) -> Option<Fault> {
        let k = self.seen;
        self.seen += 1;
        if k == self.n && self.torn && op == IoOp::Write {
            // A short write now, and the retry of the rest fails.
            self.n += 1;
            return Some(Fault::ShortWrite(5));
        }
        if k != self.n {
            return None;
        }
        self.fired.set(true);
        Some(Fault::Fail(std::io::Error::from_raw_os_error(libc::ENOSPC)))
    }
}

/// The walk: for every n, run a scenario of creation, appends, a foreign fragment and its
/// repair, a widening, a second writer and a stale reopen with the nth operation failing; then
/// every acknowledged row is in the table exactly once, the table reads, every error was the
/// injected one, and the table takes rows again.
fn fault_walk(dir: &Path) {
    for torn in [false, true] {
        for n in 0.. {
            let case = dir.join(format!("{torn}-{n}"));
            std::fs::create_dir(&case).unwrap();
            let path = case.join("t.csv");
            let fired = std::rc::Rc::new(std::cell::Cell::new(false));
            let mut acknowledged = Vec::new();
            {
                let _faults = install(Box::new(FailNth {
                    n,
                    seen: 0,
                    torn,
                    fired: fired.clone(),
                }));
                let mut a = TableWriter::new(&path, "run_0001", SyncPolicy::EveryRow);
                let mut b = TableWriter::new(&path, "run_0002", SyncPolicy::WriteThrough);
                for step in 0..8i64 {
                    let writer = if step == 5 { &mut b } else { &mut a };
                    if step == 3 && path.exists() {
                        append_bytes(&path, b"2025-09-26T14:30:15,run_0009,99");
                    }
                    writer.set("step", step).unwrap();
                    if step >= 4 {
                        writer.set("c", step * 10).unwrap();
                    }
                    let was_fired = fired.get();
                    match writer.save_row() {
                        Ok(()) => acknowledged.push(step),
                        Err(e) => {
                            assert!(
                                fired.get() && !was_fired,
                                "n={n} step {step}: an error without a fault: {e}"
                            );
                            writer.clear_row();
                        }
                    }
                }
            }
            let table = read_table(&path)
                .unwrap_or_else(|e| panic!("n={n} torn={torn}: the table does not read: {e}"));
            let steps: Vec<i64> = table
                .column("step")
                .unwrap()
                .filter_map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect();
            for step in &acknowledged {
                let count = steps.iter().filter(|s| *s == step).count();
                assert_eq!(
                    count, 1,
                    "n={n} torn={torn}: step {step} is there {count} times"
                );
            }
            save_one(&path, 100).unwrap_or_else(|e| panic!("n={n}: no rows after a fault: {e}"));
            assert!(steps_of(&path).contains(&100));
            if !fired.get() {
                // n passed the scenario's last operation: every one of them has failed once.
                assert!(n > 20, "the scenario has only {n} file operations?");
                break;
            }
        }
    }
}

fn steps_of(path: &Path) -> Vec<i64> {
    read_table(path)
        .unwrap()
        .column("step")
        .unwrap()
        .filter_map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        })
        .collect()
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped; `None` where this
/// process may not mount (not root): the caller says the test was skipped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with one file, returned for the test to delete.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![1u8; 4096];
        while file.write_all(&block).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// Child: saves into a table on a full disk (an error, and the process lives), frees the
/// space, saves again (it works).
fn full_disk(table: &Path, filler: &Path) {
    let mut writer = TableWriter::new(table, "run_0001", SyncPolicy::WriteThrough);
    writer.set("loss", 0.5).unwrap();
    let err = writer.save_row().expect_err("a save on a full disk");
    assert!(
        err.to_string().contains("disk full") || err.to_string().contains("space"),
        "{err}"
    );
    std::fs::remove_file(filler).unwrap();
    writer.set("loss", 0.25).unwrap();
    writer.save_row().unwrap();
    let table = read_table(table).unwrap();
    assert_eq!(table.rows.len(), 1);
}

/// Defect 5: the first `save_row` of a new table on a full disk used to kill the process with
/// SIGBUS (the lock file's page was sparse, then mapped). Now it is an error, and a save after
/// space is freed works.
#[test]
fn a_full_disk_is_an_error_not_a_signal() {
    let Some(disk) = SmallDisk::mount("256k") else {
        eprintln!("skipped: mounting a small tmpfs needs root (CI runs as root)");
        return;
    };
    std::fs::create_dir(disk.path().join("metrics")).unwrap();
    let table = disk.path().join("metrics/t.csv");
    let filler = disk.fill();
    let mut cmd = child_command("child", "full_disk");
    cmd.env("EXPMAN_TEST_TABLE", &table)
        .env("EXPMAN_TEST_FILLER", &filler)
        .env("EXPMAN_LOCK", "shm");
    let mut child = Guarded::spawn(&mut cmd);
    let status = wait_with_deadline(
        &mut child,
        Duration::from_secs(30),
        "a writer on a full disk",
    );
    assert_success(status, "a writer on a full disk (SIGBUS?)");
}

/// The status walk: an experiment is created, logs rows, is marked Running and Finished, with
/// the nth file operation (of tables and state files) failing. A failed create leaves no
/// experiment directory behind; otherwise the status always reads, is the state before or
/// after the failed update, and every acknowledged row is in the table once.
#[test]
fn a_failure_at_any_state_or_table_operation_leaves_readable_state() {
    use expman::{Experiment, RunState};
    for n in 0.. {
        let base = tempfile::tempdir().unwrap();
        let fired = std::rc::Rc::new(std::cell::Cell::new(false));
        let mut acknowledged = Vec::new();
        let mut last_state = None;
        let created = {
            let _faults = install(Box::new(FailNth {
                n,
                seen: 0,
                torn: false,
                fired: fired.clone(),
            }));
            match Experiment::create("walk", "train", base.path()) {
                Err(_) => None,
                Ok(mut exp) => {
                    for step in 0..3i64 {
                        exp.set("step", step).unwrap();
                        match exp.save_row() {
                            Ok(()) => acknowledged.push(step),
                            Err(_) => exp.metrics().clear_row(),
                        }
                    }
                    // A failed Running update is checked through the Finished one after it:
                    // the state read before that must be readable, whatever it is.
                    let _ = exp.set_running(std::process::id());
                    let before = exp.status().unwrap().status;
                    let finished = exp.set_finished();
                    last_state = Some((before, RunState::Finished, finished.is_ok()));
                    Some(exp.dir().to_path_buf())
                }
            }
        };
        let dirs: Vec<_> = std::fs::read_dir(base.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        let Some(dir) = created else {
            assert!(fired.get(), "n={n}: create failed without a fault");
            assert!(dirs.is_empty(), "n={n}: a failed create left {dirs:?}");
            continue;
        };
        let layout = expman::ExperimentDir::open(&dir).unwrap();
        let status = expman::Status::load(&layout).unwrap_or_else(|e| panic!("n={n}: status: {e}"));
        if let Some((before, after, ok)) = last_state {
            if ok {
                assert_eq!(status.status, after, "n={n}");
            } else {
                assert!(
                    [before, after].contains(&status.status),
                    "n={n}: {:?}",
                    status.status
                );
            }
        }
        let steps = steps_of(&dir.join("metrics/run_0001.csv"));
        for step in &acknowledged {
            assert_eq!(
                steps.iter().filter(|s| *s == step).count(),
                1,
                "n={n} step {step}"
            );
        }
        if !fired.get() {
            assert!(n > 10, "the scenario has only {n} file operations?");
            break;
        }
    }
}

/// Defect 1, the take-over path: the lock's owner died holding it, and an old row has a stray
/// `"` at the start of a cell. The next writer takes the lock over and must not cut every row
/// after the quote (it used to scan quote parity from the header and cut there).
#[test]
fn a_takeover_after_a_hand_edit_cuts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = table(dir.path());
    let mut dead = killed_writer("write", &path, "shm");
    let _ = dead.0.wait();
    hand_edit(&path, ",2,0.3", ",2,\"0.3");
    let after = keeps_every_byte(&path, || save_one(&path, 12).unwrap());
    assert_eq!(
        String::from_utf8_lossy(&after).lines().count(),
        13,
        "header, 11 rows and the new one"
    );
}

/// A table saved with CR alone as its line end (classic Mac programs, Excel's "CSV
/// (Macintosh)"): every reader read it as an empty table, silently, and the writer called it a
/// file without a line end. Now each names the line ends and says how to convert them, and the
/// file keeps every byte.
#[test]
fn a_table_with_cr_line_ends_is_named_by_every_reader_and_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = table(dir.path());
    write_rows(&path, "run_0001", 0, 3);
    let cr_only: Vec<u8> = std::fs::read(&path)
        .unwrap()
        .into_iter()
        .map(|b| if b == b'\n' { b'\r' } else { b })
        .collect();
    std::fs::write(&path, &cr_only).unwrap();
    let named = |what: &str, e: expman::Error| {
        let message = e.to_string();
        assert!(
            message.contains("carriage return") && message.contains("t.csv"),
            "{what}: {message}"
        );
    };
    named("read_table", read_table(&path).unwrap_err());
    let Err(columns_error) = expman::metrics::read_columns(&path, 0) else {
        panic!("read_columns read the CR-only table");
    };
    named("read_columns", columns_error);
    named("summary", expman::metrics::summary(&path).unwrap_err());
    named("save_row", save_one(&path, 9).unwrap_err());
    assert_eq!(std::fs::read(&path).unwrap(), cr_only);
}

/// A `"` typed at the start of a cell in an old row opens a quoted cell that swallows the rest
/// of the file. The readers refuse it, naming the line; the summary behind `list_experiments`,
/// `EXP ls` and the UI's cards took it for a row being written and summarised only the rows
/// before it (a count of 2 for 10 rows), silently. Now it gives the readers' error.
#[test]
fn a_stray_quote_that_swallows_rows_is_named_by_the_summary_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = table(dir.path());
    write_rows(&path, "run_0001", 0, 10);
    let text = std::fs::read_to_string(&path).unwrap();
    let line4 = text.lines().nth(3).unwrap().to_string();
    hand_edit(
        &path,
        &line4,
        &line4.replacen(",run_0001", ",\"run_0001", 1),
    );
    let read = read_table(&path).unwrap_err().to_string();
    assert!(read.contains("t.csv:4:"), "{read}");
    let summarised = expman::metrics::summary(&path).unwrap_err().to_string();
    assert!(
        summarised.contains("t.csv:4:") && summarised.contains("never closes"),
        "{summarised}"
    );
}

/// A cell added by hand to an old row (6 cells under a 5-column header): the readers refuse
/// the row, but a widening padded the table and the stray cell became the new column's value
/// for that row, and the file read without an error. Now the widening is refused with the
/// line named, the file keeps every byte, and the row stays pending for a retry.
#[test]
fn a_widening_refuses_a_row_wider_than_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = table(dir.path());
    write_rows(&path, "run_0001", 0, 3);
    let text = std::fs::read_to_string(&path).unwrap();
    let line3 = text.lines().nth(2).unwrap().to_string();
    hand_edit(&path, &line3, &format!("{line3},extra"));
    let before = std::fs::read(&path).unwrap();
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    writer.set("step", 3).unwrap();
    writer.set("newcol", 1.5).unwrap();
    let error = writer.save_row().unwrap_err().to_string();
    assert!(
        error.contains("t.csv:3:") && error.contains("5 cells") && error.contains("header has 4"),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A byte that is not UTF-8 in a text cell (a file saved as Latin-1): the column readers
/// (`load_metrics_df`, Arrow) said "invalid utf-8 sequence of 1 bytes from index 5", naming
/// no line. Every reader now names the line.
#[test]
fn text_that_is_not_utf8_is_named_by_line_in_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = table(dir.path());
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    for (step, note) in [(0, "ok"), (1, "caf\u{e9}"), (2, "ok")] {
        writer.set("step", step).unwrap();
        writer.set("note", note).unwrap();
        writer.save_row().unwrap();
    }
    drop(writer);
    // é in UTF-8 (C3 A9) becomes Latin-1's E9: line 3 (the header is line 1).
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(2).position(|w| w == [0xC3, 0xA9]).unwrap();
    let mut latin1 = bytes[..at].to_vec();
    latin1.push(0xE9);
    latin1.extend_from_slice(&bytes[at + 2..]);
    std::fs::write(&path, &latin1).unwrap();
    let named = |what: &str, message: String| {
        assert!(
            message.contains("t.csv:3:") && message.contains("UTF-8"),
            "{what}: {message}"
        );
    };
    named("read_table", read_table(&path).unwrap_err().to_string());
    let Err(columns_error) = expman::metrics::read_columns(&path, 0) else {
        panic!("read_columns read the Latin-1 table");
    };
    named("read_columns", columns_error.to_string());
    #[cfg(feature = "arrow")]
    named(
        "arrow::read_table",
        expman::arrow::read_table(&path).unwrap_err().to_string(),
    );
    named(
        "summary",
        expman::metrics::summary(&path).unwrap_err().to_string(),
    );
}
