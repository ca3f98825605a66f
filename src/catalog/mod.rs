//! The experiments of a base directory as records that the query language filters and sorts:
//! one rule for effective parameters and metric summaries, shared by `EXP ls`, the server's
//! index, the C ABI and Python.
//!
//! * [`state`]: reading `config.json` / `status.json`, with the reason when one cannot be read;
//! * [`record`]: [`ExperimentRecord`], its effective parameters ([`run_params`]) and its
//!   [`Record`](crate::query::Record) view for queries;
//! * [`entry`]: one directory kept up to date (state files re-read when their stamp changes,
//!   the latest run's table summarised incrementally);
//! * [`index`]: [`Catalog`], every directory of a base directory;
//! * [`listing`]: [`list`] for one-shot callers and the `EXP ls` output formats;
//! * [`json`]: the JSON shape of summaries (non-finite numbers as text).
//!
//! ```no_run
//! let records = expman::catalog::list(
//!     "experiments".as_ref(),
//!     Some("params.lr < 1e-3 and status = finished"),
//!     &["-metrics.val_acc.max"],
//! )?;
//! for r in &records {
//!     println!("{} {:?}", r.name, r.params.get("lr"));
//! }
//! # Ok::<(), expman::Error>(())
//! ```

pub mod entry;
pub mod index;
pub mod json;
pub mod listing;
pub mod record;
pub mod state;

pub use entry::Entry;
pub use index::Catalog;
pub use listing::{Format, Listing, list};
pub use record::{ExperimentRecord, RunInfo, field_catalog, run_infos, run_params};
pub use state::State;
