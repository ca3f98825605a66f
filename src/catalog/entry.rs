//! One experiment directory kept up to date: its state files re-read only when their stamp
//! changes, its latest run's table summarised from the bytes appended since the last look.

use std::path::Path;

use super::record::ExperimentRecord;
use super::state::{Stamp, State, stamp_of};
use crate::metrics::TableSummary;
use crate::store::{ExperimentDir, RunState};

/// What a listing remembers of one experiment directory between refreshes.
#[derive(Debug, Clone)]
pub struct Entry {
    config: Option<Stamp>,
    status: Option<Stamp>,
    state: State,
    table: Option<TableSummary>,
    /// The run whose table `table` follows.
    table_run: Option<crate::RunId>,
    /// Why `table` could not be brought up to date at the last look, if it could not.
    table_error: Option<String>,
    record: ExperimentRecord,
    /// The catalog's refresh that last saw this directory (to forget the ones gone).
    pub(crate) seen: u64,
}

/// Lets every path through: the catalog of a directory the user named reads what it holds.
pub fn allow_all(_: &Path) -> Result<(), String> {
    Ok(())
}

impl Entry {
    /// Reads the experiment directory `dir` (named `id`) for the first time; `None` when it
    /// holds neither state file.
    pub fn open(
        id: &str,
        dir: &Path,
        allow: &dyn Fn(&Path) -> Result<(), String>,
    ) -> Option<Entry> {
        let mut entry = Entry {
            config: None,
            status: None,
            state: State::default(),
            table: None,
            table_run: None,
            table_error: None,
            record: ExperimentRecord::new(id, &State::default(), None, None),
            seen: 0,
        };
        entry.refresh(id, dir, allow)?;
        Some(entry)
    }

    /// The record as of the last refresh.
    pub fn record(&self) -> &ExperimentRecord {
        &self.record
    }

    /// The state files as of the last refresh.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The latest run's table summary, when it has a table.
    pub fn table(&self) -> Option<&TableSummary> {
        self.table.as_ref()
    }

    /// Looks again: re-reads a state file whose stamp changed, reads what the latest run's
    /// table gained, and rebuilds the record if anything changed (or while the run is said to
    /// run: its process may have vanished). `Some(changed)`; `None` when the directory is no
    /// experiment (any more).
    pub fn refresh(
        &mut self,
        id: &str,
        dir: &Path,
        allow: &dyn Fn(&Path) -> Result<(), String>,
    ) -> Option<bool> {
        let config = stamp_of(&dir.join("config.json"));
        let status = stamp_of(&dir.join("status.json"));
        if config.is_none() && status.is_none() {
            return None;
        }
        let mut changed = false;
        if (config, status) != (self.config, self.status) || self.record.id != id {
            let opened = ExperimentDir::open(dir).ok()?;
            self.state = State::read(&opened, allow);
            (self.config, self.status) = (config, status);
            changed = true;
        }
        changed |= self.update_table(dir, allow);
        let running = self.state.status.status == RunState::Running;
        if changed || (running && self.state.effective().0 != self.record.status) {
            self.record = ExperimentRecord::new(
                id,
                &self.state,
                self.table.as_ref(),
                self.table_error.as_deref(),
            );
            return Some(true);
        }
        Some(changed)
    }

    /// Follows the current run's table (`metrics/<run>.csv`); true when its summary changed.
    fn update_table(&mut self, dir: &Path, allow: &dyn Fn(&Path) -> Result<(), String>) -> bool {
        let run = self.state.status.run_id;
        let mut changed = false;
        if run != self.table_run || self.table.is_none() {
            // A new run (or none): follow its table, built once per run, not per refresh.
            changed = self.table.take().is_some();
            self.table_run = run;
            let Some(run) = run else {
                return changed;
            };
            let path = dir.join("metrics").join(format!("{run}.csv"));
            if allow(&path).is_err() {
                return changed;
            }
            self.table = Some(TableSummary::empty(path));
        }
        let Some(table) = self.table.as_mut() else {
            return changed;
        };
        // A table that cannot be read (damaged by another program) keeps its last summary:
        // the listing shows what was read, and the record says what is wrong.
        match table.update() {
            Ok(updated) => self.table_error.take().is_some() || updated || changed,
            Err(e) => {
                let why = e.to_string();
                let new = self.table_error.as_deref() != Some(why.as_str());
                self.table_error = Some(why);
                new || changed
            }
        }
    }
}
