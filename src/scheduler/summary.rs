//! The summary a scheduler run prints when its queue is empty.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::run_id::RunId;
use crate::store::{ExperimentDir, RunState, Status};

/// How a scheduled run ended, for the summary.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    /// Experiment name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Last run.
    pub run: Option<RunId>,
    /// Final state.
    pub state: RunState,
    /// Exit code, when known.
    pub exit_code: Option<i32>,
    /// Error text.
    pub error: Option<String>,
    /// Wall time of the last run.
    pub duration: Option<Duration>,
}

/// What a scheduler run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// One row per experiment, in launch order.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Whether every experiment finished successfully.
    pub fn all_finished(&self) -> bool {
        self.rows.iter().all(|r| r.state == RunState::Finished)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<width$}  {:<8}  {:<8}  {:>9}  result",
            "name", "run", "status", "time"
        )?;
        for row in &self.rows {
            let run = row.run.map(|r| r.to_string()).unwrap_or_default();
            let time = row
                .duration
                .map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_default();
            let result = match (&row.error, row.exit_code) {
                (Some(error), _) => error.clone(),
                (None, Some(code)) => format!("exit {code}"),
                (None, None) => String::new(),
            };
            writeln!(
                f,
                "{:<width$}  {run:<8}  {:<8}  {time:>9}  {result}",
                row.name,
                row.state.as_str()
            )?;
        }
        Ok(())
    }
}

impl SummaryRow {
    /// How the experiment `name` in `dir` ended, from its `status.json`.
    pub(super) fn of(name: &str, dir: &ExperimentDir) -> SummaryRow {
        let status = Status::load(dir).unwrap_or_default();
        let duration = status.duration();
        SummaryRow {
            name: name.to_string(),
            dir: dir.path().to_path_buf(),
            run: status.run_id,
            state: status.effective().0,
            exit_code: status.exit_code,
            error: status.error.clone(),
            duration,
        }
    }
}
