//! `EXP demo`: a few short toy experiments scheduled into a directory while the UI serves it,
//! and the toy job itself (`EXP __toy`), so the demo needs nothing but the `EXP` binary.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use expman::scheduler::{SchedulerConfig, shell_quote};
use expman::{Experiment, Result};

/// The demo's scheduler config for `base_dir`, whose jobs run `exp_bin __toy ...`.
pub fn config(base_dir: &Path, exp_bin: &Path) -> Result<SchedulerConfig> {
    // Inside the TOML basic strings below: the single quotes of shell quoting need no escaping.
    let exp = shell_quote(&exp_bin.display().to_string());
    let base = base_dir.display().to_string();
    let text = format!(
        r#"[scheduler]
base_dir = {base:?}
max_concurrent = 2

[[experiments]]
name = "baseline"
command = "{exp} __toy --seconds 12 --lr 0.1"
priority = 10
tags = ["demo", "baseline"]
description = "toy training run, writes metrics and a growing progress.csv"

[[experiments]]
name = "lr_sweep_small"
command = "{exp} __toy --seconds 8 --lr 0.01"
priority = 5
tags = ["demo", "sweep"]
description = "smaller learning rate"

[[experiments]]
name = "broken_config"
command = "{exp} __toy --seconds 3 --lr 0.5 --fail"
priority = 5
tags = ["demo"]
description = "fails on purpose: rerun it from the Error column"

[[experiments]]
name = "long_run"
command = "{exp} __toy --seconds 30 --lr 0.05"
tags = ["demo", "long"]
description = "a longer run to watch in the monitor"
"#
    );
    SchedulerConfig::parse(&text, &base_dir.join("demo.toml"))
}

/// The toy job: "trains" for `seconds`, logging a row per step to the run's table and to
/// `progress.csv`, printing progress; fails at the end with `fail`.
pub fn toy_job(seconds: f64, lr: f64, fail: bool) -> Result<i32> {
    let mut exp = Experiment::builder("toy", "experiments")
        .command("EXP __toy")
        .create()?;
    let start = Instant::now();
    let steps = (seconds * 4.0).max(1.0) as u64;
    let mut out = std::io::stdout();
    for step in 1..=steps {
        std::thread::sleep(Duration::from_secs_f64(seconds / steps as f64));
        let t = step as f64 / steps as f64;
        let loss = 2.3 * (-(lr.sqrt() * 6.0) * t).exp() + 0.05 * (step as f64 * 1.7).sin().abs();
        let acc = 1.0 - loss / 2.5;
        exp.set("step", step as i64)?;
        exp.upd_row([("loss", loss), ("accuracy", acc), ("lr", lr)])?;
        exp.save_row()?;
        let progress = exp.table("progress")?;
        progress.set("step", step as i64)?;
        progress.upd_row([
            ("elapsed_s", start.elapsed().as_secs_f64()),
            ("fraction", t),
        ])?;
        progress.save_row()?;
        if step % 4 == 0 || step == steps {
            let _ = writeln!(
                out,
                "step {step}/{steps} loss={loss:.4} accuracy={acc:.4} elapsed={:.1}s",
                start.elapsed().as_secs_f64()
            );
            let _ = out.flush();
        }
    }
    if fail {
        eprintln!(
            "Traceback (most recent call last):\n  File \"train.py\", line 42, in <module>\nValueError: learning rate 0.5 diverged (loss is NaN)"
        );
        return Ok(1);
    }
    Ok(0)
}
