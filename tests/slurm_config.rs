//! The Slurm settings of a scheduler config, without a cluster: what `EXP run --dry-run` prints
//! (the exact `sbatch` command lines), how per-experiment overrides merge, and the mistakes
//! that give one error naming file:line:column before anything is created.

#![cfg(feature = "ui")]

mod scheduler_support;

use scheduler_support::*;

const HEAD: &str = "[scheduler]\nbase_dir = \"experiments\"\nbackend = \"slurm\"\n";

#[test]
fn dry_run_prints_the_exact_sbatch_lines() {
    let sb = Sandbox::new();
    let config = sb.write(
        "slurm.toml",
        r#"[scheduler]
base_dir = "experiments"
backend = "slurm"
max_concurrent = 8
partition = "gpu"
account = "proj-1"
time = "2h"
cpus_per_task = 4
mem = "16G"
extra_sbatch_args = ["--qos=normal"]

[[experiments]]
name = "defaults"
command = "python train.py"
gpus = 2

[[experiments]]
name = "overrides"
command = "python eval.py"
partition = "cpu"
time = "1-00:00:00"
cpus_per_task = 1
extra_sbatch_args = []
"#,
    );
    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&config).arg("--dry-run");
    let out = run(cmd);
    out.expect_code(0);
    let base = sb.base();
    let dir = |name: &str| format!("{}/{name}_<YYYY-MM-DD__HH-MM-SS>", base.display());
    let expected = [
        format!(
            "sbatch --parsable --no-requeue --job-name=defaults '--output={}/logs/run_0001.log' \
             --open-mode=append --export=ALL --partition=gpu --account=proj-1 --time=02:00:00 \
             --cpus-per-task=4 --mem=16G --gres=gpu:2 --qos=normal \
             '--wrap=exec {EXP} __job '\\''{}'\\'' run_0001'",
            dir("defaults"),
            dir("defaults")
        ),
        format!(
            "sbatch --parsable --no-requeue --job-name=overrides '--output={}/logs/run_0001.log' \
             --open-mode=append --export=ALL --partition=cpu --account=proj-1 \
             --time=1-00:00:00 --cpus-per-task=1 --mem=16G \
             '--wrap=exec {EXP} __job '\\''{}'\\'' run_0001'",
            dir("overrides"),
            dir("overrides")
        ),
    ];
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("sbatch:"))
        .map(str::trim)
        .collect();
    assert_eq!(lines, expected, "dry run:\n{}", out.stdout);
    assert!(out.stdout.contains("on Slurm (sbatch)"), "{}", out.stdout);
    assert!(out.stdout.contains("2, picked by Slurm"), "{}", out.stdout);
    assert!(!base.exists(), "a dry run creates nothing");
}

#[test]
fn unknown_backend_is_refused() {
    assert_rejected(
        "[scheduler]\nbackend = \"slurmm\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n",
        2,
        11,
        &["backend = \"slurmm\"", "\"local\"", "\"slurm\""],
    );
}

#[test]
fn misspelled_slurm_key_is_named_with_a_suggestion() {
    assert_rejected(
        format!("{HEAD}partiton = \"gpu\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n"),
        4,
        1,
        &["unknown field `partiton`", "did you mean `partition`?"],
    );
    assert_rejected(
        format!("{HEAD}\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\ncpus_per_tsk = 2\n"),
        8,
        1,
        &[
            "unknown field `cpus_per_tsk`",
            "did you mean `cpus_per_task`?",
        ],
    );
}

#[test]
fn wrong_types_are_named() {
    assert_rejected(
        format!(
            "{HEAD}cpus_per_task = \"4\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n"
        ),
        4,
        17,
        &["invalid type: string \"4\", expected u32"],
    );
    assert_rejected(
        format!(
            "{HEAD}\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\nextra_sbatch_args = \"--qos=x\"\n"
        ),
        8,
        21,
        &["invalid type: string \"--qos=x\", expected a sequence"],
    );
}

#[test]
fn slurm_keys_need_the_slurm_backend() {
    assert_rejected(
        "[scheduler]\nbase_dir = \"experiments\"\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\npartition = \"gpu\"\n",
        7,
        13,
        &["`partition`, a Slurm setting", "backend = \"slurm\""],
    );
}

#[test]
fn local_gpu_settings_are_refused_with_slurm() {
    assert_rejected(
        format!("{HEAD}\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\ngpu_ids = [0, 1]\n"),
        8,
        11,
        &["gpu_ids", "Slurm picks them", "gpus = 2"],
    );
    assert_rejected(
        format!("{HEAD}gpus = [0, 1]\n\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n"),
        4,
        8,
        &["[scheduler] gpus", "Slurm assigns the GPUs"],
    );
}

#[test]
fn bad_slurm_values_are_refused() {
    let job = "\n[[experiments]]\nname = \"a\"\ncommand = \"true\"\n";
    assert_rejected(
        format!("{HEAD}time = \"soon\"\n{job}"),
        4,
        8,
        &["time = \"soon\"", "\"2:00:00\""],
    );
    assert_rejected(
        format!("{HEAD}mem = \"16 GB\"\n{job}"),
        4,
        7,
        &["mem = \"16 GB\"", "\"16G\""],
    );
    assert_rejected(
        format!("{HEAD}cpus_per_task = 0\n{job}"),
        4,
        17,
        &["cpus_per_task = 0"],
    );
    assert_rejected(
        format!("{HEAD}partition = \"\"\n{job}"),
        4,
        13,
        &["partition = \"\""],
    );
    assert_rejected(
        format!("{HEAD}extra_sbatch_args = [\"--qos=x\", \"--output=/tmp/x\"]\n{job}"),
        4,
        21,
        &["\"--output=/tmp/x\"", "logs/<run_id>.log"],
    );
    assert_rejected(
        format!("{HEAD}{job}extra_sbatch_args = [\"-o\", \"x.log\"]\n"),
        8,
        21,
        &["\"-o\"", "--output"],
    );
}

/// A sweep on Slurm plans one `sbatch` per point, named after the point, with its params.
#[test]
fn dry_run_plans_one_sbatch_per_sweep_point() {
    let sb = Sandbox::new();
    let config = sb.write(
        "slurm.toml",
        format!(
            "{HEAD}partition = \"gpu\"\n\n[[experiments]]\nname = \"sw\"\ngpus = 1\n\
             command = \"train --lr {{lr}} --depth {{depth}}\"\n[experiments.sweep]\n\
             grid = {{ lr = [0.1, 0.01] }}\nzip = {{ depth = [18, 50] }}\n"
        ),
    );
    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&config).arg("--dry-run");
    let out = run(cmd);
    out.expect_code(0);
    let sbatch: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("sbatch:"))
        .collect();
    assert_eq!(sbatch.len(), 4, "{}", out.stdout);
    for (line, name) in sbatch.iter().zip([
        "sw_lr=0.1_depth=18",
        "sw_lr=0.1_depth=50",
        "sw_lr=0.01_depth=18",
        "sw_lr=0.01_depth=50",
    ]) {
        assert!(line.contains(&format!("--job-name={name} ")), "{line}");
        assert!(
            line.contains("--partition=gpu") && line.contains("--gres=gpu:1"),
            "{line}"
        );
    }
    assert!(
        out.stdout
            .contains("command:   train --lr 0.01 --depth 50\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(r#"env:       EXPMAN_PARAMS='{"depth":50,"lr":0.01}'"#),
        "{}",
        out.stdout
    );
}
