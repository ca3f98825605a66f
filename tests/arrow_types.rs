//! `expman::arrow::read_table`: inferred column types, nulls, text with delimiters, torn and
//! foreign files, and the parallel reader agreeing with the one-thread reader and with
//! `expman::read_table`, on tables written by the real writer.
#![cfg(feature = "arrow")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use expman::arrow::arrow_array::cast::AsArray;
use expman::arrow::arrow_array::types::{Float64Type, Int64Type};
use expman::arrow::arrow_array::{Array, RecordBatch};
use expman::arrow::arrow_schema::DataType;
use expman::arrow::{self, read_table_chunks};
use expman::{ErrorKind, SyncPolicy, TableWriter, Value};

fn writer(dir: &Path, name: &str) -> TableWriter {
    TableWriter::new(
        dir.join(format!("{name}.csv")),
        "run_0001",
        SyncPolicy::WriteThrough,
    )
}

fn column_type(batch: &RecordBatch, name: &str) -> DataType {
    batch
        .schema()
        .field_with_name(name)
        .unwrap_or_else(|_| panic!("no column {name}"))
        .data_type()
        .clone()
}

/// Every cell of an Arrow batch as the `Value` the row reader gives for it.
fn cells(batch: &RecordBatch) -> Vec<Vec<Value>> {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|c| {
                    // A Null array has no validity buffer: every cell is null.
                    if c.data_type() == &DataType::Null || c.is_null(row) {
                        return Value::Null;
                    }
                    match c.data_type() {
                        DataType::Int64 => Value::Int(c.as_primitive::<Int64Type>().value(row)),
                        DataType::Float64 => {
                            Value::Float(c.as_primitive::<Float64Type>().value(row))
                        }
                        DataType::Boolean => Value::Bool(c.as_boolean().value(row)),
                        DataType::Utf8 => Value::Str(c.as_string::<i32>().value(row).to_string()),
                        other => panic!("unexpected type {other}"),
                    }
                })
                .collect()
        })
        .collect()
}

/// Asserts that the Arrow reader and the row reader agree on every name, type and cell (NaN
/// equal to NaN).
fn assert_agrees_with_read_table(path: &Path, batch: &RecordBatch) {
    let rows = expman::read_table(path).unwrap();
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, rows.columns);
    for (field, ty) in batch.schema().fields().iter().zip(&rows.types) {
        let want = match ty {
            expman::ColumnType::Null => DataType::Null,
            expman::ColumnType::Bool => DataType::Boolean,
            expman::ColumnType::Int => DataType::Int64,
            expman::ColumnType::Float => DataType::Float64,
            expman::ColumnType::Str => DataType::Utf8,
        };
        assert_eq!(field.data_type(), &want, "column {}", field.name());
    }
    let got = cells(batch);
    assert_eq!(got.len(), rows.rows.len());
    for (r, (a, b)) in got.iter().zip(&rows.rows).enumerate() {
        for (c, (x, y)) in a.iter().zip(b).enumerate() {
            let same = match (x, y) {
                (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                _ => x == y,
            };
            assert!(
                same,
                "row {r} column {}: arrow {x:?}, read_table {y:?}",
                names[c]
            );
        }
    }
}

#[test]
fn types_are_inferred_per_column_as_read_table_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = writer(dir.path(), "mixed");
    for i in 0..20i64 {
        t.set("step", i).unwrap();
        t.set("loss", 1.0 / (i as f64 + 1.0)).unwrap();
        t.set("ok", i % 3 == 0).unwrap();
        t.set("model", format!("m{i}")).unwrap();
        // Ints and floats mixed: Float. Ints and text: Str. Bools and ints: Str.
        if i % 2 == 0 {
            t.set("lr", 1i64).unwrap();
            t.set("tag", i).unwrap();
            t.set("flag", true).unwrap();
        } else {
            t.set("lr", 0.5).unwrap();
            t.set("tag", "x").unwrap();
            t.set("flag", 7i64).unwrap();
        }
        t.set("empty", Value::Null).unwrap();
        t.save_row().unwrap();
    }
    let path = t.path().to_path_buf();
    let batch = arrow::read_table(&path).unwrap();
    assert_eq!(batch.num_rows(), 20);
    for (name, ty) in [
        ("timestamp", DataType::Utf8),
        ("run_id", DataType::Utf8),
        ("step", DataType::Int64),
        ("loss", DataType::Float64),
        ("ok", DataType::Boolean),
        ("model", DataType::Utf8),
        ("lr", DataType::Float64),
        ("tag", DataType::Utf8),
        ("flag", DataType::Utf8),
        ("empty", DataType::Null),
    ] {
        assert_eq!(column_type(&batch, name), ty, "column {name}");
    }
    let tag = batch.column_by_name("tag").unwrap().as_string::<i32>();
    assert_eq!((tag.value(0), tag.value(1), tag.value(2)), ("0", "x", "2"));
    let flag = batch.column_by_name("flag").unwrap().as_string::<i32>();
    assert_eq!((flag.value(0), flag.value(1)), ("true", "7"));
    assert_agrees_with_read_table(&path, &batch);
}

#[test]
fn evolving_columns_are_null_before_they_existed() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = writer(dir.path(), "evolving");
    for i in 0..10i64 {
        t.set("epoch", i).unwrap();
        if i >= 4 {
            t.set("val_acc", 0.5 + i as f64 / 100.0).unwrap();
        }
        if i >= 7 {
            t.set("note", "late").unwrap();
        }
        t.save_row().unwrap();
    }
    let batch = arrow::read_table(t.path()).unwrap();
    let val = batch.column_by_name("val_acc").unwrap();
    assert_eq!(val.data_type(), &DataType::Float64);
    assert_eq!(val.null_count(), 4);
    assert!(val.is_null(3) && val.is_valid(4));
    let note = batch.column_by_name("note").unwrap();
    assert_eq!(note.null_count(), 7);
    assert_agrees_with_read_table(t.path(), &batch);
}

#[test]
fn nan_infinities_nulls_and_text_with_delimiters() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = writer(dir.path(), "special");
    let texts = [
        "plain",
        "a,b",
        "line\nbreak",
        "quote \"q\"",
        "crlf\r\nend",
        "",
        "ünï,cødé\n",
    ];
    let floats = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e300,
        5e-324,
        0.1,
    ];
    for (i, (text, f)) in texts.iter().zip(floats).enumerate() {
        t.set("text", *text).unwrap();
        t.set("x", f).unwrap();
        if i % 2 == 0 {
            t.set("sometimes", i as i64).unwrap();
        }
        t.save_row().unwrap();
    }
    let batch = arrow::read_table(t.path()).unwrap();
    assert_eq!(batch.num_rows(), texts.len());
    let text = batch.column_by_name("text").unwrap().as_string::<i32>();
    for (i, want) in texts.iter().enumerate() {
        if want.is_empty() {
            assert!(
                text.is_null(i),
                "an empty string reads back as an empty cell"
            );
        } else {
            assert_eq!(text.value(i), *want);
        }
    }
    let x = batch
        .column_by_name("x")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert!(x.value(0).is_nan());
    assert_eq!(x.value(1), f64::INFINITY);
    assert_eq!(x.value(2), f64::NEG_INFINITY);
    assert!(x.value(3) == 0.0 && x.value(3).is_sign_negative());
    assert_eq!((x.value(4), x.value(5), x.value(6)), (1e300, 5e-324, 0.1));
    assert_eq!(x.null_count(), 0, "NaN is a value, not a null");
    let sometimes = batch.column_by_name("sometimes").unwrap();
    assert_eq!(sometimes.data_type(), &DataType::Int64);
    assert_eq!(sometimes.null_count(), 3);
    assert_agrees_with_read_table(t.path(), &batch);
}

#[test]
fn a_torn_last_line_is_left_out_and_empty_tables_have_the_fixed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "timestamp,run_id,a,b\nt1,run_0001,1,\"x\ny\"\nt2,run_0001,2,\"torn\nin a quote",
    )
    .unwrap();
    let batch = arrow::read_table(&path).unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(
        batch
            .column_by_name("b")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "x\ny"
    );

    std::fs::write(&path, "timestamp,run_id,a\n").unwrap();
    let batch = arrow::read_table(&path).unwrap();
    assert_eq!(batch.num_rows(), 0);
    assert_eq!(batch.num_columns(), 3);
    assert_eq!(column_type(&batch, "a"), DataType::Null);

    for partial in ["", "timestamp,run_i"] {
        std::fs::write(&path, partial).unwrap();
        let batch = arrow::read_table(&path).unwrap();
        let names: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["timestamp", "run_id"]);
        assert_eq!(batch.num_rows(), 0);
    }
}

#[test]
fn foreign_or_damaged_files_are_errors_that_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    let err = arrow::read_table(&path).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Corrupt { line: Some(1), .. }),
        "{err}"
    );

    std::fs::write(&path, "timestamp,run_id,a\nt,r,1\nt,r,1,2,3\n").unwrap();
    let err = arrow::read_table(&path).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Corrupt { line: Some(3), .. }),
        "{err}"
    );
    assert!(err.to_string().contains("5 cells"), "{err}");

    let err = arrow::read_table(dir.path().join("missing.csv")).unwrap_err();
    assert!(err.io_error().is_some(), "{err}");
}

/// A table large enough to be read in parallel, whose text holds line breaks (some parts
/// start inside a quoted cell and are parsed again) and whose types change halfway.
fn big_table(dir: &Path) -> PathBuf {
    let mut t = writer(dir, "big");
    let long_text: String = (0..400).map(|i| format!("line {i},\n")).collect();
    for i in 0..60_000i64 {
        t.set("step", i).unwrap();
        t.set("loss", (i as f64).sqrt()).unwrap();
        if i % 5 == 0 {
            t.set("text", long_text.as_str()).unwrap();
        }
        // An int column that turns into floats, then into text, late in the file.
        if i < 40_000 {
            t.set("late", i).unwrap();
        } else if i < 55_000 {
            t.set("late", i as f64 + 0.5).unwrap();
        } else {
            t.set("late", "text").unwrap();
        }
        t.save_row().unwrap();
    }
    t.path().to_path_buf()
}

#[test]
fn the_parallel_reader_agrees_with_one_thread_and_with_read_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = big_table(dir.path());
    assert!(std::fs::metadata(&path).unwrap().len() > 8 << 20);
    let one = read_table_chunks(&path, 1).unwrap().concat().unwrap();
    assert_eq!(one.num_rows(), 60_000);
    for threads in [2, 3, 7] {
        let many = read_table_chunks(&path, threads).unwrap();
        assert!(many.batches().len() > 1, "{threads} threads read one chunk");
        let many = many.concat().unwrap();
        assert_eq!(many.schema(), one.schema(), "{threads} threads");
        assert_eq!(many.num_rows(), one.num_rows(), "{threads} threads");
        for (a, b) in many.columns().iter().zip(one.columns()) {
            if a != b {
                let first = (0..a.len())
                    .find(|&i| a.slice(i, 1) != b.slice(i, 1))
                    .unwrap_or(a.len());
                panic!(
                    "{threads} threads: first difference at row {first}: {:?} vs {:?}",
                    a.slice(first, 1),
                    b.slice(first, 1)
                );
            }
        }
    }
    assert_eq!(column_type(&one, "late"), DataType::Utf8);
    let late = one.column_by_name("late").unwrap().as_string::<i32>();
    assert_eq!(
        (late.value(0), late.value(40_000), late.value(59_999)),
        ("0", "40000.5", "text")
    );
    assert_agrees_with_read_table(&path, &one);

    // parse_table is the same reader over bytes.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(arrow::parse_table(&bytes, &path).unwrap(), one);
}

#[test]
fn a_table_reads_as_batches_of_one_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = big_table(dir.path());
    let table = read_table_chunks(&path, 4).unwrap();
    let schema = table.schema();
    assert!(
        table
            .batches()
            .iter()
            .all(|b| Arc::ptr_eq(&b.schema(), &schema) || b.schema() == schema)
    );
    assert_eq!(table.num_rows(), 60_000);
    let rows: usize = table.into_reader().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 60_000);
}

/// The parallel reader reads a large file in 1 MiB blocks: a row longer than two of them must
/// still come back whole, in every part.
#[test]
fn a_row_longer_than_a_read_block_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = writer(dir.path(), "long_rows");
    let long_text = "x,\"y\n".repeat(600_000); // 3 MB as written (quotes doubled)
    for i in 0..40_000i64 {
        t.set("step", i).unwrap();
        if i % 10_000 == 5_000 {
            t.set("text", long_text.as_str()).unwrap();
        }
        t.save_row().unwrap();
    }
    let path = t.path().to_path_buf();
    drop(t);
    assert!(std::fs::metadata(&path).unwrap().len() > 12 << 20);
    let one = read_table_chunks(&path, 1).unwrap().concat().unwrap();
    let many = read_table_chunks(&path, 3).unwrap().concat().unwrap();
    assert_eq!(many, one);
    let text = one.column_by_name("text").unwrap().as_string::<i32>();
    assert_eq!(text.value(5_000), long_text);
    assert_eq!(text.value(35_000), long_text);
    assert!(text.is_null(5_001));
    assert_agrees_with_read_table(&path, &one);
}
