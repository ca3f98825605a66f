//! Reading a table as Arrow while another process writes it: every read sees whole rows only,
//! in order, none lost or repeated, through widenings (atomic renames) and text with commas,
//! quotes and line breaks, with the parallel reader (the table grows past the size at which
//! it is split across threads).
#![cfg(feature = "arrow")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use expman::arrow::arrow_array::cast::AsArray;
use expman::arrow::arrow_array::types::Int64Type;
use expman::arrow::arrow_array::{Array, RecordBatch};
use expman::arrow::{self, Selection};
use expman::{Experiment, Value};

const ROLE: &str = "EXPMAN_ARROW_TEST_ROLE";
const ROWS: i64 = 40_000;

/// The text written in row `step`: delimiters of every kind, and long enough that the table
/// passes the parallel reader's threshold.
fn text(step: i64) -> String {
    format!(
        "row {step}, \"quoted\"\nsecond line {}",
        "x".repeat((step % 200) as usize)
    )
}

/// The child: writes ROWS rows through the real API, widening the table every 5,000 rows.
fn writer(dir: &Path) {
    let mut exp = Experiment::attach(dir, "run_0001".parse().unwrap()).unwrap();
    for step in 0..ROWS {
        exp.upd_row([
            ("step", Value::Int(step)),
            ("check", Value::Int(step * 3)),
            ("text", Value::from(text(step))),
        ])
        .unwrap();
        if step >= 5_000 {
            let k = step / 5_000;
            exp.set(&format!("w{k}"), step as f64 + 0.5).unwrap();
        }
        exp.save_row().unwrap();
        if step % 500 == 499 {
            // Paced, so that the reader catches the table at many sizes.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn child() {
    if let Ok(role) = std::env::var(ROLE) {
        assert_eq!(role, "writer");
        writer(Path::new(&std::env::var("EXPMAN_ARROW_TEST_DIR").unwrap()));
    }
}

/// Checks one read: rows 0..n in order, each whole.
fn check(batch: &RecordBatch) -> usize {
    let n = batch.num_rows();
    if n == 0 {
        return 0;
    }
    let step = batch
        .column_by_name("step")
        .unwrap()
        .as_primitive::<Int64Type>();
    let check = batch
        .column_by_name("check")
        .unwrap()
        .as_primitive::<Int64Type>();
    let texts = batch.column_by_name("text").unwrap().as_string::<i32>();
    for row in 0..n {
        let s = step.value(row);
        assert_eq!(
            s, row as i64,
            "rows are whole, in order, none lost or repeated"
        );
        assert_eq!(check.value(row), s * 3, "row {row} is whole");
        assert_eq!(texts.value(row), text(s), "row {row} text");
    }
    // A widened column is null before it existed and set after.
    for k in 1..8i64 {
        if let Some(column) = batch.column_by_name(&format!("w{k}")) {
            let first = (k * 5_000) as usize;
            if n >= first {
                assert!(column.is_null(first - 1), "w{k} is null before row {first}");
            }
            if n > first {
                assert!(column.is_valid(first), "w{k} is set from row {first}");
            }
        }
    }
    n
}

#[test]
fn a_table_written_by_another_process_reads_whole_rows_only() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = Experiment::builder("live", base.path()).create().unwrap();
    let dir: PathBuf = exp.dir().to_path_buf();
    let path = exp.layout().table_path("run_0001");
    exp.set_running(std::process::id()).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--quiet"])
        .env(ROLE, "writer")
        .env("EXPMAN_ARROW_TEST_DIR", &dir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut reads, mut last, mut parallel_reads) = (0, 0, 0);
    loop {
        let finished = child.try_wait().unwrap().is_some();
        if path.exists() {
            let threads = 1 + reads % 3;
            let table = arrow::read_table_chunks(&path, threads).unwrap();
            if table.batches().len() > 1 {
                parallel_reads += 1;
            }
            let n = check(&table.concat().unwrap());
            assert!(n >= last, "a later read has fewer rows ({n} < {last})");
            last = n;
            reads += 1;
            // The long table of the directory reads consistently too.
            let long = arrow::read_dir(base.path(), &Selection::new()).unwrap();
            assert!(long.num_rows() >= n);
        }
        if finished {
            break;
        }
        assert!(Instant::now() < deadline, "the writer did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    let batch = arrow::read_table(&path).unwrap();
    assert_eq!(check(&batch), ROWS as usize);
    assert!(reads >= 5, "only {reads} reads while the writer ran");
    assert!(parallel_reads >= 1, "no read was split across threads");
}
