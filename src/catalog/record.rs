//! One experiment as listings and queries see it: [`ExperimentRecord`], built from its
//! `config.json`, `status.json` and the latest run's table summary by the one rule for effective
//! parameters ([`run_params`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::json::{Metrics, metrics_of};
use super::state::State;
use crate::metrics::{ColumnSummary, RunSummary, TableSummary};
use crate::params::{ParamValue, Params};
use crate::query::{Aggregate, FieldPath, FieldValue, Record};
use crate::store::RunState;

/// One experiment: what `EXP ls`, Python's `list_experiments`, the server's index and the query
/// language read. Serializes to the JSON shape of the server's listing (non-finite numbers as
/// `"NaN"`, `"inf"`, `"-inf"`).
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentRecord {
    /// The directory name inside the base directory.
    pub id: String,
    /// The experiment's name (the id when `config.json` has none).
    pub name: String,
    /// The effective state of the latest run (a Running run whose process is gone is Error;
    /// an unreadable state file makes it Error too).
    pub status: RunState,
    /// Why the experiment is in Error, when known.
    pub error: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: String,
    /// The command that runs it.
    pub command: String,
    /// The host that created it.
    pub host: String,
    /// Creation time, RFC 3339, as in `config.json`.
    pub created_at: String,
    /// How many runs it has had.
    pub runs: usize,
    /// The latest run.
    pub run_id: Option<String>,
    /// Effective parameters of the latest run (see [`run_params`]).
    pub params: Params,
    /// Summaries of the latest run's numeric, non-parameter columns.
    pub metrics: Metrics,
    /// Why the latest run's table cannot be read now (a row damaged by another program), when
    /// it cannot: `metrics` then holds what was read of it before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
    /// The state files that could not be read and why (also part of `error`): what `EXP ls`
    /// warns about, so a hand-edited `config.json` is named rather than silently shown as Error.
    #[serde(skip)]
    pub unreadable: Vec<String>,
    #[serde(skip)]
    created: Option<SystemTime>,
}

impl ExperimentRecord {
    /// The record of experiment `id` from its state files and the summary of its latest run's
    /// table (`None` when it has none yet), with why that table cannot be read now, if not.
    pub fn new(
        id: &str,
        state: &State,
        table: Option<&TableSummary>,
        table_error: Option<&str>,
    ) -> ExperimentRecord {
        let (status, error) = state.effective();
        let config = &state.config;
        let run_id = state.status.run_id.map(|r| r.to_string());
        let run = run_id.as_deref().and_then(|r| table.and_then(|t| t.run(r)));
        let params = run_params(&config.params, &state.status.params, run);
        let name = if config.name.is_empty() {
            id.to_string()
        } else {
            config.name.clone()
        };
        ExperimentRecord {
            id: id.to_string(),
            name,
            status,
            error,
            metrics_error: table_error.map(str::to_string),
            unreadable: state.problems.clone(),
            tags: config.tags.clone(),
            description: config.description.clone(),
            command: config.command.clone(),
            host: config.host.clone(),
            created: chrono::DateTime::parse_from_rfc3339(&config.created_at)
                .ok()
                .map(SystemTime::from),
            created_at: config.created_at.clone(),
            runs: state.status.history.len() + usize::from(state.status.run_id.is_some()),
            run_id,
            params,
            metrics: run.map(metrics_of).unwrap_or_default(),
        }
    }

    /// The summary of `column` of the latest run, if it is a metric.
    pub fn metric(&self, column: &str) -> Option<&ColumnSummary> {
        self.metrics.get(column).map(|m| &m.0)
    }

    /// The value of a field as JSON, the way `EXP ls --format json` and the bindings show it:
    /// numbers as numbers, non-finite ones as text, tags as a list, missing as null.
    pub fn field_json(&self, field: &FieldPath) -> serde_json::Value {
        use serde_json::Value as Json;
        match self.field(field) {
            FieldValue::Missing => Json::Null,
            FieldValue::Int(n) => Json::from(n),
            FieldValue::Float(x) => super::json::number(x),
            FieldValue::Bool(b) => Json::Bool(b),
            FieldValue::Str(s) => Json::String(s.into_owned()),
            FieldValue::List(items) => Json::from(items.into_owned()),
            FieldValue::Time(_) => Json::String(self.created_at.clone()),
        }
    }

    /// The value of a field as text for a table cell (empty when missing).
    pub fn field_text(&self, field: &FieldPath) -> String {
        match self.field(field) {
            FieldValue::Missing => String::new(),
            FieldValue::Int(n) => n.to_string(),
            FieldValue::Float(x) => ParamValue::Float(x).to_string(),
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::Str(s) => s.into_owned(),
            FieldValue::List(items) => items.join(","),
            FieldValue::Time(_) => self.created_at.clone(),
        }
    }
}

/// The effective parameters of a run: `config.json`'s, overridden by what the run logged
/// (`Status.params` / `RunRecord.params`), plus the run's config-row parameters from its table
/// for names not already present.
pub fn run_params(config: &Params, logged: &Params, table_run: Option<&RunSummary>) -> Params {
    let mut params = config.clone();
    params.extend(logged.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(run) = table_run {
        for (name, value) in run.params() {
            params.entry(name).or_insert(value);
        }
    }
    params
}

impl Record for ExperimentRecord {
    fn field(&self, path: &FieldPath) -> FieldValue<'_> {
        match path {
            FieldPath::Name => self.name.as_str().into(),
            FieldPath::Id => self.id.as_str().into(),
            FieldPath::Status => self.status.as_str().into(),
            FieldPath::Tag => self.tags.as_slice().into(),
            FieldPath::Description => self.description.as_str().into(),
            FieldPath::Command => self.command.as_str().into(),
            FieldPath::Host => self.host.as_str().into(),
            FieldPath::Created => self.created.into(),
            FieldPath::Runs => FieldValue::Int(self.runs as i64),
            FieldPath::Param(name) => match self.params.get(name) {
                None => FieldValue::Missing,
                Some(ParamValue::Bool(b)) => FieldValue::Bool(*b),
                Some(ParamValue::Int(n)) => FieldValue::Int(*n),
                Some(ParamValue::Float(x)) => FieldValue::Float(*x),
                Some(ParamValue::Str(s)) => s.as_str().into(),
            },
            FieldPath::Metric { column, aggregate } => match self.metric(column) {
                None => FieldValue::Missing,
                Some(m) => match aggregate {
                    Aggregate::Last => FieldValue::Float(m.last),
                    Aggregate::Min => FieldValue::Float(m.min),
                    Aggregate::Max => FieldValue::Float(m.max),
                    Aggregate::Count => FieldValue::Int(m.count as i64),
                },
            },
        }
    }
}

/// The parameter names and metric columns of `records`, each once, sorted: what the query
/// language may name for them ([`crate::query::Catalog`]).
pub fn field_catalog<'a>(
    records: impl IntoIterator<Item = &'a ExperimentRecord>,
) -> crate::query::Catalog {
    let mut params = std::collections::BTreeSet::new();
    let mut metrics = std::collections::BTreeSet::new();
    for record in records {
        params.extend(record.params.keys().map(String::as_str));
        metrics.extend(record.metrics.keys().map(String::as_str));
    }
    crate::query::Catalog::new(params, metrics)
}

/// Per-run parameters and metrics of one experiment, for the details of its runs.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// The run.
    pub run_id: String,
    /// Its effective parameters.
    pub params: Params,
    /// Its metric summaries (its own table).
    pub metrics: Metrics,
}

/// [`RunInfo`] of each run in `runs`, reading each run's table whole (for one experiment's
/// details, not for listings).
pub fn run_infos(
    state: &State,
    runs: &[String],
    table_of: impl Fn(&str) -> Option<std::path::PathBuf>,
) -> Vec<RunInfo> {
    let logged: BTreeMap<String, &Params> = state
        .status
        .history
        .iter()
        .filter_map(|h| Some((h.run_id?.to_string(), &h.params)))
        .chain(
            state
                .status
                .run_id
                .map(|r| (r.to_string(), &state.status.params)),
        )
        .collect();
    let empty = Params::new();
    runs.iter()
        .map(|run| {
            let table = table_of(run).and_then(|p| TableSummary::of(p).ok());
            let summary = table.as_ref().and_then(|t| t.run(run));
            let own = logged.get(run).copied().unwrap_or(&empty);
            RunInfo {
                run_id: run.clone(),
                params: run_params(&state.config.params, own, summary),
                metrics: summary.map(metrics_of).unwrap_or_default(),
            }
        })
        .collect()
}
