"""Hyperparameters from Python: ``Experiment(..., params=...)``, ``log_params``, ``params``, and
``EXPMAN_PARAMS`` in a child process, checked in the real config.json and status.json."""

import json
import os
import textwrap

import numpy as np
import pytest

import expman
from expman import Experiment

from conftest import clean_env, experiment_dirs, read_json, run_script

NESTED = {
    "lr": 0.01,
    "depth": 18,
    "ratio": 2.0,
    "pretrained": True,
    "model": "resnet",
    "optimizer": {"name": "adam", "betas": {"b1": 0.9}},
}
FLAT = {
    "lr": 0.01,
    "depth": 18,
    "ratio": 2.0,
    "pretrained": True,
    "model": "resnet",
    "optimizer.name": "adam",
    "optimizer.betas.b1": 0.9,
}


def typed(params):
    """{name: (type name, value)}: 18 and 18.0 compare equal in Python, their types do not."""
    return {k: (type(v).__name__, v) for k, v in params.items()}


def files(exp_dir):
    return {name: (exp_dir / name).read_bytes() for name in ("config.json", "status.json")}


def test_params_round_trip_to_config_json_typed_and_flattened(tmp_path):
    with Experiment(name="p", command="x", base_dir=tmp_path, params=NESTED) as exp:
        config = read_json(exp.dir / "config.json")
        assert typed(config["params"]) == typed(FLAT)
        text = (exp.dir / "config.json").read_text()
        assert '"depth": 18,\n' in text and '"ratio": 2.0\n' in text, text
        # The run's own record, so it keeps these values when a later run changes them.
        assert typed(read_json(exp.dir / "status.json")["params"]) == typed(FLAT)
        assert typed(exp.params) == typed(FLAT)


def test_log_params_dict_keywords_and_numpy_scalars(exp):
    exp.log_params({"a": 1, "nested": {"x": "y"}}, b=np.float32(0.5), c=np.int64(3),
                   d=np.bool_(True), e=np.float64(1e-5))
    exp.log_params(a=2)  # keywords alone; a later value wins
    exp.log_params()  # nothing: no error, nothing written
    expected = {"a": 2, "nested.x": "y", "b": 0.5, "c": 3, "d": True, "e": 1e-5}
    assert typed(read_json(exp.dir / "config.json")["params"]) == typed(expected)
    assert typed(exp.params) == typed(expected)
    assert typed(exp.status()["params"]) == typed(expected)


def test_keywords_win_over_the_dict(exp):
    exp.log_params({"lr": 0.1, "params": 1}, lr=0.2)
    assert exp.params == {"lr": 0.2, "params": 1}


def test_a_second_run_that_changes_lr_keeps_the_first_runs_value(tmp_path):
    with Experiment(name="p", command="x", base_dir=tmp_path, params={"lr": 0.1, "depth": 18}) as first:
        first.log_params(seed=1)
    with Experiment.open(first.dir) as second:
        assert second.params == {"lr": 0.1, "depth": 18, "seed": 1}
        second.log_params(lr=0.01)
        assert second.params == {"lr": 0.01, "depth": 18, "seed": 1}
    config = read_json(first.dir / "config.json")
    assert config["params"] == {"lr": 0.01, "depth": 18, "seed": 1}
    status = read_json(first.dir / "status.json")
    assert status["run_id"] == "run_0002" and status["params"] == {"lr": 0.01}
    [old] = status["history"]
    assert old["run_id"] == "run_0001"
    assert old["params"] == {"lr": 0.1, "depth": 18, "seed": 1}
    first.close()


@pytest.mark.parametrize(
    "params, error, needles",
    [
        ({"a..b": 1}, expman.InvalidNameError, ["a..b", "empty part"]),
        ({"": 1}, expman.InvalidNameError, ["name is empty"]),
        ({"bad\nname": 1}, expman.InvalidNameError, ["control character"]),
        ({"layers": [1, 2]}, expman.InvalidValueError, ["layers", "[1,2]"]),
        ({"opt": {"betas": None}}, expman.InvalidValueError, ["opt.betas", "null"]),
        ({"lr": float("nan")}, expman.InvalidValueError, ["'lr'", "not finite"]),
        ({"lr": np.float32("inf")}, expman.InvalidValueError, ["'lr'", "not finite"]),
        ({"big": 2**64}, OverflowError, ["'big'", "64-bit"]),
        ({"path": object()}, TypeError, ["'path'", "object"]),
        ({1: 2}, TypeError, ["must be str"]),
        (["lr", 0.1], TypeError, ["dict"]),
    ],
)
def test_bad_params_are_refused_naming_them_and_write_nothing(tmp_path, params, error, needles):
    with pytest.raises(error) as info:
        Experiment(name="p", command="x", base_dir=tmp_path / "new", params=params)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    assert not (tmp_path / "new").exists() or experiment_dirs(tmp_path / "new") == []

    with Experiment(name="p", command="x", base_dir=tmp_path / "old", params={"lr": 0.1}) as exp:
        before = files(exp.dir)
        with pytest.raises(error) as info:
            exp.log_params(params)
        for needle in needles:
            assert needle in str(info.value), str(info.value)
        assert files(exp.dir) == before
        assert exp.params == {"lr": 0.1}


def test_env_params_are_picked_up_by_a_child_process(tmp_path):
    code = textwrap.dedent(
        f"""
        from expman import Experiment
        exp = Experiment(name="job", command="x", base_dir={str(tmp_path)!r}, params={{"depth": 18}})
        print(exp.dir)
        exp.close()
        """
    )
    env = clean_env(EXPMAN_PARAMS=json.dumps({"lr": 0.001, "depth": 50, "opt": {"name": "sgd"}}))
    proc = run_script(code, tmp_path, env=env)
    exp_dir = proc.stdout.strip().splitlines()[-1]
    params = read_json(os.path.join(exp_dir, "config.json"))["params"]
    # Explicit params win over the environment's.
    assert typed(params) == typed({"lr": 0.001, "depth": 18, "opt.name": "sgd"})


@pytest.mark.parametrize(
    "value, needles",
    [
        ("not json", ["EXPMAN_PARAMS", "not valid JSON"]),
        ('[1, 2]', ["EXPMAN_PARAMS", "JSON object"]),
        ('{"layers": [1, 2]}', ["EXPMAN_PARAMS", "layers"]),
        ('{"a..b": 1}', ["EXPMAN_PARAMS", "a..b"]),
    ],
)
def test_bad_env_params_fail_naming_the_variable_and_create_nothing(tmp_path, value, needles):
    code = textwrap.dedent(
        f"""
        import expman
        try:
            expman.Experiment(name="job", command="x", base_dir={str(tmp_path / "b")!r})
        except expman.ConfigError as e:
            print("ConfigError:", e)
        """
    )
    proc = run_script(code, tmp_path, env=clean_env(EXPMAN_PARAMS=value))
    assert "ConfigError:" in proc.stdout, proc.stdout + proc.stderr
    for needle in needles:
        assert needle in proc.stdout, proc.stdout
    assert not (tmp_path / "b").exists() or experiment_dirs(tmp_path / "b") == []


def test_an_attached_job_keeps_what_the_scheduler_recorded(tmp_path):
    # What the scheduler did: an experiment with its params, the job's run allocated.
    sched = Experiment(name="sched", command="x", base_dir=tmp_path,
                       params={"lr": 0.1, "depth": 18}, capture_output=False)
    exp_dir, run = sched.dir, sched.run_id
    code = textwrap.dedent(
        """
        from expman import Experiment
        exp = Experiment(name="job", command="x", base_dir=".", params={"epochs": 3})
        assert exp.attached
        exp.log_params(batch=32)
        print(sorted(exp.params.items()))
        exp.close()
        """
    )
    env = clean_env(EXPMAN_EXPERIMENT_DIR=exp_dir, EXPMAN_RUN_ID=run,
                    EXPMAN_PARAMS=json.dumps({"lr": 0.5, "seed": 7}))
    proc = run_script(code, tmp_path, env=env)
    expected = {"lr": 0.1, "depth": 18, "seed": 7, "epochs": 3, "batch": 32}
    assert proc.stdout.strip() == str(sorted(expected.items()))
    assert read_json(exp_dir / "config.json")["params"] == expected
    assert read_json(exp_dir / "status.json")["params"] == expected
    sched.close()


def test_concurrent_processes_never_lose_each_others_params(tmp_path):
    owner = Experiment(name="c", command="x", base_dir=tmp_path, capture_output=False)
    code = textwrap.dedent(
        """
        import os, sys
        from expman import Experiment
        exp = Experiment.attach(sys.argv[1], sys.argv[2])
        who = sys.argv[3]
        for i in range(40):
            exp.log_params({f"{who}.p{i}": i})
        exp.close()
        """
    )
    script = tmp_path / "writer.py"
    script.write_text(code)
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, str(script), str(owner.dir), owner.run_id, who],
                              env=clean_env()) for who in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    params = read_json(owner.dir / "config.json")["params"]
    assert len(params) == 120
    assert read_json(owner.dir / "status.json")["params"] == params
    owner.close()


def test_the_seed_import_path_takes_params_too(tmp_path):
    from experiment_manager.core.experiment import Experiment as SeedExperiment

    with SeedExperiment(name="seed", command="x", base_dir=tmp_path, params={"lr": 0.1}) as exp:
        exp.log_params(momentum=0.9)
        assert exp.params == {"lr": 0.1, "momentum": 0.9}
