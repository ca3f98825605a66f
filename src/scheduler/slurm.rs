//! The Slurm backend: the same jobs, submitted with `sbatch` instead of started here.
//!
//! A Slurm job runs the same supervisor as a local job (`EXP __job <dir> <run>`), so the exit
//! code, the log (`logs/<run>.log`, opened by Slurm in append mode) and the environment contract
//! (`EXPMAN_EXPERIMENT_DIR`, `EXPMAN_RUN_ID`) are those of a local run. Only the GPUs differ:
//! Slurm picks them (`--gres=gpu:N`) and sets `CUDA_VISIBLE_DEVICES` itself.
//!
//! Following a job needs no slurmdbd:
//! - the supervisor records the run's end in `status.json`, as it does locally; that is the
//!   normal way a run ends, and the scheduler sees it there;
//! - a job can also end without its supervisor recording anything: cancelled while pending,
//!   a node failure, Slurm's time limit killing every process of the job. `squeue -t all` says
//!   when a job has left the running states, and `scontrol show job -o` gives its `JobState`,
//!   `ExitCode` and `Reason`, which go into the run's error. Both work for `MinJobAge` seconds
//!   after the job ended (300 by default); a job Slurm no longer knows counts as ended.
//!
//! Who follows: the scheduler (`EXP run`) for the jobs it submitted or was asked to retry; a
//! retry without a scheduler (`EXP retry`, the UI) starts a small detached follower,
//! `EXP __slurm-follow <dir> <run>`, that polls `squeue` every few seconds until the run ends.

use std::collections::HashMap;
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use super::shell::shell_line;
use super::shell::shell_quote;
use crate::error::{Error, Result};
use crate::run_id::RunId;
use crate::store::{Config, ExperimentDir, Launch, RunState, SlurmLaunch, Status};

/// Slurm job states after which no process of the job runs any more.
const ENDED_STATES: &[&str] = &[
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
    "REVOKED",
    "SPECIAL_EXIT",
];

/// How long a job may be over in Slurm while `status.json` does not show its end yet, before
/// the run is marked Error. The supervisor writes `status.json` before it exits, so on one
/// machine the end is there first; this covers a shared filesystem's lag between nodes.
pub(crate) const SETTLE_GRACE: Duration = Duration::from_secs(3);

/// How often the scheduler asks `squeue` about its jobs (one call for all of them).
pub(crate) const POLL: Duration = Duration::from_secs(2);

/// How long `terminate` waits for Slurm to end a cancelled job before it records the end.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// The `sbatch` command line (program first) that submits `run` of the experiment `name` in
/// `dir`, whose supervisor is `exp_bin`.
///
/// ```text
/// sbatch --parsable --no-requeue --job-name=NAME --output=DIR/logs/RUN.log --open-mode=append
///        --export=ALL [--partition=P] [--account=A] [--time=T] [--cpus-per-task=N] [--mem=M]
///        [--gres=gpu:N] [EXTRA...] --wrap='exec EXP __job DIR RUN'
/// ```
///
/// `--no-requeue`: a requeued job would start the supervisor a second time, which cannot claim
/// a run that already started; a failed run is retried as a new run instead. `--export=ALL`
/// (Slurm's usual default, made explicit) gives the job the submitter's environment, as a local
/// job inherits the scheduler's; `extra_sbatch_args` come after it and can override it.
pub fn sbatch_command(
    dir: &Path,
    name: &str,
    run: RunId,
    launch: &Launch,
    slurm: &SlurmLaunch,
    exp_bin: &Path,
) -> Vec<String> {
    let mut args = vec![
        "sbatch".to_string(),
        "--parsable".to_string(),
        "--no-requeue".to_string(),
        format!("--job-name={name}"),
        format!(
            "--output={}",
            dir.join("logs").join(format!("{run}.log")).display()
        ),
        "--open-mode=append".to_string(),
        "--export=ALL".to_string(),
    ];
    let mut add = |flag: &str, value: Option<String>| {
        if let Some(value) = value {
            args.push(format!("--{flag}={value}"));
        }
    };
    add("partition", slurm.partition.clone());
    add("account", slurm.account.clone());
    add("time", slurm.time.clone());
    add("cpus-per-task", slurm.cpus_per_task.map(|n| n.to_string()));
    add("mem", slurm.mem.clone());
    add(
        "gres",
        (launch.gpus > 0).then(|| format!("gpu:{}", launch.gpus)),
    );
    args.extend(slurm.extra_sbatch_args.iter().cloned());
    args.push(format!(
        "--wrap=exec {} __job {} {run}",
        shell_quote(&exp_bin.display().to_string()),
        shell_quote(&dir.display().to_string())
    ));
    args
}

/// Whether `sbatch` can be run: checked before anything is created, so a machine without
/// Slurm gets one error rather than one per experiment.
pub(crate) fn check_sbatch() -> Result<()> {
    match Command::new("sbatch")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::invalid_state(format!(
            "backend = \"slurm\" but sbatch cannot be run ({e}); run on a Slurm login node \
             (with sbatch, squeue, scontrol and scancel on the PATH) or use backend = \"local\""
        ))),
    }
}

/// Runs a Slurm client command; a missing command is an error that says what is wrong.
fn slurm_tool(args: &[String]) -> Result<Output> {
    let (program, rest) = args.split_first().expect("a program");
    Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == IoErrorKind::NotFound {
                Error::invalid_state(format!(
                    "cannot run {program}: it is not on the PATH; run on a Slurm login node \
                     (the Slurm client commands sbatch, squeue, scontrol and scancel are \
                     needed), or use backend = \"local\""
                ))
            } else {
                Error::invalid_state(format!("cannot run {program}: {e}"))
            }
        })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Submits `run` (which must be Pending) of the Slurm experiment in `exp` and records the job
/// id in `status.json`. Returns the job id.
pub(crate) fn submit(exp: &ExperimentDir, run: RunId) -> Result<String> {
    let config = Config::load(exp)?;
    let Some(slurm) = &config.launch.slurm else {
        return Err(Error::invalid_state(format!(
            "{} is not a Slurm experiment (its config.json has no launch.slurm)",
            exp.path().display()
        )));
    };
    let dir = absolute(exp.path());
    let args = sbatch_command(
        &dir,
        &config.name,
        run,
        &config.launch,
        slurm,
        &super::launcher::job_launcher()?,
    );
    let output = slurm_tool(&args)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(Error::invalid_state(format!(
            "sbatch refused {} {run}: {}",
            config.name,
            one_line(&stderr, &stdout)
        )));
    }
    // `--parsable` prints "JOBID" or "JOBID;CLUSTER".
    let id = stdout
        .lines()
        .next()
        .and_then(|line| line.split(';').next())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Error::invalid_state(format!(
                "sbatch accepted {} {run} but printed no job id: {}",
                config.name,
                one_line(&stdout, &stderr)
            ))
        })?
        .to_string();
    // The job may already have started and recorded itself; the first record stays.
    Status::update(exp, |s| {
        if s.run_id == Some(run) && s.slurm_job_id.is_none() {
            s.slurm_job_id = Some(id.clone());
        }
    })?;
    Ok(id)
}

/// Submits `run` to Slurm; when `sbatch` refuses, the run is marked Error with its message (so
/// it does not stay Pending) and the error returned.
pub(crate) fn submit_or_record(exp: &ExperimentDir, run: RunId) -> Result<String> {
    submit(exp, run).inspect_err(|e| {
        let message = e.to_string();
        let _ = Status::update(exp, |s| {
            if s.run_id == Some(run) && s.status == RunState::Pending {
                s.mark_ended(None, Some(message));
            }
        });
    })
}

fn one_line(first: &str, second: &str) -> String {
    let text = if first.trim().is_empty() {
        second
    } else {
        first
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Slurm's state of each of `ids` (`squeue -h -t all -j ...`). A job missing from the answer
/// is one Slurm no longer knows (it ended more than `MinJobAge` ago, or never existed).
/// Fails when Slurm cannot be asked (the controller is down): nothing can be concluded then.
pub(crate) fn states(ids: &[&str]) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    if ids.is_empty() {
        return Ok(found);
    }
    let output = slurm_tool(&strings(&[
        "squeue",
        "--noheader",
        "--states=all",
        "--format=%i|%T",
        &format!("--jobs={}", ids.join(",")),
    ]))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // Asked about one job it no longer knows, squeue fails ("Invalid job id specified");
        // asked about several, it leaves those out.
        if stderr.contains("Invalid job id") {
            return Ok(found);
        }
        return Err(Error::invalid_state(format!(
            "squeue failed: {}",
            one_line(&stderr, "")
        )));
    }
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some((id, state)) = line.trim().split_once('|') {
            found.insert(id.to_string(), state.to_string());
        }
    }
    Ok(found)
}

/// Whether a state from [`states`] (or its absence) means no process of the job runs any more.
pub(crate) fn ended(state: Option<&String>) -> bool {
    state.is_none_or(|s| ENDED_STATES.contains(&s.as_str()))
}

/// What `scontrol show job -o` says about an ended job.
#[derive(Debug, Default)]
struct JobInfo {
    state: Option<String>,
    reason: Option<String>,
    exit_code: Option<String>,
    node: Option<String>,
}

fn show_job(id: &str) -> Option<JobInfo> {
    let output = slurm_tool(&strings(&["scontrol", "show", "job", "-o", id])).ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut info = JobInfo::default();
    for field in text.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let value = Some(value.to_string()).filter(|v| v != "(null)" && !v.is_empty());
        match key {
            "JobState" => info.state = value,
            "Reason" => info.reason = value,
            "ExitCode" => info.exit_code = value,
            "BatchHost" => info.node = value,
            _ => {}
        }
    }
    Some(info)
}

/// An exit code for `status.json` from Slurm's `ExitCode=code:signal`: 128 + signal for a
/// killed job, the code otherwise; `None` when both are 0 (the job never ran, or its end is
/// unknown).
fn exit_code(slurm: &str) -> Option<i32> {
    let (code, signal) = slurm.split_once(':')?;
    let (code, signal): (i32, i32) = (code.parse().ok()?, signal.parse().ok()?);
    match (code, signal) {
        (_, s) if s != 0 => Some(128 + s),
        (0, 0) => None,
        (c, _) => Some(c),
    }
}

/// Job `job` of `run` has ended in Slurm (or Slurm no longer knows it). When its supervisor did
/// not record how the run ended, marks it Error with Slurm's `JobState`, `ExitCode` and
/// `Reason`. Returns the status.
pub(crate) fn settle(exp: &ExperimentDir, run: RunId, job: &str) -> Result<Status> {
    let status = Status::load(exp)?;
    if status.run_id != Some(run)
        || status.status.is_terminal()
        || status.slurm_job_id.as_deref().is_some_and(|id| id != job)
    {
        return Ok(status);
    }
    let info = show_job(job);
    let state = info.as_ref().and_then(|i| i.state.clone());
    let message = match &info {
        _ if status.terminate_requested => "terminated".to_string(),
        None => format!(
            "Slurm job {job} ended, or Slurm forgot it (scontrol knows jobs only for MinJobAge \
             seconds after they end), without expman's supervisor recording a result"
        ),
        Some(info) => format!(
            "Slurm job {job} ended {}{} (JobState={} ExitCode={} Reason={})",
            state.as_deref().unwrap_or("?"),
            if status.status == RunState::Pending {
                " before it started"
            } else {
                " without expman's supervisor recording a result"
            },
            state.as_deref().unwrap_or("?"),
            info.exit_code.as_deref().unwrap_or("?"),
            info.reason.as_deref().unwrap_or("None"),
        ),
    };
    let code = info
        .as_ref()
        .and_then(|i| i.exit_code.as_deref())
        .and_then(exit_code);
    let node = info.and_then(|i| i.node);
    Status::update(exp, |s| {
        if s.run_id != Some(run) || s.status.is_terminal() {
            return;
        }
        s.slurm_job_id.get_or_insert_with(|| job.to_string());
        if s.node.is_none() && s.status == RunState::Running {
            s.node = node;
        }
        s.mark_ended(code, Some(message));
    })
}

/// `scancel <job>`.
pub(crate) fn cancel(job: &str) -> Result<()> {
    let output = slurm_tool(&strings(&["scancel", job]))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Cancelling a job that has just ended is not an error.
    if !output.status.success() && !stderr.contains("Invalid job id") {
        return Err(Error::invalid_state(format!(
            "scancel {job} failed: {}",
            one_line(&stderr, "")
        )));
    }
    Ok(())
}

/// Cancels job `job` and waits (at most a few seconds) until Slurm says it has ended.
pub(crate) fn cancel_and_wait(job: &str) -> Result<()> {
    cancel(job)?;
    let deadline = Instant::now() + CANCEL_WAIT;
    while Instant::now() < deadline {
        match states(&[job]) {
            Ok(found) if ended(found.get(job)) => return Ok(()),
            Err(_) => return Ok(()),
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    Ok(())
}

/// Starts `EXP __slurm-follow <dir> <run>`, detached: it follows the job of `run` until the run
/// has ended (see [`follow`]).
pub(crate) fn spawn_follower(exp: &ExperimentDir, run: RunId) -> Result<()> {
    let mut command = Command::new(super::launcher::job_launcher()?);
    command
        .arg("__slurm-follow")
        .arg(exp.path())
        .arg(run.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| Error::invalid_state(format!("cannot start the Slurm follower: {e}")))?;
    // Reap it when it ends, so a long-lived caller (the UI server) collects no zombies.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Follows the Slurm job of `run` of the experiment in `dir` until the run has ended, and
/// records the end when the job's supervisor could not (`EXP __slurm-follow`, started by a
/// retry without a scheduler). Gives up after an hour in which Slurm could not be asked.
pub fn follow(dir: &Path, run: RunId) -> Result<()> {
    let exp = ExperimentDir::open(dir)?;
    let mut ended_since: Option<Instant> = None;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        let status = Status::load(&exp)?;
        if status.run_id != Some(run) || status.status.is_terminal() {
            return Ok(());
        }
        let Some(job) = status.slurm_job_id.clone() else {
            return Err(Error::invalid_state(format!(
                "{run} of {} has no Slurm job to follow",
                dir.display()
            )));
        };
        match states(&[job.as_str()]) {
            Ok(found) => {
                unreachable_since = None;
                if ended(found.get(&job)) {
                    let since = *ended_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= SETTLE_GRACE {
                        settle(&exp, run, &job)?;
                        return Ok(());
                    }
                } else {
                    ended_since = None;
                }
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(3600) {
                    return Err(e);
                }
            }
        }
        std::thread::sleep(if ended_since.is_some() {
            Duration::from_millis(500)
        } else {
            POLL
        });
    }
}

/// The absolute form of `path` (for paths handed to Slurm, which runs jobs elsewhere).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_from_slurm() {
        assert_eq!(exit_code("3:0"), Some(3));
        assert_eq!(exit_code("0:15"), Some(143));
        assert_eq!(exit_code("0:0"), None);
        assert_eq!(exit_code("junk"), None);
    }

    #[test]
    fn command_shape() {
        let slurm = SlurmLaunch {
            partition: Some("gpu".into()),
            time: Some("01:00:00".into()),
            cpus_per_task: Some(4),
            mem: Some("16G".into()),
            extra_sbatch_args: vec!["--qos=high".into()],
            ..SlurmLaunch::default()
        };
        let launch = Launch {
            gpus: 2,
            ..Launch::default()
        };
        let args = sbatch_command(
            Path::new("/exp/a b"),
            "train",
            RunId::FIRST,
            &launch,
            &slurm,
            Path::new("/bin/EXP"),
        );
        assert_eq!(
            shell_line(&args),
            "sbatch --parsable --no-requeue --job-name=train \
             '--output=/exp/a b/logs/run_0001.log' --open-mode=append --export=ALL \
             --partition=gpu --time=01:00:00 --cpus-per-task=4 --mem=16G --gres=gpu:2 \
             --qos=high '--wrap=exec /bin/EXP __job '\\''/exp/a b'\\'' run_0001'"
        );
    }
}
