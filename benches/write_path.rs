//! W1/W2: the cost of `save_row` against the floor of formatting the same line and calling
//! write(2) once per row, measured in the same run.
//!
//! `cargo bench --bench write_path` (set `EXPMAN_BENCH_ROWS` to change the row count).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use expman::{SyncPolicy, TableWriter};

const FIELDS: [&str; 10] = [
    "loss",
    "acc",
    "val_loss",
    "val_acc",
    "lr",
    "grad_norm",
    "f1",
    "precision",
    "recall",
    "epoch_time",
];

fn rows() -> usize {
    std::env::var("EXPMAN_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn value(row: usize, field: usize) -> f64 {
    (row as f64 + 1.0) / (field as f64 + 3.0)
}

/// The floor: the same line, formatted with the same number formatter, one write(2) per row.
fn bare_write(dir: &Path, n: usize) -> f64 {
    let path = dir.join("floor.csv");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mut line = Vec::with_capacity(256);
    let mut ryu = ryu::Buffer::new();
    let start = Instant::now();
    for row in 0..n {
        line.clear();
        line.extend_from_slice(b"2026-01-01T00:00:00.000000,run_0001");
        for field in 0..FIELDS.len() {
            line.push(b',');
            line.extend_from_slice(ryu.format_finite(value(row, field)).as_bytes());
        }
        line.push(b'\n');
        file.write_all(&line).unwrap();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// W1 by name (`set("loss", x)`, the ordinary API) and by pre-registered field ids.
fn expman_rows(dir: &Path, n: usize, by_id: bool, widen_every: Option<usize>) -> f64 {
    let tag = format!("{n}-{by_id}-{widen_every:?}");
    let path = dir.join(format!(
        "run_{}.csv",
        tag.replace(|c: char| !c.is_alphanumeric(), "_")
    ));
    let mut writer = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    let ids: Vec<_> = FIELDS.iter().map(|f| writer.field_id(f).unwrap()).collect();
    let start = Instant::now();
    for row in 0..n {
        for (field, name) in FIELDS.iter().enumerate() {
            if by_id {
                writer.set_id(ids[field], value(row, field).into());
            } else {
                writer.set(name, value(row, field)).unwrap();
            }
        }
        if let Some(every) = widen_every
            && row % every == 0
        {
            writer.set(&format!("extra_{}", row / every), 1.0).unwrap();
        }
        writer.save_row().unwrap();
    }
    let elapsed = start.elapsed().as_nanos() as f64 / n as f64;
    let metrics = expman::read_table(&path).unwrap();
    assert_eq!(metrics.rows.len(), n, "every row must be on disk");
    elapsed
}

fn main() {
    let n = rows();
    let dir =
        tempfile::tempdir_in(std::env::var("EXPMAN_BENCH_DIR").unwrap_or(".".into())).unwrap();
    // Warm up the page cache and the allocator.
    bare_write(dir.path(), n / 10);
    expman_rows(dir.path(), n / 10, false, None);

    let floor = bare_write(dir.path(), n);
    let w1_name = expman_rows(dir.path(), n, false, None);
    let w1_id = expman_rows(dir.path(), n, true, None);
    let w2 = expman_rows(dir.path(), n, false, Some(n / 20));
    println!(
        "rows: {n} x {} f64 fields, write-through, locked",
        FIELDS.len()
    );
    println!("floor  (format + write(2))      {floor:8.0} ns/row");
    println!(
        "W1     save_row, set by name    {w1_name:8.0} ns/row  ({:.2}x floor, goal <= 1.5x)",
        w1_name / floor
    );
    println!(
        "W1     save_row, set by FieldId {w1_id:8.0} ns/row  ({:.2}x floor)",
        w1_id / floor
    );
    println!(
        "W2     + 20 header widenings    {w2:8.0} ns/row  ({:.2}x W1, goal <= 2x)",
        w2 / w1_name
    );
}
