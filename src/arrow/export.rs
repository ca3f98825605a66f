//! Writing a long table to a file: Parquet, Arrow IPC or CSV (what `EXP export` does).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use super::Table;
use super::dir::{Progress, Selection, Stage, read_dir_grouped};
use crate::Value;
use crate::error::{Error, IoContext, Result};

/// A file format for [`export`] and [`write_table`]. Parquet and Arrow IPC need the feature
/// `parquet`; without it, writing them answers [`crate::ErrorKind::Unsupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet, Snappy-compressed; dictionary columns stay dictionary-encoded.
    Parquet,
    /// CSV with one header line, empty cells for nulls, numbers as expman writes them.
    Csv,
    /// The Arrow IPC file format (Feather v2), uncompressed.
    Arrow,
}

impl Format {
    /// Fails for Parquet and Arrow IPC in a build without the feature `parquet`.
    fn check_supported(self) -> Result<()> {
        match self {
            Format::Parquet | Format::Arrow if !cfg!(feature = "parquet") => {
                Err(Error::unsupported("parquet"))
            }
            _ => Ok(()),
        }
    }
}

impl FromStr for Format {
    type Err = Error;

    /// `parquet`, `csv`, `arrow` (also `ipc`, `feather`), in any case.
    fn from_str(text: &str) -> Result<Format> {
        match text.to_ascii_lowercase().as_str() {
            "parquet" => Ok(Format::Parquet),
            "csv" => Ok(Format::Csv),
            "arrow" | "ipc" | "feather" => Ok(Format::Arrow),
            _ => Err(Error::config(
                "format",
                format!(
                    "{} is not an export format; use parquet, csv or arrow",
                    crate::error::quote(text)
                ),
            )),
        }
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Experiments with at least one selected run.
    pub experiments: usize,
    /// Run tables read.
    pub runs: usize,
    /// Rows written.
    pub rows: usize,
    /// Columns written.
    pub columns: usize,
    /// The run tables left out because they could not be read, each message naming the file
    /// and why (see [`super::Table::skipped`]).
    pub skipped: Vec<String>,
}

/// Reads the runs that `selection` selects under `base` (see [`super::read_dir`]) and writes
/// them as one table to `out` in `format`. `progress` is called from reading threads as each
/// experiment is read, and as each is written. `out` appears only when complete: it is written
/// under a temporary name beside it, then renamed.
pub fn export(
    base: impl AsRef<Path>,
    selection: &Selection,
    format: Format,
    out: impl AsRef<Path>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ExportSummary> {
    format.check_supported()?;
    let grouped = read_dir_grouped(base.as_ref(), selection, progress)?;
    let total = grouped.experiments;
    let mut written = 0;
    let mut last = None;
    write_file(&grouped.table, format, out.as_ref(), &mut |batch| {
        let e = grouped.experiment_of_batch[batch];
        if last != Some(e) {
            if last.is_some() {
                written += 1;
                progress(Progress {
                    stage: Stage::Writing,
                    done: written,
                    total,
                });
            }
            last = Some(e);
        }
    })?;
    progress(Progress {
        stage: Stage::Writing,
        done: total,
        total,
    });
    Ok(ExportSummary {
        experiments: total,
        runs: grouped.runs,
        rows: grouped.table.num_rows(),
        columns: grouped.table.schema().fields().len(),
        skipped: grouped
            .table
            .skipped()
            .iter()
            .map(ToString::to_string)
            .collect(),
    })
}

/// Writes `table` to `out` in `format`, under a temporary name that is renamed when complete.
pub fn write_table(table: &Table, format: Format, out: impl AsRef<Path>) -> Result<()> {
    write_file(table, format, out.as_ref(), &mut |_| {})
}

fn write_file(
    table: &Table,
    format: Format,
    out: &Path,
    before_batch: &mut dyn FnMut(usize),
) -> Result<()> {
    format.check_supported()?;
    let file_name = out.file_name().ok_or_else(|| {
        Error::config(
            "out",
            format!(
                "{} is not a file name; pass a path such as runs.parquet",
                out.display()
            ),
        )
    })?;
    let temp: PathBuf = out.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let file = File::create(&temp).at("create", &temp)?;
    let result = write_to(table, format, file, &temp, before_batch)
        .and_then(|()| std::fs::rename(&temp, out).at("rename the export to", out));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn write_to(
    table: &Table,
    format: Format,
    file: File,
    path: &Path,
    before_batch: &mut dyn FnMut(usize),
) -> Result<()> {
    let failed =
        |e: &dyn std::fmt::Display| Error::io("write", path, std::io::Error::other(e.to_string()));
    let writer = BufWriter::with_capacity(1 << 20, file);
    match format {
        #[cfg(not(feature = "parquet"))]
        Format::Parquet | Format::Arrow => {
            unreachable!("check_supported refused {format:?}")
        }
        #[cfg(feature = "parquet")]
        Format::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .build();
            let mut w = parquet::arrow::ArrowWriter::try_new(writer, table.schema(), Some(props))
                .map_err(|e| failed(&e))?;
            for (i, batch) in table.batches().iter().enumerate() {
                before_batch(i);
                w.write(batch).map_err(|e| failed(&e))?;
            }
            let mut writer = w.into_inner().map_err(|e| failed(&e))?;
            writer.flush().at("write", path)?;
        }
        #[cfg(feature = "parquet")]
        Format::Arrow => {
            let mut w = arrow_ipc::writer::FileWriter::try_new(writer, &table.schema())
                .map_err(|e| failed(&e))?;
            for (i, batch) in table.batches().iter().enumerate() {
                before_batch(i);
                w.write(batch).map_err(|e| failed(&e))?;
            }
            w.finish().map_err(|e| failed(&e))?;
            let mut writer = w.into_inner().map_err(|e| failed(&e))?;
            writer.flush().at("write", path)?;
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().from_writer(writer);
            let schema = table.schema();
            w.write_record(schema.fields().iter().map(|f| f.name().as_str()))
                .map_err(|e| failed(&e))?;
            let mut cell = Vec::new();
            for (i, batch) in table.batches().iter().enumerate() {
                before_batch(i);
                write_csv_rows(&mut w, batch, &mut cell).map_err(|e| failed(&e))?;
            }
            // csv::Writer's Drop would swallow a failed flush.
            let writer = w.into_inner().map_err(|e| failed(&e))?;
            let mut writer = writer;
            writer.flush().at("write", path)?;
        }
    }
    Ok(())
}

/// One column of a batch, downcast once.
enum CsvColumn<'a> {
    Null,
    Bool(&'a arrow_array::BooleanArray),
    Int(&'a arrow_array::Int64Array),
    Float(&'a arrow_array::Float64Array),
    Str(&'a arrow_array::StringArray),
    Dict(&'a arrow_array::Int32Array, &'a arrow_array::StringArray),
}

fn write_csv_rows<W: Write>(
    w: &mut csv::Writer<W>,
    batch: &RecordBatch,
    cell: &mut Vec<u8>,
) -> std::result::Result<(), csv::Error> {
    let columns: Vec<(CsvColumn, &dyn Array)> = batch
        .columns()
        .iter()
        .map(|c| {
            let typed = match c.data_type() {
                DataType::Boolean => CsvColumn::Bool(c.as_boolean()),
                DataType::Int64 => CsvColumn::Int(c.as_primitive::<Int64Type>()),
                DataType::Float64 => CsvColumn::Float(c.as_primitive::<Float64Type>()),
                DataType::Utf8 => CsvColumn::Str(c.as_string::<i32>()),
                DataType::Dictionary(..) => {
                    let d = c.as_dictionary::<Int32Type>();
                    CsvColumn::Dict(d.keys(), d.values().as_string::<i32>())
                }
                _ => CsvColumn::Null,
            };
            (typed, c.as_ref())
        })
        .collect();
    for row in 0..batch.num_rows() {
        for (column, array) in &columns {
            if array.is_null(row) {
                w.write_field(b"")?;
                continue;
            }
            cell.clear();
            match column {
                CsvColumn::Null => {}
                CsvColumn::Bool(a) => Value::Bool(a.value(row)).write_csv(cell),
                CsvColumn::Int(a) => Value::Int(a.value(row)).write_csv(cell),
                CsvColumn::Float(a) => Value::Float(a.value(row)).write_csv(cell),
                CsvColumn::Str(a) => cell.extend_from_slice(a.value(row).as_bytes()),
                CsvColumn::Dict(keys, values) => {
                    cell.extend_from_slice(values.value(keys.value(row) as usize).as_bytes())
                }
            }
            w.write_field(&cell)?;
        }
        w.write_record(None::<&[u8]>)?;
    }
    Ok(())
}
