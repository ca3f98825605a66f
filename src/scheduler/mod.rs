//! The batch scheduler (feature `scheduler`): runs the experiments of a TOML file with
//! priorities, bounded concurrency and exclusive GPUs, each in its own run directory.
//!
//! - [`config`]: the TOML format and its errors.
//! - [`plan`](mod@plan): what a run would do (`--dry-run`).
//! - [`run`](mod@run): the scheduling loop (`Scheduler`), over `queue` (its entries, built from
//!   `config.json`), `backend` (local or Slurm: launch, terminate, cancel), `watch` (which
//!   Slurm jobs ended), `output` (the terminal) and [`summary`].
//! - `journal`: the scheduler's journal and the crash-safe creation of its queue on disk.
//! - [`job`]: the per-job supervisor process that records exit codes; `launcher` starts it.
//! - [`control`]: retry / terminate / delete from other processes.
//! - [`slurm`]: the Slurm backend (`sbatch`, `squeue`, `scontrol`, `scancel`).
//! - `sweep`: `params` and `[experiments.sweep]` of an entry, expanded into one experiment per
//!   point; `template`: `{name}` in commands.
//! - `shell`: quoting for a POSIX shell.

mod backend;
pub mod config;
mod config_slurm;
pub mod control;
mod fault;
pub mod job;
mod journal;
mod launcher;
mod output;
pub mod plan;
mod process;
mod queue;
pub mod run;
mod shell;
pub mod slurm;
pub mod summary;
mod sweep;
mod template;
mod watch;

pub use config::{Backend, JobSpec, SchedulerConfig};
pub use control::{Action, SchedulerDir, perform};
pub use job::supervise;
pub use plan::{Plan, PlannedJob, plan};
pub use run::{RunOptions, run};
pub use shell::{shell_line, shell_quote};
pub use summary::{Summary, SummaryRow};
