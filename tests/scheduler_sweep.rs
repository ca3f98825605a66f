//! Parameters and sweeps in the scheduler's TOML (issue 13): `params = {...}`, `{name}` in the
//! command, `EXPMAN_PARAMS` in the job's environment, and `[experiments.sweep]` (grid, zip,
//! random) expanded into one experiment per point, through the real `EXP run` and real jobs
//! that write what they were given into files.

#![cfg(feature = "ui")]

mod scheduler_support;

use std::path::Path;

use scheduler_support::*;
use serde_json::{Value, json};

const HEAD: &str = "[scheduler]\nbase_dir = \"experiments\"\nmax_concurrent = 4\n";

/// `EXP run --dry-run` on `config`: the planned experiments as (name, command), in order.
fn plan(sb: &Sandbox, config: &str) -> Vec<(String, String)> {
    let path = sb.write("plan.toml", config);
    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&path).arg("--dry-run");
    let out = run(cmd);
    out.expect_code(0);
    assert!(!sb.base().exists(), "a dry run created files");
    let mut jobs = Vec::new();
    let mut name = None;
    for line in out.stdout.lines() {
        if let Some((n, rest)) = line.trim_start().split_once(". ")
            && n.parse::<u32>().is_ok()
        {
            name = Some(
                rest.rsplit_once(" (priority")
                    .expect("a job line")
                    .0
                    .to_string(),
            );
        } else if let Some(command) = line.trim_start().strip_prefix("command:   ") {
            jobs.push((name.take().expect("a name first"), command.to_string()));
        }
    }
    jobs
}

fn names(jobs: &[(String, String)]) -> Vec<&str> {
    jobs.iter().map(|(n, _)| n.as_str()).collect()
}

fn config_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

/// A grid is the Cartesian product, its first key varying slowest, in the file's key order;
/// each point is named after its values and its command has them substituted.
#[test]
fn grid_is_the_product_in_file_order() {
    let sb = Sandbox::new();
    let jobs = plan(
        &sb,
        &format!(
            "{HEAD}\n[[experiments]]\nname = \"resnet\"\ncommand = \"train --lr {{lr}} --depth {{depth}}\"\n\
             [experiments.sweep]\ngrid = {{ lr = [0.1, 0.01, 0.001], depth = [18, 50] }}\n"
        ),
    );
    assert_eq!(
        names(&jobs),
        [
            "resnet_lr=0.1_depth=18",
            "resnet_lr=0.1_depth=50",
            "resnet_lr=0.01_depth=18",
            "resnet_lr=0.01_depth=50",
            "resnet_lr=0.001_depth=18",
            "resnet_lr=0.001_depth=50",
        ]
    );
    assert_eq!(jobs[3].1, "train --lr 0.01 --depth 50");
}

/// A zip pairs its lists element-wise; nested names (TOML dotted keys) are flattened with dots
/// as everywhere else.
#[test]
fn zip_pairs_element_wise_and_nested_names_use_dots() {
    let sb = Sandbox::new();
    let jobs = plan(
        &sb,
        &format!(
            "{HEAD}\n[[experiments]]\nname = \"z\"\ncommand = \"t {{optimizer.lr}} {{bs}}\"\n\
             [experiments.sweep]\nzip = {{ optimizer.lr = [0.1, 0.2, 0.4], bs = [32, 64, 128] }}\n"
        ),
    );
    assert_eq!(
        jobs,
        [
            (
                "z_optimizer.lr=0.1_bs=32".to_string(),
                "t 0.1 32".to_string()
            ),
            (
                "z_optimizer.lr=0.2_bs=64".to_string(),
                "t 0.2 64".to_string()
            ),
            (
                "z_optimizer.lr=0.4_bs=128".to_string(),
                "t 0.4 128".to_string()
            ),
        ]
    );
}

const RANDOM: &str = "[[experiments]]\nname = \"r\"\ncommand = \"t {lr} {dropout} {depth} {layers}\"\n\
    [experiments.sweep]\nrandom = { n = 4, seed = 1, lr = { log_uniform = [1e-4, 1e-1] }, \
    dropout = { uniform = [0.0, 0.5] }, depth = [18, 34, 50], layers = { int_uniform = [2, 8] } }\n";

/// Random points are the same every time and on every machine: pinned here for seed 1 (a
/// change of these values breaks every user's reproduction of a sweep). Raising `n` keeps the
/// earlier points, and another seed gives other points.
#[test]
fn random_points_are_pinned_for_a_seed() {
    let sb = Sandbox::new();
    let jobs = plan(&sb, &format!("{HEAD}\n{RANDOM}"));
    let expected = [
        "r_lr=0.00330013_dropout=0.295154_depth=50_layers=4",
        "r_lr=0.0152164_dropout=0.19113_depth=34_layers=5",
        "r_lr=0.00364599_dropout=0.409584_depth=18_layers=6",
        "r_lr=0.0750127_dropout=0.236856_depth=34_layers=4",
    ];
    assert_eq!(names(&jobs), expected);
    assert_eq!(jobs[2].1, "t 0.00364599 0.409584 18 6");
    assert_eq!(
        plan(&sb, &format!("{HEAD}\n{RANDOM}")),
        jobs,
        "same points again"
    );
    let more = plan(
        &sb,
        &format!("{HEAD}\n{}", RANDOM.replace("n = 4", "n = 6")),
    );
    assert_eq!(
        names(&more)[..4],
        expected,
        "a larger n keeps the first points"
    );
    let other = plan(
        &sb,
        &format!("{HEAD}\n{}", RANDOM.replace("seed = 1", "seed = 2")),
    );
    assert_ne!(names(&other), expected);
    for (name, _) in jobs.iter().chain(&more).chain(&other) {
        let lr: f64 = name[5..].split('_').next().unwrap().parse().unwrap();
        assert!((1e-4..=1e-1).contains(&lr), "{name}");
    }
}

/// grid × zip × random, with fixed params beside them: every combination, the grid slowest;
/// each point's params (fixed and swept) are what the plan shows and what `EXPMAN_PARAMS` holds.
#[test]
fn grid_zip_and_random_combine_with_fixed_params() {
    let sb = Sandbox::new();
    let path = sb.write(
        "c.toml",
        format!(
            "{HEAD}\n[[experiments]]\nname = \"c\"\ncommand = \"t {{lr}} {{bs}} {{wd}} {{model}}\"\n\
             params = {{ model = \"resnet\" }}\npriority = 3\nretries = 2\ntags = [\"sweep\"]\n\
             [experiments.sweep]\ngrid = {{ lr = [0.1, 0.01] }}\nzip = {{ bs = [32, 64] }}\n\
             random = {{ n = 2, seed = 9, wd = {{ uniform = [0.0, 0.1] }} }}\n"
        ),
    );
    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&path).arg("--dry-run");
    let out = run(cmd);
    out.expect_code(0);
    let jobs = plan(&sb, &std::fs::read_to_string(&path).unwrap());
    assert_eq!(jobs.len(), 8, "{}", out.stdout);
    let prefixes: Vec<String> = jobs
        .iter()
        .map(|(n, _)| n.rsplit_once("_wd=").unwrap().0.to_string())
        .collect();
    assert_eq!(
        prefixes,
        [
            "c_lr=0.1_bs=32",
            "c_lr=0.1_bs=32",
            "c_lr=0.1_bs=64",
            "c_lr=0.1_bs=64",
            "c_lr=0.01_bs=32",
            "c_lr=0.01_bs=32",
            "c_lr=0.01_bs=64",
            "c_lr=0.01_bs=64",
        ]
    );
    // The two random draws repeat under every grid × zip combination.
    let wd = |i: usize| jobs[i].0.rsplit_once("_wd=").unwrap().1.to_string();
    assert_ne!(wd(0), wd(1));
    assert_eq!((wd(0), wd(1)), (wd(6), wd(7)));
    assert!(jobs[0].1.starts_with("t 0.1 32 ") && jobs[0].1.ends_with(" resnet"));
    assert!(
        out.stdout
            .contains("params:    bs=32 lr=0.1 model=resnet wd=")
    );
    assert!(
        out.stdout
            .contains(r#"env:       EXPMAN_PARAMS='{"bs":32,"lr":0.1,"model":"resnet","wd":"#)
    );
    assert!(out.stdout.contains("(priority 3)"));
}

/// The job gets its params: `{name}` substituted as one shell word however hostile the value
/// (spaces, quotes, `;`, `$(...)`, braces), `EXPMAN_PARAMS` as JSON, `config.json` `params`;
/// an `EXPMAN_PARAMS` in the scheduler's own environment never reaches a job.
#[test]
fn jobs_get_their_params_as_words_and_as_json() {
    let sb = Sandbox::new();
    sb.write(
        "seen.sh",
        "printf '%s\\n' \"$#\" \"$1\" \"$2\" > \"$EXPMAN_EXPERIMENT_DIR/args\"\n\
         printf '%s' \"${EXPMAN_PARAMS-unset}\" > \"$EXPMAN_EXPERIMENT_DIR/params.json\"\n",
    );
    let hostile = "a b;echo INJECTED 'q' \"dq\" $(echo SUB) `echo BT` {lr} \\ end";
    let config = format!(
        "{HEAD}\n[[experiments]]\nname = \"p\"\ncommand = \"sh {script} {{word}} {{lr}}; echo after\"\n\
         params = {{ word = {word} }}\n[experiments.sweep]\ngrid = {{ lr = [0.5, 1e-5] }}\n\n\
         [[experiments]]\nname = \"plain\"\ncommand = \"sh {script} x\"\n",
        script = sb.path().join("seen.sh").display(),
        word = toml_str(hostile),
    );
    let path = sb.write("p.toml", &config);
    let out =
        Running::scheduler_with_env(&path, &[("EXPMAN_PARAMS", r#"{"leaked": 1}"#)]).wait(LIMIT);
    out.expect_code(0);
    let dirs = experiments(&sb.base());
    assert_eq!(
        dirs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["p_lr=0.5", "p_lr=1e-5", "plain"]
    );
    for (name, lr, lr_json) in [
        ("p_lr=0.5", "0.5", json!(0.5)),
        ("p_lr=1e-5", "1e-5", json!(1e-5)),
    ] {
        let dir = &dirs[name];
        let args = std::fs::read_to_string(dir.join("args")).unwrap();
        assert_eq!(
            args,
            format!("2\n{hostile}\n{lr}\n"),
            "{name}: one word each"
        );
        let log = std::fs::read_to_string(dir.join("logs/run_0001.log")).unwrap();
        assert!(
            log.lines().any(|l| l == "after")
                && !log
                    .lines()
                    .any(|l| ["INJECTED", "SUB", "BT"].iter().any(|w| l.starts_with(w))),
            "{log}"
        );
        let expected = json!({"lr": lr_json, "word": hostile});
        let seen: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).unwrap())
                .unwrap();
        assert_eq!(seen, expected, "{name}: EXPMAN_PARAMS");
        assert_eq!(config_json(dir)["params"], expected, "{name}: config.json");
    }
    let plain = &dirs["plain"];
    assert_eq!(
        std::fs::read_to_string(plain.join("params.json")).unwrap(),
        "unset",
        "the scheduler's own EXPMAN_PARAMS does not leak into a job"
    );
    assert_eq!(config_json(plain)["params"], json!({}));
}

/// A retry repeats the run with the same params, and `resume = true` gives the next run the
/// file's new params (in `config.json`, `EXPMAN_PARAMS` and the run's record in `status.json`).
#[test]
fn params_follow_retries_and_resume() {
    let sb = Sandbox::new();
    sb.write(
        "once.sh",
        "n=$(cat \"$EXPMAN_EXPERIMENT_DIR/seen\" 2>/dev/null | wc -l)\n\
         echo \"$EXPMAN_RUN_ID $1 $EXPMAN_PARAMS\" >> \"$EXPMAN_EXPERIMENT_DIR/seen\"\n\
         [ \"$n\" -gt 0 ]\n",
    );
    let config = |lr: &str| {
        format!(
            "{HEAD}\n[[experiments]]\nname = \"again\"\nresume = true\nretries = 1\n\
             command = \"sh {} {{lr}}\"\nparams = {{ lr = {lr} }}\n",
            sb.path().join("once.sh").display()
        )
    };
    let path = sb.write("r.toml", config("0.1"));
    run_scheduler(&path).expect_code(0);
    let dir = experiment(&sb.base(), "again");
    sb.write("r.toml", config("0.2"));
    run_scheduler(&path).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(dir.join("seen")).unwrap(),
        "run_0001 0.1 {\"lr\":0.1}\nrun_0002 0.1 {\"lr\":0.1}\nrun_0003 0.2 {\"lr\":0.2}\n",
        "the retry (run_0002) repeats run_0001; the resumed run_0003 takes the new value"
    );
    assert_eq!(config_json(&dir)["params"], json!({"lr": 0.2}));
    // Each run keeps what it ran with.
    let status = status(&dir);
    assert_eq!(status["params"], json!({"lr": 0.2}), "{status}");
    let history: Vec<(&str, &Value)> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["run_id"].as_str().unwrap(), &h["params"]))
        .collect();
    assert_eq!(
        history,
        [
            ("run_0001", &json!({"lr": 0.1})),
            ("run_0002", &json!({"lr": 0.1}))
        ]
    );
}

/// Names stay valid experiment names: characters a name cannot hold are replaced and the name
/// gets a hash suffix, long names are cut to 200 bytes with one, and no two points share one.
#[test]
fn point_names_are_safe_short_and_distinct() {
    let sb = Sandbox::new();
    let long = "x".repeat(300);
    let jobs = plan(
        &sb,
        &format!(
            "{HEAD}\n[[experiments]]\nname = \"n\"\ncommand = \"t {{v}}\"\n[experiments.sweep]\n\
             grid = {{ v = [\"a/b\", \"a_b\", \"../up\", \"{long}\", \"{long}y\"] }}\n"
        ),
    );
    let names = names(&jobs);
    assert_eq!(names.len(), 5);
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), 5, "{names:?}");
    for name in &names {
        assert!(name.len() <= 200, "{name}");
        assert!(!name.contains('/') && !name.contains(".."), "{name}");
    }
    assert!(names[0].starts_with("n_v=a_b_h"), "{names:?}");
    assert!(names[2].starts_with("n_v=.__up_h"), "{names:?}");
    assert_eq!(jobs[0].1, "t a/b", "the value itself is untouched");
}

/// Commands of entries without params run exactly as written, braces and all.
#[test]
fn commands_without_params_are_not_templates() {
    let sb = Sandbox::new();
    let command = r#"awk '{print}' f; echo {lr} ${HOME} '{"a": {"b": 1}}' {{x}}"#;
    let jobs = plan(
        &sb,
        &format!(
            "{HEAD}\n[[experiments]]\nname = \"raw\"\ncommand = {}\n",
            toml_str(command)
        ),
    );
    assert_eq!(jobs, [("raw".to_string(), command.to_string())]);
    // With params, only {name} and {{name}} are special.
    let jobs = plan(
        &sb,
        &format!(
            "{HEAD}\n[[experiments]]\nname = \"t\"\nparams = {{ lr = 1 }}\ncommand = {}\n",
            toml_str(r#"echo {lr} {{lr}} ${HOME} ${lr} '{"a": {"b": 1}}' {} {a,b}"#)
        ),
    );
    assert_eq!(
        jobs[0].1,
        r#"echo 1 {lr} ${HOME} ${lr} '{"a": {"b": 1}}' {} {a,b}"#
    );
}

/// Every bad params or sweep spec: one error at the value that is wrong, saying what to write.
#[test]
fn bad_params_and_sweeps_point_at_the_mistake() {
    // Line 5 is the command, line 6 the first extra line; columns count from 1.
    let entry = |command: &str, extra: &str| {
        format!(
            "[scheduler]\nbase_dir = \"experiments\"\n[[experiments]]\nname = \"a\"\n\
             command = \"{command}\"\n{extra}"
        )
    };
    // (command, extra lines, line, column, needles)
    let cases: &[(&str, &str, usize, usize, &[&str])] = &[
        (
            "run {lrr}",
            "params = { lr = 1 }\n",
            5,
            16,
            &["{lrr}", "did you mean {lr}?", "{{lrr}}"],
        ),
        (
            "run {lr}",
            "params = { lr = [1, 2] }\n",
            6,
            17,
            &["lr is a list", "sweep] grid"],
        ),
        (
            "run",
            "params = { day = 2024-01-01 }\n",
            6,
            18,
            &["date/time", "\"2024-01-01\""],
        ),
        ("run", "params = { lr = nan }\n", 6, 17, &["NaN", "finite"]),
        (
            "run",
            "params = { \"a.b\" = 1, a = { b = 2 } }\n",
            6,
            33,
            &["names one parameter twice"],
        ),
        ("run", "params = 3\n", 6, 10, &["must be a table"]),
        (
            "run",
            "env = { EXPMAN_PARAMS = \"{}\" }\n",
            6,
            9,
            &["EXPMAN_PARAMS", "params = {"],
        ),
        (
            "run",
            "[experiments.sweep]\n",
            6,
            1,
            &["empty [experiments.sweep]"],
        ),
        (
            "run",
            "[experiments.sweep]\ngird = { lr = [1] }\n",
            7,
            1,
            &["unknown field `gird`", "did you mean `grid`?"],
        ),
        (
            "run",
            "[experiments.sweep]\ngrid = { lr = [] }\n",
            7,
            15,
            &["lr = [] has no values"],
        ),
        (
            "run",
            "[experiments.sweep]\ngrid = { lr = 0.1 }\n",
            7,
            15,
            &["takes a list of values"],
        ),
        (
            "run",
            "[experiments.sweep]\ngrid = {}\n",
            7,
            8,
            &["grid is empty"],
        ),
        (
            "run",
            "[experiments.sweep]\ngrid = { lr = [1, [2]] }\n",
            7,
            19,
            &["an element of lr is a list"],
        ),
        (
            "run",
            "[experiments.sweep]\ngrid = { lr = [1, true, \"x\", 2024-01-01] }\n",
            7,
            30,
            &["date/time"],
        ),
        (
            "run",
            "[experiments.sweep]\nzip = { lr = [1, 2], depth = [1, 2, 3] }\n",
            7,
            30,
            &["lr has 2 values and depth has 3"],
        ),
        (
            "run",
            "params = { lr = 1 }\n[experiments.sweep]\ngrid = { lr = [1, 2] }\n",
            8,
            15,
            &["\"lr\"", "also set in params"],
        ),
        (
            "run",
            "[experiments.sweep]\ngrid = { lr = [1] }\nrandom = { n = 2, lr = [3] }\n",
            8,
            24,
            &["also set earlier in the sweep"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { lr = [1] }\n",
            7,
            10,
            &["needs n = "],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 0, lr = [1] }\n",
            7,
            16,
            &["n = 0", "at least 1"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = \"4\", lr = [1] }\n",
            7,
            16,
            &["n = \"4\""],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, seed = -1, lr = [1] }\n",
            7,
            26,
            &["seed = -1"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2 }\n",
            7,
            10,
            &["no parameter to draw"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = [] }\n",
            7,
            24,
            &["nothing to choose from"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = 0.5 }\n",
            7,
            24,
            &["lr is a float", "log_uniform"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = { log_uniform = [0, 1] } }\n",
            7,
            40,
            &["positive bounds"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = { uniform = [1, 0] } }\n",
            7,
            36,
            &["low < high"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = { uniform = [0, 1, 2] } }\n",
            7,
            36,
            &["[low, high], not a list of 3"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = { uniform = [0, \"1\"] } }\n",
            7,
            36,
            &["two finite numbers"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, k = { int_uniform = [0.5, 1] } }\n",
            7,
            39,
            &["two integers"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, k = { int_uniform = [3, 1] } }\n",
            7,
            39,
            &["low 3 above high 1"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = { unifrom = [0, 1] } }\n",
            7,
            36,
            &["unknown distribution `unifrom`", "did you mean `uniform`?"],
        ),
        (
            "run",
            "[experiments.sweep]\nrandom = { n = 2, lr = { uniform = [0, 1], x = 2 } }\n",
            7,
            24,
            &["exactly one of"],
        ),
    ];
    for (command, extra, line, column, needles) in cases {
        assert_rejected(entry(command, extra), *line, *column, needles);
    }
}

/// A sweep of absurd size (a list too many in a grid) is refused before anything is expanded.
#[test]
fn huge_sweeps_are_refused_before_expanding() {
    let ten = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
    assert_rejected(
        format!(
            "{HEAD}[[experiments]]\nname = \"a\"\ncommand = \"true\"\n[experiments.sweep]\n\
             grid = {{ a = {ten}, b = {ten}, c = {ten} }}\nzip = {{ d = [1, 2] }}\n\
             random = {{ n = 1000000000000000000, x = [1] }}\n"
        ),
        7,
        1,
        &[
            "over 2^64 experiments (grid 1000 × zip 2 × random 1000000000000000000)",
            "100000",
        ],
    );
    assert_rejected(
        format!(
            "{HEAD}[[experiments]]\nname = \"a\"\ncommand = \"true\"\n[experiments.sweep]\n\
             grid = {{ a = {ten}, b = {ten}, c = {ten} }}\nrandom = {{ n = 101, x = [1] }}\n"
        ),
        7,
        1,
        &["makes 101000 experiments (grid 1000 × random 101)"],
    );
    // Entries within the limit each, but not together: they were all planned (1.8 GB for five
    // of 100,000).
    let entry = |name: &str| {
        format!(
            "[[experiments]]\nname = \"{name}\"\ncommand = \"true\"\n[experiments.sweep]\n\
             grid = {{ a = {ten}, b = {ten}, c = {ten}, d = {ten}, e = [1, 2, 3, 4, 5, 6] }}\n"
        )
    };
    assert_rejected(
        format!("{HEAD}{}{}", entry("a"), entry("b")),
        10,
        8,
        &[
            "with this entry the config makes 120000 experiments",
            "100000",
        ],
    );
}

/// A point's name that another entry already has is refused, naming the first.
#[test]
fn point_names_clashing_with_another_entry_are_refused() {
    assert_rejected(
        format!(
            "{HEAD}[[experiments]]\nname = \"a_lr=1\"\ncommand = \"true\"\n\n[[experiments]]\n\
             name = \"a\"\ncommand = \"true\"\n[experiments.sweep]\ngrid = {{ lr = [1, 2] }}\n"
        ),
        9,
        8,
        &["a point of this sweep is named \"a_lr=1\"", "line 5"],
    );
}

/// `EXP run --dry-run | head -1` on a large sweep: the reader closes the pipe after one line and
/// `EXP` must exit without panicking on EPIPE (it did, through `print!`).
#[test]
fn dry_run_into_a_closed_pipe_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let sb = Sandbox::new();
    let path = sb.write(
        "plan.toml",
        format!(
            "{HEAD}[[experiments]]\nname = \"a\"\ncommand = \"train {{x}}\"\n\
             [experiments.sweep]\ngrid = {{ x = [{}] }}\n",
            (0..20_000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let mut cmd = exp();
    cmd.arg("run").arg("--config").arg(&path).arg("--dry-run");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("EXP starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    // The reader is dropped here: the rest of the plan meets a closed pipe.
    let out = child.wait_with_output().expect("EXP ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!first.is_empty());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
