//! Series and logs figures over real HTTP on 127.0.0.1, each beside a baseline measured in the
//! same run on the same files:
//! - series of a 1,000,000-row table, 4 columns, 1,000 buckets, EMA smoothing: cold (parse) and
//!   warm (goal < 50 ms warm); baseline: pandas `read_csv(usecols=...)` of the same columns
//!   (`EXPMAN_PYTHON`, default `python3`; skipped with a note when pandas is missing);
//! - the same with a running median (window 101), and a 100-bucket zoom;
//! - search over a 1 GB log (goal < 1.5 s); baseline: `grep -c` on the same file;
//! - paging back anywhere in that log, 200 random pages (goal < 20 ms per page).
//!
//! `cargo bench --features server --bench series` (files under `EXPMAN_BENCH_DIR`, default the
//! system's temporary directory: about 1.1 GB).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use expman::server::{Server, ServerOptions};

const ROWS: usize = 1_000_000;
const LOG_BYTES: usize = 1 << 30;
const ID: &str = "exp_2026-01-01__00-00-00";

fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response[..head_end.min(300)])
    );
    response.split_off(head_end + 4)
}

fn ms(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1e3
}

/// The median of `n` timings of `f`.
fn median_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..n).map(|_| ms(&mut f)).collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn write_files(dir: &Path) {
    for sub in ["metrics", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("config.json"), r#"{"name":"bench"}"#).unwrap();
    std::fs::write(dir.join("status.json"), r#"{"status":"Finished"}"#).unwrap();
    let mut table =
        std::io::BufWriter::new(std::fs::File::create(dir.join("metrics/big.csv")).unwrap());
    writeln!(table, "timestamp,run_id,step,loss,acc,lr,grad_norm").unwrap();
    for i in 0..ROWS as u64 {
        writeln!(
            table,
            "2026-01-01T00:{:02}:{:02}.{:06},run_0001,{i},{},{},{},{}",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            (i % 1000) * 1000,
            1.0 / (1.0 + i as f64 / 1e4) + 0.1 * noise(i),
            i as f64 / ROWS as f64,
            1e-3 * (1.0 - i as f64 / ROWS as f64),
            1.0 + noise(i + 7)
        )
        .unwrap();
    }
    table.flush().unwrap();
    let mut log = std::io::BufWriter::new(std::fs::File::create(dir.join("logs/big.log")).unwrap());
    let mut written = 0;
    let mut n = 0u64;
    while written < LOG_BYTES {
        let line = if n % 100_000 == 99_999 {
            format!("step {n} ERROR loss diverged: nan at batch {}\n", n % 977)
        } else {
            format!(
                "step {n} loss={:.4} lr=0.001 elapsed={}.5s\n",
                noise(n),
                n / 7
            )
        };
        written += line.len();
        log.write_all(line.as_bytes()).unwrap();
        n += 1;
    }
    log.flush().unwrap();
}

fn pandas_ms(python: &str, table: &Path) -> Option<f64> {
    let script = "import sys, time, pandas\n\
                  t = time.perf_counter()\n\
                  df = pandas.read_csv(sys.argv[1], usecols=['step','loss','acc','lr','grad_norm'])\n\
                  print((time.perf_counter() - t) * 1e3, len(df))";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(table)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn grep_c(pattern: &str, file: &Path, extended: bool) -> (f64, u64) {
    let start = Instant::now();
    let mut command = Command::new("grep");
    if extended {
        command.arg("-E");
    }
    let out = command.arg("-c").arg(pattern).arg(file).output().unwrap();
    let t = start.elapsed().as_secs_f64() * 1e3;
    (
        t,
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
    )
}

fn main() {
    let load = Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("load before: {load}");
    let root = tempfile::tempdir_in(
        std::env::var("EXPMAN_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    let base = root.path().join("experiments");
    let dir = base.join(ID);
    let made = ms(|| write_files(&dir));
    println!("wrote the table and the 1 GB log in {:.1} s", made / 1e3);
    let server = Server::start(
        &base,
        &ServerOptions {
            port: 0,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let addr = server.addr();
    let series = |query: &str| {
        let path = format!("/api/experiments/{ID}/tables/big/series?{query}");
        move || {
            get(addr, &path);
        }
    };
    let asked = "columns=loss,acc,lr,grad_norm&max_points=1000&smooth=ema:0.9";
    let cold = ms(series(asked));
    let body = get(
        addr,
        &format!("/api/experiments/{ID}/tables/big/series?{asked}"),
    );
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let points = answer["x_values"].as_array().map_or(0, Vec::len);
    let warm = median_ms(21, series(asked));
    // The columns cached but the smoothing not (a new weight each time: what moving the
    // slider costs).
    let mut weight = 0;
    let fresh_ema = median_ms(11, || {
        weight += 1;
        series(&format!(
            "columns=loss,acc,lr,grad_norm&max_points=1000&smooth=ema:0.{:03}",
            800 + weight
        ))();
    });
    let median_first = ms(series(
        "columns=loss,acc,lr,grad_norm&max_points=1000&smooth=median:101",
    ));
    let median = median_ms(
        5,
        series("columns=loss,acc,lr,grad_norm&max_points=1000&smooth=median:101"),
    );
    let plain = median_ms(21, series("columns=loss,acc,lr,grad_norm&max_points=1000"));
    let zoom = median_ms(
        21,
        series("columns=loss,acc,lr,grad_norm&max_points=100&from=500000&to=500099&smooth=ema:0.9"),
    );
    let python = std::env::var("EXPMAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let pandas = pandas_ms(&python, &dir.join("metrics/big.csv"));

    let log = dir.join("logs/big.log");
    let size = std::fs::metadata(&log).unwrap().len();
    // grep first: it reads the file into the page cache for both.
    let (grep_first, grep_count) = grep_c("ERROR", &log, false);
    let search = |query: &str| {
        let body = get(addr, &format!("/api/experiments/{ID}/logs/big.log?{query}"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["count"].as_u64().unwrap()
    };
    let mut count = 0;
    let ours = median_ms(3, || count = search("search=ERROR"));
    assert_eq!(count, grep_count, "the same lines as grep -c");
    let (grep_rare, _) = grep_c("ERROR", &log, false);
    let ours_common = median_ms(3, || count = search("search=lr%3D0.001&max=100"));
    let (grep_common, grep_common_count) = grep_c("lr=0.001", &log, false);
    assert_eq!(count, grep_common_count);
    let ours_regex = median_ms(3, || {
        count = search("search=ERROR.*nan%20at%20batch%20[0-9]%2B&regex=1")
    });
    let (grep_regex, grep_regex_count) = grep_c("ERROR.*nan at batch [0-9]+", &log, true);
    assert_eq!(count, grep_regex_count);

    let mut pages: Vec<f64> = (0..200u64)
        .map(|i| {
            let before = (noise(i) * size as f64) as u64;
            ms(|| {
                get(
                    addr,
                    &format!("/api/experiments/{ID}/logs/big.log?before={before}&length=65536"),
                );
            })
        })
        .collect();
    pages.sort_by(f64::total_cmp);
    let first = ms(|| {
        get(
            addr,
            &format!("/api/experiments/{ID}/logs/big.log?before=65536&length=65536"),
        );
    });
    server.stop();

    println!(
        "series, {ROWS} rows x 4 columns, 1000 buckets, EMA: warm {warm:7.1} ms (goal < 50 ms), \
         cold (parse) {cold:7.1} ms; {points} points, {} KB",
        body.len() / 1024
    );
    match pandas {
        Some(p) => println!(
            "  baseline: pandas read_csv of the same columns        {p:7.1} ms  (warm is {:.0}x faster)",
            p / warm
        ),
        None => println!("  baseline: pandas not available to {python} (set EXPMAN_PYTHON)"),
    }
    println!("series, same, a new EMA weight each time (smoothing computed) {fresh_ema:7.1} ms");
    println!("series, same, without smoothing                      {plain:7.1} ms");
    println!(
        "series, same, running median k=101: first {median_first:7.1} ms, then {median:7.1} ms"
    );
    println!("series, zoom to 100 rows (exact), EMA                {zoom:7.1} ms");
    println!(
        "search a {} MB log, rare literal ({count_rare} lines): {ours:7.1} ms (goal < 1500 ms); \
         grep -c {grep_rare:.1} ms (first, cold cache: {grep_first:.1} ms)",
        size >> 20,
        count_rare = grep_count
    );
    println!(
        "search, common literal ({grep_common_count} lines):      {ours_common:7.1} ms; grep -c {grep_common:.1} ms"
    );
    println!(
        "search, regex ERROR.*nan at batch [0-9]+:             {ours_regex:7.1} ms; grep -E -c {grep_regex:.1} ms"
    );
    println!(
        "page back (64 KiB of whole lines) anywhere, 200 pages: median {:.2} ms, max {:.2} ms \
         (goal < 20 ms); the first page {first:.2} ms",
        pages[100], pages[199]
    );
    let load = Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("load after: {load}");
}
