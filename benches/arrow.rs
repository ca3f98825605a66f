//! A1: one table of 1,000,000 rows x 12 columns (timestamp, run_id, 2 ints, 6 floats, text, bool) into an Arrow table, against `read_table`
//! (typed `Value` rows) and the csv crate alone (tokenising, no types), in the same run; and
//! the ceiling for any parser of it: one that knows the 12 columns ahead and checks nothing.
//! A2: 1,000 runs x 10,000 rows (1,000 experiments) into one long Arrow table; goal < 1 s.
//!
//! `cargo bench --features arrow --bench arrow` (`EXPMAN_BENCH_ROWS` scales A1,
//! `EXPMAN_BENCH_RUNS` A2; the data is generated once with the real writer into
//! `$EXPMAN_BENCH_DATA`, default `<tmp>/expman-arrow-bench`, and reused).

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "support/mod.rs"]
mod support;

use expman::arrow::{self, Selection};
use expman::{Experiment, Value};

/// The A1 table: timestamp, run_id, epoch, step, 6 floats, phase (text), is_best (bool).
fn wide_table(base: &Path, rows: usize) -> PathBuf {
    let marker = base.join(format!("wide-{rows}.path"));
    if let Ok(path) = std::fs::read_to_string(&marker) {
        return PathBuf::from(path);
    }
    let mut exp = Experiment::builder("wide", base.join(format!("wide-{rows}")))
        .create()
        .unwrap();
    let names = [
        "epoch",
        "step",
        "loss",
        "val_loss",
        "acc",
        "val_acc",
        "lr",
        "grad_norm",
        "phase",
        "is_best",
    ];
    let ids: Vec<_> = names
        .iter()
        .map(|n| exp.metrics().field_id(n).unwrap())
        .collect();
    let mut rng = support::Rng(0x9E37_79B9_7F4A_7C15);
    for row in 0..rows {
        let t = exp.metrics();
        t.set_id(ids[0], Value::Int((row / 1000) as i64));
        t.set_id(ids[1], Value::Int(row as i64));
        for id in &ids[2..8] {
            t.set_id(*id, Value::Float(rng.unit()));
        }
        t.set_id(
            ids[8],
            Value::from(if row % 10 == 0 { "eval" } else { "train" }),
        );
        t.set_id(ids[9], Value::Bool(row % 97 == 0));
        t.save_row().unwrap();
    }
    let path = exp.layout().table_path(&exp.run_id().to_string());
    std::fs::write(&marker, path.to_string_lossy().as_bytes()).unwrap();
    path
}

/// The A2 directory: `runs` experiments of one run of `rows` rows (epoch, loss, acc).
fn many_runs(base: &Path, runs: usize, rows: usize) -> PathBuf {
    let dir = base.join(format!("many-{runs}x{rows}"));
    let done = dir.join(".complete");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = support::Rng(42);
    for r in 0..runs {
        let mut exp = Experiment::builder(format!("sweep{}", r % 10), &dir)
            .tags([format!("lr{}", r % 3)])
            .create()
            .unwrap();
        let ids: Vec<_> = ["epoch", "loss", "acc"]
            .iter()
            .map(|n| exp.metrics().field_id(n).unwrap())
            .collect();
        for row in 0..rows {
            let t = exp.metrics();
            t.set_id(ids[0], Value::Int(row as i64));
            t.set_id(ids[1], Value::Float(rng.unit()));
            t.set_id(ids[2], Value::Float(rng.unit()));
            t.save_row().unwrap();
        }
        exp.set_finished().unwrap();
    }
    std::fs::write(&done, b"").unwrap();
    dir
}

/// The best of `n` runs of `f`: (wall seconds, CPU seconds of that run).
fn best<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    (0..n)
        .map(|_| {
            let (start, cpu) = (Instant::now(), support::process_cpu().as_secs_f64());
            std::hint::black_box(f());
            (
                start.elapsed().as_secs_f64(),
                support::process_cpu().as_secs_f64() - cpu,
            )
        })
        .fold((f64::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a })
}

/// Runs and prints one case unless the command line names others (`-- A1`, `-- threads`).
fn case<T>(label: &str, mb: f64, runs: usize, f: impl FnMut() -> T) -> Option<f64> {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| label.contains(f.as_str())) {
        return None;
    }
    let (wall, cpu) = best(runs, f);
    println!(
        "  {label:<48} {:>8.1} ms wall {:>8.1} ms CPU {:>6.0} MB/s",
        wall * 1e3,
        cpu * 1e3,
        mb / wall
    );
    Some(wall)
}

fn csv_crate_floor(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&bytes[..]);
    let mut record = csv::ByteRecord::new();
    let mut cells = 0;
    while reader.read_byte_record(&mut record).unwrap() {
        cells += record.len();
    }
    cells
}

/// The A1 table's columns as a parser that knows them ahead would fill them.
struct KnownColumns {
    text: [(Vec<u8>, Vec<i32>); 3],
    ints: [Vec<i64>; 2],
    floats: [Vec<f64>; 6],
    flags: Vec<bool>,
}

impl KnownColumns {
    fn new(rows: usize) -> KnownColumns {
        let text = |bytes| {
            (
                Vec::with_capacity(rows * bytes),
                Vec::with_capacity(rows + 1),
            )
        };
        KnownColumns {
            text: [text(26), text(8), text(5)],
            ints: std::array::from_fn(|_| Vec::with_capacity(rows)),
            floats: std::array::from_fn(|_| Vec::with_capacity(rows)),
            flags: Vec::with_capacity(rows),
        }
    }

    /// Parses the whole rows of `chunk`, returning where the first unfinished one starts.
    /// Nothing is checked or inferred: no quotes, empty cells, other types or widths.
    fn parse(&mut self, chunk: &[u8]) -> usize {
        fn cell_end(rest: &[u8]) -> usize {
            rest.iter().position(|&b| b == b',' || b == b'\n').unwrap()
        }
        let mut done = 0;
        while let Some(line) = memchr::memchr(b'\n', &chunk[done..]) {
            let mut at = done;
            for (c, (data, offsets)) in self.text.iter_mut().enumerate() {
                if c == 2 {
                    for (ints, _) in self.ints.iter_mut().zip(0..) {
                        let n = cell_end(&chunk[at..]);
                        ints.push(
                            chunk[at..at + n]
                                .iter()
                                .fold(0, |v, &d| v * 10 + i64::from(d - b'0')),
                        );
                        at += n + 1;
                    }
                    for floats in &mut self.floats {
                        let (value, n) =
                            fast_float2::parse_partial::<f64, _>(&chunk[at..]).unwrap();
                        floats.push(value);
                        at += n + 1;
                    }
                }
                let n = cell_end(&chunk[at..]);
                data.extend_from_slice(&chunk[at..at + n]);
                offsets.push(data.len() as i32);
                at += n + 1;
            }
            self.flags.push(chunk[at] == b't');
            done += line + 1;
        }
        done
    }
}

/// The ceiling for any parser of this table on one thread: one that knows its 12 columns
/// ahead (see [`KnownColumns::parse`]), reading the file as expman does (1 MiB `pread`s, since
/// a mapped file that shrinks kills the reader with SIGBUS) or, `from_memory`, from a buffer
/// already read. Returns the rows read.
fn known_columns(path: &Path, rows: usize, from_memory: Option<&[u8]>) -> usize {
    use std::os::unix::fs::FileExt;
    let mut columns = KnownColumns::new(rows);
    if let Some(bytes) = from_memory {
        let body = memchr::memchr(b'\n', bytes).unwrap() + 1;
        columns.parse(&bytes[body..]);
    } else {
        let file = std::fs::File::open(path).unwrap();
        let mut buffer = vec![0u8; 2 << 20];
        let mut head = file.read_at(&mut buffer[..64 << 10], 0).unwrap();
        let body = memchr::memchr(b'\n', &buffer[..head]).unwrap() + 1;
        buffer.copy_within(body..head, 0);
        head -= body;
        let mut at = (body + head) as u64;
        loop {
            let got = file
                .read_at(&mut buffer[head..head + (1 << 20)], at)
                .unwrap();
            at += got as u64;
            let filled = head + got;
            let done = columns.parse(&buffer[..filled]);
            buffer.copy_within(done..filled, 0);
            head = filled - done;
            if got == 0 {
                break;
            }
        }
    }
    assert_eq!(columns.flags.len(), rows);
    columns.flags.len()
}

fn main() {
    let base = std::env::var_os("EXPMAN_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("expman-arrow-bench"));
    std::fs::create_dir_all(&base).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let rows = support::env_or("EXPMAN_BENCH_ROWS", 1_000_000);
    let path = wide_table(&base, rows);
    let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let batch = arrow::read_table(&path).unwrap();
    assert_eq!(batch.num_rows(), rows);
    assert_eq!(batch.num_columns(), 12);
    println!("A1: {rows} rows x 12 columns, {mb:.0} MB ({cores} cores)");
    case("A1 csv crate, tokenising only (baseline)", mb, 3, || {
        csv_crate_floor(&path)
    });
    case(
        "A1 expman::read_table, Value rows (baseline)",
        mb,
        3,
        || expman::read_table(&path).unwrap(),
    );
    let bytes = std::fs::read(&path).unwrap();
    case(
        "A1 columns known ahead, 1 thread, from memory",
        mb,
        5,
        || known_columns(&path, rows, Some(&bytes)),
    );
    drop(bytes);
    case(
        "A1 columns known ahead, 1 thread (the ceiling)",
        mb,
        5,
        || known_columns(&path, rows, None),
    );
    case("A1 arrow::read_table_chunks, 1 thread", mb, 5, || {
        arrow::read_table_chunks(&path, 1).unwrap()
    });
    case(
        &format!("A1 arrow::read_table_chunks, {cores} threads"),
        mb,
        5,
        || arrow::read_table_chunks(&path, 0).unwrap(),
    );
    case("A1 arrow::read_table (+ concat)", mb, 5, || {
        arrow::read_table(&path).unwrap()
    });

    let runs = support::env_or("EXPMAN_BENCH_RUNS", 1000);
    let dir = many_runs(&base, runs, 10_000);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("metrics/run_0001.csv"))
        .filter(|p| p.exists())
        .collect();
    let mb = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum::<u64>() as f64
        / 1e6;
    let table = arrow::read_dir(&dir, &Selection::new()).unwrap();
    assert_eq!(table.num_rows(), runs * 10_000);
    println!(
        "A2: {runs} runs x 10,000 rows -> {} rows x {} columns, {mb:.0} MB",
        table.num_rows(),
        table.schema().fields().len(),
    );
    drop(table);
    case("A2 std::fs::read of every table (baseline)", mb, 3, || {
        files
            .iter()
            .map(|p| std::fs::read(p).unwrap().len())
            .sum::<usize>()
    });
    case("A2 arrow::read_dir, 1 thread", mb, 3, || {
        arrow::read_dir(&dir, &Selection::new().threads(1)).unwrap()
    });
    let label = format!("A2 arrow::read_dir, {cores} threads");
    if let Some(wall) = case(&label, mb, 3, || {
        arrow::read_dir(&dir, &Selection::new()).unwrap()
    }) {
        println!(
            "  goal < 1000 ms: {}",
            if wall < 1.0 { "met" } else { "missed" }
        );
    }
}
