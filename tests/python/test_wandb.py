"""``import expman.wandb as wandb``: W&B's own quick-start scripts run with only the import
changed, W&B's step rules for ``log``, config and summary as parameters, and every unsupported
call failing loudly. Scripts run in subprocesses (module state, exit hooks); the finer rules run
in this process against real files."""

import json
from pathlib import Path

import pytest

import expman.wandb as wandb
from conftest import clean_env, experiment_dirs, read_csv_rows, read_json, run_script


def _rows(path):
    header, rows = read_csv_rows(path)
    return [dict(zip(header, r)) for r in rows]


@pytest.fixture(autouse=True)
def _no_active_run():
    yield
    if wandb.run is not None:  # a failed test must not leave its run to the next one
        wandb.finish()


# The "complete example" of W&B's quickstart (docs.wandb.ai/quickstart), unchanged except for the
# import line.
QUICKSTART = '''
import random

import expman.wandb as wandb

wandb.login()

# Project that the run is recorded to
project = "my-awesome-project"

# Dictionary with hyperparameters
config = {
    'epochs' : 10,
    'lr' : 0.01
}

with wandb.init(project=project, config=config) as run:
    offset = random.random() / 5
    print(f"lr: {config['lr']}")

    # Simulate a training run
    for epoch in range(2, config['epochs']):
        acc = 1 - 2**-config['epochs'] - random.random() / config['epochs'] - offset
        loss = 2**-config['epochs'] + random.random() / config['epochs'] + offset
        print(f"epoch={config['epochs']}, accuracy={acc}, loss={loss}")
        run.log({"accuracy": acc, "loss": loss})
'''

# The earlier quickstart's script (module-level wandb.log and wandb.finish), likewise unchanged
# except for the import line.
QUICKSTART_CLASSIC = '''
import expman.wandb as wandb
import random

# start a new wandb run to track this script
wandb.init(
    # set the wandb project where this run will be logged
    project="my-awesome-project",

    # track hyperparameters and run metadata
    config={
    "learning_rate": 0.02,
    "architecture": "CNN",
    "dataset": "CIFAR-100",
    "epochs": 10,
    }
)

# simulate training
epochs = 10
offset = random.random() / 5
for epoch in range(2, epochs):
    acc = 1 - 2 ** -epoch - random.random() / epoch - offset
    loss = 2 ** -epoch + random.random() / epoch + offset

    # log metrics to wandb
    wandb.log({"acc": acc, "loss": loss})

# [optional] finish the wandb run, necessary in notebooks
wandb.finish()
'''


@pytest.mark.parametrize("script,params,fields", [
    (QUICKSTART, {"epochs": 10, "lr": 0.01}, ["accuracy", "loss"]),
    (QUICKSTART_CLASSIC, {"learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100",
                          "epochs": 10}, ["acc", "loss"]),
], ids=["quickstart", "quickstart-classic"])
def test_wandb_quickstart_runs_unchanged(tmp_path, script, params, fields):
    run_script(script, tmp_path)
    (d,) = experiment_dirs(tmp_path / "my-awesome-project")
    cfg = read_json(d / "config.json")
    assert cfg["name"] == "my-awesome-project"
    header, _ = read_csv_rows(d / "metrics" / "run_0001.csv")
    assert header == ["timestamp", "run_id", "_step", *fields]
    rows = _rows(d / "metrics" / "run_0001.csv")
    assert [int(r["_step"]) for r in rows] == list(range(8))
    # The config as parameters, and the summary (each metric's last value) beside them.
    # (approx: the library's JSON parser may be 1 ulp off; see the report on serde_json's
    # float_roundtrip feature)
    for key in fields:
        assert cfg["params"][f"summary.{key}"] == pytest.approx(float(rows[-1][key]), rel=1e-15)
    assert {k: v for k, v in cfg["params"].items() if not k.startswith("summary.")} == params
    assert read_json(d / "status.json")["status"] == "Finished"
    assert "lr:" in (d / "logs" / "run_0001.log").read_text() or "acc" in fields


def test_log_step_rules(tmp_path):
    run = wandb.init(project="p", name="steps", dir=tmp_path)
    assert wandb.run is run and run.id == "run_0001" and run.name == "steps"
    assert Path(run.dir).parent == tmp_path / "p"
    wandb.log({"loss": 1.0})                          # _step 0
    wandb.log({"loss": 0.9}, commit=False)            # pending at _step 1 ...
    wandb.log({"acc": 0.5})                           # ... merged, committed
    wandb.log({"train": {"loss": 0.8, "lr": 0.1}})    # _step 2, nested names dotted
    wandb.log({"loss": 0.7}, step=5)                  # jumps to 5, pending
    wandb.log({"acc": 0.6}, step=5)                   # same step: merged
    with pytest.warns(UserWarning, match="less than the current step 5"):
        wandb.log({"loss": 9.9}, step=3)              # ignored, as W&B does
    wandb.log({"loss": 0.6})                          # commits 5 with this merged, next is 6
    wandb.log({"loss": 0.5}, step=7, commit=True)     # committed at once
    assert run.step == 8
    wandb.log({"loss": 0.4}, commit=False)            # left pending: finish writes it
    wandb.finish()
    assert wandb.run is None
    rows = _rows(Path(run.dir) / "metrics" / "run_0001.csv")
    got = [(r["_step"], r["loss"], r["acc"], r["train.loss"]) for r in rows]
    assert got == [("0", "1.0", "", ""), ("1", "0.9", "0.5", ""), ("2", "", "", "0.8"),
                   ("5", "0.6", "0.6", ""), ("7", "0.5", "", ""), ("8", "0.4", "", "")]


def test_config_and_summary_are_parameters(tmp_path):
    run = wandb.init(project="p", dir=tmp_path, config={"lr": 0.1, "model": {"depth": 3}},
                     tags=["a"], notes="first try", group="g1", job_type="train")
    assert wandb.config.lr == 0.1 and wandb.config["model"] == {"depth": 3}
    wandb.config.batch = 32
    wandb.config["dropout"] = 0.5
    wandb.config.update({"layers": [64, 32], "act": None})
    assert run.config.as_dict() == {"lr": 0.1, "model": {"depth": 3}, "batch": 32,
                                    "dropout": 0.5, "layers": [64, 32], "act": None}
    assert "batch" in wandb.config and wandb.config.get("missing", 7) == 7
    with pytest.raises(AttributeError, match="no key 'missing'"):
        wandb.config.missing
    wandb.define_metric("loss", summary="min")
    wandb.define_metric("val/*", summary="max,mean")
    for loss, acc in ((0.5, 0.1), (0.2, 0.3), (0.4, 0.2)):
        wandb.log({"loss": loss, "val/acc": acc, "epoch_time": 1.5})
    assert wandb.summary["loss.min"] == 0.2 and wandb.summary["epoch_time"] == 1.5
    wandb.summary["best_epoch"] = 1
    # Set explicitly: recorded at once, before finish.
    assert run.experiment.params["summary.best_epoch"] == 1
    wandb.finish()
    cfg = read_json(Path(run.dir) / "config.json")
    p = cfg["params"]
    assert p["lr"] == 0.1 and p["model.depth"] == 3 and p["batch"] == 32 and p["dropout"] == 0.5
    assert p["layers"] == "[64, 32]" and p["act"] == "None"  # what parameters cannot hold: text
    assert p["summary.loss.min"] == 0.2 and p["summary.epoch_time"] == 1.5
    assert p["summary.val/acc.max"] == 0.3 and abs(p["summary.val/acc.mean"] - 0.2) < 1e-12
    assert p["summary.best_epoch"] == 1
    assert cfg["tags"] == ["a", "group:g1", "job_type:train"]
    assert cfg["description"] == "first try"


def test_finish_exit_code_and_exception_mark_error(tmp_path):
    run = wandb.init(project="p", dir=tmp_path)
    wandb.finish(exit_code=3)
    st = read_json(Path(run.dir) / "status.json")
    assert st["status"] == "Error" and "exit_code=3" in st["error"]
    with pytest.raises(ValueError):
        with wandb.init(project="p", name="ctx", dir=tmp_path) as run2:
            run2.log({"x": 1})
            raise ValueError("diverged")
    st = read_json(Path(run2.dir) / "status.json")
    assert st["status"] == "Error" and "ValueError: diverged" in st["error"]
    with pytest.raises(RuntimeError, match="after this run finished"):
        run2.log({"x": 2})


def test_unsupported_calls_raise_naming_the_alternative(tmp_path):
    for call, hint in [
        (lambda: wandb.Image([[0]]), "under run.dir"),
        (lambda: wandb.Table(columns=["a"]), "table"),
        (lambda: wandb.Artifact("m", type="model"), "run.dir"),
        (lambda: wandb.watch(object()), "gradient"),
        (lambda: wandb.Histogram([1, 2]), "summaries"),
        (lambda: wandb.sweep({}), "EXP run"),
        (lambda: wandb.Api(), "load_experiments"),
    ]:
        with pytest.raises(NotImplementedError, match=hint):
            call()
    with pytest.raises(NotImplementedError, match="not part of expman.wandb"):
        wandb.Something
    assert not hasattr(wandb, "Something")
    with pytest.raises(RuntimeError, match="before wandb.init"):
        wandb.config.lr = 1
    with pytest.raises(RuntimeError, match="before wandb.init"):
        wandb.log({"x": 1})
    with pytest.raises(NotImplementedError, match="sync_tensorboard"):
        wandb.init(project="p", dir=tmp_path, sync_tensorboard=True)
    run = wandb.init(project="p", dir=tmp_path)
    with pytest.raises(NotImplementedError, match="log_artifact"):
        run.log_artifact("x")
    with pytest.raises(TypeError, match="metric 'img'"):
        wandb.log({"img": object()})
    wandb.finish()


def test_init_twice_resume_and_reinit(tmp_path):
    first = wandb.init(project="p", name="exp", dir=tmp_path, config={"lr": 1})
    assert wandb.init(project="p", name="exp", dir=tmp_path) is first  # W&B's default
    wandb.log({"loss": 1.0})
    wandb.log({"loss": 0.5})
    second = wandb.init(project="p", name="exp", dir=tmp_path, reinit=True)
    assert first._finished and second is not first and second.dir != first.dir
    wandb.finish()
    # resume continues the newest experiment of that name: run_0002, _step going on.
    resumed = wandb.init(project="p", name="exp", dir=tmp_path, resume="allow",
                         id=Path(first.dir).name)
    assert resumed.dir == first.dir and resumed.id == "run_0002" and resumed.step == 2
    wandb.log({"loss": 0.25})
    wandb.finish()
    rows = _rows(Path(first.dir) / "metrics" / "run_0002.csv")
    assert [(r["_step"], r["loss"]) for r in rows] == [("2", "0.25")]
    with pytest.raises(FileNotFoundError, match="resume='must'"):
        wandb.init(project="p", name="nothing", dir=tmp_path, resume="must")


def test_pending_row_and_summary_reach_disk_at_exit(tmp_path):
    # No finish: the exit hook writes the pending row and the summary, expman marks Finished.
    run_script('''
import expman.wandb as wandb
wandb.init(project="p", name="exit")
wandb.log({"loss": 1.0})
wandb.log({"loss": 0.5}, commit=False)
''', tmp_path)
    (d,) = experiment_dirs(tmp_path / "p")
    assert [r["loss"] for r in _rows(d / "metrics" / "run_0001.csv")] == ["1.0", "0.5"]
    assert read_json(d / "config.json")["params"]["summary.loss"] == 0.5
    assert read_json(d / "status.json")["status"] == "Finished"


def test_uncaught_exception_marks_error(tmp_path):
    proc = run_script('''
import expman.wandb as wandb
wandb.init(project="p", name="crash")
wandb.log({"loss": 1.0})
raise RuntimeError("nan loss")
''', tmp_path, check=False)
    assert proc.returncode == 1
    (d,) = experiment_dirs(tmp_path / "p")
    st = read_json(d / "status.json")
    assert st["status"] == "Error" and "nan loss" in st["error"]


def test_attaches_to_the_scheduler_run(tmp_path):
    from expman import Experiment

    sched = Experiment(name="scheduled", command="EXP run", base_dir=tmp_path / "s",
                       capture_output=False)
    proc = run_script('''
import expman.wandb as wandb
run = wandb.init(project="ignored", config={"lr": 0.3})
wandb.log({"loss": 1.0})
wandb.finish()
print(run.dir, run.id)
''', tmp_path, env=clean_env(EXPMAN_EXPERIMENT_DIR=sched.dir, EXPMAN_RUN_ID="run_0001"))
    assert proc.stdout.split() == [str(sched.dir), "run_0001"]
    assert [r["loss"] for r in _rows(sched.metrics_path)] == ["1.0"]
    assert read_json(sched.dir / "config.json")["params"] == {"lr": 0.3, "summary.loss": 1.0}
    assert sched.status()["status"] == "Running"  # the scheduler's to set
    assert not (tmp_path / "ignored").exists()
    sched.close()


def test_flatten_params_of_framework_objects():
    import argparse
    import dataclasses

    from expman.integrations._common import flatten_params

    @dataclasses.dataclass
    class Opt:
        name: str = "adam"
        betas: tuple = (0.9, 0.99)

    ns = argparse.Namespace(lr=0.1, opt=Opt(), sched={"gamma": float("nan"), "steps": None},
                            big=2**70, ids={0: "neg", 1: "pos"}, empty={})
    assert flatten_params(ns) == {
        "lr": 0.1, "opt.name": "adam", "opt.betas": "[0.9, 0.99]", "sched.gamma": "nan",
        "sched.steps": "None", "big": str(2**70), "ids.0": "neg", "ids.1": "pos", "empty": "{}",
    }
    assert json.dumps(flatten_params({"a": {"b": {"c": 1}}})) == '{"a.b.c": 1}'


def test_a_missing_framework_names_the_extra_to_install():
    from expman.integrations._common import require

    with pytest.raises(ImportError, match=r"pip install 'expman\[keras\]'"):
        require("expman_no_such_framework", "keras", "expman.integrations.keras")


def test_a_job_of_exp_run_logs_into_the_scheduler_run(tmp_path):
    """The real scheduler: `EXP run` starts the script, which attaches to its run."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    exe = next((p for p in (Path(sys.executable).parent / "EXP", target / "debug" / "EXP",
                            target / "release" / "EXP") if p.exists()), None)
    if exe is None:
        pytest.skip("no EXP binary (pip install ./bindings/python or cargo build installs one)")
    (tmp_path / "train.py").write_text('''
import expman.wandb as wandb
run = wandb.init(project="ignored", config={"lr": 0.1})
for i in range(3):
    wandb.log({"loss": 1.0 / (i + 1)})
print("attached to", run.dir, run.id)
''', encoding="utf-8")
    (tmp_path / "cfg.toml").write_text(f'''
[scheduler]
base_dir = "exps"
max_concurrent = 1

[[experiments]]
name = "wb"
command = "{sys.executable} train.py"
cwd = "."
''', encoding="utf-8")
    proc = subprocess.run([str(exe), "run", "--config", str(tmp_path / "cfg.toml")], cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (d,) = experiment_dirs(tmp_path / "exps")
    assert [r["loss"] for r in _rows(d / "metrics" / "run_0001.csv")] == ["1.0", "0.5",
                                                                         "0.3333333333333333"]
    assert read_json(d / "config.json")["params"]["lr"] == 0.1
    assert read_json(d / "status.json")["status"] == "Finished"  # the scheduler's, exit 0
    assert f"attached to {d} run_0001" in (d / "logs" / "run_0001.log").read_text()
    assert not (tmp_path / "ignored").exists()
