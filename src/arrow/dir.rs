//! Many runs as one long table: every run table of the experiments under a directory, with
//! `experiment`, `name`, `status` and `tags` columns in front.

use std::collections::HashMap;
use std::io::ErrorKind as IoErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, StringArray, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::column::{self, data_type};
use super::{Table, batch};
use crate::error::{Error, Result};
use crate::metrics::columnar::{parse, pool};
use crate::{ColumnType, Config, ExperimentDir, RunId, RunState, Status};

/// The columns a long table puts before the tables' own: the experiment's directory name, its
/// configured name, the run's status and the experiment's tags (joined with `,`).
pub(crate) const META_COLUMNS: [&str; 4] = ["experiment", "name", "status", "tags"];

/// Which runs [`read_dir`] reads: all by default; each filter narrows it.
///
/// ```
/// use expman::arrow::Selection;
/// use expman::RunState;
///
/// let finished_baselines = Selection::new()
///     .name("resnet*")
///     .status(RunState::Finished)
///     .tag("baseline");
/// # let _ = finished_baselines;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Selection {
    name: Option<String>,
    status: Option<RunState>,
    tags: Vec<String>,
    threads: usize,
}

impl Selection {
    /// Every run of every experiment.
    pub fn new() -> Selection {
        Selection::default()
    }

    /// Only experiments whose name (from `config.json`) or directory name matches `glob`, where
    /// `*` matches any text and `?` one character.
    pub fn name(mut self, glob: impl Into<String>) -> Selection {
        self.name = Some(glob.into());
        self
    }

    /// Only runs in this state (a run's own: an experiment retried after an error has an
    /// `Error` run and a later one). A `Running` run whose process is gone counts as `Error`.
    pub fn status(mut self, status: RunState) -> Selection {
        self.status = Some(status);
        self
    }

    /// Only experiments tagged `tag`; given several times, only those with all of them.
    pub fn tag(mut self, tag: impl Into<String>) -> Selection {
        self.tags.push(tag.into());
        self
    }

    /// Reads with up to `threads` threads (0, the default: `EXPMAN_THREADS`, else one per core).
    pub fn threads(mut self, threads: usize) -> Selection {
        self.threads = threads;
        self
    }
}

/// Parses a state name as written in `status.json` (`Pending`, `Running`, `Finished`,
/// `Error`), in any case.
pub fn parse_status(text: &str) -> Result<RunState> {
    [
        RunState::Pending,
        RunState::Running,
        RunState::Finished,
        RunState::Error,
    ]
    .into_iter()
    .find(|s| s.as_str().eq_ignore_ascii_case(text))
    .ok_or_else(|| {
        Error::config(
            "status",
            format!(
                "{} is not a run state; use Pending, Running, Finished or Error",
                crate::error::quote(text)
            ),
        )
    })
}

/// Reads every run table (`metrics/run_*.csv`) of the experiments under `base` that
/// `selection` selects, as one long table: `experiment` (the directory name), `name` (from
/// `config.json`), `status` (the run's) and `tags` (joined with `,`), dictionary-encoded so
/// that each value is stored once, then the union of the tables' columns in first-seen order
/// (`timestamp`, `run_id`, fields), each with the type that holds all of its tables' values.
/// Cells of columns a table lacks are nulls. A table field named like a meta column is renamed
/// `<name>.1`.
///
/// `base` may also be one experiment directory: then its runs are read. Experiments come in
/// directory-name order, runs by number; one batch per table (or per chunk of a large one).
/// Tables deleted while this reads are left out, and so are tables that cannot be read (a
/// damaged row, text that is not UTF-8, an unreadable file or `metrics/`): those are listed in
/// [`Table::skipped`], so that one damaged run does not keep the others from being read.
pub fn read_dir(base: impl AsRef<Path>, selection: &Selection) -> Result<Table> {
    read_dir_grouped(base.as_ref(), selection, &|_| {}).map(|grouped| grouped.table)
}

/// A long table, and for each batch the index of its experiment (for progress while writing).
pub(crate) struct Grouped {
    pub table: Table,
    pub experiment_of_batch: Vec<usize>,
    pub experiments: usize,
    pub runs: usize,
}

struct Experiment {
    id: String,
    name: String,
    tags: String,
}

struct Run {
    experiment: usize,
    status: Option<RunState>,
    path: PathBuf,
}

pub(crate) fn read_dir_grouped(
    base: &Path,
    selection: &Selection,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Grouped> {
    let threads = pool::threads_or_default(selection.threads);
    let mut skipped = Vec::new();
    let (experiments, runs) = discover(base, selection, &mut skipped)?;
    let total = experiments.len();
    progress(Progress {
        stage: Stage::Reading,
        done: 0,
        total,
    });

    // Parse the tables in parallel; a single table is split across the threads instead.
    let single = runs.len() == 1;
    let mut remaining: Vec<AtomicUsize> = (0..experiments.len())
        .map(|_| AtomicUsize::new(0))
        .collect();
    for run in &runs {
        *remaining[run.experiment].get_mut() += 1;
    }
    let done = AtomicUsize::new(0);
    let parsed = pool::map_with(runs, threads, Vec::new, |buffer, run| {
        let read = if single {
            parse::read_file(&run.path, threads)
        } else {
            parse::read_file_into(&run.path, buffer)
        };
        // A table deleted since it was listed is left out; one that cannot be read is left
        // out and reported, so that one damaged run does not hide all the others.
        let parsed = match read {
            Ok(parsed) => Some(Ok(parsed)),
            Err(e) if matches!(e.io_error(), Some(io) if io.kind() == IoErrorKind::NotFound) => {
                None
            }
            Err(e) => Some(Err(e)),
        };
        if remaining[run.experiment].fetch_sub(1, Ordering::AcqRel) == 1 {
            progress(Progress {
                stage: Stage::Reading,
                done: done.fetch_add(1, Ordering::AcqRel) + 1,
                total,
            });
        }
        parsed.map(|parsed| parsed.map(|parsed| (run, parsed)))
    });
    let mut parsed_ok: Vec<(Run, parse::Parsed)> = Vec::with_capacity(parsed.len());
    for result in parsed.into_iter().flatten() {
        match result {
            Ok(run) => parsed_ok.push(run),
            Err(e) => skipped.push(e),
        }
    }
    let parsed = parsed_ok;

    // The union of the columns, in first-seen order, and their common types.
    let mut names: Vec<String> = crate::metrics::FIXED_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .collect();
    let mut types = vec![ColumnType::Str, ColumnType::Str];
    let mut index: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let mut positions: Vec<Vec<usize>> = Vec::with_capacity(parsed.len());
    for (_, table) in &parsed {
        let mut position = Vec::with_capacity(table.names.len());
        for (c, name) in table.names.iter().enumerate() {
            let name = if META_COLUMNS.contains(&name.as_str()) {
                format!("{name}.1")
            } else {
                name.clone()
            };
            let i = *index.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                types.push(ColumnType::Null);
                types.len() - 1
            });
            for chunk in &table.chunks {
                types[i] = types[i].unify(chunk[c].column_type());
            }
            position.push(i);
        }
        positions.push(position);
    }
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let schema: SchemaRef = Arc::new(Schema::new(
        META_COLUMNS
            .iter()
            .map(|&meta| Field::new(meta, dictionary.clone(), true))
            .chain(
                names
                    .iter()
                    .zip(&types)
                    .map(|(name, &ty)| Field::new(name, data_type(ty), true)),
            )
            .collect::<Vec<_>>(),
    ));

    // One dictionary per meta column, shared by every batch (an Arrow IPC file needs that).
    let ids = Arc::new(StringArray::from_iter_values(
        experiments.iter().map(|e| &e.id),
    ));
    let (name_values, name_keys) = dictionary_of(experiments.iter().map(|e| e.name.as_str()));
    let (tag_values, tag_keys) = dictionary_of(experiments.iter().map(|e| e.tags.as_str()));
    let states = [
        RunState::Pending,
        RunState::Running,
        RunState::Finished,
        RunState::Error,
    ];
    let state_values = Arc::new(StringArray::from_iter_values(states.map(|s| s.as_str())));

    // A meta column's array of one value and length is built once and shared by the batches
    // that have it (a name, a state or tags is common to many runs of equal length).
    type Key = (usize, Option<i32>, usize); // (meta column, value, rows)
    let shared: Mutex<HashMap<Key, ArrayRef>> = Mutex::default();
    let meta_column = |column: usize, values: &Arc<StringArray>, key: Option<i32>, rows: usize| {
        // A poisoned lock only means another thread panicked while inserting: the map holds
        // whole entries still.
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            shared
                .entry((column, key, rows))
                .or_insert_with(|| constant(values, key, rows)),
        )
    };

    let runs = parsed.len();
    let built = pool::map(
        parsed.into_iter().zip(positions).collect(),
        threads,
        |((run, table), position)| {
            let e = run.experiment;
            let status_key = run
                .status
                .and_then(|s| states.iter().position(|&x| x == s))
                .map(|k| k as i32);
            let mut batches = Vec::with_capacity(table.chunks.len());
            for chunk in table.chunks {
                let rows = chunk.first().map_or(0, |c| c.len());
                let mut columns: Vec<Option<ArrayRef>> = vec![None; names.len()];
                for (column, &i) in chunk.into_iter().zip(&position) {
                    let array = column::array(column, types[i]).map_err(|reason| {
                        parse::text_error(&run.path, reason, || parse::read_file(&run.path, 1))
                    })?;
                    columns[i] = Some(array);
                }
                let meta = [
                    // Unique to the experiment: nothing to share.
                    constant(&ids, Some(e as i32), rows),
                    meta_column(1, &name_values, Some(name_keys[e]), rows),
                    meta_column(2, &state_values, status_key, rows),
                    meta_column(3, &tag_values, Some(tag_keys[e]), rows),
                ];
                let columns = meta
                    .into_iter()
                    .chain(columns.into_iter().zip(&types).map(|(column, &ty)| {
                        column.unwrap_or_else(|| new_null_array(&data_type(ty), rows))
                    }))
                    .collect();
                batches.push(batch(&schema, columns)?);
            }
            Ok::<_, Error>((e, batches))
        },
    );
    let mut experiment_of_batch = Vec::new();
    let mut batches = Vec::new();
    for result in built {
        match result {
            Ok((e, run_batches)) => {
                experiment_of_batch.extend(std::iter::repeat_n(e, run_batches.len()));
                batches.extend(run_batches);
            }
            // Text that is not UTF-8, found as the arrays are made: that run is left out.
            Err(e) => skipped.push(e),
        }
    }
    Ok(Grouped {
        table: Table {
            schema,
            batches,
            skipped: Arc::new(skipped),
        },
        experiment_of_batch,
        experiments: total,
        runs,
    })
}

/// Distinct values in first-seen order, and each input's key among them.
fn dictionary_of<'a>(values: impl Iterator<Item = &'a str>) -> (Arc<StringArray>, Vec<i32>) {
    let mut seen: HashMap<&str, i32> = HashMap::new();
    let mut distinct = Vec::new();
    let keys = values
        .map(|v| {
            *seen.entry(v).or_insert_with(|| {
                distinct.push(v);
                distinct.len() as i32 - 1
            })
        })
        .collect();
    (Arc::new(StringArray::from_iter_values(distinct)), keys)
}

/// A dictionary column of `rows` times the value `key` (null when `None`).
fn constant(values: &Arc<StringArray>, key: Option<i32>, rows: usize) -> ArrayRef {
    let keys = match key {
        Some(k) => Int32Array::from(vec![k; rows]),
        None => Int32Array::new_null(rows),
    };
    let values: ArrayRef = Arc::clone(values) as ArrayRef;
    Arc::new(
        DictionaryArray::<Int32Type>::try_new(keys, values)
            .expect("keys index the dictionary built beside them"),
    )
}

/// What an export is doing, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading and parsing the experiments' tables.
    Reading,
    /// Writing the output file.
    Writing,
}

/// Progress of reading many experiments (and of [`export`](super::export)): `done` of `total`
/// experiments in `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The stage.
    pub stage: Stage,
    /// Experiments finished in this stage.
    pub done: usize,
    /// Experiments selected.
    pub total: usize,
}

/// The selected experiments (sorted by directory name) and their selected run tables.
fn discover(
    base: &Path,
    selection: &Selection,
    skipped: &mut Vec<Error>,
) -> Result<(Vec<Experiment>, Vec<Run>)> {
    let dirs: Vec<(String, PathBuf)> = if crate::store::has_config(base) {
        let id = base
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| base.display().to_string());
        vec![(id, base.to_path_buf())]
    } else {
        crate::store::experiment_dirs(base)?
    };

    let mut experiments = Vec::new();
    let mut runs = Vec::new();
    for (id, path) in dirs {
        let Ok(dir) = ExperimentDir::open(&path) else {
            continue; // deleted since it was listed
        };
        // A damaged config.json still lets the rows be read, under the directory's name.
        let config = Config::load(&dir).ok();
        let name = config
            .as_ref()
            .map_or_else(|| id.clone(), |c| c.name.clone());
        let tags = config.map(|c| c.tags).unwrap_or_default();
        if let Some(glob) = &selection.name
            && !glob_match(glob, &name)
            && !glob_match(glob, &id)
        {
            continue;
        }
        if !selection.tags.iter().all(|t| tags.contains(t)) {
            continue;
        }
        let status = Status::load(&dir).unwrap_or_default();
        let current = status.effective().0;
        let experiment = experiments.len();
        let mut any = false;
        let tables = match dir.tables() {
            Ok(tables) => tables,
            Err(e) if matches!(e.io_error(), Some(io) if io.kind() == IoErrorKind::NotFound) => {
                continue;
            }
            Err(e) => {
                // metrics/ unreadable (a file, a symlink loop, no permission): the others still
                // read.
                skipped.push(e);
                continue;
            }
        };
        for table in tables {
            let Ok(run) = table.parse::<RunId>() else {
                continue; // a named table
            };
            let state = if status.run_id == Some(run) {
                Some(current)
            } else {
                status
                    .history
                    .iter()
                    .rev()
                    .find(|r| r.run_id == Some(run))
                    .map(|r| r.status)
            };
            if selection.status.is_some() && state != selection.status {
                continue;
            }
            any = true;
            runs.push(Run {
                experiment,
                status: state,
                path: dir.table_path(&table),
            });
        }
        if any {
            experiments.push(Experiment {
                id,
                name,
                tags: tags.join(","),
            });
        }
    }
    Ok((experiments, runs))
}

/// Shell-style matching of the whole `text`: `*` any run of characters, `?` one character.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut g, mut t) = (0, 0);
    // Where to resume after the last `*`: its position in the glob, and the text it has eaten.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg + 1;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("resnet*", "resnet50"));
        assert!(glob_match("res?et", "resnet"));
        assert!(glob_match("*net*", "my-resnet-2"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("resnet", "resnet50"));
        assert!(!glob_match("a*b", "aXbY"));
        assert!(glob_match("é*", "éclair"));
    }

    #[test]
    fn status_names() {
        assert_eq!(parse_status("finished").unwrap(), RunState::Finished);
        assert_eq!(parse_status("Error").unwrap(), RunState::Error);
        assert!(parse_status("done").is_err());
    }
}
