//! The experiment directory on disk: its layout, locks, atomic writes and state files.
//!
//! ```text
//! <base_dir>/<name>_<YYYY-MM-DD__HH-MM-SS>/
//! ├── logs/run_0001.log        captured output of a run
//! ├── logs/experiment.log      append_log() lines
//! ├── metrics/run_0001.csv     the run's metrics table
//! ├── metrics/<table>.csv      named tables
//! ├── checkpoints/
//! ├── config.json              what the experiment is (rewritten only by a resume)
//! ├── status.json              where it stands (rewritten atomically)
//! └── .expman.lock             serialises run-id allocation and status updates
//! ```

mod allocate;
mod atomic;
pub mod faults;
mod layout;
mod lock;
mod mark;
mod open;
pub(crate) mod process;
mod run_id;
mod shm;
mod state;

pub use allocate::allocate;
pub(crate) use allocate::allocate_and;
pub(crate) use atomic::write_atomic;
#[cfg(feature = "arrow")]
pub(crate) use layout::has_config;
pub(crate) use layout::open_log;
pub use layout::{ExperimentDir, experiment_dirs, validate_name};
#[cfg(feature = "scheduler")]
pub(crate) use layout::{absolute, resolve_path};
pub(crate) use lock::LockFile;
pub(crate) use mark::FlockMark;
pub(crate) use open::{STATE_FILE_LIMIT, open_regular, read_bounded};
pub use process::{ProcessId, hostname};
pub use run_id::RunId;
pub(crate) use shm::{SharedLock, TableMark, local_filesystem};
pub use state::{Config, Launch, RunLaunch, RunRecord, RunState, SlurmLaunch, Status, now_rfc3339};
