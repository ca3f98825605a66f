//! A metrics table as numeric columns, parsed once and kept per file: the series endpoint
//! answers from here, so a warm request never touches the CSV again.
//!
//! Parsing goes through the one row parser (`metrics::visit_records`, over the records that
//! `metrics::complete_records` frames), converting each cell as it is read. The cache is keyed
//! by the file's device and inode: a table only ever grows by whole rows appended in place,
//! while a schema change replaces the file (a new inode) by an atomic rename. So an entry for
//! the same inode and length is exact, and one for a shorter length is extended by parsing
//! only the appended bytes (after checking that the bytes it ended on are still there).

use std::any::Any;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{Error, IoContext, Result};

/// The bit pattern standing for an empty cell: a quiet NaN with a payload that parsing text
/// never produces (`"NaN".parse()` gives the canonical NaN), so one `Vec<f64>` holds values,
/// NaNs and nulls apart without a second vector.
const NULL_BITS: u64 = 0x7ff8_0000_0000_0bad;

/// The value stored for an empty cell.
pub(crate) const NULL: f64 = f64::from_bits(NULL_BITS);

/// Whether `v` is the stored empty cell.
pub(crate) fn is_null(v: f64) -> bool {
    v.to_bits() == NULL_BITS
}

/// The longest table charted: parsing holds the file's bytes once, and the columns stay
/// cached, so a request must not make the server (perhaps inside a training process) allocate
/// without bound.
pub const SERIES_MAX: u64 = 256 << 20;

/// How many bytes of parsed columns the cache keeps (least recently used dropped first).
const CACHE_BUDGET: usize = 512 << 20;

/// One column of a table.
#[derive(Debug, Clone)]
pub(crate) enum Column {
    /// Every non-empty cell so far is a number (integers are held as `f64`, exact up to 2^53).
    Numeric(Vec<f64>),
    /// Text or booleans: not chartable.
    Other,
}

/// A table's columns, as of `end` bytes of its file.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    /// Column names in header order, `timestamp` and `run_id` first.
    pub(crate) names: Vec<String>,
    /// One per name; `timestamp` and `run_id` are `Other` here (see `wall` and `runs`).
    pub(crate) data: Vec<Column>,
    /// Each row's timestamp as Unix seconds (read in the server's time zone, the one the
    /// writer formats in when both run on one machine); NaN when it does not parse.
    pub(crate) wall: Vec<f64>,
    /// Each row's run, as an index into `run_names`.
    pub(crate) runs: Vec<u32>,
    /// The distinct run ids, in order of first appearance.
    pub(crate) run_names: Vec<String>,
    /// Rows parsed.
    pub(crate) rows: usize,
    /// The file offset just past the last complete record parsed.
    end: u64,
    /// The bytes just before `end` (up to 64), to check that a grown file is the same file.
    seal: Vec<u8>,
    /// The header line, for the same check.
    header: Vec<u8>,
    /// Which file and length these are (device, inode, length): the key of what is derived
    /// from them ([`Cache::derived`]).
    pub(crate) version: (u64, u64, u64),
}

impl Columns {
    /// The index of column `name`.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The values of numeric column `i`.
    pub(crate) fn numeric(&self, i: usize) -> Option<&[f64]> {
        match self.data.get(i) {
            Some(Column::Numeric(values)) => Some(values),
            _ => None,
        }
    }

    fn bytes(&self) -> usize {
        let numeric = self
            .data
            .iter()
            .filter(|c| matches!(c, Column::Numeric(_)))
            .count();
        self.rows * (8 * (numeric + 1) + 4) + 1024
    }

    /// Parses the complete records of `body` (bytes of the file from `self.end`) into the
    /// columns and moves `end` past them.
    fn extend(&mut self, body: &[u8], path: &Path, body_start: u64) -> Result<()> {
        let complete = crate::metrics::complete_records(body, |offset| {
            // Lines are counted within the parsed part only; name the byte offset as well.
            body_start + offset as u64
        })
        .map_err(|(offset, reason)| {
            Error::corrupt(path, None, format!("at byte {offset}: {reason}"))
        })?;
        let width = self.names.len();
        let mut zone = Zone::default();
        let mut last_run: Option<(String, u32)> = None;
        let (data, wall, runs, run_names) = (
            &mut self.data,
            &mut self.wall,
            &mut self.runs,
            &mut self.run_names,
        );
        let mut rows = 0usize;
        crate::metrics::visit_records(&body[..complete], width, |record| {
            rows += 1;
            wall.push(record.get(0).map_or(f64::NAN, |t| zone.unix(t)));
            let run = record.get(1).unwrap_or("");
            let id = match &last_run {
                Some((name, id)) if name == run => *id,
                _ => {
                    let id = match run_names.iter().position(|n| n == run) {
                        Some(i) => i as u32,
                        None => {
                            run_names.push(run.to_string());
                            (run_names.len() - 1) as u32
                        }
                    };
                    last_run = Some((run.to_string(), id));
                    id
                }
            };
            runs.push(id);
            for (c, column) in data.iter_mut().enumerate().skip(2) {
                let Column::Numeric(values) = column else {
                    continue;
                };
                let cell = record.get(c).unwrap_or("");
                if cell.is_empty() {
                    values.push(NULL);
                } else if let Ok(v) = cell.parse::<f64>() {
                    values.push(v);
                } else {
                    // Text or a boolean: the column is not a number (as `metrics::infer`).
                    *column = Column::Other;
                }
            }
        })
        .map_err(|(line, reason)| {
            let at = match line {
                Some(line) if self.end > 0 => format!(
                    "in the {} bytes appended from byte {body_start}, record line {line}: \
                     {reason}",
                    body.len()
                ),
                _ => reason.clone(),
            };
            Error::corrupt(path, if self.end == 0 { line } else { None }, at)
        })?;
        self.rows += rows;
        self.end = body_start + complete as u64;
        Ok(())
    }
}

/// Reads `path` whole into columns.
fn parse(file: &File, path: &Path, len: u64) -> Result<Columns> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .at("read the metrics table", path)?;
    let Some(header_end) = memchr::memchr(b'\n', &bytes) else {
        return Err(Error::invalid_state(format!(
            "{} has no complete header line yet: no rows to chart",
            path.display()
        )));
    };
    let header = bytes[..header_end].to_vec();
    let names = crate::metrics::table_columns(&header, path)?;
    let data = (0..names.len())
        .map(|i| {
            if i < 2 {
                Column::Other
            } else {
                Column::Numeric(Vec::new())
            }
        })
        .collect();
    let mut columns = Columns {
        names,
        data,
        wall: Vec::new(),
        runs: Vec::new(),
        run_names: Vec::new(),
        rows: 0,
        end: header_end as u64 + 1,
        seal: Vec::new(),
        header,
        version: (0, 0, 0),
    };
    let start = columns.end;
    columns.extend(&bytes[start as usize..], path, start)?;
    columns.seal = seal_of(&bytes[..columns.end as usize]);
    Ok(columns)
}

fn seal_of(bytes: &[u8]) -> Vec<u8> {
    bytes[bytes.len().saturating_sub(64)..].to_vec()
}

/// Parses the bytes appended to `old`'s file, if it is still the same file (its header and the
/// bytes `old` ended on are unchanged); `None` when it is not.
fn grown(old: &Columns, file: &File, path: &Path, len: u64) -> Result<Option<Columns>> {
    let mut header = vec![0u8; old.header.len() + 1];
    let mut seal = vec![0u8; old.seal.len()];
    if file.read_exact_at(&mut header, 0).is_err()
        || header[..old.header.len()] != old.header[..]
        || header[old.header.len()] != b'\n'
        || file
            .read_exact_at(&mut seal, old.end - old.seal.len() as u64)
            .is_err()
        || seal != old.seal
    {
        return Ok(None);
    }
    let mut body = vec![0u8; (len - old.end) as usize];
    file.read_exact_at(&mut body, old.end)
        .at("read the metrics table", path)?;
    let mut columns = old.clone();
    let start = old.end;
    columns.extend(&body, path, start)?;
    if columns.end > start {
        let from = body.len().min((columns.end - start) as usize);
        let mut tail = old.seal.clone();
        tail.extend_from_slice(&body[..from]);
        columns.seal = seal_of(&tail);
    }
    Ok(Some(columns))
}

/// Turns the timestamps expman writes (`2026-01-01T12:00:00.123456`, local time, no zone)
/// into Unix seconds, asking the time zone database once per distinct hour.
#[derive(Default)]
struct Zone {
    hour: Option<(i64, i64)>,
}

impl Zone {
    fn unix(&mut self, text: &str) -> f64 {
        let Some((naive_seconds, fraction)) = naive(text) else {
            return f64::NAN;
        };
        let hour = naive_seconds.div_euclid(3600);
        let offset = match self.hour {
            Some((h, offset)) if h == hour => offset,
            _ => {
                use chrono::TimeZone;
                let Some(at) = chrono::DateTime::from_timestamp(hour * 3600, 0) else {
                    return f64::NAN;
                };
                let offset = chrono::Local
                    .offset_from_local_datetime(&at.naive_utc())
                    .earliest()
                    .map_or(0, |o| chrono::Offset::fix(&o).local_minus_utc() as i64);
                self.hour = Some((hour, offset));
                offset
            }
        };
        (naive_seconds - offset) as f64 + fraction
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` as seconds since 1970-01-01T00:00:00 of the same calendar
/// (no zone applied) and the fraction.
fn naive(text: &str) -> Option<(i64, f64)> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { text.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let fraction = match b.get(19) {
        None => 0.0,
        Some(b'.') => format!("0{}", text.get(19..)?).parse().ok()?,
        Some(_) => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss, fraction))
}

/// How many bytes of derived arrays (rows in x order, smoothed columns, M4 blocks) are kept: a
/// chart's requests while zooming and panning reuse them (the smoothing does not depend on the
/// range).
const DERIVED_BUDGET: usize = 256 << 20;

/// What a derived value holds, for [`DERIVED_BUDGET`].
pub(crate) trait Weigh {
    /// Bytes held.
    fn bytes(&self) -> usize;
}

impl Weigh for Vec<f64> {
    fn bytes(&self) -> usize {
        self.len() * 8
    }
}

/// The parsed tables, least recently used last, within [`CACHE_BUDGET`] bytes, and arrays
/// derived from them.
#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<Vec<Entry>>,
    derived: Mutex<Vec<Derived>>,
}

/// A derived value: its key, the value, and its size in bytes.
type Derived = (String, Arc<dyn Any + Send + Sync>, usize);

struct Entry {
    dev: u64,
    ino: u64,
    len: u64,
    columns: Arc<Columns>,
}

impl Cache {
    /// The columns of the table at `path` (already confined), parsed or taken from the cache.
    pub(crate) fn get(&self, path: &Path) -> Result<Arc<Columns>> {
        let file = crate::store::open_regular(path).at("open the metrics table", path)?;
        let meta = file.metadata().at("stat", path)?;
        let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
        if len > SERIES_MAX {
            return Err(Error::invalid_state(format!(
                "{} is {len} bytes; the UI charts tables of at most {SERIES_MAX} bytes: read \
                 it with expman.read_table or `EXP export` instead",
                path.display()
            )));
        }
        let known = {
            let mut entries = self.lock();
            let found = entries.iter().position(|e| e.dev == dev && e.ino == ino);
            match found {
                Some(i) => {
                    let entry = entries.remove(i);
                    let columns = Arc::clone(&entry.columns);
                    let exact = entry.len == len;
                    entries.insert(0, entry);
                    if exact {
                        return Ok(columns);
                    }
                    Some(columns)
                }
                None => None,
            }
        };
        // Parsing runs outside the lock: another table's request is not held up by this one.
        let columns = match known {
            Some(old) if old.end <= len && old.end >= old.seal.len() as u64 => {
                match grown(&old, &file, path, len)? {
                    Some(columns) => columns,
                    None => parse(&file, path, len)?,
                }
            }
            _ => parse(&file, path, len)?,
        };
        let mut columns = columns;
        columns.version = (dev, ino, len);
        let columns = Arc::new(columns);
        let mut entries = self.lock();
        entries.retain(|e| !(e.dev == dev && e.ino == ino));
        entries.insert(
            0,
            Entry {
                dev,
                ino,
                len,
                columns: Arc::clone(&columns),
            },
        );
        let mut total = 0;
        entries.retain(|e| {
            total += e.columns.bytes();
            total <= CACHE_BUDGET || Arc::ptr_eq(&e.columns, &columns)
        });
        Ok(columns)
    }

    /// The value derived from `columns` under `key` (which names how), made by `make` when it
    /// is not kept. Made outside the lock; the most recently used are kept, within
    /// [`DERIVED_BUDGET`] bytes.
    pub(crate) fn derived<T: Weigh + Send + Sync + 'static>(
        &self,
        columns: &Columns,
        key: &str,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        let (dev, ino, len) = columns.version;
        let key = format!("{dev}:{ino}:{len}|{key}");
        let lock = || self.derived.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut derived = lock();
            if let Some(i) = derived.iter().position(|(k, _, _)| *k == key) {
                let entry = derived.remove(i);
                let value = Arc::clone(&entry.1);
                derived.insert(0, entry);
                if let Ok(value) = value.downcast::<T>() {
                    return value;
                }
            }
        }
        let value = Arc::new(make());
        let bytes = value.bytes();
        let mut derived = lock();
        derived.retain(|(k, _, _)| *k != key);
        derived.insert(
            0,
            (key, Arc::clone(&value) as Arc<dyn Any + Send + Sync>, bytes),
        );
        let mut total = 0;
        derived.retain(|(_, _, bytes)| {
            total += bytes;
            total <= DERIVED_BUDGET
        });
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_timestamps_count_days_like_chrono() {
        let (s, f) = naive("2026-03-01T12:34:56.250000").unwrap();
        let chrono = chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
            .unwrap()
            .and_hms_opt(12, 34, 56)
            .unwrap()
            .and_utc()
            .timestamp();
        assert_eq!(s, chrono);
        assert_eq!(f, 0.25);
        assert!(naive("2026-13-01T00:00:00").is_none());
        assert!(naive("yesterday").is_none());
    }

    #[test]
    fn appended_rows_are_parsed_alone_and_a_replaced_file_again() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.csv");
        let row = |i: usize| format!("2026-01-01T00:00:0{}.000000,run_0001,{i},{}\n", i % 10, i);
        let mut text = "timestamp,run_id,step,loss\n".to_string();
        text.push_str(&row(0));
        std::fs::write(&path, &text).unwrap();
        let cache = Cache::default();
        assert_eq!(cache.get(&path).unwrap().rows, 1);
        text.push_str(&row(1));
        text.push_str("2026-01-01T00:00:02.0000"); // a row being written
        std::fs::write(&path, &text).unwrap();
        let grown = cache.get(&path).unwrap();
        assert_eq!(grown.rows, 2);
        assert_eq!(grown.numeric(2).unwrap(), &[0.0, 1.0]);
        text.push_str("00,run_0001,2,x\n");
        std::fs::write(&path, &text).unwrap();
        let typed = cache.get(&path).unwrap();
        assert_eq!(typed.rows, 3);
        assert!(
            typed.numeric(3).is_none(),
            "a text cell makes the column text"
        );
    }
}
