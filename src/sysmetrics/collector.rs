//! One sample: the tree's and the GPUs' figures now, and the row they make in the `system`
//! table.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use super::gpus::{GpuReading, GpuSource, VisibleGpu};
use super::procfs::ProcReader;
use crate::error::Result;
use crate::metrics::{TableWriter, Value};

/// Bytes per MiB, the unit of every memory and I/O column.
const MIB: f64 = 1024.0 * 1024.0;

/// The figures of one sample. Columns of the `system` table, in this order (an empty cell
/// where a figure is `None`):
///
/// | column | unit | |
/// |---|---|---|
/// | `elapsed_s` | s | since the sampler started |
/// | `cpu_percent` | % of one core | the tree's CPU use since the previous sample (100 = one busy core; empty in the first row) |
/// | `rss_mib` | MiB | resident memory summed over the tree's processes |
/// | `processes`, `threads` | count | in the tree |
/// | `host_mem_available_mib` | MiB | the host's `MemAvailable` |
/// | `disk_read_mib`, `disk_write_mib` | MiB | storage I/O of the tree so far (left out when `/proc/<pid>/io` is unreadable) |
/// | `gpuN_util_percent`, `gpuN_mem_used_mib`, `gpuN_mem_total_mib`, `gpuN_power_w`, `gpuN_temp_c` | | per GPU of the run, `N` its index |
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the collector was made.
    pub elapsed_s: f64,
    /// CPU use of the tree since the previous sample, in percent of one core; `None` in the
    /// first sample (there is no previous one).
    pub cpu_percent: Option<f64>,
    /// Resident memory summed over the tree's processes, in bytes.
    pub rss_bytes: u64,
    /// Processes in the tree, the root included.
    pub processes: u32,
    /// Threads in the tree.
    pub threads: u64,
    /// The host's available memory (`MemAvailable`), in bytes.
    pub host_mem_available_bytes: Option<u64>,
    /// Bytes the tree read from and wrote to storage so far; `None` when unreadable.
    pub disk_bytes: Option<(u64, u64)>,
    /// The run's GPUs.
    pub gpus: Vec<GpuReading>,
}

/// Kinds of failure, each reported once per sampler.
#[derive(Clone, Copy)]
enum Failure {
    Table = 0,
    Gpu = 1,
}

/// Takes samples of one process tree and writes them to a `system` table.
pub struct Collector {
    pub(super) root: u32,
    proc: ProcReader,
    gpus: Vec<VisibleGpu>,
    /// `Err` holds why there is no GPU source, reported once when the run has GPUs.
    source: std::result::Result<Box<dyn GpuSource>, String>,
    writer: TableWriter,
    log: Option<PathBuf>,
    started: Instant,
    previous: Option<(Instant, u64)>,
    ticks_per_second: f64,
    page_size: u64,
    reported: [bool; 2],
}

impl Collector {
    pub(super) fn new(
        root: u32,
        gpus: Vec<VisibleGpu>,
        source: std::result::Result<Box<dyn GpuSource>, String>,
        writer: TableWriter,
        log: Option<PathBuf>,
    ) -> Collector {
        Collector {
            root,
            proc: ProcReader::new(),
            gpus,
            source,
            writer,
            log,
            started: Instant::now(),
            previous: None,
            ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as u64,
            reported: [false; 2],
        }
    }

    /// The run log failures are reported to.
    pub(super) fn log_path(&self) -> Option<PathBuf> {
        self.log.clone()
    }

    /// The tree's figures now, or `None` once its root process is gone. A GPU source that
    /// fails is reported into the run's log once; the sample then has no GPU figures.
    pub fn sample(&mut self) -> Option<Sample> {
        let now = Instant::now();
        let totals = self.proc.tree(self.root)?;
        let cpu_percent = self.previous.map(|(then, ticks)| {
            let seconds = now.duration_since(then).as_secs_f64();
            // A child reaped by a process outside the tree takes its time with it: never
            // report that as negative use.
            let used = totals.cpu_ticks.saturating_sub(ticks) as f64 / self.ticks_per_second;
            if seconds > 0.0 {
                100.0 * used / seconds
            } else {
                0.0
            }
        });
        self.previous = Some((now, totals.cpu_ticks));
        let gpus = if self.gpus.is_empty() {
            Vec::new()
        } else {
            let read = match &mut self.source {
                Ok(source) => source.read(&self.gpus),
                Err(why) => Err(why.clone()),
            };
            read.unwrap_or_else(|why| {
                self.report(Failure::Gpu, &format!("{why}; the GPU columns stay empty"));
                Vec::new()
            })
        };
        Some(Sample {
            elapsed_s: now.duration_since(self.started).as_secs_f64(),
            cpu_percent,
            rss_bytes: totals.rss_pages * self.page_size,
            processes: totals.processes,
            threads: totals.threads,
            host_mem_available_bytes: self.proc.mem_available(),
            disk_bytes: totals.io,
            gpus,
        })
    }

    /// Appends `sample` as one row of the `system` table.
    pub fn write(&mut self, sample: &Sample) -> Result<()> {
        let w = &mut self.writer;
        let mib = |bytes: u64| Value::Float(round3(bytes as f64 / MIB));
        w.set("elapsed_s", round3(sample.elapsed_s))?;
        // Set (empty) in the first row too, so the column keeps its place in the header.
        w.set(
            "cpu_percent",
            sample.cpu_percent.map_or(Value::Null, round3_value),
        )?;
        w.set("rss_mib", mib(sample.rss_bytes))?;
        w.set("processes", i64::from(sample.processes))?;
        w.set("threads", sample.threads as i64)?;
        if let Some(bytes) = sample.host_mem_available_bytes {
            w.set("host_mem_available_mib", mib(bytes))?;
        }
        if let Some((read, written)) = sample.disk_bytes {
            w.set("disk_read_mib", mib(read))?;
            w.set("disk_write_mib", mib(written))?;
        }
        for gpu in &sample.gpus {
            let n = gpu.index;
            let mut set = |what: &str, value: Option<Value>| match value {
                Some(value) => w.set(&format!("gpu{n}_{what}"), value),
                None => Ok(()),
            };
            set(
                "util_percent",
                gpu.utilization_percent.map(|v| Value::Int(v.into())),
            )?;
            set(
                "mem_used_mib",
                gpu.memory_used_mib.map(|v| Value::Int(v as i64)),
            )?;
            set(
                "mem_total_mib",
                gpu.memory_total_mib.map(|v| Value::Int(v as i64)),
            )?;
            set("power_w", gpu.power_w.map(Value::Float))?;
            set("temp_c", gpu.temperature_c.map(|v| Value::Int(v.into())))?;
        }
        let saved = w.save_row();
        if saved.is_err() {
            // Never leave a half row pending for the next sample to merge into.
            w.clear_row();
        }
        saved
    }

    /// One sample written; `false` once the root process is gone. A failed write is reported
    /// into the run's log once and the sampler goes on (a full disk may recover).
    pub fn tick(&mut self) -> bool {
        let Some(sample) = self.sample() else {
            return false;
        };
        if let Err(e) = self.write(&sample) {
            let message = format!("cannot write the system metrics ({e}); still trying");
            self.report(Failure::Table, &message);
        }
        true
    }

    /// Writes `message` into the run's log, the first time a failure of this kind happens.
    fn report(&mut self, kind: Failure, message: &str) {
        if std::mem::replace(&mut self.reported[kind as usize], true) {
            return;
        }
        report_to_log(self.log.as_ref(), message);
    }
}

/// Appends one `[expman] system metrics: ...` line to the run's log; failing that, to stderr
/// (which a run's log usually captures too). Never fails: the run goes on either way.
pub(super) fn report_to_log(log: Option<&PathBuf>, message: &str) {
    let line = format!(
        "[expman] {} system metrics: {message}\n",
        crate::store::now_rfc3339()
    );
    let written = log.is_some_and(|log| {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .is_ok()
    });
    if !written {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

fn round3_value(x: f64) -> Value {
    Value::Float(round3(x))
}

/// Three decimals: a CPU percentage or a time in seconds needs no more, and the table stays
/// readable.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
