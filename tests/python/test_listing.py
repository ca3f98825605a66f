"""expman.list_experiments and load_experiments(where=...) (issue 13) over experiment
directories made by the Python API: effective params (config.json and the seed's config row),
metric summaries of the latest run, the query language, sorting with missing values last,
and errors that show where a query went wrong."""

import math

import pytest

import expman
from expman import Experiment


def make(base, name, lr, accs, config_params=None, finish=True):
    exp = Experiment(name=name, command=f"python train.py --lr {lr}", base_dir=base,
                     tags=["sweep"], params=config_params)
    # The seed's config row, then metrics.
    exp.upd_row(model="resnet", learning_rate=lr)
    exp.save_row()
    for step, acc in enumerate(accs):
        exp.upd_row(step=step, val_acc=acc)
        exp.save_row()
    if finish:
        exp.set_finished()
    exp.close()
    return exp.dir.name


@pytest.fixture
def sweep(tmp_path):
    ids = {
        "a": make(tmp_path, "a", 0.1, [0.5, 0.7], {"depth": 18}),
        "b": make(tmp_path, "b", 0.01, [0.6, 0.9, 0.8], {"depth": 50}),
        "c": make(tmp_path, "c", 0.001, [0.4, float("nan")]),
    }
    return tmp_path, ids


def test_one_row_per_experiment_with_params_and_summaries(sweep):
    base, ids = sweep
    df = expman.list_experiments(base, sort="name")
    assert list(df["name"]) == ["a", "b", "c"]
    assert list(df.columns[:7]) == ["name", "id", "status", "error", "tags", "created", "runs"]
    assert list(df["id"]) == [ids["a"], ids["b"], ids["c"]]
    assert set(df["status"]) == {"Finished"}
    assert df["tags"][0] == ["sweep"]
    assert list(df["runs"]) == [1, 1, 1]
    assert str(df["created"].dtype).startswith("datetime64")
    assert list(df["params.learning_rate"]) == [0.1, 0.01, 0.001]
    assert list(df["params.model"]) == ["resnet"] * 3
    assert df["params.depth"][0] == 18 and df["params.depth"][1] == 50
    assert math.isnan(df["params.depth"][2])
    assert list(df["metrics.val_acc.max"]) == [0.7, 0.9, 0.4]
    assert list(df["metrics.val_acc.count"]) == [2, 3, 2]
    assert math.isnan(df["metrics.val_acc.last"][2]), "NaN comes back as a float NaN"
    assert "metrics.learning_rate.max" not in df.columns, "config-row columns are no metrics"
    for agg in ("last", "min", "max", "count"):
        assert f"metrics.step.{agg}" in df.columns


def test_where_and_sort(sweep):
    base, _ = sweep
    df = expman.list_experiments(
        base, where="params.learning_rate < 0.05 and metrics.val_acc.max > 0.3",
        sort="-metrics.val_acc.max")
    assert list(df["name"]) == ["b", "c"]
    df = expman.list_experiments(base, sort=["-params.depth", "name"])
    assert list(df["name"]) == ["b", "a", "c"], "missing depth sorts last, descending too"
    df = expman.list_experiments(base, where="name = nothing")
    assert len(df) == 0
    assert "name" in df.columns


def test_bad_queries_raise_config_error_with_a_caret(sweep):
    base, _ = sweep
    with pytest.raises(expman.ConfigError) as info:
        expman.list_experiments(base, where="params.learning_rate <<< 1")
    assert "column 23" in str(info.value) and "^" in str(info.value)
    with pytest.raises(expman.ConfigError, match="did you mean `params.learning_rate`"):
        expman.list_experiments(base, where="params.learning_rat < 1")
    with pytest.raises(expman.ConfigError):
        expman.list_experiments(base, sort="-nme")
    with pytest.raises(ValueError):
        expman.list_experiments(base, sort="name,id")
    with pytest.raises(expman.NotFoundError):
        expman.list_experiments(base / "nowhere")


def test_load_experiments_where(sweep):
    pytest.importorskip("pyarrow")
    base, ids = sweep
    everything = expman.load_experiments(base)
    assert set(everything["experiment"]) == set(ids.values())
    df = expman.load_experiments(base, where="metrics.val_acc.max >= 0.7")
    assert set(df["experiment"]) == {ids["a"], ids["b"]}
    assert len(df) == 3 + 4, "every row of the matching runs"
    df = expman.load_experiments(base, where="params.depth = 50", name="b*")
    assert set(df["experiment"]) == {ids["b"]}


def test_a_later_run_logging_params_is_what_the_listing_shows(tmp_path):
    exp = Experiment(name="p", command="x", base_dir=tmp_path, params={"lr": 0.1})
    exp.upd_row(acc=0.5)
    exp.save_row()
    exp.set_finished()
    exp.close()
    again = Experiment.open(exp.dir)
    again.log_params(lr=0.2, optimizer={"name": "adam"})
    again.set_finished()
    again.close()
    df = expman.list_experiments(tmp_path)
    assert df["params.lr"][0] == 0.2
    assert df["params.optimizer.name"][0] == "adam"
    assert df["runs"][0] == 2
    assert "metrics.acc.last" not in df.columns, "the latest run has no rows"


def test_errors_and_unreadable_metrics_are_shown(tmp_path):
    # A failed run says why in `error`; a table damaged by another program (a row with a cell
    # too many) is named in a warning, and every experiment is still listed.
    fine = make(tmp_path, "fine", 0.1, [0.5])
    failed = Experiment(name="failed", command="x", base_dir=tmp_path)
    failed.set_error("diverged at step 3")
    failed.close()
    damaged = Experiment(name="damaged", command="x", base_dir=tmp_path)
    damaged.upd_row(step=0, val_acc=0.5)
    damaged.save_row()
    damaged.set_finished()
    path = damaged.metrics_path
    damaged.close()
    with open(path, "a", encoding="utf-8") as f:
        f.write("2026-01-01T00:00:00.000000,run_0001,1,0.6,extra\n")
    with pytest.warns(RuntimeWarning, match=r"damaged_.*: its metrics cannot be read: .*row has 5"):
        df = expman.list_experiments(tmp_path, sort="name")
    assert list(df["name"]) == ["damaged", "failed", "fine"]
    errors = dict(zip(df["name"], df["error"]))
    assert errors["failed"] == "diverged at step 3"
    import pandas as pd

    assert pd.isna(errors["fine"]) and pd.isna(errors["damaged"])
    assert fine in set(df["id"])
