"""Shared helpers for the Python tests. They test the installed `expman` package (scripts/
test-all installs it with `pip install ./bindings/python`), in real processes and real files."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def read_csv_rows(path):
    """The table as (header, rows), rows padded to the header's width as readers see them."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return header, [r + [""] * (len(header) - len(r)) for r in body]


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def experiment_dirs(base):
    """The experiment directories under `base` (each has a config.json)."""
    return sorted(p.parent for p in Path(base).glob("*/config.json"))


def clean_env(**extra):
    """This process's environment without the variables expman reacts to, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("EXPMAN_EXPERIMENT_DIR", "EXPMAN_RUN_ID", "EXPMAN_PARAMS",
                        "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    env["PYTHONIOENCODING"] = "utf-8"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_checked(args, env, cwd, timeout=600):
    """Runs the command `args` (paths allowed) and returns its stdout; a non-zero exit fails
    the test, showing the command and the ends of both outputs."""
    proc = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, args))} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc.stdout


def run_python(args, cwd, env=None, timeout=120, check=True):
    """Runs `python <args>` (this interpreter) and returns the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env or clean_env(), capture_output=True,
        text=True, encoding="utf-8", timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"python {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def run_script(code, cwd, env=None, timeout=120, check=True):
    """Runs Python source `code` in a subprocess."""
    script = Path(cwd) / "_script.py"
    script.write_text(code, encoding="utf-8")
    return run_python([str(script)], cwd, env=env, timeout=timeout, check=check)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integrations: trains tiny models with Lightning, transformers and Keras "
        "(test_integrations.py; the slowest Python tests)")


@pytest.fixture(autouse=True)
def _no_expman_env(monkeypatch):
    """Tests run as if no scheduler launched them, whatever the outer environment says."""
    for name in ("EXPMAN_EXPERIMENT_DIR", "EXPMAN_RUN_ID", "EXPMAN_PARAMS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exp(tmp_path):
    """A fresh experiment in a temporary base directory, closed after the test."""
    from expman import Experiment

    e = Experiment(name="t", command="pytest", base_dir=tmp_path)
    yield e
    e.close()
