//! Metrics tables: append-only, schema-evolving CSV files that many processes write at once.
//!
//! File format: a header `timestamp,run_id,<fields in first-seen order>` then one line per
//! saved row. A row with a field the header lacks widens the header by an atomic rewrite; rows
//! written before a widening stay shorter and read as empty (null) in the new columns.

pub(crate) mod columnar;
mod coordination;
mod file_ops;
mod flat;
mod format;
pub(crate) mod framing;
mod pad;
mod protocol;
mod reader;
mod row;
mod summary;
mod value;
mod writer;

pub use columnar::read_columns;
pub use flat::{FlatColumn, FlatTable, FlatText};
pub(crate) use format::{check_no_newline, table_columns};
pub(crate) use reader::complete_records;
pub use reader::{ColumnType, Metrics, read_table};
pub(crate) use reader::{open_quote_swallows_rows, unclosed_quote};
#[cfg(feature = "server")]
pub(crate) use reader::{parse_records, visit_records};
pub use row::FieldId;
pub use summary::{ColumnSummary, RunSummary, STEP_COLUMNS, TableSummary, summary};
pub use value::Value;
pub use writer::{SyncPolicy, TableWriter};

/// The two columns every table starts with.
pub const FIXED_COLUMNS: [&str; 2] = ["timestamp", "run_id"];

/// Longest accepted field name, in bytes (UTF-8): a column name longer than this is a bug in
/// the caller (a value passed as a name), not a name anyone reads.
pub const MAX_FIELD_NAME_LEN: usize = 256;

/// Checks a field name: not empty, at most [`MAX_FIELD_NAME_LEN`] bytes, not one of the fixed
/// columns, no control characters.
pub fn validate_field(name: &str) -> crate::Result<()> {
    let reason = if name.is_empty() {
        "field names must not be empty".to_string()
    } else if name.len() > MAX_FIELD_NAME_LEN {
        format!(
            "it is {} bytes long; field names are at most {MAX_FIELD_NAME_LEN} bytes",
            name.len()
        )
    } else if FIXED_COLUMNS.contains(&name) {
        "`timestamp` and `run_id` are written by expman itself; rename your field".to_string()
    } else if name.chars().any(char::is_control) {
        "field names must not contain control characters (newline, tab, NUL, ...)".to_string()
    } else {
        return Ok(());
    };
    Err(crate::Error::invalid_name("field name", name, reason))
}
