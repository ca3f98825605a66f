//! The job supervisor (`EXP __job <dir> <run>`): runs one scheduled run's command and records how
//! it ended.
//!
//! The scheduler does not run commands itself but through this small supervisor process, so the
//! exit code still reaches `status.json` when the scheduler is killed (`kill -9`, a closed
//! terminal): a restarted scheduler then finds the supervisor alive and waits for it instead of
//! running the job twice.
//!
//! A Slurm job runs this same supervisor as its batch script (`exec EXP __job <dir> <run>`), so
//! exit codes and the environment are those of a local run, except that Slurm owns
//! `CUDA_VISIBLE_DEVICES` (it is left as Slurm set it, and recorded as the run's GPUs) and the
//! run records its Slurm job id and node (`SLURM_JOB_ID`, `SLURMD_NODENAME`).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::process::kill_group;
use crate::error::{Error, IoContext, Result};
use crate::experiment::{ENV_EXPERIMENT_DIR, ENV_RUN_ID};
use crate::params::ENV_PARAMS;
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, ProcessId, RunLaunch, RunState, Status};
use crate::sysmetrics::{SystemMetrics, SystemSampler};

/// How long a job gets between SIGTERM and SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// Runs `run` of the experiment in `dir` on `gpus` and waits for it. Returns the exit code the
/// supervisor should exit with (the job's, or 128 + signal).
pub fn supervise(dir: &Path, run: RunId, gpus: &[u32]) -> Result<i32> {
    let exp = ExperimentDir::open(dir)?;
    let config = Config::load(&exp)?;
    let log_path = exp.run_log(run);
    let mut log = crate::store::open_log(&log_path)?;
    let slurm = config.launch.slurm.is_some();
    let (gpus, visible) = job_gpus(slurm, gpus);
    let launch = claim(&exp, run, &config, gpus, slurm)?;

    let _ = writeln!(
        log,
        "[expman] {} {run} start: {} (CUDA_VISIBLE_DEVICES={visible})",
        crate::store::now_rfc3339(),
        launch.command
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&launch.command)
        // A run gets the parameters its launch records (set by the scheduler from the config
        // entry), never ones inherited from the process that started the scheduler.
        .env_remove(ENV_PARAMS)
        .envs(&launch.env)
        .env(ENV_EXPERIMENT_DIR, exp.path())
        .env(ENV_RUN_ID, run.to_string())
        .env("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        .stdin(Stdio::null())
        .stdout(log.try_clone().at("share the run log", &log_path)?)
        .stderr(log.try_clone().at("share the run log", &log_path)?)
        .process_group(0);
    if !slurm {
        command.env("CUDA_VISIBLE_DEVICES", &visible);
    }
    if let Some(cwd) = &launch.cwd {
        command.current_dir(cwd);
    }
    let started = Instant::now();
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = format!("cannot start `sh -c {}`: {e}", launch.command);
            let _ = writeln!(log, "[expman] {message}");
            Status::update(&exp, |s| s.mark_ended(None, Some(message)))?;
            return Ok(127);
        }
    };
    let job_visible = if slurm {
        std::env::var("CUDA_VISIBLE_DEVICES").ok()
    } else {
        Some(visible.clone())
    };
    let sampler = start_system_metrics(&exp, run, &launch, child.id(), job_visible.as_deref());
    let watched = watch_job(&exp, run, &launch, child, &log_path);
    // The job has ended (or could not be watched): no sample after this.
    drop(sampler);
    let (code, error) = watched?;
    let _ = writeln!(
        log,
        "[expman] {} {run} end after {:.1}s: {}",
        crate::store::now_rfc3339(),
        started.elapsed().as_secs_f64(),
        error.as_deref().unwrap_or("finished")
    );
    Ok(code)
}

/// Starts sampling the job's process tree (the shell and everything it starts) and its GPUs
/// into the run's `system` table, as the launch settings say (default: every 10 s). A sampler
/// that cannot start is reported in the run's log; the job runs either way.
fn start_system_metrics(
    exp: &ExperimentDir,
    run: RunId,
    launch: &RunLaunch,
    pid: u32,
    visible: Option<&str>,
) -> Option<SystemSampler> {
    let interval = match launch.system_metrics_ms {
        Some(0) => return None,
        Some(ms) => Duration::from_millis(ms),
        None => crate::sysmetrics::DEFAULT_INTERVAL,
    };
    let started = SystemMetrics::new(pid, exp, run)
        .interval(interval)
        .visible_gpus(visible)
        .start();
    match started {
        Ok(sampler) => Some(sampler),
        Err(e) => {
            let log = exp.run_log(run);
            if let Ok(mut log) = OpenOptions::new().append(true).open(&log) {
                let _ = writeln!(log, "[expman] no system metrics for this run: {e}");
            }
            None
        }
    }
}

/// The GPUs a job gets and the `CUDA_VISIBLE_DEVICES` it sees. Under Slurm, Slurm picked them
/// and set the variable (or unset it): it is left alone, and recorded as the run's GPUs
/// (indices on its node).
fn job_gpus(slurm: bool, gpus: &[u32]) -> (Vec<u32>, String) {
    if slurm {
        let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
        let ids = visible
            .as_deref()
            .map(|v| v.split(',').filter_map(|g| g.trim().parse().ok()).collect())
            .unwrap_or_default();
        (ids, visible.unwrap_or_else(|| "<unset>".into()))
    } else {
        let visible = gpus
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        (gpus.to_vec(), visible)
    }
}

/// Claims the run: only a Pending run of this id may start, so nothing runs twice. Returns
/// what the run executes: recorded with the run when it was queued (a resume takes the config
/// file's new command, a retry repeats the run before it); `config.json` for runs queued by an
/// older expman.
fn claim(
    exp: &ExperimentDir,
    run: RunId,
    config: &Config,
    gpus: Vec<u32>,
    slurm: bool,
) -> Result<RunLaunch> {
    let slurm_job = std::env::var("SLURM_JOB_ID").ok().filter(|_| slurm);
    let node = std::env::var("SLURMD_NODENAME")
        .ok()
        .filter(|_| slurm_job.is_some());
    let me = ProcessId::current();
    let mut claimed = false;
    let mut launch = RunLaunch::from_config(config);
    Status::update(exp, |status| {
        if status.run_id == Some(run) && status.status == RunState::Pending {
            match &status.launch {
                Some(recorded) => launch = recorded.clone(),
                None => status.launch = Some(launch.clone()),
            }
            status.status = RunState::Running;
            status.supervisor_pid = Some(me.pid);
            status.supervisor_start_time = me.start_time;
            status.gpus = gpus.clone();
            status.host = Some(crate::store::hostname());
            status.started_at = Some(crate::store::now_rfc3339());
            if let Some(job) = &slurm_job {
                status.slurm_job_id = Some(job.clone());
                status.node = node.clone().or_else(|| status.host.clone());
            }
            claimed = true;
        }
    })?;
    if !claimed {
        return Err(Error::invalid_state(format!(
            "{run} of {} is not pending; it was started, cancelled or replaced by another run",
            exp.path().display()
        )));
    }
    Ok(launch)
}

/// Records the started job, enforces a terminate request and the timeout, waits for it and
/// records how it ended. Returns the supervisor's exit code and the run's error, if any.
fn watch_job(
    exp: &ExperimentDir,
    run: RunId,
    launch: &RunLaunch,
    mut child: std::process::Child,
    log_path: &Path,
) -> Result<(i32, Option<String>)> {
    let job = ProcessId::of(child.id()).unwrap_or(ProcessId {
        pid: child.id(),
        start_time: None,
    });
    let mut terminate_now = false;
    Status::update(exp, |status| {
        status.pid = Some(job.pid);
        status.pid_start_time = job.start_time;
        terminate_now = status.terminate_requested;
    })?;
    if terminate_now {
        kill_group(job.pid, KILL_GRACE);
    }

    let timed_out = Arc::new(AtomicBool::new(false));
    if let Some(limit) = launch.timeout_secs.map(Duration::from_secs) {
        let timed_out = Arc::clone(&timed_out);
        let pgid = job.pid;
        // If the job ends first, this thread dies with the supervisor process.
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            timed_out.store(true, Ordering::SeqCst);
            kill_group(pgid, KILL_GRACE);
        });
    }

    let exit = child.wait().at("wait for the job of", log_path)?;
    let (code, mut error) = match (exit.code(), exit.signal()) {
        (Some(0), _) => (0, None),
        (Some(code), _) => (code, Some(format!("exited with code {code}"))),
        (None, Some(signal)) => (128 + signal, Some(format!("killed by signal {signal}"))),
        (None, None) => (1, Some("ended without an exit status".to_string())),
    };
    if timed_out.load(Ordering::SeqCst) {
        let limit = launch.timeout_secs.unwrap_or(0);
        error = Some(format!(
            "timed out after {}",
            humantime::format_duration(Duration::from_secs(limit))
        ));
    }
    Status::update(exp, |status| {
        if status.run_id != Some(run) {
            return;
        }
        if status.terminate_requested {
            error = Some("terminated".to_string());
        }
        status.mark_ended(exit.code(), error.clone());
    })?;
    Ok((code, error))
}
