//! Many processes appending to one table at once, each widening the header with its own fields,
//! while another reads it; under both lock modes (`EXPMAN_LOCK=shm` and `EXPMAN_LOCK=flock`).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Guarded, LOCK_MODES, Reports, Scripted, child_command, row_map, wait_with_deadline};
use expman::{ColumnType, Metrics, SyncPolicy, TableWriter, Value, read_table};

const WRITERS: u64 = 8;
const ROWS: u64 = 120;
/// Each writer brings a new field every this many rows, so widenings race all the time.
const WIDEN_EVERY: u64 = 8;
/// Every this many rows a writer's row is a few kilobytes with embedded newlines: it spans a
/// page boundary, and a reader that cut it at an inner newline would show half a row.
const BIG_EVERY: u64 = 9;

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| match role {
        "appender" => appender(),
        "scripted" => common::scripted_writer(),
        other => panic!("unknown role {other}"),
    });
}

/// The cell `note` of row `seq` of writer `k`: quotes, commas, and for big rows many lines.
fn note(k: u64, seq: u64) -> String {
    let mut note = format!("w{k} s{seq}, \"quoted\", done");
    if seq.is_multiple_of(BIG_EVERY) {
        for line in 0..80 {
            note.push_str(&format!(
                "\n{k}-{seq}-{line:02} padding padding padding padding pad"
            ));
        }
    }
    note
}

/// The fields writer `k` brings, in the order it brings them.
fn own_field(k: u64, j: u64) -> String {
    format!("w{k}_f{j}")
}

/// Exactly the non-empty cells row `seq` of writer `k` must read back as.
fn expected_row(k: u64, seq: u64) -> HashMap<String, Value> {
    let mut row = HashMap::from([
        ("writer".to_string(), Value::Int(k as i64)),
        ("seq".to_string(), Value::Int(seq as i64)),
        ("id".to_string(), Value::Str(format!("w{k}s{seq}"))),
        ("note".to_string(), Value::Str(note(k, seq))),
    ]);
    for j in 0..=seq / WIDEN_EVERY {
        let value = (k * 1_000_000 + seq * 100 + j) as i64;
        row.insert(own_field(k, j), Value::Int(value));
    }
    row
}

fn appender() {
    let k: u64 = common::env("EXPMAN_TEST_WRITER").parse().unwrap();
    let mut writer = TableWriter::new(
        common::env("EXPMAN_TEST_TABLE"),
        &format!("run_{:04}", k + 1),
        SyncPolicy::WriteThrough,
    );
    // Start together with the others: the parent says go once all are running.
    common::report("ready");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    for seq in 0..ROWS {
        for (name, value) in expected_row(k, seq) {
            writer.set(&name, value).unwrap();
        }
        writer.save_row().unwrap();
    }
}

/// Checks every row of `table` against what its writer wrote; returns the (writer, seq) ids.
fn check_rows(table: &Metrics, path: &Path) -> Vec<(u64, u64)> {
    for (column, ty) in table.columns.iter().zip(&table.types) {
        let want = match column.as_str() {
            "timestamp" | "run_id" | "id" | "note" => ColumnType::Str,
            _ => ColumnType::Int,
        };
        assert_eq!(*ty, want, "type of column {column} in {}", path.display());
    }
    table
        .rows
        .iter()
        .map(|row| {
            let cells = row_map(&table.columns, row);
            let (Some(Value::Int(k)), Some(Value::Int(seq))) = (cells.get("writer"), cells.get("seq"))
            else {
                panic!("row without writer/seq in {}: {row:?}", path.display());
            };
            let (k, seq) = (*k as u64, *seq as u64);
            let mut want = expected_row(k, seq);
            want.insert("run_id".into(), Value::Str(format!("run_{:04}", k + 1)));
            let mut got = cells.clone();
            let timestamp = got.remove("timestamp");
            assert!(
                matches!(timestamp, Some(Value::Str(ref t)) if t.len() >= 19 && t.as_bytes()[10] == b'T'),
                "timestamp {timestamp:?}"
            );
            assert_eq!(got, want, "row w{k}s{seq} in {}: wrong or shifted cells", path.display());
            (k, seq)
        })
        .collect()
}

/// 8 processes append 120 rows each to one table, each adding a field of its own every 8 rows
/// (so ~120 header widenings race with appends), while this process reads the table in a loop.
///
/// Proves, for each lock mode: every row is present exactly once with its values in the right
/// columns; the header is the union of all fields, each writer's in its own order, on one line;
/// and a concurrent reader never fails, never sees half a row, and never sees rows or columns
/// disappear.
#[test]
fn eight_processes_append_and_widen_one_table() {
    for mode in LOCK_MODES {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("shared.csv");
        let mut children: Vec<_> = (0..WRITERS)
            .map(|k| {
                Guarded::spawn(
                    child_command("child", "appender")
                        .env("EXPMAN_LOCK", mode)
                        .env("EXPMAN_TEST_TABLE", &path)
                        .env("EXPMAN_TEST_WRITER", k.to_string())
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped()),
                )
            })
            .collect();
        // Every appender is up and has its writer before any writes, so they really race.
        for child in &mut children {
            assert_eq!(Reports::of(child).next("an appender starting"), "ready");
        }
        for child in &mut children {
            writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
        }

        let done = AtomicBool::new(false);
        let reads = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let (mut reads, mut rows, mut columns) = (0u32, 0usize, Vec::new());
                // One more read after the writers are done, so the last one sees everything.
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let table = match read_table(&path) {
                        Ok(table) => table,
                        Err(e)
                            if e.io_error()
                                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
                        {
                            continue;
                        }
                        Err(e) => panic!("[{mode}] a concurrent read failed: {e}"),
                    };
                    check_rows(&table, &path);
                    assert!(table.rows.len() >= rows, "[{mode}] rows disappeared");
                    assert!(
                        table.columns.starts_with(&columns),
                        "[{mode}] the header lost or reordered columns"
                    );
                    (rows, columns) = (table.rows.len(), table.columns);
                    reads += 1;
                    if finished {
                        return reads;
                    }
                }
            });
            // Stops the reader however this ends, a failed assertion included (else the
            // scope would wait for it forever).
            let stop_reader = StopOnDrop(&done);
            for child in &mut children {
                let status = wait_with_deadline(child, Duration::from_secs(60), "an appender");
                common::assert_success(status, "an appender");
            }
            drop(stop_reader);
            reader.join().unwrap()
        });
        assert!(
            reads > 1,
            "[{mode}] the reader never overlapped the writers"
        );

        let table = read_table(&path).unwrap();
        let mut ids = check_rows(&table, &path);
        let total = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total, "[{mode}] some row was written twice");
        let want: Vec<(u64, u64)> = (0..WRITERS)
            .flat_map(|k| (0..ROWS).map(move |s| (k, s)))
            .collect();
        assert_eq!(ids, want, "[{mode}] rows are missing");

        // The header is the union of every writer's fields, each writer's in first-seen order.
        let mut union: BTreeSet<String> = ["timestamp", "run_id", "writer", "seq", "id", "note"]
            .map(String::from)
            .into();
        for k in 0..WRITERS {
            let own: Vec<String> = (0..=(ROWS - 1) / WIDEN_EVERY)
                .map(|j| own_field(k, j))
                .collect();
            let positions: Vec<usize> = own
                .iter()
                .map(|f| {
                    table
                        .column_index(f)
                        .unwrap_or_else(|| panic!("[{mode}] no column {f}"))
                })
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "[{mode}] {own:?} out of order"
            );
            union.extend(own);
        }
        assert_eq!(
            table.columns.len(),
            union.len(),
            "[{mode}] duplicate columns"
        );
        assert_eq!(
            table.columns.iter().cloned().collect::<BTreeSet<_>>(),
            union
        );
        assert_eq!(&table.columns[..2], ["timestamp", "run_id"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches("timestamp,run_id").count(),
            1,
            "[{mode}] more than one header"
        );
        assert!(text.ends_with('\n'));
        assert_no_leftovers(base.path(), "shared.csv");
        eprintln!("[{mode}] {reads} concurrent reads, {total} rows");
    }
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Nothing but the table (and its lock file) is left in the directory: no temporary files.
fn assert_no_leftovers(dir: &Path, table: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name == table || name == format!(".{table}.lock"),
            "leftover file {name} in {}",
            dir.display()
        );
    }
}

/// A writer in another process still holds the file from before a widening: its next row must
/// land in the new file (not the unlinked old one), and its own widening afterwards must keep
/// the column the other process added.
#[test]
fn widening_is_seen_by_a_writer_holding_the_old_file() {
    for mode in LOCK_MODES {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("t.csv");
        let mut old = Scripted::start("child", &path, "run_0001", Some(mode));
        let mut widener = Scripted::start("child", &path, "run_0002", Some(mode));

        assert_eq!(old.cmd("save a=i:1"), "ok"); // `old` opens the file now
        assert_eq!(widener.cmd("save a=i:2 new=s:x"), "ok"); // replaces it
        assert_eq!(old.cmd("save a=i:3"), "ok"); // must follow the replacement
        assert_eq!(old.cmd("save a=i:4 mine=b:true"), "ok"); // widens from the new header
        assert_eq!(widener.cmd("save new=s:y"), "ok");
        old.exit();
        widener.exit();

        let table = read_table(&path).unwrap();
        assert_eq!(
            table.columns,
            ["timestamp", "run_id", "a", "new", "mine"],
            "[{mode}]"
        );
        let cells: Vec<Vec<Value>> = table.rows.iter().map(|r| r[1..].to_vec()).collect();
        let (s, n) = (|v: &str| Value::Str(v.into()), Value::Null);
        assert_eq!(
            cells,
            [
                vec![s("run_0001"), Value::Int(1), n.clone(), n.clone()],
                vec![s("run_0002"), Value::Int(2), s("x"), n.clone()],
                vec![s("run_0001"), Value::Int(3), n.clone(), n.clone()],
                vec![s("run_0001"), Value::Int(4), n.clone(), Value::Bool(true)],
                vec![s("run_0002"), n.clone(), s("y"), n.clone()],
            ],
            "[{mode}]"
        );
        assert_no_leftovers(base.path(), "t.csv");
    }
}
