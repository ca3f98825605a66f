//! The batch scheduler (feature `scheduler`): runs the experiments of a TOML file with
//! priorities, bounded concurrency and exclusive GPUs, each in its own run directory.
//!
//! - [`config`]: the TOML format and its errors.
//! - [`run`](mod@run): planning (`--dry-run`) and the scheduling loop.
//! - `journal`: the scheduler's journal and the crash-safe creation of its queue on disk.
//! - [`job`]: the per-job supervisor process that records exit codes.
//! - [`control`]: retry / terminate / delete from other processes.
//! - [`slurm`]: the Slurm backend (`sbatch`, `squeue`, `scontrol`, `scancel`).

pub mod config;
pub mod control;
mod fault;
pub mod job;
mod journal;
mod process;
pub mod run;
pub mod slurm;

pub use config::{Backend, JobSpec, SchedulerConfig};
pub use control::{Action, SchedulerDir, perform};
pub use job::supervise;
pub use run::{Plan, RunOptions, Summary, plan, run};
