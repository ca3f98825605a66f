//! `EXP`: the expman command line. Parses arguments, calls the library, maps errors to exit
//! codes; the library does the work.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use expman::scheduler::{self, Action, RunOptions, SchedulerConfig};
use expman::{RunId, gpu};

#[derive(Parser)]
#[command(
    name = "EXP",
    version,
    about = "expman: run experiments from a TOML file and watch them",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Experiments directory to serve the web UI for.
    dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the experiments of a TOML file (the seed's run_scheduler.py).
    Run {
        /// The scheduler config.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the plan (order, directory, run id, GPUs, command) and create nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Start a new run of a finished or errored experiment in its directory.
    Retry {
        /// The experiment directory.
        dir: PathBuf,
    },
    /// Kill a running experiment's process group and mark it Error "terminated".
    Terminate {
        /// The experiment directory.
        dir: PathBuf,
    },
    /// Delete an experiment directory (refused while it runs).
    Delete {
        /// The experiment directory.
        dir: PathBuf,
    },
    /// List the GPUs (NVML, or the inventory in $EXPMAN_GPU_INVENTORY).
    Gpus,
    /// Supervise one scheduled run (used by the scheduler).
    #[command(name = "__job", hide = true)]
    Job {
        dir: PathBuf,
        run: RunId,
        #[arg(long, value_delimiter = ',')]
        gpus: Vec<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match try_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("EXP: {e}");
            ExitCode::from(2)
        }
    }
}

fn try_main(cli: Cli) -> expman::Result<ExitCode> {
    match cli.command {
        Some(Command::Run { config, dry_run }) => run(&config, dry_run),
        Some(Command::Retry { dir }) => control(&dir, Action::Retry),
        Some(Command::Terminate { dir }) => control(&dir, Action::Terminate),
        Some(Command::Delete { dir }) => control(&dir, Action::Delete),
        Some(Command::Gpus) => {
            print!("{}", gpu::format_table(&gpu::discover()));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Job { dir, run, gpus }) => {
            let code = scheduler::supervise(&dir, run, &gpus)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        None => match cli.dir {
            Some(_) => Err(expman::Error::unsupported("server")),
            None => {
                use clap::CommandFactory;
                let _ = Cli::command().print_help();
                Ok(ExitCode::from(2))
            }
        },
    }
}

fn run(config_path: &std::path::Path, dry_run: bool) -> expman::Result<ExitCode> {
    let config = SchedulerConfig::load(config_path)?;
    let pool = gpu_pool(&config);
    if dry_run {
        print!("{}", scheduler::plan(&config, &pool)?);
        return Ok(ExitCode::SUCCESS);
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupt);
    // A second Ctrl-C while jobs are being terminated exits at once.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let mut options = RunOptions::new(pool);
    options.interrupt = interrupt;
    let summary = scheduler::run(&config, options)?;
    Ok(if summary.all_finished() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The pool: the config's `gpus`, else what NVML (or the injected inventory) reports, most free
/// memory first; none when neither exists.
fn gpu_pool(config: &SchedulerConfig) -> Vec<u32> {
    if let Some(pool) = &config.gpus {
        return pool.clone();
    }
    let inventory = gpu::discover();
    if let Some(why) = inventory.unavailable_reason() {
        eprintln!("EXP: no GPU pool ({why}); jobs run without GPUs");
        return Vec::new();
    }
    gpu::pick(&inventory.gpus, inventory.gpus.len(), &HashSet::new()).unwrap_or_default()
}

fn control(dir: &std::path::Path, action: Action) -> expman::Result<ExitCode> {
    println!("{}", scheduler::perform(dir, action)?);
    Ok(ExitCode::SUCCESS)
}
