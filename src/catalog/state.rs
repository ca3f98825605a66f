//! Reading an experiment's `config.json` and `status.json` for a listing: a file that cannot
//! be read makes the experiment show as Error with the reason, never as a blank Pending one.

use std::path::Path;
use std::time::SystemTime;

use crate::store::{Config, ExperimentDir, RunState, Status};

/// What an experiment directory's state files hold, with the reason for each that could not be
/// read (defaults stand in for it).
#[derive(Debug, Clone, Default)]
pub struct State {
    /// `config.json`.
    pub config: Config,
    /// `status.json` (Pending when missing).
    pub status: Status,
    /// Why a file could not be read, one sentence each.
    pub problems: Vec<String>,
}

/// A file's modification time and length: when neither changed, it is not read again.
pub type Stamp = (SystemTime, u64);

/// The stamp of the file at `path`, `None` when it does not exist.
pub fn stamp_of(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl State {
    /// Reads the state files of `dir`. `allow` may refuse a path (the server refuses symlinks
    /// leading outside the served directory) with the reason, which becomes a problem.
    pub fn read(dir: &ExperimentDir, allow: &dyn Fn(&Path) -> Result<(), String>) -> State {
        let mut problems: Vec<String> = Vec::new();
        let config = allow(&dir.config_path())
            .and_then(|()| Config::load(dir).map_err(|e| e.to_string()))
            .unwrap_or_else(|why| {
                problems.push(format!("config.json is unreadable: {why}"));
                Config::default()
            });
        let status = allow(&dir.status_path())
            .and_then(|()| Status::load(dir).map_err(|e| e.to_string()))
            .unwrap_or_else(|why| {
                problems.push(format!("status.json is unreadable: {why}"));
                // The metrics are intact: summarise the latest run that has a table, as the
                // message promises, rather than none.
                Status {
                    run_id: dir.runs().ok().and_then(|runs| {
                        runs.into_iter()
                            .filter(|run| dir.table_path(&run.to_string()).is_file())
                            .max()
                    }),
                    ..Status::default()
                }
            });
        State {
            config,
            status,
            problems,
        }
    }

    /// The state a reader should show and its error: [`Status::effective`], or Error with the
    /// problems when a state file could not be read.
    pub fn effective(&self) -> (RunState, Option<String>) {
        let (state, error) = self.status.effective();
        if self.problems.is_empty() {
            return (state, error);
        }
        let mut problems = self.problems.clone();
        problems.extend(error);
        (RunState::Error, Some(problems.join("; ")))
    }
}
