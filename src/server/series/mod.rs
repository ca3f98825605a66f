//! The series endpoint: a table's numeric columns for charting, faithful at any size.
//!
//! `GET /api/experiments/<id>/tables/<table>/series?columns=&x=&max_points=&from=&to=&smooth=
//! &log_y=&run=` (the shapes are in `API.md` and the README's "Series and logs API").
//!
//! - The table is parsed once into columns and cached per file (`columns`), so a warm request
//!   is arithmetic over arrays.
//! - Rows are put in x order; smoothing (`smooth`) runs over every row of the series, before
//!   any thinning, so the smoothed curve does not depend on the zoom or the chart's width.
//! - When the requested x range holds at most `max_points` rows they all come back (exact);
//!   otherwise the range is cut into `max_points` equal x buckets and, per bucket and per
//!   column (raw and smoothed), the rows holding the first, last, smallest and largest value
//!   are kept (M4). The answer is the union of those rows, in x order, with every column's value
//!   at each: one aligned table, which a line chart draws pixel-exactly, so no spike or dip is
//!   lost however many rows a pixel holds.
//! - NaN, ±inf and empty cells (and, with `log_y`, values ≤ 0) are gaps: `null` in the
//!   aligned arrays, and listed per column with their kind and x extent.

mod columns;
mod m4;
mod smooth;

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub(crate) use columns::Cache;
use columns::{Columns, is_null};
use m4::Blocks;
use smooth::Smooth;

use super::reply::Reply;
use super::target::Query;
use crate::metrics::STEP_COLUMNS;

/// The most buckets a request may ask for (bounded work and answer size per request).
pub(crate) const MAX_POINTS: usize = 10_000;
/// The buckets when `max_points` is not given.
const DEFAULT_POINTS: usize = 2000;
/// The most columns one request may name.
const MAX_COLUMNS: usize = 64;

/// What x is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum X {
    /// A numeric column (the step column, see [`STEP_COLUMNS`], or one named).
    Column(usize),
    /// The row's position among the rows asked for (0-based).
    Row,
    /// The row's timestamp, Unix seconds.
    Wall,
    /// Seconds since the first row of the row's run.
    Relative,
}

/// A parsed request.
struct Ask {
    columns: Vec<usize>,
    x: X,
    x_name: String,
    max_points: usize,
    from: Option<f64>,
    to: Option<f64>,
    smooth: Option<(Smooth, String)>,
    log_y: bool,
    run: Option<(u32, String)>,
}

fn bad(message: String) -> Reply {
    Reply::error(400, message)
}

/// Answers the series request for the table at `path` (already confined).
pub(crate) fn answer(cache: &Cache, path: &Path, query: &Query) -> Result<Reply, Reply> {
    // Parameters that do not depend on the table are checked before it is read.
    let max_points = match query.get("max_points") {
        None => DEFAULT_POINTS,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_POINTS).contains(&n) => n,
            _ => {
                return Err(bad(format!(
                    "max_points={text:?} is not accepted: give a count of buckets from 1 to \
                     {MAX_POINTS}"
                )));
            }
        },
    };
    let bound = |key: &str| -> Result<Option<f64>, Reply> {
        match query.get(key) {
            None | Some("") => Ok(None),
            Some(text) => match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(bad(format!(
                    "{key}={text:?} is not accepted: give a finite number in the units of x"
                ))),
            },
        }
    };
    let (from, to) = (bound("from")?, bound("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(bad(format!("from={f} is after to={t}: give from <= to")));
    }
    let smooth = match query.get("smooth") {
        None | Some("") | Some("none") => None,
        Some(text) => Some((Smooth::parse(text).map_err(bad)?, text.to_string())),
    };
    let log_y = match query.get("log_y") {
        None | Some("") | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => {
            return Err(bad(format!("log_y={other:?} is not accepted: give 1 or 0")));
        }
    };
    let table = cache.get(path).map_err(|e| Reply::from_error(&e))?;
    let ask = resolve(&table, query, max_points, from, to, smooth, log_y)?;
    Ok(Reply::ok(compute(cache, &table, &ask), "application/json"))
}

/// Checks the parameters that name parts of the table.
#[allow(clippy::too_many_arguments)]
fn resolve(
    table: &Columns,
    query: &Query,
    max_points: usize,
    from: Option<f64>,
    to: Option<f64>,
    smooth: Option<(Smooth, String)>,
    log_y: bool,
) -> Result<Ask, Reply> {
    let numeric_names = || {
        table
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| table.numeric(*i).is_some())
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let step_like = || {
        STEP_COLUMNS.iter().find_map(|name| {
            let i = table.index(name)?;
            table.numeric(i).map(|_| (X::Column(i), name.to_string()))
        })
    };
    let (x, x_name) = match query.get("x").unwrap_or("step") {
        "" | "step" => step_like().unwrap_or((X::Row, "row".into())),
        "row" => (X::Row, "row".into()),
        "wall" => (X::Wall, "wall".into()),
        "relative" => (X::Relative, "relative".into()),
        name => match table.index(name).filter(|&i| table.numeric(i).is_some()) {
            Some(i) => (X::Column(i), name.to_string()),
            None => {
                return Err(bad(format!(
                    "x={name:?} is not accepted: give step, row, wall, relative or a numeric \
                     column of this table ({})",
                    numeric_names()
                )));
            }
        },
    };
    let mut columns: Vec<usize> = Vec::new();
    let asked: Vec<&str> = query
        .all("columns")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if asked.is_empty() {
        columns.extend(
            (0..table.names.len())
                .filter(|&i| table.numeric(i).is_some() && X::Column(i) != x)
                .take(MAX_COLUMNS),
        );
    } else {
        for name in asked {
            let Some(i) = table.index(name).filter(|&i| table.numeric(i).is_some()) else {
                return Err(bad(format!(
                    "columns: {name:?} is not a numeric column of this table; it has: {}",
                    numeric_names()
                )));
            };
            if !columns.contains(&i) {
                columns.push(i);
            }
        }
        if columns.len() > MAX_COLUMNS {
            return Err(bad(format!(
                "columns names {} columns; ask for at most {MAX_COLUMNS} at once",
                columns.len()
            )));
        }
    }
    let run = match query.get("run") {
        None | Some("") => None,
        Some(run) => match table.run_names.iter().position(|n| n == run) {
            Some(i) => Some((i as u32, run.to_string())),
            None => {
                return Err(Reply::error(
                    404,
                    format!(
                        "run={run:?} has no rows in this table; its runs are: {}",
                        table.run_names.join(", ")
                    ),
                ));
            }
        },
    };
    Ok(Ask {
        columns,
        x,
        x_name,
        max_points,
        from,
        to,
        smooth,
        log_y,
        run,
    })
}

/// Why a value is not drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    Null,
    NaN,
    Inf,
    NegInf,
    NonPositive,
}

impl Gap {
    fn of(v: f64, log_y: bool) -> Option<Gap> {
        if is_null(v) {
            Some(Gap::Null)
        } else if v.is_nan() {
            Some(Gap::NaN)
        } else if v == f64::INFINITY {
            Some(Gap::Inf)
        } else if v == f64::NEG_INFINITY {
            Some(Gap::NegInf)
        } else if log_y && v <= 0.0 {
            Some(Gap::NonPositive)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Gap::Null => "null",
            Gap::NaN => "nan",
            Gap::Inf => "inf",
            Gap::NegInf => "-inf",
            Gap::NonPositive => "nonpositive",
        }
    }
}

/// A run of gap rows of one kind in one column.
struct GapRun {
    kind: Gap,
    /// Positions (in x order) of its first and last row.
    first: usize,
    last: usize,
    rows: usize,
    /// The bucket it was opened in.
    bucket: usize,
}

/// The rows asked for, in x order: their x values and row numbers; rows whose x is not a
/// finite number are counted, not placed.
fn ordered(table: &Columns, ask: &Ask) -> Order {
    let n = table.rows;
    let wanted = |r: usize| ask.run.as_ref().is_none_or(|(id, _)| table.runs[r] == *id);
    let mut first_wall: Vec<f64> = Vec::new();
    if ask.x == X::Relative {
        first_wall = vec![f64::NAN; table.run_names.len()];
        for r in 0..n {
            let run = table.runs[r] as usize;
            if first_wall[run].is_nan() && table.wall[r].is_finite() {
                first_wall[run] = table.wall[r];
            }
        }
    }
    let column = match ask.x {
        X::Column(i) => table.numeric(i),
        _ => None,
    };
    let mut xs = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    let mut missing = 0usize;
    for (position, r) in (0..n).filter(|&r| wanted(r)).enumerate() {
        let x = match ask.x {
            X::Column(_) => column.map_or(f64::NAN, |c| c[r]),
            X::Row => position as f64,
            X::Wall => table.wall[r],
            X::Relative => table.wall[r] - first_wall[table.runs[r] as usize],
        };
        if x.is_finite() {
            xs.push(x);
            rows.push(r as u32);
        } else {
            missing += 1;
        }
    }
    if xs.windows(2).any(|w| w[1] < w[0]) {
        // A step that went back (a resumed run) or an unordered column: sort, keeping the
        // file's order among equal x.
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
        xs = order.iter().map(|&i| xs[i]).collect();
        rows = order.iter().map(|&i| rows[i]).collect();
    }
    let identity = rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i == r as usize);
    Order {
        xs,
        rows,
        missing,
        identity,
    }
}

/// The rows asked for in x order (see [`ordered`]).
struct Order {
    xs: Vec<f64>,
    rows: Vec<u32>,
    missing: usize,
    /// The rows are the table's, in the file's order.
    identity: bool,
}

impl columns::Weigh for Order {
    fn bytes(&self) -> usize {
        self.xs.len() * 12
    }
}

/// Builds the answer's JSON.
fn compute(cache: &Cache, table: &Columns, ask: &Ask) -> Vec<u8> {
    let run = ask.run.as_ref().map_or("", |(_, r)| r.as_str());
    let shape = format!("{}|{run}", ask.x_name);
    let order = cache.derived(table, &format!("order|{shape}"), || ordered(table, ask));
    let (xs, rows, x_missing) = (&order.xs, &order.rows, order.missing);

    // Every column's values along x; with log_y, the smoothing sees log10 of positive values.
    // When the rows are the table's, in order (the common case), the cached columns are used
    // as they are; otherwise they are gathered in x order.
    let identity = order.identity;
    let raw: Vec<Cow<'_, [f64]>> = ask
        .columns
        .iter()
        .map(|&c| {
            let values = table.numeric(c).expect("resolved columns are numeric");
            if identity {
                Cow::Borrowed(values)
            } else {
                Cow::Owned(rows.iter().map(|&r| values[r as usize]).collect())
            }
        })
        .collect();
    let smoothed: Vec<Arc<Vec<f64>>> = match &ask.smooth {
        None => Vec::new(),
        Some((smooth, text)) => raw
            .iter()
            .zip(&ask.columns)
            .map(|(values, c)| {
                let key = format!("smooth|{shape}|{c}|{text}|{}", ask.log_y);
                cache.derived(table, &key, || smoothen(*smooth, values, ask.log_y))
            })
            .collect(),
    };
    let from = ask.from.unwrap_or(xs.first().copied().unwrap_or(0.0));
    let to = ask.to.unwrap_or(xs.last().copied().unwrap_or(0.0));
    let lo = xs.partition_point(|&x| x < from);
    let hi = xs.partition_point(|&x| x <= to).max(lo);
    let in_range = hi - lo;
    let exact = in_range <= ask.max_points;
    // The buckets: consecutive position ranges [a, e) of equal x width.
    let mut buckets: Vec<(usize, usize)> = Vec::new();
    if exact {
        buckets.extend((lo..hi).map(|j| (j, j + 1)));
    } else {
        // Bucket b holds the rows with from + b·w <= x < from + (b+1)·w (the last one up to
        // `to`): its end is found by binary search, not by a division per row.
        let width = (to - from) / ask.max_points as f64;
        let mut start = lo;
        for b in 1..=ask.max_points {
            let end = if b == ask.max_points || width <= 0.0 {
                hi
            } else {
                let edge = from + b as f64 * width;
                start + xs[start..hi].partition_point(|&x| x < edge)
            };
            if end > start {
                buckets.push((start, end));
            }
            start = end;
            if start == hi {
                break;
            }
        }
    }
    // Keep, per bucket, the M4 rows of every series and the first row of every gap run.
    let mut gaps: Vec<Vec<GapRun>> = ask.columns.iter().map(|_| Vec::new()).collect();
    let mut keep: Vec<usize> = Vec::new();
    let mut picked: Vec<usize> = Vec::new();
    let raw_blocks: Vec<Arc<Blocks>> = raw
        .iter()
        .zip(&ask.columns)
        .map(|(values, c)| {
            let key = format!("blocks|{shape}|{c}|{}", ask.log_y);
            cache.derived(table, &key, || Blocks::new(values, ask.log_y))
        })
        .collect();
    let smoothed_blocks: Vec<Arc<Blocks>> = smoothed
        .iter()
        .zip(&ask.columns)
        .map(|(values, c)| {
            let text = ask.smooth.as_ref().map_or("", |(_, t)| t.as_str());
            let key = format!("blocks|{shape}|{c}|{text}|{}", ask.log_y);
            cache.derived(table, &key, || Blocks::new(values, false))
        })
        .collect();
    for (b, &(a, e)) in buckets.iter().enumerate() {
        picked.clear();
        for (c, values) in raw.iter().enumerate() {
            if !raw_blocks[c].m4(values, a, e, &mut picked) {
                continue;
            }
            for (j, &v) in values.iter().enumerate().take(e).skip(a) {
                let Some(kind) = Gap::of(v, ask.log_y) else {
                    continue;
                };
                let runs = &mut gaps[c];
                let open = runs
                    .iter_mut()
                    .rev()
                    .take(5)
                    .find(|g| g.kind == kind && (g.bucket == b || g.last + 1 == j));
                match open {
                    Some(g) => {
                        g.last = j;
                        g.rows += 1;
                    }
                    None => {
                        runs.push(GapRun {
                            kind,
                            first: j,
                            last: j,
                            rows: 1,
                            bucket: b,
                        });
                        picked.push(j);
                    }
                }
            }
        }
        for (values, blocks) in smoothed.iter().zip(&smoothed_blocks) {
            blocks.m4(values, a, e, &mut picked);
        }
        if exact {
            // Every row of the range, whether or not it opened a gap run.
            picked.clear();
            picked.push(a);
        }
        picked.sort_unstable();
        picked.dedup();
        keep.extend_from_slice(&picked);
    }
    write_answer(
        table, ask, xs, rows, &raw, &smoothed, &gaps, &keep, from, to, in_range, exact, x_missing,
    )
}

/// `values` smoothed along x; with `log_y`, in log10 space and back.
fn smoothen(smooth: Smooth, values: &[f64], log_y: bool) -> Vec<f64> {
    if !log_y {
        // Gaps (NaN, ±inf, the empty cell, which is a NaN) are non-finite: the smoothers pass
        // them through without using them, so the raw values go in as they are.
        return smooth.apply(values);
    }
    let input: Vec<f64> = values
        .iter()
        .map(|&v| match Gap::of(v, true) {
            Some(_) => f64::NAN,
            None => v.log10(),
        })
        .collect();
    let mut out = smooth.apply(&input);
    for v in &mut out {
        *v = 10f64.powf(*v);
    }
    out
}

fn number(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut buffer = ryu::Buffer::new();
        out.extend_from_slice(buffer.format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

#[allow(clippy::too_many_arguments)]
fn write_answer(
    table: &Columns,
    ask: &Ask,
    xs: &[f64],
    rows: &[u32],
    raw: &[Cow<'_, [f64]>],
    smoothed: &[Arc<Vec<f64>>],
    gaps: &[Vec<GapRun>],
    keep: &[usize],
    from: f64,
    to: f64,
    in_range: usize,
    exact: bool,
    x_missing: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + keep.len() * 12 * (2 + raw.len() + smoothed.len()));
    let names: Vec<&str> = ask
        .columns
        .iter()
        .map(|&c| table.names[c].as_str())
        .collect();
    out.extend_from_slice(b"{\"x\":");
    string(&mut out, &ask.x_name);
    let _ = write!(
        out,
        ",\"rows\":{},\"rows_used\":{},\"x_missing\":{x_missing},\"rows_in_range\":{in_range},\
         \"exact\":{exact},\"max_points\":{},\"log_y\":{},\"from\":",
        table.rows,
        xs.len(),
        ask.max_points,
        ask.log_y
    );
    number(&mut out, from);
    out.extend_from_slice(b",\"to\":");
    number(&mut out, to);
    out.extend_from_slice(b",\"run\":");
    match &ask.run {
        Some((_, run)) => string(&mut out, run),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"smooth\":");
    match &ask.smooth {
        Some((_, text)) => string(&mut out, text),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"x_values\":[");
    for (k, &j) in keep.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        number(&mut out, xs[j]);
    }
    out.extend_from_slice(b"],\"row_index\":[");
    for (k, &j) in keep.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{}", rows[j]);
    }
    out.push(b']');
    let arrays = |key: &str, series: &[&[f64]], log_y: bool, out: &mut Vec<u8>| {
        let _ = write!(out, ",\"{key}\":{{");
        for (c, values) in series.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            string(out, names[c]);
            out.extend_from_slice(b":[");
            for (k, &j) in keep.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                let v = values[j];
                if Gap::of(v, log_y).is_some() {
                    out.extend_from_slice(b"null");
                } else {
                    number(out, v);
                }
            }
            out.push(b']');
        }
        out.push(b'}');
    };
    let raw: Vec<&[f64]> = raw.iter().map(|c| &c[..]).collect();
    arrays("series", &raw, ask.log_y, &mut out);
    if ask.smooth.is_some() {
        // A smoothed value at a raw gap is NaN already; back from log space it is finite.
        let smoothed: Vec<&[f64]> = smoothed.iter().map(|c| &c[..]).collect();
        arrays("smoothed", &smoothed, false, &mut out);
    }
    out.extend_from_slice(b",\"gaps\":{");
    for (c, runs) in gaps.iter().enumerate() {
        if c > 0 {
            out.push(b',');
        }
        string(&mut out, names[c]);
        out.extend_from_slice(b":[");
        for (k, g) in runs.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let _ = write!(out, "{{\"kind\":\"{}\",\"from\":", g.kind.name());
            number(&mut out, xs[g.first]);
            out.extend_from_slice(b",\"to\":");
            number(&mut out, xs[g.last]);
            let _ = write!(
                out,
                ",\"rows\":{},\"first_row\":{}}}",
                g.rows, rows[g.first]
            );
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}");
    out
}
