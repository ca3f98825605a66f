//! Tables are rectangular, as the seed shows them and strict CSV readers (pyarrow, RFC 4180)
//! require: after a widening every complete line has exactly the header's width, including
//! rows written before it (padded during the rewrite), rows with quoted line breaks, rows of
//! an older expman that left them short, and rows appended afterwards by a writer that had not
//! seen the widening yet.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Guarded, LOCK_MODES, assert_success, child_command, env, wait_with_deadline};
use expman::{SyncPolicy, TableWriter, Value, read_table};

#[test]
fn child() {
    common::child_main(|role| match role {
        "two_writers" => two_writers(Path::new(&env("EXPMAN_TEST_DIR"))),
        other => panic!("unknown role {other}"),
    });
}

/// Every record of the file, read by a strict (non-flexible) CSV reader: an error if any
/// record's width differs from the header's.
fn strict_widths(path: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .unwrap();
    let header = reader.headers().unwrap().clone();
    let records: Vec<_> = reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("not rectangular: {e}\n{}", text(path))))
        .collect();
    assert!(records.iter().all(|r| r.len() == header.len()));
    records
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The seed's dynamic-fields example: the first row gains `,,` when the second widens.
#[test]
fn the_seed_example_is_rectangular() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run_0001.csv");
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    writer.set("model", "CNN").unwrap();
    writer.set("accuracy", 0.85).unwrap();
    writer.save_row().unwrap();
    writer.set("model", "CNN").unwrap();
    writer.set("accuracy", 0.88).unwrap();
    writer.set("f1_score", 0.87).unwrap();
    writer.set("precision", 0.89).unwrap();
    writer.save_row().unwrap();
    let lines: Vec<String> = text(&path).lines().map(str::to_string).collect();
    assert_eq!(
        lines[0],
        "timestamp,run_id,model,accuracy,f1_score,precision"
    );
    assert!(lines[1].ends_with(",run_0001,CNN,0.85,,"), "{}", lines[1]);
    assert!(
        lines[2].ends_with(",run_0001,CNN,0.88,0.87,0.89"),
        "{}",
        lines[2]
    );
    assert_eq!(strict_widths(&path).len(), 2);
}

/// Quoted line breaks, commas and quotes in earlier rows; short rows of an older expman; a
/// blank line; CRLF line ends: all padded by cells, not by lines.
#[test]
fn padding_counts_cells_not_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "timestamp,run_id,a,b\n\
         t0,run_0001,1\n\
         t1,run_0001,\"x,\ny\"\"z\",2\n\
         \n\
         t2,run_0001,3,4\r\n",
    )
    .unwrap();
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    writer.set("c", 5).unwrap();
    writer.save_row().unwrap();
    let records = strict_widths(&path);
    assert_eq!(records.len(), 4);
    assert_eq!(&records[1][2], "x,\ny\"z");
    let table = read_table(&path).unwrap();
    let c: Vec<Value> = table.column("c").unwrap().cloned().collect();
    assert_eq!(c, [Value::Null, Value::Null, Value::Null, Value::Int(5)]);
}

/// Child: writer A opens the table, writer B (another handle, as another process would be)
/// widens it, then A, which never saw the new column, appends: its row is full width.
fn two_writers(dir: &Path) {
    let path = dir.join("t.csv");
    let mut a = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    let mut b = TableWriter::new(&path, "run_0002", SyncPolicy::WriteThrough);
    a.set("loss", 1.0).unwrap();
    a.save_row().unwrap();
    b.set("loss", 0.9).unwrap();
    b.set("grad_norm", 3.0).unwrap();
    b.save_row().unwrap();
    a.set("loss", 0.8).unwrap();
    a.save_row().unwrap();
    let records = strict_widths(&path);
    assert_eq!(records.len(), 3);
    assert_eq!(&records[2][2], "0.8");
    assert_eq!(&records[2][3], "");
}

#[test]
fn a_writer_that_missed_the_widening_writes_full_width() {
    for mode in LOCK_MODES {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = child_command("child", "two_writers");
        cmd.env("EXPMAN_TEST_DIR", dir.path())
            .env("EXPMAN_LOCK", mode)
            .stdout(Stdio::inherit());
        let mut child = Guarded::spawn(&mut cmd);
        let status = wait_with_deadline(&mut child, Duration::from_secs(60), "two writers");
        assert_success(status, &format!("two writers under EXPMAN_LOCK={mode}"));
    }
}
