//! Metric summaries: for every numeric column of a table, its last value, minimum, maximum,
//! count, and the step (or row) where the minimum and maximum were reached, kept up to date
//! incrementally as rows are appended.
//!
//! A [`TableSummary`] remembers where in the file it stopped; [`TableSummary::update`] reads
//! only the bytes appended since, so keeping summaries of many growing tables costs time in
//! proportion to the new rows, not to the tables' length. A table that was replaced (a
//! widening renames a new file into place) or shrank is summarised again from the start.
//!
//! A column is numeric while every non-empty cell reads as a number (`NaN` and `inf`
//! included); the first text cell drops it. `NaN` counts as a value but never becomes the
//! minimum or the maximum. The step of a row is the value of its `step` column (or
//! `global_step`, `iteration`, `epoch`, the first of them the table has), else its row number
//! (from 0).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::FIXED_COLUMNS;
use super::format::table_columns;
use super::framing;
use super::reader::parse_records;
use crate::error::{Error, IoContext, Result};

/// The columns that name a row's step, in order of preference.
pub const STEP_COLUMNS: [&str; 4] = ["step", "global_step", "iteration", "epoch"];

/// The summary of one numeric column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSummary {
    /// The value in the last row that has one.
    pub last: f64,
    /// The smallest value (`NaN` only when every value is `NaN`).
    pub min: f64,
    /// The largest value (`NaN` only when every value is `NaN`).
    pub max: f64,
    /// How many rows have a value.
    pub count: u64,
    /// The step (see the module docs) of the row where `min` was first reached.
    pub min_step: f64,
    /// The step of the row where `max` was first reached.
    pub max_step: f64,
}

impl ColumnSummary {
    fn first(value: f64, step: f64) -> ColumnSummary {
        ColumnSummary {
            last: value,
            min: value,
            max: value,
            count: 1,
            min_step: step,
            max_step: step,
        }
    }

    fn add(&mut self, value: f64, step: f64) {
        self.last = value;
        self.count += 1;
        if value < self.min || (self.min.is_nan() && !value.is_nan()) {
            self.min = value;
            self.min_step = step;
        }
        if value > self.max || (self.max.is_nan() && !value.is_nan()) {
            self.max = value;
            self.max_step = step;
        }
    }
}

/// The summaries of a table's numeric columns, and where reading stopped.
#[derive(Debug, Clone, Default)]
pub struct TableSummary {
    /// Complete rows read.
    pub rows: u64,
    /// Each numeric column's summary, by name (`timestamp` and `run_id` are never numeric).
    pub columns: BTreeMap<String, ColumnSummary>,
    /// Columns that held a non-number: never summarised again.
    text_columns: Vec<String>,
    /// The file's inode and the offset just past the last complete row read.
    inode: u64,
    offset: u64,
    /// The header's columns, when read.
    header: Option<Vec<String>>,
    path: PathBuf,
}

impl TableSummary {
    /// The summary of the table at `path`, read whole.
    pub fn of(path: impl Into<PathBuf>) -> Result<TableSummary> {
        let mut summary = TableSummary {
            path: path.into(),
            ..TableSummary::default()
        };
        summary.update()?;
        Ok(summary)
    }

    /// Reads the rows appended since the last call (all of them after a replacement) and
    /// folds them in. A table that does not exist yet summarises as empty.
    pub fn update(&mut self) -> Result<()> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                *self = TableSummary {
                    path: std::mem::take(&mut self.path),
                    ..TableSummary::default()
                };
                return Ok(());
            }
            Err(e) => return Err(Error::io("open the metrics table", &self.path, e)),
        };
        let meta = file.metadata().at("stat", &self.path)?;
        if meta.ino() != self.inode || meta.len() < self.offset || self.header.is_none() {
            *self = TableSummary {
                path: std::mem::take(&mut self.path),
                inode: meta.ino(),
                ..TableSummary::default()
            };
            if !self.read_header(&file, meta.len())? {
                return Ok(());
            }
        }
        let mut bytes = vec![0u8; (meta.len() - self.offset) as usize];
        file.read_exact_at(&mut bytes, self.offset)
            .at("read the metrics table", &self.path)?;
        let complete = framing::complete_prefix(&bytes).0;
        let columns = self.header.clone().unwrap_or_default();
        let records = parse_records(&bytes[..complete], columns.len())
            .map_err(|(line, reason)| Error::corrupt(&self.path, line, reason))?;
        self.fold(&columns, records);
        self.offset += complete as u64;
        Ok(())
    }

    /// Reads the header line; false when the file has none yet.
    fn read_header(&mut self, file: &File, size: u64) -> Result<bool> {
        let mut head = vec![0u8; size.min(1 << 20) as usize];
        file.read_exact_at(&mut head, 0)
            .at("read the header of", &self.path)?;
        let Some(end) = memchr::memchr(b'\n', &head) else {
            return Ok(false);
        };
        self.header = Some(table_columns(&head[..end], &self.path)?);
        self.offset = end as u64 + 1;
        Ok(true)
    }

    fn fold(&mut self, columns: &[String], records: Vec<Vec<String>>) {
        let step_column = STEP_COLUMNS
            .iter()
            .find_map(|name| columns.iter().position(|c| c == name));
        for record in records {
            let step = step_column
                .and_then(|i| record[i].parse::<f64>().ok())
                .unwrap_or(self.rows as f64);
            for (name, cell) in columns.iter().zip(&record).skip(FIXED_COLUMNS.len()) {
                if cell.is_empty() || self.text_columns.contains(name) {
                    continue;
                }
                let Ok(value) = cell.parse::<f64>() else {
                    self.columns.remove(name);
                    self.text_columns.push(name.clone());
                    continue;
                };
                match self.columns.get_mut(name) {
                    Some(summary) => summary.add(value, step),
                    None => {
                        self.columns
                            .insert(name.clone(), ColumnSummary::first(value, step));
                    }
                }
            }
            self.rows += 1;
        }
    }
}

/// The summary of the table at `path` (see [`TableSummary`]).
pub fn summary(path: impl AsRef<Path>) -> Result<TableSummary> {
    TableSummary::of(path.as_ref())
}
