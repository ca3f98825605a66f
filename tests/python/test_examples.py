"""examples/cnn_train.py logs its training through the installed package."""

import pytest

from conftest import REPO, experiment_dirs, read_csv_rows, read_json, run_python

pytest.importorskip("sklearn")
EXAMPLE = REPO / "examples" / "cnn_train.py"


def train(tmp_path, *args):
    proc = run_python([str(EXAMPLE), "--base-dir", str(tmp_path / "exps"), *args], tmp_path,
                      timeout=300)
    (exp_dir,) = experiment_dirs(tmp_path / "exps")
    return proc, exp_dir


def test_cnn_example_runs_and_logs_every_epoch(tmp_path):
    proc, exp_dir = train(tmp_path, "--epochs", "3", "--save-model")
    header, rows = read_csv_rows(exp_dir / "metrics" / "run_0001.csv")
    assert header == ["timestamp", "run_id", "model", "dataset", "batch_size", "learning_rate",
                      "epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert len(rows) == 4  # the configuration row, then one per epoch
    assert rows[0][2:6] == ["numpy-cnn", "sklearn-digits", "32", "0.001"]
    assert [r[header.index("epoch")] for r in rows[1:]] == ["1", "2", "3"]
    assert (exp_dir / "checkpoints" / "run_0001.npz").is_file()
    assert read_json(exp_dir / "status.json")["status"] == "Finished"
    assert "best epoch" in (exp_dir / "logs" / "experiment.log").read_text()
    assert "run run_0001" in proc.stdout


def test_cnn_example_passes_90_percent_within_5_epochs(tmp_path):
    _, exp_dir = train(tmp_path, "--epochs", "5")
    header, rows = read_csv_rows(exp_dir / "metrics" / "run_0001.csv")
    val_acc = [float(r[header.index("val_acc")]) for r in rows[1:]]
    assert len(val_acc) == 5
    assert max(val_acc) > 0.9, val_acc
