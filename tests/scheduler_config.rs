//! Bad scheduler configs: each gives one clear error naming file:line:column, and nothing is
//! created (the base directory does not exist afterwards).

#![cfg(feature = "ui")]

mod scheduler_support;

use scheduler_support::*;

/// Runs `EXP run` on `config` (with the dry run too) and checks: exit code 2, one error line on
/// stderr starting with `<path>:<line>:<column>: ` and holding every `needle`, and no base
/// directory afterwards.
fn assert_rejected(config: &str, line: usize, column: usize, needles: &[&str]) {
    let sb = Sandbox::new();
    let path = sb.write("bad.toml", config);
    for dry_run in [false, true] {
        let mut cmd = exp();
        cmd.arg("run").arg("--config").arg(&path);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let out = run(cmd);
        out.expect_code(2);
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("EXP: ") && !l.contains("no GPU pool"))
            .collect();
        assert_eq!(errors.len(), 1, "one error:\n{}", out.stderr);
        let origin = format!("EXP: {}:{line}:{column}: ", path.display());
        assert!(
            errors[0].starts_with(&origin),
            "expected the error at {origin:?}, got:\n{}",
            errors[0]
        );
        for needle in needles {
            assert!(
                errors[0].contains(needle),
                "{needle:?} missing from:\n{}",
                errors[0]
            );
        }
        assert!(
            out.stdout.is_empty(),
            "nothing planned or run: {}",
            out.stdout
        );
        assert!(
            !sb.base().exists(),
            "a rejected config created {}",
            sb.base().display()
        );
    }
}

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
