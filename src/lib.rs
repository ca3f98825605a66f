//! expman: a fast, crash-safe experiment manager.
//!
//! Each experiment gets a directory (`<base>/<name>_<YYYY-MM-DD__HH-MM-SS>/`), each run of it an
//! id (`run_0001`, ...), and each run a metrics table that any number of threads and processes can
//! append to without ever losing a saved row:
//!
//! ```no_run
//! use expman::Experiment;
//! # fn main() -> expman::Result<()> {
//! let mut exp = Experiment::builder("my_experiment", "./experiments")
//!     .command("python train.py --epochs 100 --lr 0.001")
//!     .tags(["deep-learning", "classification"])
//!     .create()?;
//! println!("run id: {}", exp.run_id()); // run_0001
//! for epoch in 1..=10 {
//!     exp.set("epoch", epoch)?;
//!     exp.upd_row([("train_loss", 0.5 / epoch as f64), ("val_acc", 0.8)])?;
//!     exp.save_row()?;
//! }
//! exp.set_finished()?;
//! # Ok(()) }
//! ```
//!
//! The core (this page) has no optional dependencies. The scheduler, GPU discovery, the web UI and
//! Arrow export are behind the features `scheduler`, `gpu`, `server`/`ui` and `arrow`.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "arrow")]
pub mod arrow;
mod capture;
pub mod catalog;
mod error;
mod experiment;
/// The C ABI behind `include/expman.h`: opaque handles, status codes and a per-thread last
/// error over [`Experiment`], [`TableWriter`] and [`Metrics`]. The only module besides
/// `store::shm` that uses `unsafe`.
pub mod ffi;
pub mod gpu;
pub mod metrics;
pub mod params;
pub mod query;
pub mod run_id;
#[cfg(feature = "scheduler")]
pub mod scheduler;
#[cfg(feature = "server")]
pub mod server;
pub mod store;

pub use error::{Error, ErrorKind, Result};
pub use experiment::{ENV_EXPERIMENT_DIR, ENV_RUN_ID, Experiment, ExperimentBuilder};
pub use metrics::{
    ColumnType, FieldId, FlatColumn, FlatTable, FlatText, Metrics, RunSummary, SyncPolicy,
    TableSummary, TableWriter, Value, read_table, summary,
};
pub use run_id::RunId;
pub use store::{Config, ExperimentDir, RunState, Status};

/// This library's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
