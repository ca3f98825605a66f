"""The Python examples, run with the command lines their docstrings give: examples/cnn_train.py
logs its training through the installed package, and examples/toy/toy_task.py run by hand
creates its own experiment. Run by hand, each run's output is in its log too (captured)."""

import shutil

import pytest

from conftest import REPO, clean_env, experiment_dirs, read_csv_rows, read_json, run_python

EXAMPLE = REPO / "examples" / "cnn_train.py"
TOY = REPO / "examples" / "toy" / "toy_task.py"


def needs_sklearn():
    pytest.importorskip("sklearn")


def train(tmp_path, *args):
    needs_sklearn()
    proc = run_python([str(EXAMPLE), "--base-dir", str(tmp_path / "exps"), *args], tmp_path,
                      timeout=300)
    (exp_dir,) = experiment_dirs(tmp_path / "exps")
    return proc, exp_dir


def test_cnn_example_runs_as_documented(tmp_path):
    """`python examples/cnn_train.py --epochs 10 --lr 0.001 --save-model`, typed at the root of
    a checkout (here a copy of examples/): the experiment lands in ./experiments."""
    needs_sklearn()
    shutil.copytree(REPO / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = run_python(["examples/cnn_train.py", "--epochs", "10", "--lr", "0.001",
                       "--save-model"], tmp_path, timeout=300)
    (exp_dir,) = experiment_dirs(tmp_path / "experiments")
    header, rows = read_csv_rows(exp_dir / "metrics" / "run_0001.csv")
    assert header == ["timestamp", "run_id", "model", "dataset", "batch_size", "learning_rate",
                      "epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert len(rows) == 11  # the configuration row, then one per epoch
    assert rows[0][2:6] == ["numpy-cnn", "sklearn-digits", "32", "0.001"]
    assert [r[header.index("epoch")] for r in rows[1:]] == [str(e) for e in range(1, 11)]
    assert (exp_dir / "checkpoints" / "run_0001.npz").is_file()
    assert read_json(exp_dir / "status.json")["status"] == "Finished"
    assert "best epoch" in (exp_dir / "logs" / "experiment.log").read_text()
    assert "run run_0001" in proc.stdout
    # Started by hand, its output is in the run's log as well as on the terminal.
    log = (exp_dir / "logs" / "run_0001.log").read_text()
    assert "epoch 1/10" in log and "epoch 10/10" in log and "saved model weights" in log, log


@pytest.mark.parametrize("args, scale", [
    (["--duration", "150"], "0.01"),
    (["--duration", "270", "--jitter"], "0.01"),
    (["--duration", "3", "--fail"], "1"),
])
def test_toy_task_by_hand_as_documented(tmp_path, args, scale):
    """The command lines of toy_task.py's docstring, from its directory (the two long ones sped
    up with EXPMAN_TOY_TIME_SCALE): by hand, the task creates its own experiment under
    ./experiments, marks how it ended, and its progress lines are in the run's log."""
    shutil.copy(TOY, tmp_path)
    proc = run_python(["toy_task.py", *args], tmp_path,
                      env=clean_env(EXPMAN_TOY_TIME_SCALE=scale), check=False)
    (exp_dir,) = experiment_dirs(tmp_path / "experiments")
    status = read_json(exp_dir / "status.json")
    log = (exp_dir / "logs" / "run_0001.log").read_text()
    header, rows = read_csv_rows(exp_dir / "metrics" / "progress.csv")
    assert len(rows) >= 2 and "[toy] step 1:" in log, (rows, log)
    fraction = float(rows[-1][header.index("fraction")])
    if "--fail" in args:
        assert proc.returncode == 1, proc.stderr
        assert status["status"] == "Error" and status["error"] == "failed on purpose (--fail)"
        assert "failing on purpose" in log and 0.45 <= fraction < 0.7, (log, fraction)
    else:
        assert proc.returncode == 0, proc.stderr
        assert status["status"] == "Finished", status
        assert "[toy] done" in log and fraction == 1.0, (log, fraction)


def test_cnn_example_passes_90_percent_within_5_epochs(tmp_path):
    _, exp_dir = train(tmp_path, "--epochs", "5")
    header, rows = read_csv_rows(exp_dir / "metrics" / "run_0001.csv")
    val_acc = [float(r[header.index("val_acc")]) for r in rows[1:]]
    assert len(val_acc) == 5
    assert max(val_acc) > 0.9, val_acc
