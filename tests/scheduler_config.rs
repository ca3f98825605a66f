//! Bad scheduler configs: each gives one clear error naming file:line:column, and nothing is
//! created (the base directory does not exist afterwards).

#![cfg(feature = "ui")]

mod scheduler_support;

use scheduler_support::*;

#[test]
fn misspelled_key_is_named_with_a_suggestion() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\npriorty = 3\n",
        7,
        1,
        &["unknown field `priorty`", "did you mean `priority`?"],
    );
}

#[test]
fn misspelled_scheduler_key_is_named_with_a_suggestion() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\nmax_concurent = 2\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n",
        3,
        1,
        &["`max_concurent`", "did you mean `max_concurrent`?"],
    );
}

#[test]
fn wrong_type_is_named() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\npriority = \"high\"\n",
        7,
        12,
        &["\"high\"", "i64"],
    );
}

#[test]
fn duplicate_names_point_at_the_second_and_name_the_first() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"same\"\ncommand = \"true\"\n\n[[experiments]]\nname = \"same\"\ncommand = \"false\"\n",
        9,
        8,
        &["duplicate experiment name \"same\"", "line 5"],
    );
}

#[test]
fn empty_command_is_refused() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"   \"\n",
        6,
        11,
        &["empty command"],
    );
}

#[test]
fn gpu_ids_outside_the_pool_are_refused() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\ngpus = [0, 1]\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\ngpu_ids = [1, 5]\n",
        8,
        11,
        &["GPU 5", "[0, 1]"],
    );
}

#[test]
fn more_gpus_than_the_pool_are_refused() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\ngpus = [0, 1]\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\ngpus = 3\n",
        8,
        8,
        &["3 GPUs", "pool has 2"],
    );
}

#[test]
fn zero_max_concurrent_is_refused() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = 0\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n",
        3,
        18,
        &["max_concurrent = 0", "use 1 or more"],
    );
}

#[test]
fn gpu_ids_and_gpus_together_are_refused() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\ngpus = [0, 1]\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\ngpu_ids = [0]\ngpus = 1\n",
        9,
        8,
        &["both gpu_ids", "use one of them"],
    );
}

#[test]
fn bad_timeout_is_refused() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\ntimeout = \"soon\"\n",
        7,
        11,
        &["timeout \"soon\"", "\"90s\""],
    );
}

/// The example configs parse and plan (`--dry-run`), so they cannot rot unnoticed.
#[test]
fn example_configs_plan_cleanly() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for (file, names) in [
        ("example_config.toml", &["cnn_baseline", "cnn_bs64"][..]),
        (
            "toy/long_running_config.toml",
            &["quick_task", "medium_task", "slow_with_jitter"][..],
        ),
        (
            "toy/fast_config.toml",
            &["slow_with_jitter", "fails_on_purpose"][..],
        ),
        (
            "toy/sweep_config.toml",
            &["toy_sweep_jitter_seed=1_duration=2.4683"][..],
        ),
    ] {
        let mut cmd = exp();
        cmd.arg("run")
            .arg("--config")
            .arg(examples.join(file))
            .arg("--dry-run");
        let out = run(cmd);
        out.expect_code(0);
        for name in names {
            assert!(
                out.stdout.contains(name),
                "{file}: {name} missing:\n{}",
                out.stdout
            );
        }
    }
}

/// A config header with the one-line `scheduler` setting plus one experiment with `extra` lines
/// (the experiment's `name` is on line 6, `command` on line 7, `extra` from line 8).
fn one_experiment(pool: &str, extra: &str) -> String {
    format!(
        "[scheduler]\nbase_dir = \"experiments\"\n{pool}\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n{extra}"
    )
}

#[test]
fn duplicate_gpus_in_the_pool_are_refused() {
    assert_rejected(
        one_experiment("gpus = [0, 1, 0]\n", "gpus = 1\n"),
        3,
        8,
        &["GPU 0 is listed twice", "[0, 1, 0]"],
    );
}

#[test]
fn duplicate_gpu_ids_are_refused() {
    assert_rejected(
        one_experiment("gpus = [0, 1]\n", "gpu_ids = [1, 1]\n"),
        8,
        11,
        &["GPU 1 twice", "gpu_ids"],
    );
}

#[test]
fn env_names_with_equals_signs_or_empty_are_refused() {
    assert_rejected(
        one_experiment(
            "max_concurrent = 1\n",
            "env = { OK = \"1\", \"A=B\" = \"x\" }\n",
        ),
        8,
        19,
        &["'='", "\"A=B\""],
    );
    assert_rejected(
        one_experiment("max_concurrent = 1\n", "env = { \"\" = \"x\" }\n"),
        8,
        9,
        &["empty variable name"],
    );
}

#[test]
fn nul_in_command_or_env_is_refused() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"echo a\\u0000b\"\n",
        6,
        11,
        &["NUL", "command"],
    );
    assert_rejected(
        one_experiment("max_concurrent = 1\n", "env = { \"A\\u0000\" = \"x\" }\n"),
        8,
        9,
        &["NUL", "variable name"],
    );
    assert_rejected(
        one_experiment("max_concurrent = 1\n", "env = { A = \"x\\u0000y\" }\n"),
        8,
        13,
        &["NUL", "value", "\"x\\0y\""],
    );
}

/// A `cwd` that does not exist is refused at parse time, naming the resolved path; before,
/// the experiment was created and its run failed with a misleading "cannot start sh".
#[test]
fn missing_cwd_is_refused() {
    assert_rejected(
        one_experiment("max_concurrent = 1\n", "cwd = \"no/such/dir\"\n"),
        8,
        7,
        &["cwd = \"no/such/dir\" does not exist", "no/such/dir)"],
    );
    assert_rejected(
        one_experiment("max_concurrent = 1\n", "cwd = \"bad.toml\"\n"),
        8,
        7,
        &["is not a directory"],
    );
}

/// A config that is not UTF-8 gets line and column of the first bad byte, and nothing is
/// created.
#[test]
fn non_utf8_config_names_the_bad_byte() {
    let mut bytes = b"[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\n# caf\xc3\xa9 ok\ncommand = \"echo caf".to_vec();
    bytes.extend_from_slice(b"\xe9\"\n");
    assert_rejected(&bytes, 7, 20, &["not UTF-8", "0xe9"]);
}

/// Values echoed in config errors are quoted at most 200 characters long, with the total
/// length: a 10 MB value gives a short message (issue 10, item 19).
#[test]
fn huge_values_are_not_echoed_in_full() {
    let huge = "x".repeat(10 << 20);
    for (extra, line, column, needle) in [
        (format!("timeout = \"{huge}\"\n"), 7, 11, "timeout \"xxxx"),
        (format!("priority = \"{huge}\"\n"), 7, 12, "i64"),
        (format!("{huge} = 1\n"), 7, 1, "unknown field"),
        (format!("env = {{ A = \"\\u0000{huge}\" }}\n"), 7, 13, "NUL"),
    ] {
        let config = format!(
            "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n{extra}"
        );
        let sb = Sandbox::new();
        let path = sb.write("huge.toml", &config);
        let mut cmd = exp();
        cmd.arg("run").arg("--config").arg(&path).arg("--dry-run");
        let out = run(cmd);
        out.expect_code(2);
        assert!(
            out.stderr
                .starts_with(&format!("EXP: {}:{line}:{column}: ", path.display())),
            "{}",
            &out.stderr[..out.stderr.len().min(500)]
        );
        assert!(
            out.stderr.contains(needle),
            "{needle:?}: {}",
            &out.stderr[..out.stderr.len().min(3000)]
        );
        assert!(
            out.stderr.len() < 5000,
            "a {} byte message for a 10 MB value: {}…",
            out.stderr.len(),
            &out.stderr[..500]
        );
    }
    // A name is refused for its length, and not echoed in full either.
    let config = format!(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"{huge}\"\ncommand = \"true\"\n"
    );
    let sb = Sandbox::new();
    let path = sb.write("huge.toml", &config);
    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&path).arg("--dry-run");
    let out = run(cmd);
    out.expect_code(2);
    assert!(
        out.stderr.contains("longer than 200 bytes"),
        "{}",
        &out.stderr[..500]
    );
    assert!(
        out.stderr.contains("(10485760 bytes)"),
        "{}",
        &out.stderr[..500]
    );
    assert!(out.stderr.len() < 1000, "{}", out.stderr.len());
}
