//! The series and logs endpoints over real HTTP on 127.0.0.1, served by the library's
//! `Server` from real files: a spike among 1,000,000 rows kept at every `max_points`,
//! smoothing equal to reference implementations written here, every x kind, NaN/inf/null
//! gaps, exact range refetches, log paging back to byte 0 over a multi-MB file with long and
//! CRLF lines, search across chunk boundaries, downloads equal to the files, checkpoints, and
//! hostile parameters answered 400/403/404 while the server keeps serving.
#![cfg(feature = "server")]

use std::io::Write;
use std::path::PathBuf;

use expman::server::{Server, ServerOptions};
#[path = "http_support/mod.rs"]
mod http_support;

use http_support::{Answer, get};
use serde_json::Value as Json;

impl Answer {
    fn ok(self) -> Json {
        assert_eq!(
            self.status,
            200,
            "{}",
            String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
        );
        self.json()
    }
}

const ID: &str = "exp_2026-01-01__00-00-00";

/// A served directory holding one experiment; the server stops when this is dropped.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    server: Server,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("experiments");
        let dir = base.join(ID);
        for sub in ["metrics", "logs", "checkpoints"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(
            dir.join("config.json"),
            r#"{"name":"exp","command":"train","created_at":"2026-01-01T00:00:00+00:00"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("status.json"),
            r#"{"status":"Finished","run_id":"run_0001"}"#,
        )
        .unwrap();
        let options = ServerOptions {
            port: 0,
            ..ServerOptions::default()
        };
        let server = Server::start(&base, &options).unwrap();
        Fixture {
            _tmp: tmp,
            dir,
            server,
        }
    }

    fn get(&self, path: &str) -> Answer {
        get(self.server.addr(), path)
    }

    fn series(&self, table: &str, query: &str) -> Json {
        self.get(&format!(
            "/api/experiments/{ID}/tables/{table}/series?{query}"
        ))
        .ok()
    }

    fn table(&self, name: &str, header: &str, rows: impl IntoIterator<Item = String>) {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(self.dir.join(format!("metrics/{name}.csv"))).unwrap(),
        );
        writeln!(out, "{header}").unwrap();
        for row in rows {
            writeln!(out, "{row}").unwrap();
        }
        out.flush().unwrap();
    }
}

/// Deterministic noise in [0, 1).
fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn numbers(v: &Json) -> Vec<Option<f64>> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(Json::as_f64)
        .collect()
}

const TS: &str = "2026-01-01T00:00:00.000000";

#[test]
fn a_single_spike_among_a_million_rows_is_kept_at_every_max_points() {
    let f = Fixture::new();
    const ROWS: u64 = 1_000_000;
    const SPIKE: u64 = 654_321;
    const DIP: u64 = 123_457;
    f.table(
        "big",
        "timestamp,run_id,step,loss,acc",
        (0..ROWS).map(|i| {
            let loss = if i == SPIKE { 1000.0 } else { noise(i) };
            let acc = if i == DIP { -50.0 } else { noise(i + ROWS) };
            format!("{TS},run_0001,{i},{loss},{acc}")
        }),
    );
    for max_points in [1, 2, 3, 10, 333, 1000, 2000, 4096, 10_000] {
        let s = f.series("big", &format!("max_points={max_points}"));
        assert_eq!(s["x"], "step");
        assert_eq!(s["rows"], ROWS);
        assert_eq!(s["exact"], false);
        let x = numbers(&s["x_values"]);
        let loss = numbers(&s["series"]["loss"]);
        let acc = numbers(&s["series"]["acc"]);
        assert_eq!(x.len(), loss.len());
        // At most first, last, min and max of each of the two columns per bucket.
        assert!(x.len() <= 8 * max_points, "{} points", x.len());
        let spike = loss.iter().position(|&v| v == Some(1000.0));
        let spike = spike.unwrap_or_else(|| panic!("spike lost at max_points={max_points}"));
        assert_eq!(x[spike], Some(SPIKE as f64));
        let dip = acc.iter().position(|&v| v == Some(-50.0));
        let dip = dip.unwrap_or_else(|| panic!("dip lost at max_points={max_points}"));
        assert_eq!(x[dip], Some(DIP as f64));
        assert_eq!(x[0], Some(0.0));
        assert_eq!(*x.last().unwrap(), Some((ROWS - 1) as f64));
        assert!(x.windows(2).all(|w| w[0] < w[1]), "x in order");
    }
    // Zoomed onto the spike: still there, and exact once the range holds few rows.
    let s = f.series(
        "big",
        &format!("max_points=100&from={}&to={}", SPIKE - 40, SPIKE + 40),
    );
    assert_eq!(s["exact"], true);
    assert_eq!(s["rows_in_range"], 81);
    let loss = numbers(&s["series"]["loss"]);
    assert_eq!(loss.len(), 81);
    assert_eq!(loss[40], Some(1000.0));
    for (k, v) in loss.iter().enumerate() {
        let i = SPIKE - 40 + k as u64;
        if i != SPIKE {
            assert_eq!(*v, Some(noise(i)), "row {i} exact");
        }
    }
}

/// TensorBoard's `resmoothDataset`, written out again from its source for the test.
fn reference_ema(values: &[f64], w: f64) -> Vec<f64> {
    let is_constant = values.iter().all(|&v| v == values[0]);
    let mut last = 0.0;
    let mut num_accum = 0;
    values
        .iter()
        .map(|&v| {
            if is_constant || !v.is_finite() {
                v
            } else {
                last = last * w + (1.0 - w) * v;
                num_accum += 1;
                let debias = if w == 1.0 {
                    1.0
                } else {
                    1.0 - w.powf(num_accum as f64)
                };
                last / debias
            }
        })
        .collect()
}

/// The median of the finite values in the centred window, by sorting each window.
fn reference_median(values: &[f64], k: usize) -> Vec<f64> {
    let h = k / 2;
    (0..values.len())
        .map(|i| {
            if !values[i].is_finite() {
                return f64::NAN;
            }
            let mut window: Vec<f64> = values[i.saturating_sub(h)..(i + h + 1).min(values.len())]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            window.sort_by(f64::total_cmp);
            let n = window.len();
            if n % 2 == 1 {
                window[n / 2]
            } else {
                (window[n / 2 - 1] + window[n / 2]) / 2.0
            }
        })
        .collect()
}

#[test]
fn smoothing_runs_on_the_full_data_and_equals_the_references() {
    let f = Fixture::new();
    const ROWS: usize = 6000;
    // Values with a trend, noise, outliers, gaps of every kind and (for log_y) values <= 0.
    let cell = |i: usize| -> String {
        match i {
            _ if i % 997 == 5 => "NaN".into(),
            _ if i % 1009 == 7 => "inf".into(),
            _ if i % 1013 == 9 => "-inf".into(),
            _ if i % 1021 == 11 => String::new(),
            _ if i % 1031 == 13 => "0".into(),
            _ if i % 1033 == 17 => "-2.5".into(),
            _ if i % 501 == 3 => "250".into(),
            _ => format!("{}", 10.0 / (1.0 + i as f64 / 100.0) + noise(i as u64)),
        }
    };
    f.table(
        "s",
        "timestamp,run_id,step,loss",
        (0..ROWS).map(|i| format!("{TS},run_0001,{i},{}", cell(i))),
    );
    let values: Vec<f64> = (0..ROWS)
        .map(|i| cell(i).parse::<f64>().unwrap_or(f64::NAN))
        .collect();
    let logged: Vec<f64> = values
        .iter()
        .map(|&v| if v > 0.0 { v.log10() } else { f64::NAN })
        .collect();
    let cases: Vec<(String, bool, Vec<f64>)> = vec![
        ("ema:0.6".into(), false, reference_ema(&values, 0.6)),
        ("ema:0.999".into(), false, reference_ema(&values, 0.999)),
        ("ema:0".into(), false, reference_ema(&values, 0.0)),
        ("median:1".into(), false, reference_median(&values, 1)),
        ("median:51".into(), false, reference_median(&values, 51)),
        (
            "ema:0.9".into(),
            true,
            reference_ema(&logged, 0.9)
                .iter()
                .map(|v| 10f64.powf(*v))
                .collect(),
        ),
        (
            "median:25".into(),
            true,
            reference_median(&logged, 25)
                .iter()
                .map(|v| 10f64.powf(*v))
                .collect(),
        ),
    ];
    for (smooth, log_y, expected) in &cases {
        // Exact (every row) and thinned (which must not change the smoothed values).
        for max_points in [10_000, 37] {
            let s = f.series(
                "s",
                &format!(
                    "columns=loss&smooth={smooth}&log_y={}&max_points={max_points}",
                    *log_y as u8
                ),
            );
            assert_eq!(s["smooth"], smooth.as_str());
            let rows = numbers(&s["row_index"]);
            let got = numbers(&s["smoothed"]["loss"]);
            let raw = numbers(&s["series"]["loss"]);
            if max_points == 10_000 {
                assert_eq!(rows.len(), ROWS, "{smooth}: every row");
            }
            for ((row, got), raw) in rows.iter().zip(&got).zip(&raw) {
                let row = row.unwrap() as usize;
                let want = expected[row];
                let drawable = values[row].is_finite() && (!log_y || values[row] > 0.0);
                if !drawable {
                    assert_eq!(*got, None, "{smooth} row {row}: a gap stays a gap");
                    assert_eq!(*raw, None, "{smooth} row {row}: a gap is null, never 0");
                    continue;
                }
                assert_eq!(*raw, Some(values[row]));
                let got = got.unwrap_or_else(|| panic!("{smooth} row {row} missing"));
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{smooth} log_y={log_y} row {row}: {got} != {want}"
                );
            }
        }
    }
}

#[test]
fn every_x_kind() {
    let f = Fixture::new();
    // Two runs in one table; the step goes back once (a resumed run); lr is not ordered.
    let rows = [
        ("2026-01-01T10:00:00.000000", "a", 0, 0.3, 5.0),
        ("2026-01-01T10:00:01.500000", "a", 1, 0.1, 4.0),
        ("2026-01-01T10:00:03.000000", "a", 2, 0.2, 3.0),
        ("2026-01-01T10:00:04.000000", "b", 0, 0.05, 9.0),
        ("2026-01-01T10:00:06.250000", "b", 1, 0.4, 8.0),
        ("2026-01-01T10:00:07.000000", "a", 1, 0.15, 3.5),
    ];
    f.table(
        "x",
        "timestamp,run_id,step,lr,loss",
        rows.iter()
            .map(|(t, run, step, lr, loss)| format!("{t},{run},{step},{lr},{loss}")),
    );
    let s = f.series("x", "");
    assert_eq!(s["x"], "step");
    assert_eq!(numbers(&s["x_values"]), [0., 0., 1., 1., 1., 2.].map(Some));
    // Equal steps keep the file's order.
    assert_eq!(numbers(&s["row_index"]), [0., 3., 1., 4., 5., 2.].map(Some));
    assert!(s["series"].get("lr").is_some() && s["series"].get("step").is_none());

    let s = f.series("x", "x=row&columns=loss");
    assert_eq!(s["x"], "row");
    assert_eq!(
        numbers(&s["series"]["loss"]),
        [5., 4., 3., 9., 8., 3.5].map(Some)
    );
    assert_eq!(numbers(&s["x_values"]), [0., 1., 2., 3., 4., 5.].map(Some));

    let s = f.series("x", "x=wall&columns=loss");
    let wall = numbers(&s["x_values"]);
    let t0 = wall[0].unwrap();
    let since: Vec<f64> = wall.iter().map(|w| w.unwrap() - t0).collect();
    assert_eq!(since, [0.0, 1.5, 3.0, 4.0, 6.25, 7.0]);
    // A Unix time in 2026, whatever the zone.
    assert!((1.767e9..1.768e9).contains(&t0), "{t0}");

    let s = f.series("x", "x=relative&columns=loss");
    assert_eq!(
        numbers(&s["x_values"]),
        [0.0, 0.0, 1.5, 2.25, 3.0, 7.0].map(Some)
    );
    assert_eq!(numbers(&s["row_index"]), [0., 3., 1., 4., 2., 5.].map(Some));

    let s = f.series("x", "x=relative&columns=loss&run=b");
    assert_eq!(s["run"], "b");
    assert_eq!(numbers(&s["x_values"]), [0.0, 2.25].map(Some));
    assert_eq!(numbers(&s["series"]["loss"]), [9.0, 8.0].map(Some));

    let s = f.series("x", "x=lr&columns=loss");
    assert_eq!(s["x"], "lr");
    assert_eq!(
        numbers(&s["x_values"]),
        [0.05, 0.1, 0.15, 0.2, 0.3, 0.4].map(Some)
    );
    assert_eq!(
        numbers(&s["series"]["loss"]),
        [9.0, 4.0, 3.5, 3.0, 5.0, 8.0].map(Some)
    );

    let s = f.series("x", "x=step&columns=loss&from=1&to=1");
    assert_eq!(numbers(&s["series"]["loss"]), [4.0, 8.0, 3.5].map(Some));

    // A table without a step-like column charts against the row.
    f.table(
        "nostep",
        "timestamp,run_id,loss",
        (0..3).map(|i| format!("{TS},r,{i}")),
    );
    assert_eq!(f.series("nostep", "")["x"], "row");
}

#[test]
fn non_finite_and_empty_cells_are_gaps_with_kind_and_place() {
    let f = Fixture::new();
    let cells = ["1", "NaN", "NaN", "2", "inf", "", "3", "-inf", "4", "", ""];
    f.table(
        "g",
        "timestamp,run_id,step,loss,other",
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{TS},r,{},{c},{i}", i * 10)),
    );
    let s = f.series("g", "columns=loss,other");
    let loss = numbers(&s["series"]["loss"]);
    assert_eq!(
        loss,
        vec![
            Some(1.),
            None,
            None,
            Some(2.),
            None,
            None,
            Some(3.),
            None,
            Some(4.),
            None,
            None
        ]
    );
    let gaps: Vec<(String, f64, f64, u64)> = s["gaps"]["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["kind"].as_str().unwrap().to_string(),
                g["from"].as_f64().unwrap(),
                g["to"].as_f64().unwrap(),
                g["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        gaps,
        vec![
            ("nan".into(), 10., 20., 2),
            ("inf".into(), 40., 40., 1),
            ("null".into(), 50., 50., 1),
            ("-inf".into(), 70., 70., 1),
            ("null".into(), 90., 100., 2),
        ]
    );
    assert_eq!(s["gaps"]["other"], serde_json::json!([]));
    // Thinned to one bucket: the gaps are still there, counted by kind, and the line breaks.
    let s = f.series("g", "columns=loss&max_points=1");
    assert_eq!(s["exact"], false);
    let mut kinds: Vec<(String, u64)> = s["gaps"]["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["kind"].as_str().unwrap().into(),
                g["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [("-inf", 1), ("inf", 1), ("nan", 2), ("null", 3)].map(|(k, n)| (k.to_string(), n))
    );
    let loss = numbers(&s["series"]["loss"]);
    assert!(loss.contains(&None) && loss.contains(&Some(4.0)) && loss.contains(&Some(1.0)));
    assert!(!loss.contains(&Some(0.0)), "a gap is never a zero");
    // With log_y, values <= 0 are gaps of their own kind.
    f.table(
        "p",
        "timestamp,run_id,step,loss",
        ["1", "0", "-3", "10"]
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{TS},r,{i},{c}")),
    );
    let s = f.series("p", "log_y=1");
    assert_eq!(
        numbers(&s["series"]["loss"]),
        [Some(1.0), None, None, Some(10.0)]
    );
    assert_eq!(s["gaps"]["loss"][0]["kind"], "nonpositive");
    assert_eq!(s["gaps"]["loss"][0]["rows"], 2);
    // Rows without an x are counted, not placed.
    f.table(
        "nx",
        "timestamp,run_id,step,loss",
        ["0,1", ",2", "NaN,3", "3,4"]
            .iter()
            .map(|c| format!("{TS},r,{c}")),
    );
    let s = f.series("nx", "");
    assert_eq!(s["x_missing"], 2);
    assert_eq!(numbers(&s["series"]["loss"]), [Some(1.0), Some(4.0)]);
}

#[test]
fn refetching_a_range_is_exact_and_appended_rows_show_up() {
    let f = Fixture::new();
    const ROWS: u64 = 200_000;
    f.table(
        "r",
        "timestamp,run_id,step,loss",
        (0..ROWS).map(|i| format!("{TS},r,{},{}", i * 2, noise(i))),
    );
    let whole = f.series("r", "max_points=500");
    assert_eq!(whole["exact"], false);
    // 1,000 rows in range (steps 100000..=101998), asked with 1,000 points: every row, exact.
    let s = f.series("r", "max_points=1000&from=100000&to=101998");
    assert_eq!(s["exact"], true);
    assert_eq!(s["rows_in_range"], 1000);
    let x = numbers(&s["x_values"]);
    let loss = numbers(&s["series"]["loss"]);
    assert_eq!(x.len(), 1000);
    for (k, (x, v)) in x.iter().zip(&loss).enumerate() {
        let i = 50_000 + k as u64;
        assert_eq!(*x, Some((i * 2) as f64));
        assert_eq!(*v, Some(noise(i)));
    }
    // One more row than points: thinned again.
    let s = f.series("r", "max_points=999&from=100000&to=101998");
    assert_eq!(s["exact"], false);
    // Rows appended to the same file are read (only they are parsed again).
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(f.dir.join("metrics/r.csv"))
        .unwrap();
    writeln!(file, "{TS},r,{},7.5", ROWS * 2).unwrap();
    let s = f.series("r", &format!("from={}", ROWS * 2));
    assert_eq!(s["rows"], ROWS + 1);
    assert_eq!(numbers(&s["series"]["loss"]), [Some(7.5)]);
}

fn log_get(f: &Fixture, file: &str, query: &str) -> Json {
    f.get(&format!("/api/experiments/{ID}/logs/{file}?{query}"))
        .ok()
}

/// A multi-MB log with short, long (300 KB) and CRLF lines and multi-byte characters.
fn mixed_log() -> Vec<u8> {
    let mut log = Vec::new();
    let mut i = 0u64;
    while log.len() < 6 << 20 {
        match i % 1000 {
            0 => {
                log.extend(std::iter::repeat_n(b'x', 300_000));
                log.push(b'\n');
            }
            n if n % 7 == 0 => log.extend_from_slice(format!("crlf line {i} ✓\r\n").as_bytes()),
            _ => {
                log.extend_from_slice(format!("step {i} loss={:.4} ünïcode\n", noise(i)).as_bytes())
            }
        }
        i += 1;
    }
    log
}

#[test]
fn logs_page_back_to_byte_zero_and_forward_to_the_end() {
    let f = Fixture::new();
    let log = mixed_log();
    std::fs::write(f.dir.join("logs/run_0001.log"), &log).unwrap();
    let size = log.len() as u64;
    // Today's tail still works.
    let tail = log_get(&f, "run_0001.log", "");
    assert_eq!(tail["end"], size);
    assert_eq!(tail["size"], size);
    // Back by whole lines from the end to the first byte.
    let mut pages: Vec<String> = Vec::new();
    let mut before = size;
    let mut count = 0;
    loop {
        let page = log_get(&f, "run_0001.log", &format!("before={before}&length=65536"));
        assert_eq!(page["end"], before);
        assert_eq!(page["size"], size);
        let start = page["start"].as_u64().unwrap();
        assert!(start < before, "progress");
        assert!(before - start <= 65536);
        let at_line = start == 0 || log[start as usize - 1] == b'\n';
        assert_eq!(page["line_start"], at_line);
        if at_line {
            // A page of whole lines ends at a line end (or the file's end).
            assert!(before == size || log[before as usize - 1] == b'\n' || before < size);
        }
        pages.push(page["text"].as_str().unwrap().to_string());
        before = start;
        count += 1;
        if start == 0 {
            break;
        }
        assert!(count < 10_000);
    }
    pages.reverse();
    assert_eq!(
        pages.concat().as_bytes(),
        &log[..],
        "the pages are the file"
    );
    // Forward by byte ranges from 0: also the whole file.
    let mut text = String::new();
    let mut offset = 0;
    while offset < size {
        let page = log_get(
            &f,
            "run_0001.log",
            &format!("offset={offset}&length=1000000"),
        );
        assert_eq!(page["start"], offset);
        text.push_str(page["text"].as_str().unwrap());
        offset = page["end"].as_u64().unwrap();
    }
    assert_eq!(text.as_bytes(), &log[..]);
}

/// The lines of `log` holding `needle` (1-based numbers, line starts), counted plainly.
fn naive_search(log: &[u8], needle: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (n, line) in log.split(|&b| b == b'\n').enumerate() {
        if line.windows(needle.len()).any(|w| w == needle) {
            out.push((n as u64 + 1, start as u64));
        }
        start += line.len() + 1;
    }
    out
}

#[test]
fn search_covers_the_whole_file_across_chunk_boundaries() {
    let f = Fixture::new();
    let mut log = mixed_log();
    // Needles straddling the server's 4 MiB reads, and at the very start and end.
    log.splice(0..0, b"NEEDLE at the start\n".iter().copied());
    for boundary in [4usize << 20, 8 << 20] {
        while log.len() < boundary + 100 {
            log.extend_from_slice(b"filler line\n");
        }
        log.splice(boundary - 3..boundary - 3, b"NEEDLE".iter().copied());
    }
    log.extend_from_slice(b"last NEEDLE");
    std::fs::write(f.dir.join("logs/big.log"), &log).unwrap();
    let want = naive_search(&log, b"NEEDLE");
    assert!(want.len() >= 4);
    let s = log_get(&f, "big.log", "search=NEEDLE&max=1000");
    assert_eq!(s["count"], want.len() as u64);
    assert_eq!(s["truncated"], false);
    let got: Vec<(u64, u64)> = s["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["line"].as_u64().unwrap(), m["offset"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, want);
    for m in s["matches"].as_array().unwrap() {
        let at = m["match"].as_u64().unwrap() as usize;
        assert_eq!(&log[at..at + 6], b"NEEDLE");
        assert!(m["text"].as_str().unwrap().contains("NEEDLE"));
    }
    // Bounded listing, whole-file count; and from a byte offset on.
    let s = log_get(&f, "big.log", "search=NEEDLE&max=2");
    assert_eq!(s["matches"].as_array().unwrap().len(), 2);
    assert_eq!(s["count"], want.len() as u64);
    assert_eq!(s["truncated"], true);
    let s = log_get(
        &f,
        "big.log",
        &format!("search=NEEDLE&from={}", want[1].1 + 1),
    );
    assert_eq!(s["matches"][0]["line"], want[2].0);
    // A regular expression and a case-insensitive literal count the same lines.
    let s = log_get(&f, "big.log", "search=N%5BE%5D%2BDLE&regex=1&max=1000");
    assert_eq!(s["count"], want.len() as u64);
    let s = log_get(&f, "big.log", "search=needle&ignore_case=1&max=1000");
    assert_eq!(s["count"], want.len() as u64);
    let crlf = naive_search(&log, "✓\r".as_bytes()).len() as u64;
    let s = log_get(&f, "big.log", "search=%E2%9C%93%24&regex=1");
    assert_eq!(s["count"], crlf, "`$` matches before a CRLF line end");
}

#[test]
fn downloads_equal_the_files_and_checkpoints_are_listed() {
    let f = Fixture::new();
    let log = mixed_log();
    std::fs::write(f.dir.join("logs/run_0001.log"), &log).unwrap();
    let a = f.get(&format!(
        "/api/experiments/{ID}/logs/run_0001.log?download=1"
    ));
    assert_eq!(a.status, 200);
    assert!(
        a.head
            .contains("Content-Disposition: attachment; filename=\"run_0001.log\""),
        "{}",
        a.head
    );
    assert!(a.head.contains(&format!("Content-Length: {}", log.len())));
    assert!(a.body == log, "the download is the file");

    let ckpt: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(f.dir.join("checkpoints/model.pt"), &ckpt).unwrap();
    std::fs::create_dir_all(f.dir.join("checkpoints/epoch_2")).unwrap();
    std::fs::write(f.dir.join("checkpoints/epoch_2/opt.pt"), b"state").unwrap();
    let outside = f._tmp.path().join("secret.pt");
    std::fs::write(&outside, b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, f.dir.join("checkpoints/leak.pt")).unwrap();
    let details = f.get(&format!("/api/experiments/{ID}")).ok();
    let listed: Vec<(String, u64)> = details["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["mtime"].as_f64().unwrap() > 1.0e9);
            (
                c["name"].as_str().unwrap().into(),
                c["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("epoch_2/opt.pt".to_string(), 5),
            ("model.pt".to_string(), ckpt.len() as u64)
        ]
    );
    let a = f.get(&format!("/api/experiments/{ID}/checkpoints/model.pt"));
    assert_eq!(a.status, 200);
    assert!(a.body == ckpt);
    let a = f.get(&format!("/api/experiments/{ID}/checkpoints/epoch_2/opt.pt"));
    assert_eq!(a.body, b"state");
    assert_eq!(
        f.get(&format!("/api/experiments/{ID}/checkpoints/leak.pt"))
            .status,
        403
    );
    for path in [
        "..%2Fconfig.json",
        "../config.json",
        "epoch_2",
        "missing.pt",
    ] {
        let status = f
            .get(&format!("/api/experiments/{ID}/checkpoints/{path}"))
            .status;
        assert!([400, 404].contains(&status), "{path}: {status}");
    }
}

#[test]
fn hostile_parameters_are_answered_4xx_and_the_server_keeps_serving() {
    let f = Fixture::new();
    f.table(
        "t",
        "timestamp,run_id,step,loss,note",
        (0..100).map(|i| format!("{TS},r,{i},{},ok", noise(i))),
    );
    let mut bad_log = b"caf\xe9 latin-1\n\xff\xfe binary \x00 bytes\n".repeat(1000);
    bad_log.extend_from_slice(b"\xe2\x9c");
    std::fs::write(f.dir.join("logs/bad.log"), &bad_log).unwrap();
    let series = format!("/api/experiments/{ID}/tables/t/series");
    let logs = format!("/api/experiments/{ID}/logs");
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{series}?max_points=100000000"), 400, "max_points"),
        (format!("{series}?max_points=0"), 400, "max_points"),
        (format!("{series}?max_points=-5"), 400, "max_points"),
        (format!("{series}?from=NaN"), 400, "from"),
        (format!("{series}?to=inf"), 400, "to"),
        (format!("{series}?from=5&to=1"), 400, "from"),
        (format!("{series}?smooth=ema:1.5"), 400, "smooth"),
        (format!("{series}?smooth=median:4"), 400, "smooth"),
        (format!("{series}?smooth=gauss:3"), 400, "smooth"),
        (format!("{series}?columns=nope"), 400, "columns"),
        (format!("{series}?columns=note"), 400, "columns"),
        (format!("{series}?x=note"), 400, "x="),
        (format!("{series}?log_y=maybe"), 400, "log_y"),
        (format!("{series}?run=nope"), 404, "run"),
        (
            format!("/api/experiments/{ID}/tables/..%2F..%2Fx/series"),
            404,
            "",
        ),
        (format!("/api/experiments/{ID}/tables/../series"), 400, ""),
        (
            format!("/api/experiments/{ID}/tables/missing/series"),
            404,
            "",
        ),
        (
            format!("/api/experiments/..%2F{ID}/tables/t/series"),
            404,
            "",
        ),
        ("/api/experiments/../tables/t/series".to_string(), 400, ""),
        (format!("{logs}/bad.log?offset=-5"), 400, "offset"),
        (format!("{logs}/bad.log?before=-1"), 400, "before"),
        (format!("{logs}/bad.log?length=x"), 400, "length"),
        (format!("{logs}/bad.log?search=a&max=100000000"), 400, "max"),
        (format!("{logs}/bad.log?search=%28&regex=1"), 400, "search"),
        (format!("{logs}/bad.log?search="), 400, "search"),
        (format!("{logs}/bad.log?download=yes"), 400, "download"),
        // Parameters that do not decode were left out: the log's tail, the default rows.
        (format!("{logs}/bad.log?search=%ZZ"), 400, "search=%ZZ"),
        (
            format!("/api/experiments/{ID}/tables/t?tail=%FF"),
            400,
            "tail=%FF",
        ),
        (format!("{logs}/..%2Fconfig.json"), 404, ""),
        (format!("{logs}/..%2F..%2Fx.log"), 404, ""),
        (format!("{logs}/.."), 400, ""),
        (format!("{logs}/.hidden.log"), 400, ""),
        (format!("{logs}/missing.log"), 404, ""),
    ];
    for (path, status, names) in cases {
        let a = f.get(&path);
        assert_eq!(
            a.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let error = a.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(names), "{path}: {error}");
    }
    // Not UTF-8: pages, search and download all answer.
    let page = log_get(&f, "bad.log", "before=999999999&length=100");
    assert_eq!(page["end"], bad_log.len() as u64);
    let page = log_get(&f, "bad.log", "offset=0&length=5000");
    assert!(page["text"].as_str().unwrap().contains('\u{fffd}'));
    let s = log_get(&f, "bad.log", "search=binary");
    assert_eq!(s["count"], 1000);
    let a = f.get(&format!("{logs}/bad.log?download=1"));
    assert!(a.body == bad_log);
    // Still serving.
    assert_eq!(f.series("t", "")["rows"], 100);
}
