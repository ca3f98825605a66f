"""The seed README's Python examples run unchanged and produce the files the seed shows."""

import re
import shutil

import pytest

from conftest import HERE, experiment_dirs, read_csv_rows, read_json, run_python

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")


def run_seed_script(name, tmp_path):
    shutil.copy(HERE / name, tmp_path / name)
    proc = run_python([name], tmp_path)
    dirs = experiment_dirs(tmp_path / "experiments")
    assert len(dirs) == 1, dirs
    return proc, dirs[0]


def test_core_example(tmp_path):
    proc, exp_dir = run_seed_script("seed_example.py", tmp_path)
    assert "智能分配的运行ID: run_0001" in proc.stdout
    # `epoch` is empty in the configuration row, so pandas (read_csv too) makes it float64.
    assert "最佳性能: Epoch 1.0, 准确率 0.8500" in proc.stdout, proc.stdout

    # The seed's layout: <name>_<YYYY-MM-DD__HH-MM-SS>/ with logs, metrics, checkpoints.
    assert re.fullmatch(r"my_experiment_\d{4}-\d\d-\d\d__\d\d-\d\d-\d\d", exp_dir.name)
    for sub in ("logs/run_0001.log", "logs/experiment.log", "metrics/run_0001.csv",
                "checkpoints", "config.json", "status.json"):
        assert (exp_dir / sub).exists(), sub
    config = read_json(exp_dir / "config.json")
    assert config["name"] == "my_experiment"
    assert config["command"] == "python train.py --epochs 100 --lr 0.001"
    assert config["tags"] == ["deep-learning", "classification"]

    header, rows = read_csv_rows(exp_dir / "metrics" / "run_0001.csv")
    assert header == ["timestamp", "run_id", "model", "dataset", "batch_size", "learning_rate",
                      "epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert len(rows) == 11
    assert rows[0][2:] == ["ResNet-18", "CIFAR-10", "128", "0.001", "", "", "", "", ""]
    for epoch, row in enumerate(rows[1:], start=1):
        assert TIMESTAMP.match(row[0]), row[0]
        assert row[1] == "run_0001"
        assert row[2:] == ["", "", "", "", str(epoch), "0.42", "0.87", "0.48", "0.85"]

    # The example never calls set_finished(): the run is marked when the script exits.
    status = read_json(exp_dir / "status.json")
    assert status["status"] == "Finished", status
    assert status["run_id"] == "run_0001"


def test_dynamic_fields_example_writes_the_csv_the_seed_shows(tmp_path):
    _, exp_dir = run_seed_script("seed_dynamic_fields.py", tmp_path)
    path = exp_dir / "metrics" / "run_0001.csv"
    # The seed's CSV:
    #   timestamp,run_id,model,accuracy,f1_score,precision
    #   2025-09-26T14:30:15,run_0001,CNN,0.85,,
    #   2025-09-26T14:30:45,run_0001,CNN,0.88,0.87,0.89
    header, rows = read_csv_rows(path)
    assert header == ["timestamp", "run_id", "model", "accuracy", "f1_score", "precision"]
    assert [r[1:] for r in rows] == [["run_0001", "CNN", "0.85", "", ""],
                                     ["run_0001", "CNN", "0.88", "0.87", "0.89"]]
    assert all(TIMESTAMP.match(r[0]) for r in rows)
    # pandas reads it as the seed's file: the first row's new columns are empty.
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(path)
    assert list(df.columns) == header
    assert df["accuracy"].tolist() == [0.85, 0.88]
    assert df["f1_score"].isna().tolist() == [True, False]


def test_api_reference_blocks(tmp_path):
    _, exp_dir = run_seed_script("seed_api_reference.py", tmp_path)
    config = read_json(exp_dir / "config.json")
    assert config["gpu_ids"] == [0]
    assert config["description"] == "baseline sweep"
    assert config["tags"] == ["tag1", "tag2"]
    header, rows = read_csv_rows(exp_dir / "metrics" / "run_0001.csv")
    assert header == ["timestamp", "run_id", "epoch", "loss", "accuracy"]
    assert [r[2:] for r in rows] == [["1", "0.5", "0.85"]]
    assert read_json(exp_dir / "status.json")["status"] == "Finished"
    assert "训练开始" in (exp_dir / "logs" / "experiment.log").read_text(encoding="utf-8")
