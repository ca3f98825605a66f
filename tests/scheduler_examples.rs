//! The shipped example configs, run exactly as their comments and the README say: `EXP run
//! --config examples/toy/fast_config.toml` typed at the root of a checkout (a relative path),
//! and from other directories, then `EXP experiments_fast_demo` on what they made.
//!
//! Each test works in a copy of the repository's `examples/` (byte for byte) under a temp
//! directory that stands for a fresh clone, so the configs' own relative paths
//! (`base_dir = "../../experiments_fast_demo"`, `cwd = "."`, `cwd = ".."`) resolve as they do
//! for a user, and the experiments land beside that copy instead of in the working tree.
//!
//! The jobs run `python3` with the expman binding: `<repo>/.venv/bin` comes first on the PATH
//! (see `scheduler_support::python_with_expman`).

#![cfg(feature = "ui")]

mod scheduler_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use scheduler_support::*;
use serde_json::Value;

/// The repository this test file belongs to.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Copies `from` into `to` recursively (files and directories; no caches).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {src:?}: {e}"));
        }
    }
}

/// `<sandbox>/expman` holding a copy of the repository's `examples/`: the root of a checkout.
fn checkout(sb: &Sandbox) -> PathBuf {
    let root = sb.join("expman");
    copy_tree(&repo().join("examples"), &root.join("examples"));
    root
}

/// `EXP <args>` run in `cwd`, as typed there, with the venv's `python3` first on the PATH.
fn exp_in(cwd: &Path, args: &[&str]) -> Command {
    let python = python_with_expman();
    let venv_bin = python.parent().expect("the venv's bin dir").to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(venv_bin).chain(std::env::split_paths(&path));
    let mut cmd = exp();
    cmd.args(args)
        .current_dir(cwd)
        .env("PATH", std::env::join_paths(dirs).expect("a PATH"))
        .env_remove("EXPMAN_TOY_TIME_SCALE");
    cmd
}

/// A metrics table as (header, rows); the values here hold no commas or quotes.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    let header = lines.next().expect("a header line");
    (header, lines.collect())
}

fn cell<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    &row[i]
}

/// Checks what a toy demo left in `base`: every experiment of `finished` Finished with its
/// progress table at fraction 1, `failed` (if any) Error with exit code 1 about half way, each
/// run log holding its progress lines, the `EXPMAN_EXPERIMENT_DIR` the job saw absolute, and
/// at most two runs at a time.
fn check_toy_demo(base: &Path, finished: &[&str], failed: Option<&str>) {
    let dirs = experiments(base);
    let mut names: Vec<&str> = finished.to_vec();
    names.extend(failed);
    names.sort_unstable();
    assert_eq!(
        dirs.keys().map(String::as_str).collect::<Vec<_>>(),
        names,
        "{dirs:?}"
    );
    let mut spans = Vec::new();
    for (name, dir) in &dirs {
        assert!(dir.is_absolute() && dir.starts_with(base), "{dir:?}");
        let status = status(dir);
        let log = std::fs::read_to_string(dir.join("logs/run_0001.log")).unwrap();
        let (header, rows) = read_csv(&dir.join("metrics/progress.csv"));
        assert!(rows.len() >= 2, "{name}: progress rows {rows:?}\n{log}");
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(cell(&header, row, "step"), (i + 1).to_string(), "{name}");
            assert_eq!(cell(&header, row, "run_id"), "run_0001", "{name}");
        }
        let last: f64 = cell(&header, rows.last().unwrap(), "fraction")
            .parse()
            .unwrap();
        // Once: the job's Experiment attached to the scheduler's run, which captures its
        // output already, and did not capture it a second time.
        assert_eq!(log.matches("[toy] step 1:").count(), 1, "{name}: {log}");
        if Some(name.as_str()) == failed {
            assert_eq!(status["status"], "Error", "{status}\n{log}");
            assert_eq!(status["exit_code"], 1, "{status}");
            assert_eq!(status["error"], "exited with code 1", "{status}");
            assert!((0.45..0.7).contains(&last), "{name} stopped at {last}");
            assert!(log.contains("failing on purpose"), "{log}");
        } else {
            assert_eq!(status["status"], "Finished", "{name}: {status}\n{log}");
            assert_eq!(last, 1.0, "{name}");
        }
        // What the scheduler recorded that the run executed: its cwd is the config's
        // directory, absolute.
        let cwd = status["launch"]["cwd"].as_str().expect("a recorded cwd");
        assert!(Path::new(cwd).is_absolute(), "{status}");
        assert!(cwd.ends_with("examples/toy"), "{status}");
        let time = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(status[field].as_str().unwrap())
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap() as u128
        };
        spans.push(Record {
            name: name.clone(),
            start: time("started_at"),
            end: time("finished_at"),
            gpus: None,
            device_order: String::new(),
            run_id: String::new(),
            experiment_dir: String::new(),
        });
    }
    assert!(max_overlap(&spans) <= 2, "{spans:#?}");
}

/// `EXP <dir> --no-browser --port 0` started in `cwd`; killed when dropped.
struct Ui {
    child: Child,
    lines: Vec<String>,
    /// What EXP wrote to stderr, collected by a thread: shown when a test fails with the UI
    /// up, so a server that went away says why (it was seen to, once, under a loaded machine).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Ui {
    /// Starts the UI as typed in `cwd` (`extra`: more arguments) and reads the lines it prints
    /// before serving: the URL line, plus the other-machines line for a wildcard `--host`.
    fn start(cwd: &Path, dir: &str, extra: &[&str], lines: usize) -> Ui {
        let mut child = exp_in(cwd, &[dir, "--no-browser", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start EXP");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let errors = BufReader::new(child.stderr.take().unwrap());
        let collected = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in errors.lines().map_while(std::result::Result::ok) {
                let mut text = collected.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        // Read on a thread, so a line that never comes fails the test instead of hanging it;
        // the thread drains the rest until EXP exits, so its later output never hits a closed
        // pipe.
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(std::result::Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut got = Vec::new();
        while got.len() < lines {
            match rx.recv_timeout(LIMIT) {
                Ok(line) => got.push(line.trim_end().to_string()),
                Err(_) => panic!("EXP printed {got:?}, expected {lines} line(s)"),
            }
        }
        Ui {
            child,
            lines: got,
            stderr,
        }
    }

    /// Ctrl-C, as a user stops it; waits for it to exit (at most [`LIMIT`]).
    fn interrupt(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGINT);
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "EXP did not stop on Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URLs it printed, in order.
    fn urls(&self) -> Vec<String> {
        self.lines
            .iter()
            .flat_map(|l| l.split_whitespace())
            .filter(|w| w.starts_with("http://"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let exited = self.child.try_wait().ok().flatten();
            let stderr = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!("EXP (the UI) exited: {exited:?}; its stderr:\n{stderr}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET <path>` on the server at `url` (`http://host:port/...`), naming that host in `Host`,
/// as a browser opening the URL would; returns the status code and the body.
fn get(url: &str, path: &str) -> (u16, String) {
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("an authority");
    let addr: SocketAddr = authority
        .parse()
        .unwrap_or_else(|e| panic!("{authority:?} is not an address ({e})"));
    let token = url.split("token=").nth(1).map(str::to_string);
    let mut stream = TcpStream::connect(addr).expect("connect to the UI");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("X-Expman-Token: {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\n{auth}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (code, body.to_string())
}

/// The experiments the UI at `url` lists, name -> state.
fn listed(url: &str) -> BTreeMap<String, String> {
    let (code, body) = get(url, "/api/experiments");
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).expect("JSON");
    listing["experiments"]
        .as_array()
        .expect("an experiments array")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

const FAST: &[&str] = &["medium_task", "quick_task", "slow_with_jitter"];

/// The fast demo, typed at the root of a checkout as its comment says:
/// `EXP run --config examples/toy/fast_config.toml`, then `EXP experiments_fast_demo`. Three
/// tasks finish, `fails_on_purpose` is Error with exit code 1, the experiments are in
/// `<checkout>/experiments_fast_demo`; `EXP retry` of the failed one, named relative to the
/// root, runs it again. Before the scheduler made its paths absolute, every job was Error
/// within a second: it got `EXPMAN_EXPERIMENT_DIR` relative to the scheduler's directory
/// while it ran in `examples/toy`.
#[test]
fn fast_config_runs_as_documented_from_the_repository_root() {
    let sb = Sandbox::new();
    let root = checkout(&sb);
    let out = run(exp_in(
        &root,
        &["run", "--config", "examples/toy/fast_config.toml"],
    ));
    out.expect_code(1);
    let base = root.join("experiments_fast_demo");
    check_toy_demo(&base, FAST, Some("fails_on_purpose"));
    assert!(out.stdout.contains("fails_on_purpose"), "{}", out.stdout);

    // `EXP retry <experiment-dir>` with the directory as the user sees it from there: the
    // retried job attaches to run_0002 (so its rows carry that id) and fails on purpose again.
    let failed = experiment(&base, "fails_on_purpose");
    let relative = failed
        .strip_prefix(&root)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    run(exp_in(&root, &["retry", &relative])).expect_code(0);
    let again = wait_for_status(&failed, "run_0002 ended", |s| {
        s["run_id"] == "run_0002" && s["status"] == "Error"
    });
    assert_eq!(again["error"], "exited with code 1", "{again}");
    let (header, rows) = read_csv(&failed.join("metrics/progress.csv"));
    assert!(
        rows.iter()
            .any(|r| cell(&header, r, "run_id") == "run_0002"),
        "{rows:?}"
    );

    let ui = Ui::start(&root, "experiments_fast_demo", &[], 1);
    let states = listed(&ui.urls()[0]);
    let expected: BTreeMap<String, String> = FAST
        .iter()
        .map(|n| (n.to_string(), "Finished".to_string()))
        .chain([("fails_on_purpose".to_string(), "Error".to_string())])
        .collect();
    assert_eq!(states, expected);
}

/// The same config given from other working directories: the directory that holds it
/// (`--config fast_config.toml`) and a sibling of the checkout (`../expman/...`). The
/// experiments go to the same place, beside the checkout, each time.
#[test]
fn fast_config_runs_from_other_directories() {
    let sb = Sandbox::new();
    let root = checkout(&sb);
    let elsewhere = sb.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    run(exp_in(
        &elsewhere,
        &["run", "--config", "../expman/examples/toy/fast_config.toml"],
    ))
    .expect_code(1);
    check_toy_demo(
        &root.join("experiments_fast_demo"),
        FAST,
        Some("fails_on_purpose"),
    );
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "nothing is created in the scheduler's own directory"
    );

    // From the config's own directory, a dry run names the same absolute places.
    let toy = root.join("examples/toy");
    let plan = run(exp_in(
        &toy,
        &["run", "--config", "fast_config.toml", "--dry-run"],
    ));
    plan.expect_code(0);
    let base = root.join("experiments_fast_demo").canonicalize().unwrap();
    let toy = toy.canonicalize().unwrap();
    assert!(
        plan.stdout.contains(&format!("into {}", base.display())),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("cwd:       {}", toy.display())),
        "{}",
        plan.stdout
    );
}

/// `examples/toy/sweep_config.toml` as its comment says, from the root of a checkout: the dry
/// run lists the four points of grid × random with their commands (the same draws as the
/// comment names), and the run creates one experiment per point, each Finished, with the
/// point's params in `config.json` and the toy's progress table.
#[test]
fn sweep_config_runs_as_documented() {
    let sb = Sandbox::new();
    let root = checkout(&sb);
    let config = "examples/toy/sweep_config.toml";
    let plan = run(exp_in(&root, &["run", "--config", config, "--dry-run"]));
    plan.expect_code(0);
    let expected = [
        ("toy_sweep_jitter_seed=1_duration=2.4683", 1, 2.4683),
        ("toy_sweep_jitter_seed=1_duration=1.5084", 1, 1.5084),
        ("toy_sweep_jitter_seed=2_duration=2.4683", 2, 2.4683),
        ("toy_sweep_jitter_seed=2_duration=1.5084", 2, 1.5084),
    ];
    for (i, (name, seed, duration)) in expected.iter().enumerate() {
        assert!(
            plan.stdout
                .contains(&format!("{:>3}. {name} (priority 0)", i + 1)),
            "{}",
            plan.stdout
        );
        assert!(
            plan.stdout.contains(&format!(
                "command:   python3 toy_task.py --duration {duration} --seed {seed} --jitter\n"
            )),
            "{}",
            plan.stdout
        );
    }
    let comment = std::fs::read_to_string(root.join(config)).unwrap();
    assert!(
        comment.contains(expected[0].0),
        "the comment names a real point"
    );
    assert!(!root.join("experiments_sweep_demo").exists());

    run(exp_in(&root, &["run", "--config", config])).expect_code(0);
    let dirs = experiments(&root.join("experiments_sweep_demo"));
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    for (name, seed, duration) in expected {
        let dir = &dirs[name];
        assert_eq!(status(dir)["status"], "Finished", "{name}");
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(
            config["params"],
            serde_json::json!({"task": "toy", "jitter_seed": seed, "duration": duration}),
            "{name}"
        );
        let (header, rows) = read_csv(&dir.join("metrics/progress.csv"));
        assert_eq!(
            cell(&header, rows.last().unwrap(), "fraction"),
            "1.0",
            "{name}"
        );
    }
}

/// The seed's long demo (`examples/toy/long_running_config.toml`, three tasks of 150, 210 and
/// 270 s, two at a time), run as shipped from the root of a checkout, sped up a hundredfold by
/// `EXPMAN_TOY_TIME_SCALE=0.01` (toy_task.py multiplies its durations by it): all three finish,
/// and `EXP experiments_long_demo` serves them.
#[test]
fn long_demo_runs_as_documented_sped_up() {
    let sb = Sandbox::new();
    let root = checkout(&sb);
    let mut cmd = exp_in(
        &root,
        &["run", "--config", "examples/toy/long_running_config.toml"],
    );
    cmd.env("EXPMAN_TOY_TIME_SCALE", "0.01");
    run(cmd).expect_code(0);
    check_toy_demo(&root.join("experiments_long_demo"), FAST, None);

    let ui = Ui::start(&root, "experiments_long_demo", &[], 1);
    assert_eq!(
        listed(&ui.urls()[0]).values().collect::<Vec<_>>(),
        ["Finished"; 3]
    );
}

/// `examples/example_config.toml` as its comment and the README say, from the root of a
/// checkout: the dry run prints the six experiments in priority order with the directories
/// and working directory they will get, and creates nothing; the real run trains all six
/// (`cwd = ".."` runs `python3 examples/cnn_train.py` from the root) into
/// `<checkout>/experiments`, which `EXP experiments` then serves.
#[test]
fn example_config_plans_and_runs_as_documented() {
    let sb = Sandbox::new();
    let root = checkout(&sb);
    let config = "examples/example_config.toml";
    let plan = run(exp_in(&root, &["run", "--config", config, "--dry-run"]));
    plan.expect_code(0);
    let order: Vec<&str> = plan
        .stdout
        .lines()
        .filter_map(|l| l.trim_start().split_once(". "))
        .filter(|(n, _)| n.parse::<u32>().is_ok())
        .map(|(_, rest)| rest.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "cnn_baseline",
            "cnn_lr3e-3",
            "cnn_lr3e-4",
            "cnn_bs64",
            "cnn_bs128_lr2e-3",
            "cnn_seed1"
        ],
        "{}",
        plan.stdout
    );
    let real_root = root.canonicalize().unwrap();
    assert!(
        plan.stdout.contains(&format!(
            "directory: {}/experiments/cnn_baseline_",
            real_root.display()
        )),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("cwd:       {}\n", real_root.display())),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("env:       PYTHONUNBUFFERED=1"),
        "{}",
        plan.stdout
    );
    assert!(
        !root.join("experiments").exists(),
        "a dry run created files"
    );

    let out =
        Running::spawn(exp_in(&root, &["run", "--config", config])).wait(Duration::from_secs(600));
    out.expect_code(0);
    let dirs = experiments(&root.join("experiments"));
    assert_eq!(dirs.len(), 6, "{dirs:?}");
    for (name, dir) in &dirs {
        let status = status(dir);
        assert_eq!(status["status"], "Finished", "{name}: {status}");
        let (header, rows) = read_csv(&dir.join("metrics/run_0001.csv"));
        let epochs: Vec<&str> = rows[1..]
            .iter()
            .map(|r| cell(&header, r, "epoch"))
            .collect();
        assert_eq!(epochs.len(), 10, "{name}: {rows:?}");
    }
    assert!(
        dirs["cnn_seed1"].join("checkpoints/run_0001.npz").is_file(),
        "--save-model writes the checkpoint"
    );

    // The README's `EXP ls` example on these runs: the four with learning_rate < 2e-3, best
    // first, with the sort key shown.
    let ls = run(exp_in(
        &root,
        &[
            "ls",
            "experiments",
            "--where",
            "params.learning_rate < 2e-3 and metrics.val_acc.max >= 0.85",
            "--sort",
            "-metrics.val_acc.max",
            "--limit",
            "10",
            "--format",
            "csv",
        ],
    ));
    ls.expect_code(0);
    let mut lines = ls.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (name, best) = (column("name"), column("metrics.val_acc.max"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut names: Vec<&str> = rows.iter().map(|r| r[name]).collect();
    let bests: Vec<f64> = rows.iter().map(|r| r[best].parse().unwrap()).collect();
    assert!(bests.windows(2).all(|w| w[0] >= w[1]), "{}", ls.stdout);
    names.sort_unstable();
    assert_eq!(
        names,
        ["cnn_baseline", "cnn_bs64", "cnn_lr3e-4", "cnn_seed1"],
        "{}",
        ls.stdout
    );

    let ui = Ui::start(&root, "experiments", &[], 1);
    assert_eq!(listed(&ui.urls()[0]).len(), 6);
}

/// `EXP experiments --host 0.0.0.0` (the README's listening example): besides the local URL it
/// prints one that works from another machine, naming an address of this host rather than
/// 127.0.0.1, with the access token; the server answers on it.
#[test]
fn ui_on_all_addresses_prints_a_url_for_other_machines() {
    let sb = Sandbox::new();
    let base = sb.base();
    std::fs::create_dir(&base).unwrap();
    let ui = Ui::start(sb.path(), "experiments", &["--host", "0.0.0.0"], 2);
    let urls = ui.urls();
    assert_eq!(urls.len(), 2, "{:?}", ui.lines);
    assert!(urls[0].starts_with("http://127.0.0.1:"), "{:?}", ui.lines);
    let remote = &urls[1];
    assert!(
        !remote.starts_with("http://127.") && !remote.starts_with("http://localhost"),
        "{:?}",
        ui.lines
    );
    assert!(remote.contains("?token="), "{:?}", ui.lines);
    assert!(ui.lines[1].contains("other machines"), "{:?}", ui.lines);
    // The address printed is this machine's: the server answers there. (A machine with no
    // address but loopback gets its host name instead, which is all there is to print.)
    let authority = remote
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    if authority.parse::<SocketAddr>().is_ok() {
        let (code, body) = get(remote, "/api/experiments");
        assert_eq!(code, 200, "{body}");
    } else {
        assert!(
            authority.starts_with(&expman::store::hostname()),
            "{:?}",
            ui.lines
        );
    }
}

/// `./scripts/demo` (the README's "run the main job") builds EXP and runs `EXP demo` with its
/// arguments; here `EXP demo --no-browser --port 0` in a temp directory (the script's release
/// build is left out). The UI serves the demo's experiments while they run, in
/// `./experiments_demo`; Ctrl-C stops it and terminates the jobs.
#[test]
fn demo_serves_its_experiments_while_they_run() {
    let sb = Sandbox::new();
    let ui = Ui::start(sb.path(), "demo", &[], 1);
    let url = ui.urls()[0].clone();
    let states = wait_until("the demo's experiments, one running", LIMIT, || {
        let states = listed(&url);
        (states.len() == 4 && states.values().any(|s| s == "Running")).then_some(states)
    });
    assert!(states.contains_key("broken_config"), "{states:?}");
    assert_eq!(experiments(&sb.join("experiments_demo")).len(), 4);
    ui.interrupt();
    // Nothing is left running: every job ended, and its run says how.
    for (name, dir) in experiments(&sb.join("experiments_demo")) {
        let status = status(&dir);
        assert_ne!(status["status"], "Running", "{name}: {status}");
    }
}
