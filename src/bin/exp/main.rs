//! `EXP`: the expman command line. Parses arguments, calls the library, maps errors to exit
//! codes; the library does the work.

/// `print!` that survives a closed stdout: `EXP run --dry-run | head`, or a UI started by a
/// script that stopped reading its output, must go on working rather than panic on EPIPE.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` that survives a closed stdout (see `say!`).
macro_rules! sayln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod demo;
mod ls;

use clap::{Parser, Subcommand};
use expman::scheduler::{self, Action, RunOptions, SchedulerConfig};
use expman::server::{self, Server, ServerOptions};
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
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (anything but loopback requires the printed access token).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to try first; the next free one is used if it is taken.
    #[arg(long, default_value_t = server::DEFAULT_PORT)]
    port: u16,
    /// Do not open a browser.
    #[arg(long)]
    no_browser: bool,
    /// Also answer requests addressed to this host name (repeatable): the name of this machine,
    /// an SSH alias or a reverse proxy you open the page through. Requests naming any other
    /// host are refused (protection against DNS rebinding); 127.0.0.1, localhost, ::1 and
    /// the --host address are always answered.
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
    /// Require the access token (the ?token= of the printed URL) on 127.0.0.1 too, as on any
    /// other address: on a machine shared with other users (a login node), any of them can
    /// reach 127.0.0.1.
    #[arg(long)]
    require_token: bool,
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
    /// List experiments with their params and metric summaries, filtered and sorted by the
    /// query language (one line per experiment, its latest run).
    Ls(ls::LsArgs),
    /// Write the metrics of every run under a directory as one table (Parquet, CSV or Arrow);
    /// a run whose table cannot be read is left out and named on stderr, with exit status 1.
    Export(ExportArgs),
    /// Schedule a few short toy experiments and serve the UI on them.
    Demo {
        /// Where the demo's experiments go.
        #[arg(long, default_value = "experiments_demo")]
        dir: PathBuf,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// The demo's toy job.
    #[command(name = "__toy", hide = true)]
    Toy {
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 0.1)]
        lr: f64,
        #[arg(long)]
        fail: bool,
    },
    /// Supervise one scheduled run (used by the scheduler).
    #[command(name = "__job", hide = true)]
    Job {
        dir: PathBuf,
        run: RunId,
        #[arg(long, value_delimiter = ',')]
        gpus: Vec<u32>,
    },
    /// Follow a Slurm run submitted without a scheduler until it ends (used by retry).
    #[command(name = "__slurm-follow", hide = true)]
    SlurmFollow { dir: PathBuf, run: RunId },
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
        Some(Command::Export(args)) => export(&args),
        Some(Command::Ls(args)) => ls::ls(&args),
        Some(Command::Gpus) => {
            // An inventory file that cannot be read is the user's mistake: exit 2 with the
            // error. No driver is a fact about the machine: the table says so, exit 0.
            say!("{}", gpu::format_table(&gpu::try_discover()?));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Job { dir, run, gpus }) => {
            let code = scheduler::supervise(&dir, run, &gpus)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Some(Command::SlurmFollow { dir, run }) => {
            scheduler::slurm::follow(&dir, run)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Demo { dir, serve }) => demo(&dir, &serve),
        Some(Command::Toy { seconds, lr, fail }) => {
            let code = demo::toy_job(seconds, lr, fail)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        None => match cli.dir {
            Some(dir) => {
                let server = start_server(&dir, &cli.serve)?;
                server.wait();
                Ok(ExitCode::SUCCESS)
            }
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
    let pool = gpu_pool(&config, config_path)?;
    if dry_run {
        say!("{}", scheduler::plan(&config, &pool)?);
        return Ok(ExitCode::SUCCESS);
    }
    let interrupt = on_interrupt();
    let mut options = RunOptions::new(pool);
    options.interrupt = interrupt;
    let summary = scheduler::run(&config, options)?;
    Ok(if summary.all_finished() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A flag set by Ctrl-C, SIGTERM (what `kill`, systemd, docker and `timeout` send) or SIGHUP
/// (the terminal closed): the scheduler then terminates its jobs and cancels the queued ones.
/// Another such signal a second or more later exits at once; one within the second is the
/// same request (a terminal, and `timeout`, signal the whole process group as well).
fn on_interrupt() -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupt);
    let first = std::sync::Mutex::new(None::<std::time::Instant>);
    let _ = ctrlc::set_handler(move || {
        let mut first = first.lock().unwrap_or_else(|p| p.into_inner());
        match *first {
            Some(at) if at.elapsed() >= std::time::Duration::from_secs(1) => {
                std::process::exit(130)
            }
            Some(_) => {}
            None => *first = Some(std::time::Instant::now()),
        }
        flag.store(true, Ordering::SeqCst);
    });
    interrupt
}

/// The scheduler's GPU pool (see [`gpu::pool`]); without one, jobs run without GPUs.
/// A configured pool is checked against the machine's GPUs (see [`gpu::check_pool`]).
fn gpu_pool(config: &SchedulerConfig, path: &Path) -> expman::Result<Vec<u32>> {
    if config.backend == scheduler::Backend::Slurm {
        return Ok(Vec::new()); // Slurm assigns the GPUs
    }
    if let Some(configured) = config.gpus.as_deref() {
        gpu::check_pool(configured).map_err(|why| {
            expman::Error::config(format!("{}: [scheduler] gpus", path.display()), why)
        })?;
    }
    Ok(gpu::pool(config.gpus.as_deref()).unwrap_or_else(|why| {
        eprintln!("EXP: no GPU pool ({why}); jobs run without GPUs");
        Vec::new()
    }))
}

/// Starts the UI server, prints its URL and opens a browser unless told not to.
fn start_server(dir: &Path, args: &ServeArgs) -> expman::Result<Server> {
    let options = ServerOptions {
        host: args.host,
        port: args.port,
        allowed_hosts: args.allow_host.clone(),
        require_token: args.require_token,
    };
    let server = Server::start(dir, &options)?;
    sayln!("expman UI for {} at {}", dir.display(), server.url());
    if args.host.is_unspecified() {
        // Listening on every address: the URL above is this machine's own; print one that
        // another machine can open too.
        sayln!("  from other machines: {}", remote_url(server.url()));
    }
    let _ = std::io::stdout().flush();
    if !args.no_browser {
        open_browser(server.url());
    }
    Ok(server)
}

/// `url` (`http://127.0.0.1:<port>/...`) with the host replaced by an address other machines
/// can reach: the one of the interface that routes outward (connecting a UDP socket sends
/// nothing), else one the host name resolves to, else the host name itself.
fn remote_url(url: &str) -> String {
    use std::net::ToSocketAddrs;
    let outward = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            socket.connect("192.0.2.1:9")?; // TEST-NET-1: any routable address will do
            socket.local_addr()
        })
        .ok()
        .map(|addr| addr.ip());
    let host = expman::store::hostname();
    let resolved = || {
        (host.as_str(), 0)
            .to_socket_addrs()
            .ok()?
            .map(|addr| addr.ip())
            .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
    };
    let shown = match outward
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .or_else(resolved)
    {
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
        None => host,
    };
    match url.strip_prefix("http://127.0.0.1") {
        Some(rest) => format!("http://{shown}{rest}"),
        None => url.to_string(),
    }
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("EXP: could not open a browser ({opener} not found); open the URL above");
    }
}

/// The main job: toy experiments scheduled into `dir` while the UI serves it.
fn demo(dir: &Path, args: &ServeArgs) -> expman::Result<ExitCode> {
    std::fs::create_dir_all(dir)
        .map_err(|e| expman::Error::config(dir.display().to_string(), e.to_string()))?;
    let exe = std::env::current_exe()
        .map_err(|e| expman::Error::config("EXP", format!("cannot find this program: {e}")))?;
    let config = demo::config(&std::path::absolute(dir).unwrap_or(dir.to_path_buf()), &exe)?;
    let server = start_server(dir, args)?;
    let interrupt = on_interrupt();
    let mut options = RunOptions::new(Vec::new());
    options.interrupt = Arc::clone(&interrupt);
    scheduler::run(&config, options)?;
    if !interrupt.load(Ordering::SeqCst) {
        sayln!(
            "demo finished; the UI keeps serving {} (Ctrl-C to stop)",
            server.url()
        );
        while !interrupt.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The experiments directory, or one experiment's directory.
    dir: PathBuf,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// parquet, csv or arrow (Arrow IPC); by default from the extension of --out.
    #[arg(long)]
    format: Option<String>,
    /// Only experiments whose name or directory name matches this glob (* and ?).
    #[arg(long)]
    name: Option<String>,
    /// Only runs in this state: Pending, Running, Finished or Error.
    #[arg(long)]
    status: Option<String>,
    /// Only experiments with this tag (repeat it to require several).
    #[arg(long)]
    tag: Vec<String>,
}

/// `EXP export`: one long table of every selected run; progress on stderr for large exports.
#[cfg(feature = "arrow")]
fn export(args: &ExportArgs) -> expman::Result<ExitCode> {
    use expman::arrow::{self, Format, Progress, Selection, Stage};

    let format: Format = match &args.format {
        Some(format) => format.parse()?,
        None => {
            let extension = args.out.extension().and_then(|e| e.to_str()).unwrap_or("");
            extension.parse().map_err(|_| {
                expman::Error::config(
                    "--format",
                    format!(
                        "cannot tell the format from {}; pass --format parquet, csv or arrow",
                        args.out.display()
                    ),
                )
            })?
        }
    };
    let mut selection = Selection::new();
    if let Some(glob) = &args.name {
        selection = selection.name(glob);
    }
    if let Some(status) = &args.status {
        selection = selection.status(arrow::parse_status(status)?);
    }
    for tag in &args.tag {
        selection = selection.tag(tag);
    }
    // Large exports (100 experiments or more) report every tenth.
    let shown = std::sync::Mutex::new((Stage::Reading, 0usize));
    let progress = |p: Progress| {
        if p.total < 100 {
            return;
        }
        let step = p.done * 10 / p.total;
        let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
        if step > 0 && (p.stage, step) != *shown {
            *shown = (p.stage, step);
            let verb = match p.stage {
                Stage::Reading => "read",
                Stage::Writing => "exported",
            };
            eprintln!("EXP export: {verb} {}/{} experiments", p.done, p.total);
        }
    };
    let summary = arrow::export(&args.dir, &selection, format, &args.out, &progress)?;
    sayln!(
        "exported {} experiments ({} runs, {} rows, {} columns) to {}",
        summary.experiments,
        summary.runs,
        summary.rows,
        summary.columns,
        args.out.display()
    );
    // The others are written; the damaged ones are named, and the exit status says the
    // export is not whole.
    for skipped in &summary.skipped {
        eprintln!("EXP export: left out {skipped}");
    }
    Ok(if summary.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(not(feature = "arrow"))]
fn export(_args: &ExportArgs) -> expman::Result<ExitCode> {
    Err(expman::Error::unsupported("arrow"))
}

fn control(dir: &std::path::Path, action: Action) -> expman::Result<ExitCode> {
    sayln!("{}", scheduler::perform(dir, action)?);
    Ok(ExitCode::SUCCESS)
}
