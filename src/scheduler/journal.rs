//! The scheduler's journal (`<base>/.expman/scheduler.json`) and the creation of the queue's
//! experiments, done so that a scheduler killed at any instant leaves nothing half-made.
//!
//! Putting one queued experiment on disk takes three steps:
//! 1. **stage**: build it whole (`status.json` Pending with its first run, then `config.json`)
//!    in `<base>/.expman/staging/<name>`, where no reader of the base directory looks;
//! 2. **record**: write the journal entry naming the staging directory and the directory the
//!    experiment will get;
//! 3. **publish**: move it there with one `rename` that never replaces anything
//!    (`RENAME_NOREPLACE`).
//!
//! A restart on the same base directory reads the journal of the dead scheduler: an entry whose
//! staging directory is gone was published, and its experiment is adopted; one whose staging
//! directory is still there was not, and is published now; a staging directory no entry names
//! was never recorded, and is removed (its experiment is created again). So every queued name
//! gets exactly one directory, and no directory ever shows up Pending without the journal
//! knowing it.
//!
//! Where the filesystem has no `RENAME_NOREPLACE` (NFS), the name is claimed with `mkdir` and
//! the rename replaces that empty directory; a kill in the instant between the `mkdir` and the
//! journal write leaves an empty directory, which no reader lists.
//!
//! A `resume = true` entry gets its next run in an existing directory instead: recorded first,
//! then allocated, and allocated again after a restart only if its Pending run never reached
//! `status.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{JobSpec, SchedulerConfig};
use super::control::SchedulerDir;
use super::fault::crash_point;
use crate::error::{Error, IoContext, Result};
use crate::experiment::Experiment;
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, Launch, RunState, Status, hostname, now_rfc3339};

/// Which directories belong to the scheduler's queue, so that a restart after a crash adopts
/// them instead of creating them again.
#[derive(Debug, Serialize, Deserialize, Default)]
pub(super) struct Journal {
    pub(super) pid: u32,
    pub(super) host: String,
    pub(super) config: PathBuf,
    pub(super) started_at: String,
    /// Set when the queue was worked off; a finished journal is not recovered.
    pub(super) finished: bool,
    pub(super) jobs: Vec<JournalEntry>,
}

/// One experiment of the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JournalEntry {
    pub(super) name: String,
    /// Its directory (where it goes, while `staged` is set).
    pub(super) dir: PathBuf,
    /// Where it was built, until it is known to have been moved to `dir`: while this directory
    /// exists, the move has not happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staged: Option<PathBuf>,
    /// `dir` was claimed with `mkdir` for the move (no `RENAME_NOREPLACE`): it is ours, and
    /// empty until the move.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    claimed: bool,
    /// A resumed experiment whose next run may not be in `status.json` yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    resuming: bool,
}

impl JournalEntry {
    /// An experiment that is in place (published, or taken over from a control request).
    pub(super) fn placed(name: &str, dir: &Path) -> JournalEntry {
        JournalEntry {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            staged: None,
            claimed: false,
            resuming: false,
        }
    }
}

/// What [`materialize`] did for a queued experiment.
pub(super) enum Materialized {
    /// Created now (or given its next run, with `resume`): this run is queued.
    Queued(ExperimentDir, RunId),
    /// Found from a scheduler that died; its state decides what to do.
    Adopted(ExperimentDir),
}

impl Journal {
    /// A journal for this scheduler, keeping what `previous` (a scheduler that died without
    /// finishing) recorded until it is adopted.
    pub(super) fn begin(config: &SchedulerConfig, previous: Option<Journal>) -> Journal {
        Journal {
            pid: std::process::id(),
            host: hostname(),
            config: config.path.clone(),
            started_at: now_rfc3339(),
            finished: false,
            jobs: previous.map(|j| j.jobs).unwrap_or_default(),
        }
    }

    /// The journal in `sched`, if it is there and readable.
    pub(super) fn load(sched: &SchedulerDir) -> Option<Journal> {
        let bytes = std::fs::read(sched.state_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Replaces the journal atomically but without fsync: it only has to survive this process
    /// being killed, and is cheap enough to write once per created experiment.
    pub(super) fn save(&self, sched: &SchedulerDir) -> Result<()> {
        let path = sched.state_path();
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.encode()?).at("write", &tmp)?;
        std::fs::rename(&tmp, &path).at("replace", &path)
    }

    /// Replaces the journal atomically and durably.
    pub(super) fn save_durable(&self, sched: &SchedulerDir) -> Result<()> {
        crate::store::write_atomic(&sched.state_path(), &self.encode()?)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid_state(format!("cannot encode the scheduler journal: {e}")))
    }

    fn entry(&self, name: &str) -> Option<&JournalEntry> {
        self.jobs.iter().find(|e| e.name == name)
    }

    /// Records `entry`, replacing the one of the same name.
    pub(super) fn record(&mut self, entry: JournalEntry) {
        self.jobs.retain(|e| e.name != entry.name);
        self.jobs.push(entry);
    }

    /// Drops what a dead scheduler staged and recorded but never moved into place, for names
    /// that `queued` no longer holds (the config changed): published now, nobody would run it.
    pub(super) fn forget_unpublished(&mut self, queued: impl Fn(&str) -> bool) -> Result<()> {
        let mut kept = Vec::with_capacity(self.jobs.len());
        for entry in std::mem::take(&mut self.jobs) {
            match &entry.staged {
                Some(staged) if !queued(&entry.name) && staged.exists() => {
                    remove_tree(staged)?;
                    if entry.claimed {
                        // Our own empty claim; remove_dir refuses anything that is not empty.
                        let _ = std::fs::remove_dir(&entry.dir);
                    }
                }
                _ => kept.push(entry),
            }
        }
        self.jobs = kept;
        Ok(())
    }

    /// Removes the staging directories no entry names: a scheduler died while building them,
    /// before it recorded them, so nobody knows them and their experiments are created again.
    pub(super) fn remove_unrecorded_staging(&self, sched: &SchedulerDir) -> Result<()> {
        let staging = sched.staging_dir();
        let entries = match std::fs::read_dir(&staging) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("list", &staging, e)),
        };
        for entry in entries {
            let path = entry.at("list", &staging)?.path();
            if !self.jobs.iter().any(|j| j.staged.as_ref() == Some(&path)) {
                remove_tree(&path)?;
            }
        }
        Ok(())
    }
}

/// Puts the queued experiment `spec` on disk, or takes over what a scheduler that died left of
/// it (see the module documentation).
pub(super) fn materialize(
    config: &SchedulerConfig,
    spec: &JobSpec,
    sched: &SchedulerDir,
    journal: &mut Journal,
) -> Result<Materialized> {
    if let Some(entry) = journal.entry(&spec.name).cloned() {
        if let Some(staged) = entry.staged.as_ref().filter(|s| s.exists()) {
            // Built and recorded, never moved into place: finish it.
            if entry.claimed {
                // Our own empty claim; remove_dir refuses anything that is not empty.
                let _ = std::fs::remove_dir(&entry.dir);
            }
            let dir = publish(config, sched, journal, &spec.name, staged)?;
            return Ok(Materialized::Adopted(dir));
        }
        if entry.dir.join("config.json").is_file() {
            let dir = ExperimentDir::open(&entry.dir)?;
            if entry.resuming {
                let status = Status::load(&dir)?;
                if !(status.status == RunState::Pending && status.run_id.is_some()) {
                    // The resume did not record its Pending run: do it again.
                    return resume(sched, journal, spec, dir);
                }
            }
            journal.record(JournalEntry::placed(&spec.name, dir.path()));
            return Ok(Materialized::Adopted(dir));
        }
        // Gone (deleted meanwhile): created again below.
    }
    if spec.resume
        && let Some(dir) = super::plan::latest_dir(&config.base_dir, &spec.name)?
    {
        return resume(sched, journal, spec, dir);
    }
    let staging = sched.staging_dir();
    std::fs::create_dir_all(&staging).at("create the staging directory", &staging)?;
    let staged = staging.join(&spec.name);
    // A leftover of this name was removed at start-up unless recorded; a recorded one whose
    // directory is gone no longer matters.
    remove_tree(&staged)?;
    let run = builder(config, spec).create_at(&staged)?.run_id();
    crash_point("queue:staged");
    let dir = publish(config, sched, journal, &spec.name, &staged)?;
    Ok(Materialized::Queued(dir, run))
}

/// The next run of an existing experiment, for `resume = true`: recorded in the journal before
/// it is allocated, so a restart can tell whether it was. The run executes what the config
/// file says now (its command, env, cwd, timeout), not what the experiment ran before; its
/// `config.json` takes the file's settings too.
fn resume(
    sched: &SchedulerDir,
    journal: &mut Journal,
    spec: &JobSpec,
    dir: ExperimentDir,
) -> Result<Materialized> {
    let name = spec.name.as_str();
    journal.record(JournalEntry {
        resuming: true,
        ..JournalEntry::placed(name, dir.path())
    });
    journal.save(sched)?;
    crash_point("queue:resume-recorded");
    let run = Experiment::resume_pending(dir.path(), spec_config(spec))?.run_id();
    crash_point("queue:resumed");
    // Saved with the next write of the journal: until then a restart reads status.json.
    journal.record(JournalEntry::placed(name, dir.path()));
    Ok(Materialized::Queued(dir, run))
}

/// Steps 2 and 3: records where the experiment built in `staged` goes, then moves it there.
fn publish(
    config: &SchedulerConfig,
    sched: &SchedulerDir,
    journal: &mut Journal,
    name: &str,
    staged: &Path,
) -> Result<ExperimentDir> {
    for target in ExperimentDir::candidates(&config.base_dir, name, chrono::Local::now()) {
        if target.symlink_metadata().is_ok() {
            continue;
        }
        let mut entry = JournalEntry {
            staged: Some(staged.to_path_buf()),
            ..JournalEntry::placed(name, &target)
        };
        journal.record(entry.clone());
        journal.save(sched)?;
        crash_point("queue:journaled");
        match rename_noreplace(staged, &target) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) if unsupported(&e) => {
                // No RENAME_NOREPLACE here: claim the name, record the claim, then the rename
                // replaces our own empty directory.
                match std::fs::create_dir(&target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(Error::io("create the experiment directory", &target, e)),
                }
                entry.claimed = true;
                journal.record(entry);
                let moved = journal.save(sched).and_then(|()| {
                    crash_point("queue:claimed");
                    std::fs::rename(staged, &target).at("move the new experiment to", &target)
                });
                if let Err(e) = moved {
                    // Give the claimed name back; the staged experiment stays recorded.
                    let _ = std::fs::remove_dir(&target);
                    return Err(e);
                }
            }
            Err(e) => return Err(Error::io("move the new experiment to", &target, e)),
        }
        crash_point("queue:published");
        // Saved with the next write of the journal: the staging directory's absence says the
        // same meanwhile.
        journal.record(JournalEntry::placed(name, &target));
        return ExperimentDir::open(&target);
    }
    Err(Error::invalid_state(format!(
        "every directory name for experiment {name:?} in this second is taken in {}",
        config.base_dir.display()
    )))
}

/// `rename(from, to)` that fails rather than replace an existing `to`: `Ok(false)` when `to`
/// exists.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    if super::fault::without_rename_noreplace() {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether `rename_noreplace` failed because the filesystem or kernel lacks the flag.
fn unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Removes `path` and everything under it; nothing there is not an error.
fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("remove the unfinished experiment", path, e))
        }
        _ => Ok(()),
    }
}

/// What `config.json` says for a config entry: everything a retry needs to launch it again.
fn spec_config(spec: &JobSpec) -> Config {
    Config {
        name: spec.name.clone(),
        command: spec.command.clone(),
        tags: spec.tags.clone(),
        description: spec.description.clone(),
        gpu_ids: spec.gpu_ids.clone(),
        priority: spec.priority,
        params: spec.params.clone(),
        launch: Launch {
            env: spec.env.clone(),
            cwd: spec
                .cwd
                .as_ref()
                .map(|p| crate::store::absolute(p).display().to_string()),
            timeout_secs: spec.timeout.map(|t| t.as_secs().max(1)),
            retries: spec.retries,
            gpus: spec.gpus,
            slurm: spec.slurm.clone(),
            system_metrics_ms: Some(
                spec.system_metrics
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            ),
        },
        ..Config::default()
    }
}

/// The builder that creates a config entry's experiment as Pending, with everything a retry
/// needs to launch it again recorded in `config.json`.
fn builder(config: &SchedulerConfig, spec: &JobSpec) -> crate::ExperimentBuilder {
    let c = spec_config(spec);
    Experiment::builder(&spec.name, &config.base_dir)
        .command(c.command)
        .tags(c.tags)
        .description(c.description)
        .gpu_ids(c.gpu_ids)
        .priority(c.priority)
        .launch(c.launch)
        .params(c.params)
        .attach_from_env(false)
        .pending()
}
