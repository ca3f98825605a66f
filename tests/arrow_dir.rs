//! `expman::arrow::read_dir`: many experiments' runs as one long table, with experiment, name,
//! status and tags columns, unified column types, and filters.
#![cfg(feature = "arrow")]

use std::path::Path;

use expman::arrow::arrow_array::cast::AsArray;
use expman::arrow::arrow_array::types::Int32Type;
use expman::arrow::arrow_array::{Array, RecordBatch};
use expman::arrow::arrow_schema::DataType;
use expman::arrow::{self, Selection};
use expman::{Experiment, ExperimentDir, RunState, Status, Value};

/// The values of a dictionary or text column, one per row.
fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    match column.data_type() {
        DataType::Dictionary(..) => {
            let d = column.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            d.keys()
                .iter()
                .map(|k| k.map(|k| values.value(k as usize).to_string()))
                .collect()
        }
        DataType::Utf8 => column
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        other => panic!("{name} is {other}"),
    }
}

fn experiment(base: &Path, name: &str, tags: &[&str], rows: &[&[(&str, Value)]]) -> Experiment {
    let mut exp = Experiment::builder(name, base)
        .tags(tags.iter().copied())
        .create()
        .unwrap();
    for row in rows {
        exp.upd_row(row.iter().cloned()).unwrap();
        exp.save_row().unwrap();
    }
    exp
}

#[test]
fn runs_of_many_experiments_make_one_typed_table() {
    let base = tempfile::tempdir().unwrap();
    let mut a = experiment(
        base.path(),
        "resnet",
        &["baseline", "cifar"],
        &[
            &[("epoch", Value::Int(1)), ("loss", Value::Float(0.5))],
            &[
                ("epoch", Value::Int(2)),
                ("loss", Value::Float(0.25)),
                ("ok", Value::Bool(true)),
            ],
        ],
    );
    a.set_finished().unwrap();
    let b = experiment(
        base.path(),
        "vit",
        &["cifar"],
        &[
            // loss is an int here (Float overall), lr appears only here, epoch is text.
            &[
                ("epoch", Value::from("warmup")),
                ("loss", Value::Int(1)),
                ("lr", Value::Float(0.1)),
            ],
        ],
    );
    drop(b); // still Running as far as status.json says, with this process alive

    let table = arrow::read_dir(base.path(), &Selection::new()).unwrap();
    let schema = table.schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "experiment",
            "name",
            "status",
            "tags",
            "timestamp",
            "run_id",
            "epoch",
            "loss",
            "ok",
            "lr"
        ]
    );
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert!(matches!(types[0], DataType::Dictionary(..)));
    assert_eq!(types[6], DataType::Utf8, "epoch holds ints and text");
    assert_eq!(types[7], DataType::Float64, "loss holds ints and floats");
    assert_eq!(types[8], DataType::Boolean);
    assert_eq!(types[9], DataType::Float64);
    let batch = table.concat().unwrap();
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(
        strings(&batch, "name"),
        [Some("resnet"), Some("resnet"), Some("vit")].map(|s| s.map(String::from))
    );
    let ids = strings(&batch, "experiment");
    assert!(ids[0].as_deref().unwrap().starts_with("resnet_"));
    assert!(ids[2].as_deref().unwrap().starts_with("vit_"));
    assert_eq!(
        strings(&batch, "tags"),
        [
            Some("baseline,cifar"),
            Some("baseline,cifar"),
            Some("cifar")
        ]
        .map(|s| s.map(String::from))
    );
    assert_eq!(strings(&batch, "status")[0].as_deref(), Some("Finished"));
    assert_eq!(strings(&batch, "epoch")[2].as_deref(), Some("warmup"));
    assert_eq!(strings(&batch, "epoch")[0].as_deref(), Some("1"));
    let lr = batch.column_by_name("lr").unwrap();
    assert_eq!(lr.null_count(), 2, "the resnet rows have no lr");
    let ok = batch.column_by_name("ok").unwrap().as_boolean();
    assert_eq!(ok.iter().collect::<Vec<_>>(), [None, Some(true), None]);
}

#[test]
fn filters_select_by_name_status_and_tag() {
    let base = tempfile::tempdir().unwrap();
    let row: &[(&str, Value)] = &[("x", Value::Int(1))];
    let mut a = experiment(base.path(), "resnet18", &["baseline"], &[row]);
    a.set_finished().unwrap();
    let mut b = experiment(base.path(), "resnet50", &["big"], &[row, row]);
    b.set_error("diverged").unwrap();
    let mut c = experiment(base.path(), "vit", &["baseline"], &[row]);
    c.set_finished().unwrap();

    let count = |selection: Selection| arrow::read_dir(base.path(), &selection).unwrap().num_rows();
    assert_eq!(count(Selection::new()), 4);
    assert_eq!(count(Selection::new().name("resnet*")), 3);
    assert_eq!(count(Selection::new().name("res?et18")), 1);
    assert_eq!(count(Selection::new().name("nothing*")), 0);
    assert_eq!(count(Selection::new().status(RunState::Finished)), 2);
    assert_eq!(count(Selection::new().status(RunState::Error)), 2);
    assert_eq!(count(Selection::new().tag("baseline")), 2);
    assert_eq!(count(Selection::new().tag("baseline").tag("big")), 0);
    assert_eq!(
        count(
            Selection::new()
                .name("resnet*")
                .tag("baseline")
                .status(RunState::Finished)
        ),
        1
    );
    // An empty selection still has the columns every table has.
    let empty = arrow::read_dir(base.path(), &Selection::new().name("nothing")).unwrap();
    assert_eq!(empty.schema().fields().len(), 6);
    assert_eq!(empty.concat().unwrap().num_rows(), 0);
}

#[test]
fn one_experiment_directory_gives_its_runs_each_with_its_own_status() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = experiment(base.path(), "retried", &[], &[&[("step", Value::Int(1))]]);
    exp.set_error("out of memory").unwrap();
    let dir = exp.dir().to_path_buf();
    drop(exp);
    // A second run of the same experiment (as `EXP retry` makes), which finishes.
    let mut again = Experiment::open(&dir).unwrap();
    again
        .upd_row([("step", Value::Int(2)), ("acc", Value::Float(0.9))])
        .unwrap();
    again.save_row().unwrap();
    again.set_finished().unwrap();

    let table = arrow::read_dir(&dir, &Selection::new()).unwrap();
    let batch = table.concat().unwrap();
    assert_eq!(
        strings(&batch, "run_id"),
        [Some("run_0001".into()), Some("run_0002".into())]
    );
    assert_eq!(
        strings(&batch, "status"),
        [Some("Error".into()), Some("Finished".into())]
    );
    let finished = arrow::read_dir(&dir, &Selection::new().status(RunState::Finished)).unwrap();
    assert_eq!(finished.num_rows(), 1);
    let status = Status::load(&ExperimentDir::open(&dir).unwrap()).unwrap();
    assert_eq!(status.history.len(), 1);
}

#[test]
fn a_field_named_like_a_meta_column_is_renamed_and_named_tables_are_left_out() {
    let base = tempfile::tempdir().unwrap();
    let mut exp = experiment(
        base.path(),
        "clash",
        &[],
        &[&[
            ("status", Value::from("converged")),
            ("name", Value::from("model-a")),
        ]],
    );
    exp.table("progress").unwrap().set("p", 1i64).unwrap();
    exp.table("progress").unwrap().save_row().unwrap();
    let batch = arrow::read_dir(base.path(), &Selection::new())
        .unwrap()
        .concat()
        .unwrap();
    assert_eq!(batch.num_rows(), 1, "progress.csv is not a run table");
    assert_eq!(strings(&batch, "status.1")[0].as_deref(), Some("converged"));
    assert_eq!(strings(&batch, "name.1")[0].as_deref(), Some("model-a"));
    assert_eq!(strings(&batch, "name")[0].as_deref(), Some("clash"));
}

#[test]
fn a_missing_directory_and_a_bad_status_are_errors() {
    let err = arrow::read_dir("/nonexistent/expman", &Selection::new()).unwrap_err();
    assert!(
        matches!(err.kind(), expman::ErrorKind::NotFound { .. }),
        "{err}"
    );
    let err = arrow::parse_status("done").unwrap_err();
    assert!(err.to_string().contains("Finished"), "{err}");
}

fn exported_experiments() -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    for i in 0..3i64 {
        let mut exp = experiment(
            base.path(),
            &format!("e{i}"),
            &["t"],
            &[
                &[("step", Value::Int(i)), ("text", Value::from("a,\"b\"\nc"))],
                &[("step", Value::Int(i + 1)), ("x", Value::Float(f64::NAN))],
            ],
        );
        exp.set_finished().unwrap();
    }
    base
}

fn export(base: &Path, format: arrow::Format, out: &Path) -> expman::Result<arrow::ExportSummary> {
    arrow::export(base, &Selection::new(), format, out, &|_| {})
}

#[test]
fn long_tables_are_written_to_csv() {
    let base = exported_experiments();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("all.csv");
    let summary = export(base.path(), arrow::Format::Csv, &path).unwrap();
    assert_eq!((summary.experiments, summary.runs, summary.rows), (3, 3, 6));
    let files = std::fs::read_dir(out.path()).unwrap().count();
    assert_eq!(files, 1, "only the export itself, no temporary file");

    let text = std::fs::read_to_string(&path).unwrap();
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..6],
        [
            "experiment",
            "name",
            "status",
            "tags",
            "timestamp",
            "run_id"
        ]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    let text_col = header.iter().position(|h| h == "text").unwrap();
    let x_col = header.iter().position(|h| h == "x").unwrap();
    assert_eq!(&rows[0][text_col], "a,\"b\"\nc");
    assert_eq!(&rows[1][x_col], "NaN");
    assert_eq!(&rows[0][x_col], "");
    assert_eq!(&rows[0][2], "Finished");
}

#[cfg(not(feature = "parquet"))]
#[test]
fn parquet_and_ipc_need_the_parquet_feature() {
    let base = exported_experiments();
    let out = tempfile::tempdir().unwrap();
    for format in [arrow::Format::Parquet, arrow::Format::Arrow] {
        let err = export(base.path(), format, &out.path().join("x")).unwrap_err();
        assert!(matches!(
            err.kind(),
            expman::ErrorKind::Unsupported { feature: "parquet" }
        ));
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[cfg(feature = "parquet")]
#[test]
fn long_tables_are_written_to_parquet_and_ipc() {
    let base = exported_experiments();
    let out = tempfile::tempdir().unwrap();
    let expected = arrow::read_dir(base.path(), &Selection::new()).unwrap();
    let path = out.path().join("all.arrow");
    export(base.path(), arrow::Format::Arrow, &path).unwrap();
    // Read back with the crates the writers use (pyarrow reads both in test_arrow.py).
    let file = std::fs::File::open(&path).unwrap();
    let batches: Vec<RecordBatch> = arrow_ipc::reader::FileReader::try_new(file, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        batches,
        expected.batches(),
        "one IPC batch per run, as read"
    );

    let path = out.path().join("all.parquet");
    export(base.path(), arrow::Format::Parquet, &path).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    assert_eq!(batches.len(), 1, "6 rows make one Parquet batch");
    assert_eq!(batches[0], expected.concat().unwrap());
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 2);
}

/// One damaged run among many: a row with more cells than the header, text that is not UTF-8
/// (Latin-1), and `metrics/` replaced by a file. Each is left out and named in
/// `Table::skipped` (and by `EXP export`, which exits 1), and every other run still reads:
/// before, any one of them failed the whole read.
#[test]
fn a_damaged_run_is_left_out_and_named_and_the_others_still_read() {
    let base = tempfile::tempdir().unwrap();
    let mut damaged = Vec::new();
    for (i, name) in ["a_good", "b_cells", "c_latin1", "d_no_metrics", "e_good"]
        .iter()
        .enumerate()
    {
        let mut exp = experiment(
            base.path(),
            name,
            &[],
            &[
                &[("step", Value::Int(0)), ("note", Value::from("ok"))],
                &[("step", Value::Int(1)), ("note", Value::from("ok"))],
            ],
        );
        exp.set_finished().unwrap();
        let table = exp.dir().join("metrics/run_0001.csv");
        match i {
            1 => append(&table, b"2026-01-01T00:00:00.000000,run_0001,2,ok,extra\n"),
            2 => append(&table, b"2026-01-01T00:00:00.000000,run_0001,2,caf\xe9\n"),
            3 => {
                let metrics = exp.dir().join("metrics");
                std::fs::remove_dir_all(&metrics).unwrap();
                std::fs::write(&metrics, b"not a directory").unwrap();
            }
            _ => {}
        }
        if (1..=3).contains(&i) {
            damaged.push(if i == 3 {
                exp.dir().join("metrics")
            } else {
                table
            });
        }
    }

    let table = arrow::read_dir(base.path(), &Selection::new()).unwrap();
    let batch = table.concat().unwrap();
    let mut experiments = strings(&batch, "experiment");
    experiments.dedup();
    let names: Vec<String> = experiments.into_iter().map(Option::unwrap).collect();
    assert!(
        names.len() == 2 && names[0].starts_with("a_good") && names[1].starts_with("e_good"),
        "{names:?}"
    );
    assert_eq!(batch.num_rows(), 4);
    let skipped: Vec<String> = table.skipped().iter().map(|e| e.to_string()).collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    for path in &damaged {
        let path = path.display().to_string();
        assert!(
            skipped.iter().any(|m| m.contains(&path)),
            "{path} in {skipped:?}"
        );
    }

    let out = tempfile::tempdir().unwrap();
    let summary = export(base.path(), arrow::Format::Csv, &out.path().join("all.csv")).unwrap();
    assert_eq!((summary.rows, summary.skipped.len()), (4, 3));
    #[cfg(feature = "ui")]
    {
        let cli = std::process::Command::new(env!("CARGO_BIN_EXE_EXP"))
            .arg("export")
            .arg(base.path())
            .arg("--out")
            .arg(out.path().join("cli.csv"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&cli.stderr);
        assert_eq!(cli.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.matches("EXP export: left out ").count(),
            3,
            "{stderr}"
        );
        assert!(out.path().join("cli.csv").is_file());
    }
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}
