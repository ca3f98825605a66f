"""System metrics of a Python run: ``Experiment()`` starts a sampler thread in the library
that writes the run's ``system`` table (``metrics/system.csv``) until ``close()``; it is off
with ``system_metrics=False`` and never started twice for a job of the scheduler (attached).

Each case runs in its own process, so a sampler thread never outlives its test. The thread is
counted in ``/proc/self/task``: the scripts start no threads of their own and turn the output
capture (the library's other thread) off."""

import json
import textwrap

import pytest

from conftest import clean_env, experiment_dirs, read_csv_rows, run_script

PRELUDE = """
import os, time
from pathlib import Path
from expman import Experiment

BASELINE = len(list(Path("/proc/self/task").iterdir()))

def sampler_threads():
    return len(list(Path("/proc/self/task").iterdir())) - BASELINE

_Experiment = Experiment

def Experiment(*args, **kwargs):
    return _Experiment(*args, capture_output=False, **kwargs)

Experiment.open = lambda *args, **kwargs: _Experiment.open(*args, capture_output=False, **kwargs)

def rows(exp):
    path = exp.dir / "metrics" / "system.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0

def wait_for_rows(exp, n):
    deadline = time.monotonic() + 20
    while rows(exp) < n:
        assert time.monotonic() < deadline, f"only {rows(exp)} rows of system metrics"
        time.sleep(0.02)
"""


def run(code, tmp_path, **env):
    return run_script(PRELUDE + textwrap.dedent(code), tmp_path, env=clean_env(**env))


def system_table(base):
    (exp_dir,) = experiment_dirs(base)
    return read_csv_rows(exp_dir / "metrics" / "system.csv")


def test_an_experiment_samples_its_process_until_close(tmp_path):
    run(
        """
        exp = Experiment("by_hand", "python train.py", "exps", system_metrics=0.05)
        assert sampler_threads() == 1
        wait_for_rows(exp, 3)
        exp.upd_row(loss=0.5)
        exp.save_row()
        exp.close()
        # Stopped means the thread has ended: nothing writes after close.
        assert sampler_threads() == 0
        """,
        tmp_path,
    )
    header, rows = system_table(tmp_path / "exps")
    assert header[:4] == ["timestamp", "run_id", "elapsed_s", "cpu_percent"]
    for column in ("rss_mib", "processes", "threads", "host_mem_available_mib"):
        assert column in header
    assert len(rows) >= 3
    at = {name: i for i, name in enumerate(header)}
    for row in rows:
        assert row[at["run_id"]] == "run_0001"
        assert float(row[at["rss_mib"]]) > 5  # a Python interpreter with the library loaded
        assert int(row[at["processes"]]) >= 1
    assert rows[0][at["cpu_percent"]] == ""
    assert all(float(r[at["cpu_percent"]]) >= 0 for r in rows[1:])


def test_the_default_is_every_ten_seconds_with_a_row_at_start(tmp_path):
    run(
        """
        exp = Experiment("by_hand", "python train.py", "exps")
        wait_for_rows(exp, 1)
        started = time.monotonic()
        exp.close()
        assert time.monotonic() - started < 1, "close waits for no interval"
        assert sampler_threads() == 0
        """,
        tmp_path,
    )
    _, rows = system_table(tmp_path / "exps")
    assert len(rows) == 1


def test_gpu_columns_for_the_experiments_gpus_only(tmp_path):
    inventory = tmp_path / "gpus.json"
    gpus = [
        {"index": i, "uuid": f"GPU-{i}", "name": "Test GPU", "memory_used_mib": 1000 * (i + 1),
         "memory_total_mib": 16000, "utilization_percent": 10 * i, "power_mw": 100000 + i,
         "temperature_c": 50 + i}
        for i in range(4)
    ]
    inventory.write_text(json.dumps(gpus))
    run(
        """
        exp = Experiment("gpu", "python train.py", "exps", gpu_ids=[2])
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
        wait_for_rows(exp, 1)
        exp.close()
        """,
        tmp_path,
        EXPMAN_GPU_INVENTORY=inventory,
    )
    header, rows = system_table(tmp_path / "exps")
    assert [c for c in header if c.startswith("gpu")] == [
        "gpu2_util_percent", "gpu2_mem_used_mib", "gpu2_mem_total_mib", "gpu2_power_w",
        "gpu2_temp_c",
    ]
    at = {name: i for i, name in enumerate(header)}
    row = rows[0]
    assert row[at["gpu2_util_percent"]] == "20"
    assert row[at["gpu2_mem_used_mib"]] == "3000"
    assert row[at["gpu2_mem_total_mib"]] == "16000"
    assert float(row[at["gpu2_power_w"]]) == pytest.approx(100.002)
    assert row[at["gpu2_temp_c"]] == "52"


def test_system_metrics_false_writes_nothing(tmp_path):
    run(
        """
        exp = Experiment("quiet", "python train.py", "exps", system_metrics=False)
        assert sampler_threads() == 0
        exp.upd_row(loss=0.5)
        exp.save_row()
        exp.close()
        reopened = Experiment.open(exp.dir, system_metrics=False)
        assert sampler_threads() == 0
        reopened.close()
        assert not (exp.dir / "metrics" / "system.csv").exists()
        """,
        tmp_path,
    )


def test_an_experiment_attached_to_the_schedulers_run_starts_no_second_sampler(tmp_path):
    run(
        """
        owner = Experiment("scheduled", "python train.py", "exps", system_metrics=False)
        os.environ["EXPMAN_EXPERIMENT_DIR"] = str(owner.dir)
        os.environ["EXPMAN_RUN_ID"] = owner.run_id
        job = Experiment("ignored", "python train.py", "elsewhere")
        assert job.attached
        assert sampler_threads() == 0
        job.upd_row(loss=0.5)
        job.save_row()
        job.close()
        assert not (owner.dir / "metrics" / "system.csv").exists()
        """,
        tmp_path,
    )


def test_reopening_samples_the_new_run(tmp_path):
    run(
        """
        first = Experiment("again", "python train.py", "exps", system_metrics=False)
        first.close()
        exp = Experiment.open(first.dir, system_metrics=0.05)
        assert exp.run_id == "run_0002"
        wait_for_rows(exp, 2)
        exp.stop_system_metrics()
        assert sampler_threads() == 0
        exp.close()
        """,
        tmp_path,
    )
    _, rows = system_table(tmp_path / "exps")
    assert {r[1] for r in rows} == {"run_0002"}


@pytest.mark.parametrize("setting, error", [
    (0.001, ValueError), (-1, ValueError), (float("nan"), ValueError), ("10s", TypeError),
])
def test_bad_settings_are_refused_before_anything_is_created(tmp_path, setting, error):
    from expman import Experiment

    with pytest.raises(error, match="system_metrics"):
        Experiment("bad", "python train.py", tmp_path / "exps", system_metrics=setting)
    assert not (tmp_path / "exps").exists()


def test_a_forked_child_closing_its_copy_neither_hangs_nor_stops_the_parents_sampler(tmp_path):
    run(
        """
        exp = Experiment("forked", "python train.py", "exps", system_metrics=0.05)
        wait_for_rows(exp, 1)
        pid = os.fork()
        if pid == 0:
            # The child has a copy of the handle but not the thread: closing must not wait
            # for a thread this process does not have.
            exp.close()
            os._exit(0)
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "the forked child hangs in close()"
            time.sleep(0.02)
        assert os.waitstatus_to_exitcode(status) == 0
        before = rows(exp)
        wait_for_rows(exp, before + 2)  # the parent's sampler goes on
        exp.close()
        assert sampler_threads() == 0
        """,
        tmp_path,
    )
