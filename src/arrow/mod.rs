//! Metrics as Apache Arrow record batches (feature `arrow`): one table, all runs of an
//! experiment, or every experiment under a directory as one long table, typed, ready for
//! pandas, pyarrow, polars or C++ Arrow (through the C stream interface of the C ABI), and
//! written to CSV files, or Parquet and Arrow IPC files with the feature `parquet`.
//!
//! ```no_run
//! use expman::arrow::{self, Selection};
//! use expman::RunState;
//! # fn main() -> expman::Result<()> {
//! // One table: a RecordBatch with typed columns.
//! let batch = arrow::read_table("experiments/base_2025-09-26__14-30-15/metrics/run_0001.csv")?;
//! println!("{} rows, schema {:?}", batch.num_rows(), batch.schema());
//!
//! // Every finished run of the "resnet*" experiments, as one long table.
//! let table = arrow::read_dir(
//!     "experiments",
//!     &Selection::new().name("resnet*").status(RunState::Finished),
//! )?;
//! println!("{} rows in {} batches", table.num_rows(), table.batches().len());
//! # Ok(()) }
//! ```
//!
//! # Types
//!
//! Each column gets the narrowest type holding all of its non-empty cells, by the rules of
//! [`crate::read_table`]: `Int64` (integers), `Float64` (numbers, with `NaN` and `±inf`; integers
//! mixed with floats become floats), `Boolean` (`true`/`false` in any case), `Utf8` (anything
//! else, and any mix of the above such as numbers with text), and `Null` when every cell is
//! empty. `timestamp` and `run_id` are always `Utf8`. Empty cells are nulls, including the cells
//! of columns added after a row was written. In a column that mixes numbers or booleans with
//! text, the numbers become text as expman writes them (the exact text of any table expman
//! wrote; `True` in a hand-edited file reads as `true`).
//!
//! # Reading while others write
//!
//! Each file is read once, whole: a widening replaces a table by an atomic rename, so the bytes
//! are all of one version, and a last line without its newline (a row being written) is left
//! out. No lock is taken, so readers never slow writers down.
//!
//! # Speed
//!
//! The reader is the core's ([`crate::metrics::read_columns`] uses it too): cells go straight
//! from the file's bytes into column buffers laid out as Arrow's, which become the arrays
//! without a copy, with no allocation per cell; numbers are parsed where they stand, so a
//! numeric cell is never searched for its end first. A file larger than 4 MiB is read by all
//! threads at once, each its own part in 1 MiB blocks parsed while they are in the cache; the
//! tables of many runs are read in parallel. `EXPMAN_THREADS` caps the threads (default: one
//! per core). On the development machine (2 cores) a table of 1,000,000 rows x 12 columns
//! (174 MB) reads in 155–230 ms, and 1,000 runs of 10,000 rows (794 MB) into one long table in
//! 540–570 ms, depending on the machine's load (`cargo bench --features arrow --bench arrow`).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchOptions};
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};

pub use arrow_array;
pub use arrow_schema;

use crate::error::{Error, Result};
use crate::metrics::columnar::{parse, pool};

mod column;
mod concat;
mod dir;
mod export;

/// Moved to [`crate::metrics::read_columns`] (every build has it); kept here for the callers
/// of earlier versions.
pub use crate::metrics::read_columns;
pub use dir::{Progress, Stage};
pub use dir::{Selection, parse_status, read_dir};
pub use export::{ExportSummary, Format, export, write_table};

/// Record batches that share one schema: a table read back in chunks, or many runs' tables as
/// one long table. Nothing is copied to make it: each batch is a chunk of one file.
#[derive(Debug, Clone)]
pub struct Table {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// Shared, so that the table stays cheap to clone.
    skipped: Arc<Vec<Error>>,
}

/// The key of the schema metadata that names the tables [`read_dir`] left out, in the Arrow
/// C stream it exports: a JSON list of messages, each naming the file and why.
pub const SKIPPED_METADATA_KEY: &str = "expman:skipped";

impl Table {
    /// The schema every batch has.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The batches, in file (and experiment) order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The batches, taken out.
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.batches
    }

    /// The number of rows of all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// One batch with all rows. Copies the data unless there is at most one batch.
    pub fn concat(&self) -> Result<RecordBatch> {
        match self.batches.as_slice() {
            [] => Ok(RecordBatch::new_empty(self.schema())),
            [one] => Ok(one.clone()),
            many => {
                let columns = (0..self.schema.fields().len())
                    .map(|c| concat::arrays(&many.iter().map(|b| b.column(c)).collect::<Vec<_>>()))
                    .collect::<std::result::Result<Vec<_>, String>>()
                    .map_err(|e| {
                        Error::invalid_state(format!("cannot concatenate batches: {e}"))
                    })?;
                batch(&self.schema, columns)
            }
        }
    }

    /// The run tables [`read_dir`] left out because they could not be read (a damaged row,
    /// text that is not UTF-8, an unreadable file): each error names the file and why.
    pub fn skipped(&self) -> &[Error] {
        &self.skipped
    }

    /// A reader over the batches (what the C stream interface exports). Its schema carries
    /// the [`skipped`](Table::skipped) tables under [`SKIPPED_METADATA_KEY`].
    pub fn into_reader(
        self,
    ) -> RecordBatchIterator<std::vec::IntoIter<std::result::Result<RecordBatch, ArrowError>>> {
        let batches: Vec<_> = self.batches.into_iter().map(Ok).collect();
        let schema = if self.skipped.is_empty() {
            self.schema
        } else {
            let messages: Vec<String> = self.skipped.iter().map(ToString::to_string).collect();
            let mut metadata = self.schema.metadata().clone();
            metadata.insert(
                SKIPPED_METADATA_KEY.to_string(),
                serde_json::Value::from(messages).to_string(),
            );
            Arc::new(self.schema.as_ref().clone().with_metadata(metadata))
        };
        RecordBatchIterator::new(batches.into_iter(), schema)
    }
}

/// Reads the table at `path` (a run's `metrics/run_0001.csv` or a named table) as one record
/// batch with inferred column types. Safe while others write it (see the module docs).
pub fn read_table(path: impl AsRef<Path>) -> Result<RecordBatch> {
    read_table_chunks(path, 0)?.concat()
}

/// Reads the table at `path` as a [`Table`] of one batch per chunk parsed in parallel (no
/// concatenation), with up to `threads` threads (0: the default, see the module docs).
pub fn read_table_chunks(path: impl AsRef<Path>, threads: usize) -> Result<Table> {
    let path = path.as_ref();
    let threads = pool::threads_or_default(threads);
    let parsed = parse::read_file(path, threads)?;
    table_of(parsed, path, || parse::read_file(path, 1))
}

/// Parses the bytes of a table file as [`read_table`] reads it (`path` names it in errors).
pub fn parse_table(bytes: &[u8], path: impl AsRef<Path>) -> Result<RecordBatch> {
    let path = path.as_ref();
    let parsed = parse::parse_bytes(bytes, path, pool::threads_or_default(0))?;
    table_of(parsed, path, || parse::parse_bytes(bytes, path, 1))?.concat()
}

/// One file's chunks as batches of a common schema; `reparse` parses the file again, only to
/// name the line of text an array refused.
fn table_of(
    parsed: parse::Parsed,
    path: &Path,
    reparse: impl FnOnce() -> Result<parse::Parsed>,
) -> Result<Table> {
    let types = parse::column_types(&parsed);
    let schema = Arc::new(Schema::new(
        parsed
            .names
            .iter()
            .zip(&types)
            .map(|(name, &ty)| Field::new(name, column::data_type(ty), true))
            .collect::<Vec<_>>(),
    ));
    let mut batches = Vec::with_capacity(parsed.chunks.len());
    for chunk in parsed.chunks {
        let columns = chunk
            .into_iter()
            .zip(&types)
            .map(|(c, &ty)| column::array(c, ty))
            .collect::<std::result::Result<Vec<_>, String>>();
        match columns {
            Ok(columns) => batches.push(batch(&schema, columns)?),
            Err(reason) => return Err(parse::text_error(path, reason, reparse)),
        }
    }
    Ok(Table {
        schema,
        batches,
        skipped: Arc::default(),
    })
}

/// A batch whose columns were built for `schema` (a mismatch is a bug in this module).
fn batch(schema: &SchemaRef, columns: Vec<arrow_array::ArrayRef>) -> Result<RecordBatch> {
    let rows = columns.first().map_or(0, |c| c.len());
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| Error::invalid_state(format!("expman built an inconsistent batch: {e}")))
}
