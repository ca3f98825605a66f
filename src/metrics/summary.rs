//! Metric summaries: for every numeric column of every run in a table, its last value, minimum,
//! maximum, count, and the step (or row) where the minimum and maximum were reached, kept up to
//! date incrementally as rows are appended; and the run's *config-row parameters*.
//!
//! A [`TableSummary`] remembers where in the file it stopped; [`TableSummary::update`] reads
//! only the bytes appended since, so keeping summaries of many growing tables costs time in
//! proportion to the new rows, not to the tables' length. A table that was replaced (a
//! widening renames a new file into place) or shrank is summarised again from the start.
//!
//! Rows are told apart by their `run_id` column: each run has its own [`RunSummary`].
//!
//! A column is numeric while every non-empty cell reads as a number (`NaN` and `inf`
//! included); the first text cell drops it. `NaN` counts as a value but never becomes the
//! minimum or the maximum. The step of a row is the value of its `step` column (or
//! `global_step`, `iteration`, `epoch`, the first of them the table has), else its row number
//! within the run (from 0).
//!
//! # The config-row rule
//!
//! The seed logged hyperparameters as one row of the metrics table
//! (`upd_row(model=..., batch_size=..., learning_rate=...)`) before the first metric. Within one
//! run's rows, a *metric column* is a column with values in at least two rows; the run's *first
//! metric row* is the first row holding a value of a metric column. A column whose values all
//! lie before the first metric row is a parameter of that run, and so is a text column whose
//! values are all the same string. Parameters are not metric summaries. A run with no metric
//! column has no config row. `timestamp`, `run_id` and the step-like columns never count as
//! evidence (a step column alone does not make a first metric row); the step column itself is a
//! metric. A value logged once *after* the metrics started (a final `test_acc`) stays a metric.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::FIXED_COLUMNS;
use super::format::table_columns;
use super::framing;
use super::reader::{convert, infer, open_quote_swallows_rows, parse_records, unclosed_quote};
use crate::error::{Error, IoContext, Result};
use crate::params::{ParamValue, Params};

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

/// Whether a text column has held one string only.
#[derive(Debug, Clone, PartialEq)]
enum Text {
    /// No text cell yet.
    None,
    /// Every cell so far was this text.
    Constant(String),
    /// Different strings, or text mixed with numbers.
    Varied,
}

/// What one run knows of one column.
#[derive(Debug, Clone)]
struct Column {
    /// Rows (of the run) holding a value.
    count: u64,
    /// The run row of the first and of the last value.
    first_row: u64,
    last_row: u64,
    /// The numeric summary, while every value is a number.
    numeric: Option<ColumnSummary>,
    text: Text,
    /// The latest cell, for reporting the column as a parameter (the buffer is reused).
    last_cell: String,
}

impl Column {
    fn new() -> Column {
        Column {
            count: 0,
            first_row: 0,
            last_row: 0,
            numeric: None,
            text: Text::None,
            last_cell: String::new(),
        }
    }
}

/// One run's part of a table: its rows, metric summaries and config-row parameters.
#[derive(Debug, Clone)]
pub struct RunSummary {
    run_id: String,
    rows: u64,
    header: Arc<[String]>,
    /// By header position (empty until the column first holds a value in this run).
    columns: Vec<Column>,
    /// The run row of the first metric row, once there is a metric column.
    first_metric_row: Option<u64>,
}

impl RunSummary {
    fn new(run_id: String, header: Arc<[String]>) -> RunSummary {
        RunSummary {
            run_id,
            rows: 0,
            columns: vec![Column::new(); header.len()],
            header,
            first_metric_row: None,
        }
    }

    /// The run's id, as in its rows' `run_id` column.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// How many rows the run has in the table.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether column `index` is a parameter of the run by the config-row rule.
    fn is_param_at(&self, index: usize) -> bool {
        let column = &self.columns[index];
        if column.count == 0 || is_step_like(&self.header[index]) {
            return false;
        }
        let before_metrics = self
            .first_metric_row
            .is_some_and(|first| column.last_row < first);
        before_metrics || matches!(column.text, Text::Constant(_))
    }

    /// Whether `column` is a parameter of the run (see the module docs).
    pub fn is_param(&self, column: &str) -> bool {
        self.position(column).is_some_and(|i| self.is_param_at(i))
    }

    fn position(&self, column: &str) -> Option<usize> {
        self.header.iter().position(|c| c == column)
    }

    /// The summary of the numeric, non-parameter column `column`.
    pub fn metric(&self, column: &str) -> Option<&ColumnSummary> {
        let i = self.position(column)?;
        if self.is_param_at(i) {
            return None;
        }
        self.columns[i].numeric.as_ref()
    }

    /// The numeric columns that are not parameters, with their summaries, in header order.
    pub fn metrics(&self) -> impl Iterator<Item = (&str, &ColumnSummary)> + '_ {
        (0..self.columns.len()).filter_map(move |i| {
            let summary = self.columns[i].numeric.as_ref()?;
            (!self.is_param_at(i)).then_some((self.header[i].as_str(), summary))
        })
    }

    /// The run's config-row parameters with their (last) values, typed as the table reader
    /// would type the cell.
    pub fn params(&self) -> Params {
        (0..self.columns.len())
            .filter(|&i| self.is_param_at(i))
            .filter_map(|i| {
                let cell = &self.columns[i].last_cell;
                let value = convert(cell.clone(), infer(std::iter::once(cell.as_str())));
                Some((self.header[i].clone(), ParamValue::from_value(&value)?))
            })
            .collect()
    }

    /// Folds one row of this run in.
    fn add(&mut self, record: &[String], step_column: Option<usize>) {
        let row = self.rows;
        let step = step_column
            .and_then(|i| record[i].parse::<f64>().ok())
            .unwrap_or(row as f64);
        for (i, cell) in record.iter().enumerate().skip(FIXED_COLUMNS.len()) {
            if cell.is_empty() {
                continue;
            }
            let column = &mut self.columns[i];
            if column.count == 0 {
                column.first_row = row;
            }
            column.count += 1;
            column.last_row = row;
            column.last_cell.clear();
            column.last_cell.push_str(cell);
            match cell.parse::<f64>() {
                Ok(value) => match (&column.text, &mut column.numeric) {
                    (Text::None, Some(summary)) => summary.add(value, step),
                    (Text::None, None) => column.numeric = Some(ColumnSummary::first(value, step)),
                    _ => column.text = Text::Varied,
                },
                Err(_) => {
                    column.text = match std::mem::replace(&mut column.text, Text::Varied) {
                        // Numbers before this text: a mixed column, neither metric nor param.
                        Text::None if column.count > 1 => Text::Varied,
                        Text::None => Text::Constant(cell.clone()),
                        Text::Constant(first) if first == *cell => Text::Constant(first),
                        _ => Text::Varied,
                    };
                    column.numeric = None;
                }
            }
            if column.count == 2 && !is_step_like(&self.header[i]) {
                let first = column.first_row;
                self.first_metric_row = Some(self.first_metric_row.map_or(first, |f| f.min(first)));
            }
        }
        self.rows += 1;
    }
}

/// Whether `name` is a step-like column, which is never evidence for the config-row rule.
fn is_step_like(name: &str) -> bool {
    STEP_COLUMNS.contains(&name) || FIXED_COLUMNS.contains(&name)
}

/// The per-run summaries of a table, and where reading stopped.
#[derive(Debug, Clone, Default)]
pub struct TableSummary {
    /// Complete rows read, of every run.
    pub rows: u64,
    /// The runs, in the order their first row appears.
    runs: Vec<RunSummary>,
    by_id: HashMap<String, usize>,
    /// The file's inode and the offset just past the last complete row read.
    inode: u64,
    offset: u64,
    /// The header's columns, when read.
    header: Option<Arc<[String]>>,
    /// The header line as read, newline included.
    header_bytes: Vec<u8>,
    path: PathBuf,
}

impl TableSummary {
    /// The summary of the table at `path`, read whole.
    pub fn of(path: impl Into<PathBuf>) -> Result<TableSummary> {
        let mut summary = TableSummary::empty(path);
        summary.update()?;
        Ok(summary)
    }

    /// A summary of the table at `path` that has read nothing yet: the first
    /// [`update`](TableSummary::update) reads it whole.
    pub fn empty(path: impl Into<PathBuf>) -> TableSummary {
        TableSummary {
            path: path.into(),
            ..TableSummary::default()
        }
    }

    /// The table's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The runs, in the order their first row appears in the table.
    pub fn runs(&self) -> &[RunSummary] {
        &self.runs
    }

    /// The run `run_id`, if it has rows.
    pub fn run(&self, run_id: &str) -> Option<&RunSummary> {
        self.by_id.get(run_id).map(|&i| &self.runs[i])
    }

    /// The run whose first row came last (the latest run in a table shared by runs; the only
    /// one in a run's own table).
    pub fn latest(&self) -> Option<&RunSummary> {
        self.runs.last()
    }

    /// Reads the rows appended since the last call (all of them after a replacement) and
    /// folds them in; true when anything changed. A table that does not exist yet summarises
    /// as empty.
    pub fn update(&mut self) -> Result<bool> {
        // The common case while polling many tables: nothing appended. One `stat`, no open.
        if let Ok(meta) = std::fs::metadata(&self.path)
            && self.header.is_some()
            && meta.ino() == self.inode
            && meta.len() == self.offset
        {
            return Ok(false);
        }
        let file = match crate::store::open_regular(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let changed = self.header.is_some();
                *self = TableSummary::empty(std::mem::take(&mut self.path));
                return Ok(changed);
            }
            Err(e) => return Err(Error::io("open the metrics table", &self.path, e)),
        };
        let meta = file.metadata().at("stat", &self.path)?;
        let mut changed = false;
        if meta.ino() != self.inode
            || meta.len() < self.offset
            || self.header.is_none()
            || (meta.len() > self.offset && !self.same_header(&file)?)
        {
            changed = self.header.is_some();
            *self = TableSummary {
                inode: meta.ino(),
                ..TableSummary::empty(std::mem::take(&mut self.path))
            };
            if !self.read_header(&file, meta.len())? {
                return Ok(changed);
            }
            changed = true;
        }
        if meta.len() == self.offset {
            return Ok(changed);
        }
        let mut bytes = vec![0u8; (meta.len() - self.offset) as usize];
        file.read_exact_at(&mut bytes, self.offset)
            .at("read the metrics table", &self.path)?;
        let (complete, tail) = framing::complete_prefix(&bytes);
        if let framing::Tail::OpenQuote(start) = tail {
            // As the readers say: a quote that opens and never closes while rows follow is a
            // stray one, not a row being written; summarising the rows before it would pass
            // a part of the table off as all of it.
            let start = self.offset + start;
            if open_quote_swallows_rows(&file, start, meta.len())
                .at("read the metrics table", &self.path)?
            {
                let mut before = vec![0u8; start as usize];
                file.read_exact_at(&mut before, 0)
                    .at("read the metrics table", &self.path)?;
                let line = memchr::memchr_iter(b'\n', &before).count() as u64 + 1;
                return Err(Error::corrupt(&self.path, Some(line), unclosed_quote(None)));
            }
        }
        let header = self.header.clone().unwrap_or_else(|| Arc::from(Vec::new()));
        let records = parse_records(&bytes[..complete], header.len())
            .map_err(|(line, reason)| Error::corrupt(&self.path, line, reason))?;
        changed |= !records.is_empty();
        self.fold(&header, records);
        self.offset += complete as u64;
        Ok(changed)
    }

    /// Whether the file still starts with the header read before. A widening renames a new
    /// file into place, and the file system may give it the inode number the old one had: the
    /// header (a few hundred bytes, read only when the file grew) tells them apart.
    fn same_header(&self, file: &File) -> Result<bool> {
        let mut head = vec![0u8; self.header_bytes.len()];
        file.read_exact_at(&mut head, 0)
            .at("read the header of", &self.path)?;
        Ok(head == self.header_bytes)
    }

    /// Reads the header line; false when the file has none yet.
    fn read_header(&mut self, file: &File, size: u64) -> Result<bool> {
        let mut head = vec![0u8; size.min(1 << 20) as usize];
        file.read_exact_at(&mut head, 0)
            .at("read the header of", &self.path)?;
        let Some(end) = memchr::memchr(b'\n', &head) else {
            super::check_no_newline(&head, &self.path)?;
            return Ok(false);
        };
        self.header = Some(Arc::from(table_columns(&head[..end], &self.path)?));
        self.header_bytes = head[..=end].to_vec();
        self.offset = end as u64 + 1;
        Ok(true)
    }

    fn fold(&mut self, header: &Arc<[String]>, records: Vec<Vec<String>>) {
        let step_column = STEP_COLUMNS
            .iter()
            .find_map(|name| header.iter().position(|c| c == name));
        let run_column = FIXED_COLUMNS.iter().position(|c| *c == "run_id");
        let mut current: Option<usize> = None;
        for record in records {
            let run_id = run_column.map_or("", |i| record[i].as_str());
            // Consecutive rows almost always belong to the same run: one comparison, no lookup.
            let index = match current {
                Some(i) if self.runs[i].run_id == run_id => i,
                _ => match self.by_id.get(run_id) {
                    Some(&i) => i,
                    None => {
                        self.runs
                            .push(RunSummary::new(run_id.to_string(), header.clone()));
                        self.by_id.insert(run_id.to_string(), self.runs.len() - 1);
                        self.runs.len() - 1
                    }
                },
            };
            current = Some(index);
            self.runs[index].add(&record, step_column);
            self.rows += 1;
        }
    }
}

/// The summary of the table at `path` (see [`TableSummary`]).
pub fn summary(path: impl AsRef<Path>) -> Result<TableSummary> {
    TableSummary::of(path.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&str]) -> TableSummary {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, rows.join("\n") + "\n").unwrap();
        TableSummary::of(&path).unwrap()
    }

    #[test]
    fn the_seeds_config_row_is_params() {
        let t = table(&[
            "timestamp,run_id,model,batch_size,learning_rate,step,loss,test_acc",
            "1,run_0001,resnet,32,0.01,,,",
            "2,run_0001,,,,0,1.5,",
            "3,run_0001,,,,1,1.2,",
            "4,run_0001,,,,2,0.9,",
            "5,run_0001,,,,,,0.91",
        ]);
        let run = t.latest().unwrap();
        let params = run.params();
        assert_eq!(params["model"], ParamValue::Str("resnet".into()));
        assert_eq!(params["batch_size"], ParamValue::Int(32));
        assert_eq!(params["learning_rate"], ParamValue::Float(0.01));
        assert_eq!(params.len(), 3);
        let metrics: Vec<&str> = run.metrics().map(|(n, _)| n).collect();
        assert_eq!(
            metrics,
            ["step", "loss", "test_acc"],
            "a final test_acc stays a metric"
        );
        assert_eq!(run.metric("test_acc").unwrap().last, 0.91);
        assert_eq!(run.metric("loss").unwrap().min_step, 2.0);
    }

    #[test]
    fn constant_text_is_a_param_and_varied_text_is_neither() {
        let t = table(&[
            "timestamp,run_id,phase,opt,loss",
            "1,r,train,adam,1",
            "2,r,eval,adam,2",
        ]);
        let run = t.latest().unwrap();
        assert_eq!(run.params().keys().collect::<Vec<_>>(), ["opt"]);
        assert!(!run.is_param("phase"));
        assert!(run.metric("phase").is_none());
    }

    #[test]
    fn no_metric_column_means_no_config_row() {
        let t = table(&["timestamp,run_id,a,step", "1,r,1,0", "2,r,,1"]);
        let run = t.latest().unwrap();
        assert!(
            run.params().is_empty(),
            "a step column alone is no evidence"
        );
        assert_eq!(run.metric("a").unwrap().count, 1);
    }

    #[test]
    fn runs_are_apart() {
        let t = table(&[
            "timestamp,run_id,lr,acc",
            "1,run_0001,0.1,",
            "2,run_0001,,0.5",
            "3,run_0001,,0.6",
            "4,run_0002,,0.7",
            "5,run_0002,,0.2",
        ]);
        assert_eq!(t.runs().len(), 2);
        let one = t.run("run_0001").unwrap();
        assert_eq!(one.params()["lr"], ParamValue::Float(0.1));
        assert_eq!((one.metric("acc").unwrap().max, one.rows()), (0.6, 3));
        let two = t.latest().unwrap();
        assert_eq!(two.run_id(), "run_0002");
        let acc = two.metric("acc").unwrap();
        assert_eq!((acc.min, acc.min_step, acc.count), (0.2, 1.0, 2));
        assert!(two.params().is_empty());
    }
}
