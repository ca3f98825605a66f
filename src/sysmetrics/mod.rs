//! System metrics: what a run's processes do to the machine, one row per interval in the run's
//! named table `system` (`metrics/system.csv`).
//!
//! A sampler watches one process tree, a root process and all its descendants (for a job of
//! `EXP run` the job's shell and everything it starts; for a Python `Experiment()` the Python
//! process, its data-loader workers included). Every interval (default
//! [`DEFAULT_INTERVAL`], the first sample at start) it reads `/proc` and the run's GPUs and
//! appends one row through the ordinary [`TableWriter`], so the table is
//! as crash-safe as any other and gains columns as GPUs report figures. The columns are listed
//! at [`Sample`].
//!
//! * CPU, memory and I/O come from `/proc/<pid>/stat` and `/proc/<pid>/io`, the host's memory
//!   from `/proc/meminfo`: no dependency, a few system calls per process (the benchmark
//!   `benches/sysmetrics.rs` measures a sample's cost). The tree is found through
//!   `/proc/<pid>/task/<tid>/children`, or by reading every process's parent on kernels
//!   without those files.
//! * GPUs: only those `CUDA_VISIBLE_DEVICES` names (the scheduler sets it for each job; the
//!   Python binding sets it from `gpu_ids`); unset, no GPU is sampled, because a run would
//!   otherwise be charged with every other user's work. Readings come from NVML (feature
//!   `gpu`) or from the inventory file named by `EXPMAN_GPU_INVENTORY` (see [`crate::gpu`]),
//!   behind the [`GpuSource`] seam.
//! * Failures never reach the process being measured: a failed write or an unreadable GPU is
//!   reported once into the run's log and sampling goes on; the thread ends by itself when
//!   the tree's root process is gone.
//! * Stopping wakes the thread (a condition variable, not a sleep), so it returns within the
//!   time one sample takes, whatever the interval.
//!
//! ```no_run
//! # fn main() -> expman::Result<()> {
//! use std::time::Duration;
//! use expman::sysmetrics::SystemMetrics;
//!
//! let exp = expman::Experiment::create("train", "python train.py", "./experiments")?;
//! let sampler = SystemMetrics::new(std::process::id(), exp.layout(), exp.run_id())
//!     .interval(Duration::from_secs(30))
//!     .start()?;
//! // ... train ...
//! sampler.stop();
//! # Ok(()) }
//! ```
//!
//! [`Experiment::start_system_metrics`](crate::Experiment::start_system_metrics) does this for
//! the experiment's own run.

mod collector;
mod gpus;
mod procfs;
mod sampler;

use std::path::PathBuf;
use std::time::Duration;

pub use collector::{Collector, Sample};
pub use gpus::{GpuReading, GpuSource, InventoryGpus, VisibleGpu, default_source, visible_gpus};
pub use sampler::SystemSampler;

use crate::error::{ErrorKind, Result};
use crate::metrics::{SyncPolicy, TableWriter};
use crate::run_id::RunId;
use crate::store::ExperimentDir;

/// How often a sample is taken unless configured otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The shortest accepted interval: below it the sampler's own cost (a few hundred
/// microseconds a sample for a small tree) stops being negligible.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The name of the table the samples go to, `metrics/system.csv`.
pub const TABLE: &str = "system";

/// Settings of one sampler; [`start`](Self::start) runs it on a thread of its own,
/// [`collector`](Self::collector) gives the sampling step alone.
pub struct SystemMetrics {
    root: u32,
    table: PathBuf,
    run: String,
    log: Option<PathBuf>,
    interval: Duration,
    gpus: Vec<VisibleGpu>,
    source: Option<Box<dyn GpuSource>>,
}

impl SystemMetrics {
    /// Samples the process `root` and its descendants into the `system` table of `run` in
    /// `dir`, reporting failures into the run's log. GPUs: those `CUDA_VISIBLE_DEVICES` of
    /// this process names (change with [`visible_gpus`](Self::visible_gpus)).
    pub fn new(root: u32, dir: &ExperimentDir, run: RunId) -> SystemMetrics {
        let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
        SystemMetrics {
            root,
            table: dir.table_path(TABLE),
            run: run.to_string(),
            log: Some(dir.run_log(run)),
            interval: DEFAULT_INTERVAL,
            gpus: visible_gpus(visible.as_deref()),
            source: None,
        }
    }

    /// The time between samples (default [`DEFAULT_INTERVAL`]); [`start`](Self::start)
    /// refuses one below [`MIN_INTERVAL`].
    pub fn interval(mut self, interval: Duration) -> SystemMetrics {
        self.interval = interval;
        self
    }

    /// The run's GPUs as a `CUDA_VISIBLE_DEVICES` value (`None` or empty: no GPU).
    pub fn visible_gpus(mut self, cuda_visible_devices: Option<&str>) -> SystemMetrics {
        self.gpus = visible_gpus(cuda_visible_devices);
        self
    }

    /// Where GPU readings come from (default: [`default_source`], chosen when sampling
    /// starts and only when the run has GPUs).
    pub fn gpu_source(mut self, source: Box<dyn GpuSource>) -> SystemMetrics {
        self.source = Some(source);
        self
    }

    /// The sampling step without a thread: each [`Collector::tick`] writes one row.
    pub fn collector(self) -> Collector {
        let source = match self.source {
            Some(source) => Ok(source),
            None if self.gpus.is_empty() => Err("the run has no GPUs".to_string()),
            None => default_source(),
        };
        let writer = TableWriter::new(self.table, &self.run, SyncPolicy::WriteThrough);
        Collector::new(self.root, self.gpus, source, writer, self.log)
    }

    /// Starts sampling on a background thread: the first row now, then one per interval until
    /// [`SystemSampler::stop`], the handle's drop, or the end of the process tree.
    pub fn start(self) -> Result<SystemSampler> {
        let interval = self.interval;
        if interval < MIN_INTERVAL {
            return Err(ErrorKind::InvalidValue {
                field: "system metrics interval".into(),
                reason: format!(
                    "{interval:?} is too short; sample at most every {MIN_INTERVAL:?} (the \
                     default is every {DEFAULT_INTERVAL:?})"
                ),
            }
            .into());
        }
        SystemSampler::spawn(self.collector(), interval)
    }
}
