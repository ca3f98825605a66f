//! Starting the job supervisor (`EXP __job`): finding the `EXP` program and building its
//! command line, shared by the local backend, the Slurm backend and `--dry-run`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, IoContext, Result};
use crate::run_id::RunId;
use crate::store::ExperimentDir;

/// Finds the executable that supervises jobs (`EXP __job`): `$EXPMAN_EXP_BIN`, else this
/// program if it is `EXP`, else `EXP` on the `PATH`.
pub fn job_launcher() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("EXPMAN_EXP_BIN") {
        return Ok(PathBuf::from(path));
    }
    if let Ok(exe) = std::env::current_exe() {
        // A binary replaced while it runs (an upgrade, a rebuild) reads as "EXP (deleted)":
        // the EXP now at that path is the one to start.
        let exe = match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
            Some(path) => PathBuf::from(path),
            None => exe,
        };
        if exe.file_name().is_some_and(|n| n == "EXP") && exe.is_file() {
            return Ok(exe);
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("EXP"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid_state(
                "cannot find the EXP program that supervises jobs; install it (pip install \
                 ./bindings/python, or cargo install --path . --features ui) or set EXPMAN_EXP_BIN",
            )
        })
}

/// Starts a supervisor for `run` that outlives this process.
pub(crate) fn launch_detached(exp: &ExperimentDir, run: RunId, gpus: &[u32]) -> Result<()> {
    let mut child = supervisor_command(exp, run, gpus)?
        .spawn()
        .at("start the job supervisor for", exp.path())?;
    // Reap it when it ends, so a long-lived caller (the UI server) collects no zombies.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// `EXP __job <dir> <run> --gpus ...`, in its own process group, its output into the run log.
pub(crate) fn supervisor_command(exp: &ExperimentDir, run: RunId, gpus: &[u32]) -> Result<Command> {
    let log_path = exp.run_log(run);
    let log = crate::store::open_log(&log_path)?;
    let mut command = Command::new(job_launcher()?);
    command.arg("__job").arg(exp.path()).arg(run.to_string());
    if !gpus.is_empty() {
        let gpus = gpus
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        command.arg(format!("--gpus={gpus}"));
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().at("share the run log", &log_path)?)
        .stderr(log)
        .process_group(0);
    Ok(command)
}
