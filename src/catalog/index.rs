//! [`Catalog`]: every experiment directory of a base directory as an [`ExperimentRecord`],
//! refreshed incrementally, filtered by a [`Query`] and sorted by [`SortKey`]s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::entry::{Entry, allow_all};
use super::record::{ExperimentRecord, field_catalog};
use crate::error::{Error, Result};
use crate::query::{self, Query, SortKey};

/// The experiments of one base directory, kept up to date by [`Catalog::refresh`]: a refresh
/// costs three `stat`s per experiment plus the bytes its files gained.
///
/// ```no_run
/// use expman::catalog::Catalog;
/// use expman::query::{Query, SortKey};
///
/// let mut catalog = Catalog::new("experiments");
/// catalog.refresh()?;
/// let query = Query::parse("params.lr < 1e-3 and metrics.val_acc.max >= 0.85").unwrap();
/// let best = SortKey::parse("-metrics.val_acc.max").unwrap();
/// for record in catalog.select(&query, &[best]) {
///     println!("{} {:?}", record.name, record.metric("val_acc").map(|m| m.max));
/// }
/// # Ok::<(), expman::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Catalog {
    base: PathBuf,
    entries: BTreeMap<String, Entry>,
    /// Counts refreshes; an entry not seen by the latest one is gone.
    generation: u64,
}

impl Catalog {
    /// An empty catalog of `base`; [`Catalog::refresh`] fills it.
    pub fn new(base: impl Into<PathBuf>) -> Catalog {
        Catalog {
            base: base.into(),
            entries: BTreeMap::new(),
            generation: 0,
        }
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Looks at the base directory again: new experiments are read, changed ones updated,
    /// removed ones forgotten. Returns how many records changed (added, updated or removed).
    pub fn refresh(&mut self) -> Result<usize> {
        let dir = std::fs::read_dir(&self.base).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found(
                    &self.base,
                    "pass the experiments directory (the base_dir given to Experiment)",
                )
            } else {
                Error::io("list", &self.base, e)
            }
        })?;
        self.generation += 1;
        let generation = self.generation;
        let mut changed = 0;
        let mut new = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str() else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Updated in place: no entry moves, the common refresh is three stats each.
            match self.entries.get_mut(id) {
                Some(known) => {
                    if let Some(updated) = known.refresh(id, &path, &allow_all) {
                        known.seen = generation;
                        changed += usize::from(updated);
                    }
                }
                None => new.push((id.to_string(), path)),
            }
        }
        for (id, mut entry) in open_all(new) {
            entry.seen = generation;
            self.entries.insert(id, entry);
            changed += 1;
        }
        let before = self.entries.len();
        self.entries.retain(|_, e| e.seen == generation);
        Ok(changed + before - self.entries.len())
    }

    /// Every experiment, by id.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &ExperimentRecord> + '_ {
        self.entries.values().map(Entry::record)
    }

    /// The experiment `id`, if listed.
    pub fn get(&self, id: &str) -> Option<&ExperimentRecord> {
        self.entries.get(id).map(Entry::record)
    }

    /// The experiments that `query` matches, sorted by `keys` (by id when there are none, and
    /// to break ties).
    pub fn select(&self, query: &Query, keys: &[SortKey]) -> Vec<&ExperimentRecord> {
        let mut selected: Vec<&ExperimentRecord> =
            self.records().filter(|r| query.matches(*r)).collect();
        query::sort(&mut selected, keys);
        selected
    }

    /// The parameters and metric columns the experiments have, for checking and completing
    /// queries.
    pub fn fields(&self) -> query::Catalog {
        field_catalog(self.records())
    }
}

/// Directories opened per thread at the least: below this a thread costs more than it saves.
const OPENED_PER_THREAD: usize = 256;

/// Reads the directories `new` (id, path) for the first time, on several threads when there
/// are many (a first listing of 10,000 experiments reads 30,000 files, mostly waiting on the
/// file system); those that are no experiment are left out.
fn open_all(new: Vec<(String, PathBuf)>) -> Vec<(String, Entry)> {
    let open = |part: &[(String, PathBuf)]| -> Vec<(String, Entry)> {
        part.iter()
            .filter_map(|(id, path)| Entry::open(id, path, &allow_all).map(|e| (id.clone(), e)))
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(new.len().div_ceil(OPENED_PER_THREAD));
    if threads <= 1 {
        return open(&new);
    }
    let chunk = new.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = new
            .chunks(chunk)
            .map(|part| scope.spawn(move || open(part)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
