//! Paths inside an experiment directory, and the rules for names that become paths.

use std::io::ErrorKind as IoErrorKind;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};

use super::run_id::RunId;
use crate::error::{Error, IoContext, Result};

/// Longest accepted name in bytes: a directory name is at most 255 bytes and the timestamp
/// suffix takes 21 of them, plus room for a collision counter.
const MAX_NAME_LEN: usize = 200;

/// Checks that `value` can be used as a path component: experiment and table names.
///
/// Refused: empty, `.`/`..` or anything containing `..`, a leading `.` (expman's own hidden
/// files start with one), `/`, `\`, NUL and other control characters, and more than 200 bytes.
pub fn validate_name(what: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        "it is empty; give a short descriptive name such as \"baseline\""
    } else if value.contains("..") {
        "it contains \"..\", which could escape the directory; use another name"
    } else if value.starts_with('.') {
        "it starts with '.', which is reserved for expman's hidden files"
    } else if value.contains(['/', '\\']) {
        "it contains a path separator; use '-' or '_' instead"
    } else if value.contains('\0') {
        "it contains a NUL byte"
    } else if value.chars().any(char::is_control) {
        "it contains a control character (newline, tab, ...)"
    } else if value.len() > MAX_NAME_LEN {
        "it is longer than 200 bytes"
    } else {
        return Ok(());
    };
    Err(Error::invalid_name(what, value, reason))
}

/// `path` made absolute against the current directory, without touching the filesystem when it
/// already is (the UI opens thousands of directories per poll). Relative paths handed to a job
/// that runs in another directory, or written into a state file read by another process, would
/// point somewhere else there.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `path` resolved against `dir` into a clean absolute path, for paths a user wrote in a file
/// (`base_dir = "../../experiments"`): the longest existing ancestor is canonicalized (so `..`
/// means what the filesystem says, symlinks included), and the components below it, which do
/// not exist yet and so cannot be symlinks, are appended with `.` and `..` resolved lexically.
#[cfg(feature = "scheduler")]
pub(crate) fn resolve_path(dir: &Path, path: &Path) -> PathBuf {
    let joined = absolute(&dir.join(path));
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            // Ends in `..` or `.`, or nothing exists at all (no /): keep it as written.
            _ => return joined,
        }
    };
    let mut out = base;
    for part in rest.iter().rev() {
        match part.to_str() {
            Some(".") => {}
            Some("..") => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out
}

/// An experiment directory and the paths inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentDir {
    root: PathBuf,
}

impl ExperimentDir {
    /// Wraps an existing experiment directory, checking that it looks like one.
    ///
    /// A relative `root` is made absolute against the current directory, so every path this
    /// handle gives out (to a job's environment, into a state file) stays valid in another
    /// working directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<ExperimentDir> {
        let root = absolute(&root.into());
        if !has_config(&root) {
            return Err(Error::not_found(
                &root.join("config.json"),
                "this is not an expman experiment directory (it has no config.json); \
                 pass a directory created by expman, such as experiments/name_2025-09-26__14-30-15",
            ));
        }
        Ok(ExperimentDir { root })
    }

    /// Creates `<base>/<name>_<YYYY-MM-DD__HH-MM-SS>/` with its subdirectories.
    ///
    /// `create_dir` is atomic, so two processes starting an experiment of the same name in the
    /// same second get two directories: the second gets a `_2` suffix (then `_3`, ...). If a
    /// subdirectory cannot be made (a full disk), the directory is removed again: it was
    /// claimed by this call and nobody else writes into it before its `config.json` exists.
    pub fn create(base: &Path, name: &str, now: DateTime<Local>) -> Result<ExperimentDir> {
        validate_name("experiment name", name)?;
        let base = &absolute(base);
        std::fs::create_dir_all(base).at("create the base directory", base)?;
        for candidate in ExperimentDir::candidates(base, name, now) {
            match std::fs::create_dir(&candidate) {
                Ok(()) => return ExperimentDir::populate(candidate),
                Err(e) if e.kind() == IoErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create the experiment directory", &candidate, e)),
            }
        }
        Err(Error::invalid_state(format!(
            "every directory name for experiment {name:?} in this second is taken in {}; \
             remove some of them or use another base_dir",
            base.display()
        )))
    }

    /// The paths an experiment named `name` created at `now` may get, in the order they are
    /// tried: `<base>/<name>_<YYYY-MM-DD__HH-MM-SS>`, then `..._2`, `..._3`, ...
    pub(crate) fn candidates(
        base: &Path,
        name: &str,
        now: DateTime<Local>,
    ) -> impl Iterator<Item = PathBuf> {
        let stem = format!("{name}_{}", now.format("%Y-%m-%d__%H-%M-%S"));
        let base = base.to_path_buf();
        (1..=u32::MAX).map(move |suffix| match suffix {
            1 => base.join(&stem),
            n => base.join(format!("{stem}_{n}")),
        })
    }

    /// Creates an experiment directory at exactly `root`, which must not exist yet: the
    /// scheduler builds its queue's experiments in a staging area before moving them into
    /// place. Removed again if it cannot be completed.
    #[cfg(feature = "scheduler")]
    pub(crate) fn create_at(root: &Path) -> Result<ExperimentDir> {
        let root = absolute(root);
        std::fs::create_dir(&root).at("create the experiment directory", &root)?;
        ExperimentDir::populate(root)
    }

    /// Adds the subdirectories and the experiment log to `root`, a directory this process has
    /// just created; removes `root` if that fails.
    fn populate(root: PathBuf) -> Result<ExperimentDir> {
        let dir = ExperimentDir { root };
        let result = (|| {
            for sub in [dir.logs_dir(), dir.metrics_dir(), dir.checkpoints_dir()] {
                std::fs::create_dir(&sub).at("create", &sub)?;
            }
            // The seed's layout shows the experiment log from the start.
            let log = dir.experiment_log();
            std::fs::File::create(&log).at("create", &log)?;
            Ok(())
        })();
        match result {
            Ok(()) => Ok(dir),
            Err(e) => {
                dir.discard();
                Err(e)
            }
        }
    }

    /// Removes a directory that this process created and that never got its `config.json`
    /// (so nobody else can have opened it): the roll-back of a failed creation. Best effort:
    /// the error being reported is the one that made the creation fail.
    pub(crate) fn discard(&self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }
    /// `logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// `metrics/`.
    pub fn metrics_dir(&self) -> PathBuf {
        self.root.join("metrics")
    }
    /// `checkpoints/`.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// `status.json`.
    pub fn status_path(&self) -> PathBuf {
        self.root.join("status.json")
    }
    /// `logs/experiment.log`, where `append_log` writes.
    pub fn experiment_log(&self) -> PathBuf {
        self.logs_dir().join("experiment.log")
    }
    /// `logs/<run_id>.log`, the run's captured output.
    pub fn run_log(&self, run: RunId) -> PathBuf {
        self.logs_dir().join(format!("{run}.log"))
    }
    /// `metrics/<table>.csv`.
    pub fn table_path(&self, table: &str) -> PathBuf {
        self.metrics_dir().join(format!("{table}.csv"))
    }
    /// The lock that serialises run-id allocation and status updates.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".expman.lock")
    }

    /// The runs that exist, sorted by number.
    pub fn runs(&self) -> Result<Vec<RunId>> {
        let mut runs = Vec::new();
        for dir in [self.logs_dir(), self.metrics_dir()] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == IoErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("list", &dir, e)),
            };
            for entry in entries {
                let entry = entry.at("list", &dir)?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let stem = name
                    .strip_suffix(".log")
                    .or_else(|| name.strip_suffix(".csv"));
                if let Some(run) = stem.and_then(|s| s.parse::<RunId>().ok()) {
                    runs.push(run);
                }
            }
        }
        runs.sort_unstable();
        runs.dedup();
        Ok(runs)
    }

    /// The metrics tables that exist (`metrics/*.csv`), sorted: runs by number, then names.
    pub fn tables(&self) -> Result<Vec<String>> {
        let dir = self.metrics_dir();
        let mut tables = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == IoErrorKind::NotFound => return Ok(tables),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        for entry in entries {
            let entry = entry.at("list", &dir)?;
            if let Some(stem) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".csv"))
                .filter(|s| !s.starts_with('.'))
            {
                tables.push(stem.to_string());
            }
        }
        tables.sort_by_key(|t| match t.parse::<RunId>() {
            Ok(run) => (0, run.number(), String::new()),
            Err(_) => (1, 0, t.clone()),
        });
        Ok(tables)
    }
}

/// The experiment directories directly under `base`: entries holding a `config.json`, hidden
/// ones (`.expman/`, temporary files) skipped, as (directory name, path) sorted by name. The
/// one listing that Arrow discovery, the scheduler and tools share.
pub fn experiment_dirs(base: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(base).map_err(|e| {
        if e.kind() == IoErrorKind::NotFound {
            Error::not_found(
                base,
                "pass the experiments directory (the base_dir given to Experiment) or one \
                 experiment's directory",
            )
        } else {
            Error::io("list", base, e)
        }
    })?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.at("list", base)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') || !has_config(&entry.path()) {
            continue;
        }
        dirs.push((name, entry.path()));
    }
    dirs.sort();
    Ok(dirs)
}

/// Whether `dir` has a `config.json` entry, which makes it an experiment directory. Any kind
/// counts (a directory, a FIFO, a dangling link put there by hand): reading it then names the
/// problem, where looking for a regular file made such an experiment vanish from listings.
pub(crate) fn has_config(dir: &Path) -> bool {
    dir.join("config.json").symlink_metadata().is_ok()
}

/// Opens the log at `path` for appending, creating it, and its `logs/` directory when that was
/// removed by hand (the next run of the experiment then still starts).
pub(crate) fn open_log(path: &Path) -> Result<std::fs::File> {
    let open = || {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == IoErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).at("create the log directory", dir)?;
            }
            open().at("open the run log", path)
        }
        other => other.at("open the run log", path),
    }
}
