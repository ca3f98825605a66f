//! Reading the ends of large files without reading them whole: the last rows of a metrics table,
//! the tail of a log, and log bytes from an offset.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::metrics::{ColumnType, Metrics, Value};

/// The columns and the last `n` complete rows of the table at `path`, typed per column like
/// [`crate::read_table`] (over those rows).
pub fn table_tail(path: &Path, n: usize) -> Result<Metrics> {
    let file = File::open(path).at("open the metrics table", path)?;
    let size = file.metadata().at("stat", path)?.len();
    let header = read_first_line(&file, path, size)?;
    let Some((header, header_len)) = header else {
        return Ok(Metrics {
            columns: vec!["timestamp".into(), "run_id".into()],
            types: vec![ColumnType::Str, ColumnType::Str],
            rows: Vec::new(),
        });
    };
    let mut columns = vec!["timestamp".to_string(), "run_id".to_string()];
    columns.extend(crate::metrics::parse_header_line(&header, path)?);
    let body = last_lines(&file, path, header_len, size, n)?;
    // A row being written (or torn) may end just after a newline inside a quoted cell: end at
    // the last newline outside quotes. (Exact when the tail starts at a row boundary, as it
    // does whenever the whole body was read.)
    let body = &body[..crate::metrics::framing::complete_len(&body)];
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut raw = Vec::new();
    for record in reader.records() {
        let Ok(record) = record else { continue };
        if record.len() > columns.len() {
            continue;
        }
        let mut row: Vec<String> = record.iter().map(str::to_string).collect();
        row.resize(columns.len(), String::new());
        raw.push(row);
    }
    let start = raw.len().saturating_sub(n);
    let raw = raw.split_off(start);
    Ok(Metrics::from_cells(columns, raw))
}

/// The first line (without its newline) and the offset after it; `None` if it is incomplete.
fn read_first_line(file: &File, path: &Path, size: u64) -> Result<Option<(Vec<u8>, u64)>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    while (head.len() as u64) < size {
        let n = file
            .read_at(&mut chunk, head.len() as u64)
            .at("read", path)?;
        if n == 0 {
            break;
        }
        let start = head.len();
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head[start..].iter().position(|&b| b == b'\n') {
            head.truncate(start + i);
            let len = head.len() as u64 + 1;
            return Ok(Some((head, len)));
        }
    }
    Ok(None)
}

/// The bytes of (at least) the last `n` complete lines after `floor`, starting at a line start.
fn last_lines(file: &File, path: &Path, floor: u64, size: u64, n: usize) -> Result<Vec<u8>> {
    let mut end = size;
    // Drop an incomplete last line (a write in progress).
    let mut buf = Vec::new();
    let mut pos = size;
    let mut newlines = 0usize;
    let mut chunk_len = 16 * 1024u64;
    while pos > floor {
        let start = pos.saturating_sub(chunk_len).max(floor);
        let mut chunk = vec![0u8; (pos - start) as usize];
        file.read_exact_at(&mut chunk, start).at("read", path)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        pos = start;
        if end == size {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => end = pos + i as u64 + 1,
                None => continue,
            }
        }
        newlines = buf[..(end - pos) as usize]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        if newlines > n {
            break;
        }
        chunk_len = chunk_len.saturating_mul(2);
    }
    if end == size && buf.last() != Some(&b'\n') {
        return Ok(Vec::new());
    }
    let mut body = buf[..(end - pos) as usize].to_vec();
    if pos > floor && newlines > n {
        // Start after the first newline: the bytes before it may be half a row.
        if let Some(i) = body.iter().position(|&b| b == b'\n') {
            body.drain(..=i);
        }
    }
    Ok(body)
}

/// A slice of a log file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogChunk {
    /// Offset of the first byte returned.
    pub start: u64,
    /// Offset after the last byte returned (pass it back as `offset` to follow the file).
    pub end: u64,
    /// The file's size now.
    pub size: u64,
    /// The bytes, as text (invalid UTF-8 replaced).
    pub text: String,
}

/// Reads a log: from `offset` (at most `max` bytes), or its tail (the last `max` bytes, starting
/// at a line) when `offset` is `None` or beyond the end (the file was truncated).
pub fn log_chunk(path: &Path, offset: Option<u64>, max: u64) -> Result<LogChunk> {
    let mut file = File::open(path).at("open the log", path)?;
    let size = file.metadata().at("stat", path)?.len();
    let (start, from_tail) = match offset {
        Some(offset) if offset <= size => (offset, false),
        _ => (size.saturating_sub(max), true),
    };
    let len = (size - start).min(max);
    let mut bytes = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(start)).at("seek in", path)?;
    file.read_exact(&mut bytes).at("read", path)?;
    let mut start = start;
    if from_tail
        && start > 0
        && let Some(i) = bytes.iter().position(|&b| b == b'\n')
    {
        bytes.drain(..=i);
        start += i as u64 + 1;
    }
    // Do not split a UTF-8 character at the end: leave its bytes for the next read.
    let valid = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    };
    bytes.truncate(valid);
    Ok(LogChunk {
        start,
        end: start + bytes.len() as u64,
        size,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Numeric columns of a table for charting, thinned evenly to at most `max_points` rows.
pub fn series(path: &Path, max_points: usize) -> Result<serde_json::Value> {
    let metrics = crate::read_table(path)?;
    let rows = metrics.rows.len();
    let step = rows.div_ceil(max_points.max(1)).max(1);
    let picked: Vec<usize> = (0..rows)
        .step_by(step)
        .chain((rows > 0 && (rows - 1) % step != 0).then_some(rows - 1))
        .collect();
    let x = ["step", "epoch", "global_step", "iteration"]
        .into_iter()
        .find_map(|name| {
            let i = metrics.column_index(name)?;
            matches!(metrics.types[i], ColumnType::Int | ColumnType::Float).then_some((name, i))
        });
    let number = |v: &Value| match v {
        Value::Int(i) => serde_json::json!(i),
        Value::Float(f) if f.is_finite() => serde_json::json!(f),
        _ => serde_json::Value::Null,
    };
    let x_values: Vec<serde_json::Value> = match x {
        Some((_, i)) => picked
            .iter()
            .map(|&r| number(&metrics.rows[r][i]))
            .collect(),
        None => picked.iter().map(|&r| serde_json::json!(r)).collect(),
    };
    let mut series = serde_json::Map::new();
    for (i, name) in metrics.columns.iter().enumerate() {
        let numeric = matches!(metrics.types[i], ColumnType::Int | ColumnType::Float);
        if numeric && x.is_none_or(|(_, xi)| xi != i) {
            let values = picked
                .iter()
                .map(|&r| number(&metrics.rows[r][i]))
                .collect();
            series.insert(name.clone(), serde_json::Value::Array(values));
        }
    }
    Ok(serde_json::json!({
        "x": x.map_or("row", |(name, _)| name),
        "x_values": x_values,
        "series": series,
        "rows": rows,
    }))
}
