//! One-shot listings: [`list`] (filter and sort a base directory's experiments), and
//! [`Listing`], the rows of `EXP ls` with their columns in table, CSV or JSON form.

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::index::Catalog;
use super::record::{ExperimentRecord, field_catalog};
use crate::error::{Error, Result};
use crate::query::{Aggregate, FieldPath, Query, QueryError, SortKey};

/// Lists the experiments of `base` that `where_` matches (all when `None` or empty), sorted by
/// `sort` (`[-]FIELD` each, the first deciding; by id when empty). A query or sort key that
/// does not parse, or names a parameter or metric no experiment has, is a
/// [`Config`](crate::ErrorKind::Config) error whose message shows the spot.
pub fn list(base: &Path, where_: Option<&str>, sort: &[&str]) -> Result<Vec<ExperimentRecord>> {
    let query = Query::parse(where_.unwrap_or("")).map_err(|e| query_error("where", &e))?;
    let keys = sort
        .iter()
        .map(|k| SortKey::parse(k).map_err(|e| query_error("sort", &e)))
        .collect::<Result<Vec<SortKey>>>()?;
    let mut catalog = Catalog::new(base);
    catalog.refresh()?;
    check(&query, &catalog).map_err(|e| query_error("where", &e))?;
    Ok(catalog.select(&query, &keys).into_iter().cloned().collect())
}

/// Checks the parameters and metrics `query` names against those `catalog` has; an empty
/// catalog has nothing to check against (a script may list a directory before it fills).
pub fn check(query: &Query, catalog: &Catalog) -> std::result::Result<(), QueryError> {
    if catalog.records().len() == 0 {
        return Ok(());
    }
    query.check(&catalog.fields())
}

fn query_error(origin: &str, e: &QueryError) -> Error {
    Error::config(format!("<{origin}>"), e.render())
}

/// How `EXP ls` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// RFC 4180 CSV with a header.
    Csv,
    /// A JSON array of objects keyed by field name.
    Json,
}

/// Rows of experiments with chosen columns, ready to print.
#[derive(Debug, Clone)]
pub struct Listing<'a> {
    /// The columns, as fields.
    pub columns: Vec<FieldPath>,
    /// The rows.
    pub records: Vec<&'a ExperimentRecord>,
}

/// How many metric columns the default columns show.
const DEFAULT_METRICS: usize = 3;

impl<'a> Listing<'a> {
    /// The default columns for `records`: status, name, the parameters whose values differ
    /// between them, and the last value of the first few metric columns.
    pub fn default_columns(records: &[&ExperimentRecord]) -> Vec<FieldPath> {
        let catalog = field_catalog(records.iter().copied());
        let mut columns = vec![FieldPath::Status, FieldPath::Name];
        for name in catalog.params() {
            let mut values = records.iter().map(|r| r.params.get(name));
            let first = values.next().flatten();
            if values.any(|v| v != first) {
                columns.push(FieldPath::Param(name.clone()));
            }
        }
        columns.extend(
            catalog
                .metrics()
                .iter()
                .filter(|m| !crate::metrics::STEP_COLUMNS.contains(&m.as_str()))
                .take(DEFAULT_METRICS)
                .map(|m| FieldPath::Metric {
                    column: m.clone(),
                    aggregate: Aggregate::Last,
                }),
        );
        columns
    }

    /// Writes the listing in `format` to `out`.
    pub fn write(&self, format: Format, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, &self.json())?;
                writeln!(out)
            }
            Format::Csv => {
                let mut csv = csv::Writer::from_writer(&mut *out);
                csv.write_record(self.columns.iter().map(ToString::to_string))?;
                for record in &self.records {
                    csv.write_record(self.columns.iter().map(|c| record.field_text(c)))?;
                }
                csv.flush()
            }
            Format::Table => self.write_table(out),
        }
    }

    /// The rows as JSON objects keyed by field name (`name`, `params.lr`,
    /// `metrics.val_acc.max`); the keys come out sorted (JSON objects have no order; the table
    /// and CSV keep the columns' order).
    pub fn json(&self) -> Json {
        Json::Array(
            self.records
                .iter()
                .map(|record| {
                    let row: Map<String, Json> = self
                        .columns
                        .iter()
                        .map(|c| (c.to_string(), record.field_json(c)))
                        .collect();
                    Json::Object(row)
                })
                .collect(),
        )
    }

    fn write_table(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let header: Vec<String> = self.columns.iter().map(ToString::to_string).collect();
        let rows: Vec<Vec<String>> = self
            .records
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .map(|c| cell(&r.field_text(c)))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|row| row[i].chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for line in std::iter::once(&header).chain(&rows) {
            let mut text = String::new();
            for (i, (value, width)) in line.iter().zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(value);
                if i + 1 < line.len() {
                    text.extend(std::iter::repeat_n(' ', width - value.chars().count()));
                }
            }
            writeln!(out, "{text}")?;
        }
        Ok(())
    }
}

/// A table cell: on one line, and not so long that one cell pushes the rest off the screen.
fn cell(text: &str) -> String {
    const MAX: usize = 40;
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= MAX {
        flat
    } else {
        flat.chars().take(MAX - 1).chain(['…']).collect()
    }
}
