//! The line format of a metrics table: the header line, row lines and their timestamps.
//!
//! A table is `timestamp,run_id,<fields in first-seen order>` and then one line per row; cells
//! are CSV (RFC 4180) with a quoted cell only where the text needs it. Where records end in any
//! bytes is the business of [`super::framing`].

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::FIXED_COLUMNS;
use super::row::{FieldId, PendingRow};
use super::value::write_text;
use crate::error::{Error, Result};

/// Checks bytes from the start of a table that hold no `\n`: a header still being written is
/// fine, but a `\r` with bytes after it ends a line (field names hold no control character),
/// so the file ends its lines in CR alone, where no reader would find a row and the table
/// would read as empty.
pub(crate) fn check_no_newline(head: &[u8], path: &Path) -> Result<()> {
    match memchr::memchr(b'\r', head) {
        Some(i) if i + 1 < head.len() => Err(Error::corrupt(
            path,
            Some(1),
            "its lines end in a carriage return alone (CR, as classic Mac programs and Excel's \
             \"CSV (Macintosh)\" save), which expman does not read: save it again as CSV with \
             LF or CRLF line ends, or convert it with `tr '\\r' '\\n'`",
        )),
        _ => Ok(()),
    }
}

/// Every column of a table whose header line is `line`: the fixed columns, then the fields.
pub(crate) fn table_columns(line: &[u8], path: &Path) -> Result<Vec<String>> {
    let mut columns: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
    columns.extend(parse_header(line, path)?);
    Ok(columns)
}

/// Parses a header line and checks it is one of ours; returns the user columns.
pub(crate) fn parse_header(line: &[u8], path: &Path) -> Result<Vec<String>> {
    let names = header_names(line, path)?;
    // A name twice (a hand edit) would send every reader to one of the two columns and every
    // writer to the other: readers would show wrong values and appended ones would vanish.
    // Empty names (trailing commas of other tools) are no field's, so they may repeat.
    let mut seen = std::collections::HashMap::with_capacity(names.len() + 2);
    for (column, name) in FIXED_COLUMNS
        .iter()
        .copied()
        .chain(names.iter().map(String::as_str))
        .enumerate()
    {
        if name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(name, column) {
            return Err(Error::corrupt(
                path,
                Some(1),
                format!(
                    "the header names column `{name}` twice (columns {} and {}); rename or \
                     remove one of them in line 1, so that its values go to one column",
                    first + 1,
                    column + 1
                ),
            ));
        }
    }
    Ok(names)
}

/// The user columns of a header line of ours (no check of the names).
fn header_names(line: &[u8], path: &Path) -> Result<Vec<String>> {
    // A file that went through a Windows editor ends its lines with CRLF, and one saved by a
    // spreadsheet may start with a byte-order mark.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    // Without quotes or line breaks a header is its text split at commas: no CSV reader to
    // build (which costs more than the header of a 10,000-row table when reading many runs).
    if !line.iter().any(|b| matches!(b, b'"' | b'\r' | b'\n'))
        && let Ok(text) = std::str::from_utf8(line)
    {
        let mut names = text.split(',');
        if names.next() == Some(FIXED_COLUMNS[0]) && names.next() == Some(FIXED_COLUMNS[1]) {
            return Ok(names.map(str::to_string).collect());
        }
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let mut record = csv::StringRecord::new();
    let ok = reader.read_record(&mut record).unwrap_or(false);
    if !ok
        || record.len() < 2
        || record.get(0) != Some(FIXED_COLUMNS[0])
        || record.get(1) != Some(FIXED_COLUMNS[1])
    {
        return Err(Error::corrupt(
            path,
            Some(1),
            "not an expman metrics table: its header must start with `timestamp,run_id`; \
             move this file out of metrics/, or use another table name",
        ));
    }
    Ok(record.iter().skip(2).map(str::to_string).collect())
}

/// Writes a header line: the fixed columns, then `columns`.
fn write_header(columns: &[String], line: &mut Vec<u8>) {
    line.extend_from_slice(FIXED_COLUMNS[0].as_bytes());
    line.push(b',');
    line.extend_from_slice(FIXED_COLUMNS[1].as_bytes());
    for column in columns {
        line.push(b',');
        write_text(column, line);
    }
    line.push(b'\n');
}

/// Builds header and row lines into one reusable buffer, with the clock for timestamps.
#[derive(Default)]
pub(super) struct LineBuilder {
    clock: Clock,
    /// The line being built (whole rows go out in one `write(2)` from here).
    pub(super) line: Vec<u8>,
}

impl LineBuilder {
    /// Starts a new line with `prefix` (a separator that closes a foreign record, or nothing).
    pub(super) fn start(&mut self, prefix: &[u8]) -> &mut Self {
        self.line.clear();
        self.line.extend_from_slice(prefix);
        self
    }

    /// Adds a header line: the fixed columns, then `columns`.
    pub(super) fn header(&mut self, columns: &[String]) -> &mut Self {
        write_header(columns, &mut self.line);
        self
    }

    /// Adds a row: the timestamp, the run id, then each column's value in header order (empty
    /// for a column the row does not fill). Returns the timestamp's Unix second.
    pub(super) fn row(&mut self, field_of_column: &[Option<FieldId>], row: &PendingRow) -> i64 {
        let second = self.clock.write_now(&mut self.line);
        self.line.push(b',');
        self.line.extend_from_slice(row.run_id_cell().as_bytes());
        for field in field_of_column {
            self.line.push(b',');
            if let Some(value) = field.and_then(|id| row.value(id)) {
                value.write_csv(&mut self.line);
            }
        }
        self.line.push(b'\n');
        second
    }
}

/// ISO-8601 local timestamps with microseconds, formatted once per second.
#[derive(Default)]
struct Clock {
    second: i64,
    prefix: Vec<u8>,
}

impl Clock {
    /// Writes the current time; returns its Unix second.
    fn write_now(&mut self, out: &mut Vec<u8>) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let second = now.as_secs() as i64;
        if self.prefix.is_empty() || second != self.second {
            self.second = second;
            self.prefix.clear();
            let local = chrono::DateTime::from_timestamp(second, 0)
                .unwrap_or_default()
                .with_timezone(&chrono::Local);
            let _ = write!(self.prefix, "{}", local.format("%Y-%m-%dT%H:%M:%S"));
        }
        out.extend_from_slice(&self.prefix);
        let micros = now.subsec_micros();
        let mut digits = [b'.', b'0', b'0', b'0', b'0', b'0', b'0'];
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(micros).as_bytes();
        digits[7 - text.len()..].copy_from_slice(text);
        out.extend_from_slice(&digits);
        second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split at commas is the CSV reader's reading of every header it takes.
    #[test]
    fn a_plain_header_reads_as_the_csv_reader_reads_it() {
        let by_csv = |line: &[u8]| {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line);
            let mut record = csv::StringRecord::new();
            reader.read_record(&mut record).unwrap();
            record
                .iter()
                .skip(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        for line in [
            "timestamp,run_id",
            "timestamp,run_id,loss",
            "timestamp,run_id,,loss,",
            "timestamp,run_id,a b,é,x.y",
            "timestamp,run_id,\"a,b\",c",
            "timestamp,run_id,\"q\"\"q\"",
        ] {
            let parsed = parse_header(line.as_bytes(), Path::new("t.csv")).unwrap();
            assert_eq!(parsed, by_csv(line.as_bytes()), "{line:?}");
        }
        for line in [
            "timestamp, run_id",
            "run_id,timestamp",
            "timestamp",
            "",
            "x,y,z",
        ] {
            assert!(
                parse_header(line.as_bytes(), Path::new("t.csv")).is_err(),
                "{line:?}"
            );
        }
    }
}
