//! Planning (`EXP run --dry-run`): what a scheduler run would do, worked out without creating
//! anything, and printed.

use std::fmt;
use std::path::{Path, PathBuf};

use super::config::{Backend, JobSpec, SchedulerConfig};
use super::launcher::job_launcher;
use super::shell::{shell_line, shell_quote};
use super::slurm;
use crate::error::{Error, IoContext, Result};
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, Launch};

/// One job of a plan.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    /// The config entry.
    pub spec: JobSpec,
    /// Existing directory (resume), or `None` for a new one.
    pub existing: Option<PathBuf>,
    /// The run id it will get.
    pub run: RunId,
}

/// What a scheduler run would do (`EXP run --dry-run`).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config file.
    pub config: PathBuf,
    /// Where experiments go.
    pub base_dir: PathBuf,
    /// Concurrency limit.
    pub max_concurrent: usize,
    /// The GPU pool.
    pub pool: Vec<u32>,
    /// Where the jobs run.
    pub backend: Backend,
    /// The supervisor program the jobs run (`EXP`), when it can be found.
    pub job_launcher: Option<PathBuf>,
    /// Jobs in launch order.
    pub jobs: Vec<PlannedJob>,
}

/// Works out the plan without creating anything.
pub fn plan(config: &SchedulerConfig, pool: &[u32]) -> Result<Plan> {
    config.check_pool(pool)?;
    let mut jobs = Vec::new();
    for spec in config.in_priority_order() {
        let existing = if spec.resume {
            latest_dir(&config.base_dir, &spec.name)?
        } else {
            None
        };
        let run = match &existing {
            Some(dir) => dir.runs()?.last().map_or(RunId::FIRST, |r| r.next()),
            None => RunId::FIRST,
        };
        jobs.push(PlannedJob {
            spec: spec.clone(),
            existing: existing.map(|d| d.path().to_path_buf()),
            run,
        });
    }
    Ok(Plan {
        config: config.path.clone(),
        base_dir: config.base_dir.clone(),
        max_concurrent: config.max_concurrent,
        pool: pool.to_vec(),
        backend: config.backend,
        job_launcher: job_launcher().ok(),
        jobs,
    })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resources = match self.backend {
            Backend::Local => format!("GPU pool {:?}", self.pool),
            Backend::Slurm => "on Slurm (sbatch)".to_string(),
        };
        writeln!(
            f,
            "plan for {}: {} experiment(s) into {}, at most {} at a time, {resources}",
            self.config.display(),
            self.jobs.len(),
            self.base_dir.display(),
            self.max_concurrent,
        )?;
        for (i, job) in self.jobs.iter().enumerate() {
            self.write_job(f, i + 1, job)?;
        }
        Ok(())
    }
}

impl Plan {
    /// One job of the plan: where it goes, its run, its GPUs and everything it is started with.
    fn write_job(
        &self,
        f: &mut fmt::Formatter<'_>,
        number: usize,
        job: &PlannedJob,
    ) -> fmt::Result {
        let spec = &job.spec;
        // A new directory's name is decided when it is created (its timestamp).
        let (path, kind) = match &job.existing {
            Some(dir) => (dir.clone(), "resume"),
            None => (
                self.base_dir
                    .join(format!("{}_<YYYY-MM-DD__HH-MM-SS>", spec.name)),
                "new",
            ),
        };
        writeln!(
            f,
            "{number:>3}. {} (priority {})\n     directory: {} ({kind})\n     run:       {}\n     GPUs:      {}\n     command:   {}",
            spec.name,
            spec.priority,
            path.display(),
            job.run,
            gpus_text(spec),
            spec.command
        )?;
        // Everything else the job is started with, so the plan shows what will execute.
        if !spec.params.is_empty() {
            let params: Vec<String> = spec
                .params
                .iter()
                .map(|(k, v)| format!("{k}={}", shell_quote(&v.to_string())))
                .collect();
            writeln!(f, "     params:    {}", params.join(" "))?;
        }
        if let Some(cwd) = &spec.cwd {
            writeln!(f, "     cwd:       {}", cwd.display())?;
        }
        if !spec.env.is_empty() {
            let env: Vec<String> = spec
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", shell_quote(v)))
                .collect();
            writeln!(f, "     env:       {}", env.join(" "))?;
        }
        if let Some(timeout) = spec.timeout {
            writeln!(f, "     timeout:   {}", humantime::format_duration(timeout))?;
        }
        if let Some(slurm) = &spec.slurm {
            let launch = Launch {
                gpus: spec.gpus,
                ..Launch::default()
            };
            let exp_bin = self
                .job_launcher
                .clone()
                .unwrap_or_else(|| PathBuf::from("EXP"));
            let args = slurm::sbatch_command(
                &slurm::absolute(&path),
                &spec.name,
                job.run,
                &launch,
                slurm,
                &exp_bin,
            );
            writeln!(f, "     sbatch:    {}", shell_line(&args))?;
        }
        Ok(())
    }
}

/// The GPUs line of a planned job.
fn gpus_text(spec: &JobSpec) -> String {
    if spec.slurm.is_some() {
        match spec.gpus {
            0 => "none".to_string(),
            n => format!("{n}, picked by Slurm"),
        }
    } else if !spec.gpu_ids.is_empty() {
        format!("{:?}", spec.gpu_ids)
    } else if spec.gpus > 0 {
        format!("{} from the pool", spec.gpus)
    } else {
        "none".to_string()
    }
}

/// The newest experiment directory under `base` whose config names `name`.
pub(super) fn latest_dir(base: &Path, name: &str) -> Result<Option<ExperimentDir>> {
    let entries = match std::fs::read_dir(base) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("list", base, e)),
    };
    let mut best: Option<(String, ExperimentDir)> = None;
    for entry in entries {
        let path = entry.at("list", base)?.path();
        let Ok(dir) = ExperimentDir::open(&path) else {
            continue;
        };
        let Ok(config) = Config::load(&dir) else {
            continue;
        };
        if config.name == name && best.as_ref().is_none_or(|(at, _)| config.created_at > *at) {
            best = Some((config.created_at, dir));
        }
    }
    Ok(best.map(|(_, dir)| dir))
}
