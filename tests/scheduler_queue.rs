//! The queue of `EXP run`: launch order, the concurrency limit, exclusive GPUs and the dry run.
//! Each test runs the real scheduler on jobs that record when they ran and what they saw.

#![cfg(feature = "ui")]

mod scheduler_support;

use std::collections::BTreeSet;
use std::path::Path;

use expman::gpu::{Gpu, write_inventory};
use scheduler_support::*;
use serde_json::Value;

/// Higher priority first; equal priorities keep the order of the file. With
/// `max_concurrent = 1` the jobs run one after another in exactly that order.
#[test]
fn priority_order_with_ties_in_file_order() {
    let sb = Sandbox::new();
    let job = sb.job_script();
    let rec = sb.join("records");
    // (name, priority) in file order.
    let jobs = [
        ("low", 1),
        ("mid_a", 5),
        ("top", 10),
        ("mid_b", 5),
        ("zero", 0),
        ("mid_c", 5),
    ];
    let mut config = "[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = 1\n".to_string();
    for (name, priority) in jobs {
        config += &format!(
            "\n[[experiments]]\nname = \"{name}\"\npriority = {priority}\ncommand = {}\n",
            toml_str(&format!("{job} {name} {} 0.05", rec.display()))
        );
    }
    let config = sb.write("sweep.toml", &config);

    run_scheduler(&config).expect_code(0);

    let records = read_records(&rec);
    let order: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(order, ["top", "mid_a", "mid_b", "mid_c", "low", "zero"]);
    for pair in records.windows(2) {
        assert!(
            pair[0].end <= pair[1].start,
            "{} started before {} ended with max_concurrent = 1",
            pair[1].name,
            pair[0].name
        );
    }
    for (name, dir) in experiments(&sb.base()) {
        let status = status(&dir);
        assert_eq!(status["status"], "Finished", "{name}: {status}");
        assert_eq!(status["exit_code"], 0, "{name}: {status}");
    }
}

/// Eight jobs at `max_concurrent = 3`: never more than three run at once, and the limit is
/// reached (the first three jobs wait for each other before working, so the scheduler must
/// run three together or the test times out).
#[test]
fn concurrency_limit_is_reached_and_never_exceeded() {
    const LIMIT_JOBS: usize = 3;
    let sb = Sandbox::new();
    let job = sb.job_script();
    let rec = sb.join("records");
    let mut config = format!(
        "[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = {LIMIT_JOBS}\ngpus = []\n"
    );
    for i in 0..8 {
        config += &format!(
            "\n[[experiments]]\nname = \"job{i}\"\ncommand = {}\n",
            toml_str(&format!("{job} job{i} {} 0.2 {LIMIT_JOBS}", rec.display()))
        );
    }
    let config = sb.write("sweep.toml", &config);

    run_scheduler(&config).expect_code(0);

    let records = read_records(&rec);
    assert_eq!(records.len(), 8, "every job ran once: {records:?}");
    assert_eq!(max_overlap(&records), LIMIT_JOBS, "{records:#?}");
    assert_eq!(experiments(&sb.base()).len(), 8);
}

/// Four injected GPUs and no `gpus` in `[scheduler]`: the pool comes from the inventory
/// (most free memory first); jobs taking one or two GPUs, and one with explicit `gpu_ids`,
/// never share a GPU while they overlap, and each job sees the environment the issue promises.
#[test]
fn gpus_are_exclusive_and_the_job_environment_is_right() {
    let sb = Sandbox::new();
    let job = sb.job_script();
    let rec = sb.join("records");
    // GPU 2 has the most free memory, then 0, 3, 1.
    let gpu = injected_gpu;
    let inventory = sb.join("gpus.json");
    write_inventory(
        &inventory,
        &[gpu(0, 2_000), gpu(1, 9_000), gpu(2, 100), gpu(3, 5_000)],
    )
    .expect("write the inventory");

    // (name, priority, GPU setting); the first job launched gets the emptiest GPU.
    let jobs: [(&str, i64, &str); 8] = [
        ("first", 100, "gpus = 1"),
        ("pair_a", 50, "gpus = 2"),
        ("pair_b", 50, "gpus = 2"),
        ("explicit", 40, "gpu_ids = [3]"),
        ("one_a", 10, "gpus = 1"),
        ("one_b", 10, "gpus = 1"),
        ("pair_c", 5, "gpus = 2"),
        ("explicit_pair", 1, "gpu_ids = [0, 1]"),
    ];
    let mut config = "[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = 4\n".to_string();
    for (name, priority, gpus) in jobs {
        config += &format!(
            "\n[[experiments]]\nname = \"{name}\"\npriority = {priority}\n{gpus}\ncommand = {}\n",
            toml_str(&format!("{job} {name} {} 0.15", rec.display()))
        );
    }
    let config = sb.write("gpus.toml", &config);

    let inventory = inventory.display().to_string();
    Running::scheduler_with_env(&config, &[("EXPMAN_GPU_INVENTORY", &inventory)])
        .wait(LIMIT)
        .expect_code(0);

    let records = read_records(&rec);
    assert_eq!(records.len(), jobs.len(), "{records:#?}");
    let dirs = experiments(&sb.base());
    for record in &records {
        let (_, _, setting) = jobs.iter().find(|j| j.0 == record.name).unwrap();
        let gpus = record.gpus.clone().expect("CUDA_VISIBLE_DEVICES is set");
        match *setting {
            "gpus = 1" => assert_eq!(gpus.len(), 1, "{record:?}"),
            "gpus = 2" => assert_eq!(gpus.len(), 2, "{record:?}"),
            "gpu_ids = [3]" => assert_eq!(gpus, [3], "{record:?}"),
            "gpu_ids = [0, 1]" => assert_eq!(gpus, [0, 1], "{record:?}"),
            other => unreachable!("{other}"),
        }
        assert!(gpus.iter().all(|g| *g < 4), "{record:?}");
        assert_eq!(
            gpus.iter().collect::<BTreeSet<_>>().len(),
            gpus.len(),
            "a GPU listed twice: {record:?}"
        );
        assert_eq!(record.device_order, "PCI_BUS_ID", "{record:?}");
        assert_eq!(record.run_id, "run_0001", "{record:?}");
        let dir = &dirs[&record.name];
        assert_eq!(
            Path::new(&record.experiment_dir).canonicalize().unwrap(),
            dir.canonicalize().unwrap(),
            "{record:?}"
        );
        // The scheduler's record of the reservation matches what the job saw.
        let status = status(dir);
        assert_eq!(status["status"], "Finished", "{status}");
        assert_eq!(status["gpus"], serde_json::json!(gpus), "{status}");
    }
    for (i, a) in records.iter().enumerate() {
        for b in &records[i + 1..] {
            if a.overlaps(b) {
                let (ga, gb) = (a.gpus.as_ref().unwrap(), b.gpus.as_ref().unwrap());
                assert!(
                    ga.iter().all(|g| !gb.contains(g)),
                    "{} and {} ran at the same time on GPUs {ga:?} and {gb:?}",
                    a.name,
                    b.name
                );
            }
        }
    }
    let first = records.iter().find(|r| r.name == "first").unwrap();
    assert_eq!(
        first.gpus.as_deref(),
        Some(&[2][..]),
        "the first job gets the GPU with the most free memory"
    );
    // The GPUs were actually contended: some jobs ran side by side.
    assert!(max_overlap(&records) >= 2, "{records:#?}");
}

/// `--dry-run` prints the plan (order, directory, run id, GPUs, command) and creates nothing.
#[test]
fn dry_run_prints_the_plan_and_creates_nothing() {
    let sb = Sandbox::new();
    let config = sb.write(
        "plan.toml",
        r#"[scheduler]
base_dir = "experiments"
max_concurrent = 2
gpus = [0, 1, 2]

[[experiments]]
name = "later"
command = "echo later-command"
priority = 1

[[experiments]]
name = "sooner"
command = "echo sooner-command --lr 0.1"
priority = 9
gpu_ids = [2]

[[experiments]]
name = "counted"
command = "echo counted-command"
priority = 5
gpus = 2
"#,
    );

    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&config).arg("--dry-run");
    let out = run(cmd);
    out.expect_code(0);
    let text = &out.stdout;

    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from the plan:\n{text}"))
    };
    // Launch order.
    assert!(
        at("sooner (priority 9)") < at("counted (priority 5)"),
        "{text}"
    );
    assert!(
        at("counted (priority 5)") < at("later (priority 1)"),
        "{text}"
    );
    // Directory, run id, GPUs, command of each.
    assert!(
        text.contains(&format!("{}", sb.base().join("sooner_").display())),
        "{text}"
    );
    assert_eq!(text.matches("run_0001").count(), 3, "{text}");
    assert!(text.contains("[2]"), "{text}");
    assert!(text.contains("2 from the pool"), "{text}");
    assert!(text.contains("echo sooner-command --lr 0.1"), "{text}");
    assert!(text.contains("at most 2 at a time"), "{text}");
    assert!(
        !sb.base().exists(),
        "a dry run created {}",
        sb.base().display()
    );
}

/// `resume = true`: a second `EXP run` of the config starts the next run (`run_0002`) in the
/// newest existing directory of that name instead of a new directory; the dry run says so.
#[test]
fn resume_runs_the_next_run_in_the_newest_directory() {
    let sb = Sandbox::new();
    let config = sb.write(
        "resume.toml",
        "[scheduler]\nbase_dir = \"experiments\"\ngpus = []\n\n[[experiments]]\nname = \"resumed\"\nresume = true\ncommand = \"echo in-$EXPMAN_RUN_ID\"\n",
    );
    run_scheduler(&config).expect_code(0);
    let dir = experiment(&sb.base(), "resumed");

    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&config).arg("--dry-run");
    let plan = run(cmd);
    plan.expect_code(0);
    assert!(plan.stdout.contains("(resume)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("run_0002"), "{}", plan.stdout);

    run_scheduler(&config).expect_code(0);
    assert_eq!(experiments(&sb.base()).len(), 1, "no second directory");
    let status = status(&dir);
    assert_eq!(status["run_id"], "run_0002", "{status}");
    assert_eq!(status["status"], "Finished", "{status}");
    let log = std::fs::read_to_string(dir.join("logs/run_0002.log")).unwrap();
    assert!(log.contains("in-run_0002"), "{log}");
}

/// `resume = true` after the config file changed: the new run executes what the file says now
/// (its command, env, cwd, timeout; its tags go to `config.json`), not what the experiment ran
/// before; `--dry-run` shows exactly that. `status.json` records what each run executed, and a
/// later retry (the UI's Rerun) repeats the run before it exactly. Before, the resumed run ran
/// the command of the old `config.json` while the dry run printed the new one.
#[test]
fn resume_runs_what_the_config_says_now_and_retry_repeats_that_run() {
    let sb = Sandbox::new();
    let records = sb.join("records");
    for dir in ["first", "second"] {
        std::fs::create_dir(sb.join(dir)).unwrap();
    }
    let write = |version: &str, which: &str, cwd: &str, extra: &str| {
        let command = format!(
            "echo {version} $WHICH $(pwd -P) >> {}{extra}",
            records.display()
        );
        sb.write(
            "resume.toml",
            format!(
                "[scheduler]\nbase_dir = \"experiments\"\ngpus = []\n\n[[experiments]]\n\
                 name = \"resumed\"\nresume = true\ntags = [\"{version}\"]\ncommand = {}\n\
                 env = {{ WHICH = \"{which}\" }}\ncwd = \"{cwd}\"\n{}",
                toml_str(&command),
                if extra.is_empty() {
                    ""
                } else {
                    "timeout = \"1s\"\n"
                }
            ),
        )
    };
    let config = write("v1", "one", "first", "");
    run_scheduler(&config).expect_code(0);
    let dir = experiment(&sb.base(), "resumed");

    // The file changes: another command, env, cwd, and a timeout its command runs into.
    let config = write("v2", "two", "second", "; sleep 30");
    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&config).arg("--dry-run");
    let plan = run(cmd);
    plan.expect_code(0);
    let second = sb.join("second").canonicalize().unwrap();
    for shown in [
        "(resume)".to_string(),
        "run:       run_0002".to_string(),
        "command:   echo v2 $WHICH".to_string(),
        format!("cwd:       {}", second.display()),
        "env:       WHICH=two".to_string(),
        "timeout:   1s".to_string(),
    ] {
        assert!(
            plan.stdout.contains(&shown),
            "{shown:?} in\n{}",
            plan.stdout
        );
    }

    run_scheduler(&config).expect_code(1);
    let first = sb.join("first").canonicalize().unwrap();
    let lines = |n: usize| {
        wait_until(&format!("{n} record lines"), LIMIT, || {
            let text = std::fs::read_to_string(&records).ok()?;
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            (lines.len() >= n).then_some(lines)
        })
    };
    assert_eq!(
        lines(2),
        [
            format!("v1 one {}", first.display()),
            format!("v2 two {}", second.display())
        ]
    );
    let status = status(&dir);
    assert_eq!(status["run_id"], "run_0002", "{status}");
    assert_eq!(status["status"], "Error", "{status}");
    assert_eq!(status["error"], "timed out after 1s", "{status}");
    let config_json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config_json["tags"],
        serde_json::json!(["v2"]),
        "{config_json}"
    );
    assert!(
        config_json["command"]
            .as_str()
            .unwrap()
            .starts_with("echo v2"),
        "{config_json}"
    );
    // What each run executed, in status.json.
    let launched = |launch: &Value| {
        (
            launch["command"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .map(str::to_string),
            launch["command"]
                .as_str()
                .unwrap()
                .split(' ')
                .nth(1)
                .map(str::to_string),
            launch["env"]["WHICH"].clone(),
            launch["cwd"].clone(),
            launch["timeout_secs"].clone(),
        )
    };
    let history = status["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{status}");
    assert_eq!(history[0]["run_id"], "run_0001");
    assert_eq!(
        launched(&history[0]["launch"]),
        (
            Some("echo".into()),
            Some("v1".into()),
            serde_json::json!("one"),
            serde_json::json!(first.display().to_string()),
            Value::Null
        ),
        "{status}"
    );
    assert_eq!(
        launched(&status["launch"]),
        (
            Some("echo".into()),
            Some("v2".into()),
            serde_json::json!("two"),
            serde_json::json!(second.display().to_string()),
            serde_json::json!(1)
        ),
        "{status}"
    );

    // Rerun without a scheduler: run_0003 executes what run_0002 executed.
    control("retry", &dir).expect_code(0);
    let ended = wait_for_status(&dir, "run_0003 ended", |s| {
        s["run_id"] == "run_0003" && (s["status"] == "Error" || s["status"] == "Finished")
    });
    assert_eq!(lines(3)[2], format!("v2 two {}", second.display()));
    assert_eq!(ended["error"], "timed out after 1s", "{ended}");
    assert_eq!(ended["launch"], status["launch"], "{ended}");
    assert_eq!(ended["history"][1]["launch"], status["launch"], "{ended}");
}

/// A `[scheduler] gpus` pool naming a GPU the machine lacks was taken as it was: jobs got
/// `CUDA_VISIBLE_DEVICES=5` and ran without the GPU meant for them. With an inventory it is a
/// config error naming the file, the GPU and the ones there are; nothing runs.
#[test]
fn a_pool_naming_a_gpu_the_machine_lacks_is_refused() {
    let sb = Sandbox::new();
    let inventory = sb.join("gpus.json");
    write_inventory(&inventory, &[injected_gpu(0, 0), injected_gpu(1, 0)])
        .expect("write the inventory");
    let ran = sb.join("ran");
    let config = sb.write(
        "pool.toml",
        format!(
            "[scheduler]\nbase_dir = \"experiments\"\ngpus = [1, 5]\n\n[[experiments]]\n\
             name = \"job\"\ngpus = 1\ncommand = \"touch {}\"\n",
            ran.display()
        ),
    );
    for dry_run in [true, false] {
        let mut cmd = exp();
        cmd.arg("run").arg("--config").arg(&config);
        if dry_run {
            cmd.arg("--dry-run");
        }
        cmd.env("EXPMAN_GPU_INVENTORY", &inventory);
        let out = run(cmd);
        assert_eq!(out.code(), Some(2), "{out:?}");
        assert!(
            out.stderr.contains("pool.toml")
                && out.stderr.contains("GPU 5")
                && out.stderr.contains("0, 1"),
            "{}",
            out.stderr
        );
    }
    assert!(!ran.exists());
    assert!(experiments(&sb.base()).is_empty());
}

/// A GPU of an injected inventory with `used` MiB of its 16,000 taken.
fn injected_gpu(index: u32, used: u64) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-test-{index}"),
        name: "Injected Test GPU".into(),
        memory_used_mib: used,
        memory_total_mib: 16_000,
        utilization_percent: 0,
        processes: Vec::new(),
        power_mw: None,
        temperature_c: None,
    }
}
