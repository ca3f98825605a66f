"""Run status: the context manager, marking at interpreter exit, attaching, GPUs, next runs."""

import os
import textwrap

import pytest

import expman
from expman import Experiment

from conftest import clean_env, experiment_dirs, read_csv_rows, read_json, run_script


def status_of(exp_dir):
    return read_json(os.path.join(exp_dir, "status.json"))


def test_new_run_is_running_in_this_process(exp):
    status = exp.status()
    assert status["status"] == "Running" and status["run_id"] == "run_0001"
    assert status["pid"] == os.getpid()


def test_context_manager_marks_finished(tmp_path):
    with Experiment(name="ok", command="x", base_dir=tmp_path) as exp:
        exp.upd_row(a=1.0)
        exp.save_row()
        assert exp.status()["status"] == "Running"
    status = exp.status()
    assert status["status"] == "Finished" and status["error"] is None
    # Leaving the block does not close the handle: the seed reads metrics afterwards.
    assert exp.load_metrics_dict()[0]["a"] == 1.0


def test_context_manager_marks_error_and_reraises(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with Experiment(name="fails", command="x", base_dir=tmp_path) as exp:
            exp.upd_row(a=1.0)
            exp.save_row()
            1 / 0
    status = status_of(exp.dir)
    assert status["status"] == "Error"
    assert status["error"] == "ZeroDivisionError: division by zero"


def test_context_manager_and_sys_exit(tmp_path):
    with pytest.raises(SystemExit):
        with Experiment(name="exit0", command="x", base_dir=tmp_path) as ok:
            raise SystemExit(0)
    assert status_of(ok.dir)["status"] == "Finished"
    with pytest.raises(SystemExit):
        with Experiment(name="exit2", command="x", base_dir=tmp_path) as bad:
            raise SystemExit(2)
    assert status_of(bad.dir)["error"] == "SystemExit: 2"


def test_explicit_status_calls(exp):
    exp.set_error("diverged")
    assert exp.status()["status"] == "Error" and exp.status()["error"] == "diverged"
    exp.set_running(4242)
    assert exp.status()["status"] == "Running" and exp.status()["pid"] == 4242
    exp.set_running()
    assert exp.status()["pid"] == os.getpid()
    exp.set_finished()
    assert exp.status()["status"] == "Finished"


SCRIPT_PREFIX = """
import sys
from expman import Experiment
exp = Experiment(name="atexit", command="x", base_dir=sys.argv[1] if len(sys.argv) > 1 else ".")
exp.upd_row(epoch=1, loss=0.5)
exp.save_row()
"""


def test_atexit_marks_finished_when_the_script_never_does(tmp_path):
    run_script(SCRIPT_PREFIX + "print('done')\n", tmp_path)
    (exp_dir,) = experiment_dirs(tmp_path)
    status = status_of(exp_dir)
    assert status["status"] == "Finished", status


def test_atexit_marks_finished_even_if_the_experiment_was_garbage_collected(tmp_path):
    run_script(SCRIPT_PREFIX + "del exp\nimport gc; gc.collect()\n", tmp_path)
    (exp_dir,) = experiment_dirs(tmp_path)
    assert status_of(exp_dir)["status"] == "Finished"


def test_uncaught_exception_marks_error(tmp_path):
    proc = run_script(SCRIPT_PREFIX + "raise RuntimeError('loss is NaN')\n", tmp_path,
                      check=False)
    assert proc.returncode == 1 and "loss is NaN" in proc.stderr  # the traceback still prints
    (exp_dir,) = experiment_dirs(tmp_path)
    status = status_of(exp_dir)
    assert status["status"] == "Error"
    assert status["error"] == "RuntimeError: loss is NaN"


def test_atexit_leaves_an_explicit_status_alone(tmp_path):
    run_script(SCRIPT_PREFIX + "exp.set_error('gave up')\n", tmp_path)
    (exp_dir,) = experiment_dirs(tmp_path)
    status = status_of(exp_dir)
    assert status["status"] == "Error" and status["error"] == "gave up"


def test_attach_through_the_scheduler_environment(tmp_path):
    parent = Experiment(name="scheduled", command="x", base_dir=tmp_path)
    parent.set_running(12345)  # as the scheduler records the job's pid
    code = textwrap.dedent("""
        from pathlib import Path
        from experiment_manager.core.experiment import Experiment
        exp = Experiment(name="ignored", command="ignored", base_dir=Path("./elsewhere"))
        print(exp.current_run_id, exp.dir, exp.attached)
        exp.upd_row(epoch=1, val_acc=0.9)
        exp.save_row()
        with exp:  # an attached run's status belongs to the scheduler
            pass
    """)
    proc = run_script(code, tmp_path, env=clean_env(EXPMAN_EXPERIMENT_DIR=parent.dir,
                                                    EXPMAN_RUN_ID=parent.current_run_id))
    assert proc.stdout.split() == ["run_0001", str(parent.dir), "True"]
    assert not (tmp_path / "elsewhere").exists()
    assert [r["val_acc"] for r in parent.load_metrics_dict()] == [0.9]
    status = parent.status()
    assert status["status"] == "Running" and status["pid"] == 12345
    parent.set_finished()


def test_attach_by_call_and_status_untouched(exp):
    other = Experiment.attach(exp.dir, exp.current_run_id)
    assert other.attached and not exp.attached
    other.upd_row(x=1.0)
    other.save_row()
    with other:
        pass
    other.close()
    assert exp.status()["status"] == "Running"
    assert exp.load_metrics_dict()[0]["x"] == 1.0


def test_open_starts_the_next_run(exp):
    exp.log_metrics({"loss": 1.0})
    exp.set_finished()
    nxt = Experiment.open(exp.dir)
    assert nxt.current_run_id == "run_0002" and nxt.dir == exp.dir
    assert nxt.status()["status"] == "Running"
    nxt.log_metrics({"loss": 0.5})
    assert [r["loss"] for r in nxt.load_metrics_dict()] == [0.5]
    assert [r["loss"] for r in nxt.load_table("run_0001")] == [1.0]
    with nxt:
        pass
    history = nxt.status()["history"]
    assert [(h["run_id"], h["status"]) for h in history] == [("run_0001", "Finished")]


def test_gpu_ids_recorded_and_exported_before_cuda_loads(tmp_path):
    code = textwrap.dedent("""
        import os
        from expman import Experiment
        exp = Experiment(name="gpu", command="x", base_dir=".", gpu_ids=[1, 3])
        print(os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"))
        exp.set_finished()
    """)
    proc = run_script(code, tmp_path)
    assert proc.stdout.split() == ["1,3", "PCI_BUS_ID"]
    (exp_dir,) = experiment_dirs(tmp_path)
    assert read_json(exp_dir / "config.json")["gpu_ids"] == [1, 3]


def test_gpu_ids_leave_an_existing_cuda_visible_devices_alone(tmp_path):
    code = textwrap.dedent("""
        import os
        import numpy as np
        from expman import Experiment
        exp = Experiment(name="gpu", command="x", base_dir=".", gpu_ids=[np.int64(2)])
        print(os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"))
    """)
    proc = run_script(code, tmp_path, env=clean_env(CUDA_VISIBLE_DEVICES="0"))
    assert proc.stdout.split() == ["0", "None"]
    (exp_dir,) = experiment_dirs(tmp_path)
    assert read_json(exp_dir / "config.json")["gpu_ids"] == [2]


def test_gpu_ids_auto_needs_the_gpu_feature(tmp_path):
    if "gpu" in expman.features():
        pytest.skip("this build has the gpu feature")
    with pytest.raises(expman.UnsupportedError, match="gpu") as info:
        Experiment(name="auto", command="x", base_dir=tmp_path, gpu_ids="auto")
    assert "EXPMAN_FEATURES=gpu" in str(info.value)
    assert not experiment_dirs(tmp_path)  # refused before anything was created


def test_gpu_ids_auto_without_nvml_says_what_to_do_instead(tmp_path, monkeypatch):
    """Without NVML the error said only that NVML was missing; it now names the ways out."""
    if "gpu" not in expman.features():
        pytest.skip("this build lacks the gpu feature")
    monkeypatch.delenv("EXPMAN_GPU_INVENTORY", raising=False)
    try:
        expman.pick_gpus(1)
    except expman.InvalidStateError:
        pass
    else:
        pytest.skip("this machine has a GPU")
    with pytest.raises(expman.InvalidStateError) as info:
        Experiment(name="auto", command="x", base_dir=tmp_path, gpu_ids="auto")
    message = str(info.value)
    assert "gpu_ids=[0, 1]" in message and "EXPMAN_GPU_INVENTORY" in message, message


def test_log_metrics_writes_one_row_with_step(exp):
    exp.log_metrics({"loss": 0.5, "acc": 0.8}, step=3)
    exp.log_metrics({"loss": 0.4})
    header, rows = read_csv_rows(exp.metrics_path)
    assert header == ["timestamp", "run_id", "step", "loss", "acc"]
    assert [r[2:] for r in rows] == [["3", "0.5", "0.8"], ["", "0.4", ""]]


def test_named_tables(exp):
    progress = exp.table("progress")
    assert exp.table("progress") is progress
    for i in range(3):
        progress.upd_row(step=i, pct=i / 2)
        progress.save_row()
    exp.upd_row(epoch=1)
    exp.save_row()
    assert [r["step"] for r in progress.load_dicts()] == [0, 1, 2]
    assert {r["run_id"] for r in progress.load_dicts()} == {"run_0001"}
    assert (exp.dir / "metrics" / "progress.csv").exists()
    assert [r["epoch"] for r in exp.load_metrics_dict()] == [1]
    progress.sync()
    pd = pytest.importorskip("pandas")
    df = progress.load_df()
    assert df["pct"].tolist() == [0.0, 0.5, 1.0]
    assert isinstance(df, pd.DataFrame)


def test_identity_and_logs(exp):
    assert exp.name == "t" and exp.run_id == exp.current_run_id == "run_0001"
    assert exp.dir.is_dir() and exp.dir.name.startswith("t_")
    assert "run_0001" in repr(exp)
    exp.append_log("训练开始, epoch 1")
    log = (exp.dir / "logs" / "experiment.log").read_text(encoding="utf-8")
    assert "训练开始, epoch 1" in log and "run_0001" in log


def test_set_sync_modes(exp):
    for mode, kwargs in (("every_row", {}), ("interval", {"interval": 0.5}),
                         ("write_through", {})):
        exp.set_sync(mode, **kwargs)
        exp.log_metrics({"mode": mode})
    with pytest.raises(ValueError, match="sync mode"):
        exp.set_sync("sometimes")
    assert [r["mode"] for r in exp.load_metrics_dict()] == ["every_row", "interval",
                                                            "write_through"]


def test_seed_import_path_is_the_same_class():
    from experiment_manager.core.experiment import Experiment as Seed

    assert Seed is Experiment


def test_load_metrics_df_without_pandas_says_what_to_install(tmp_path):
    code = textwrap.dedent("""
        import sys
        sys.modules["pandas"] = None  # as if pandas were not installed
        from expman import Experiment
        exp = Experiment(name="nopandas", command="x", base_dir=".")
        exp.upd_row(a=1.0)
        exp.save_row()
        print(exp.load_metrics_dict()[0]["a"])
        try:
            exp.load_metrics_df()
        except ImportError as e:
            print("ImportError:", e)
    """)
    proc = run_script(code, tmp_path)
    assert "1.0" in proc.stdout
    assert "ImportError:" in proc.stdout and "pip install pandas" in proc.stdout


def test_atexit_survives_an_unreadable_status_and_marks_the_other_runs(tmp_path):
    """A status.json that holds `null` (or anything not an object) makes the exit hook report
    that file on stderr; it raises nothing, and the runs after it are still marked."""
    code = textwrap.dedent("""
        import sys
        from expman import Experiment
        broken = Experiment(name="broken", command="x", base_dir=sys.argv[1])
        fine = Experiment(name="fine", command="x", base_dir=sys.argv[1])
        (broken.dir / "status.json").write_text("null")
        print(broken.dir)
    """)
    script = tmp_path / "hook.py"
    script.write_text(code, encoding="utf-8")
    base = tmp_path / "exps"
    from conftest import run_python

    proc = run_python([str(script), str(base)], tmp_path)
    broken_dir = proc.stdout.strip()
    (fine_dir,) = [d for d in experiment_dirs(base) if str(d) != broken_dir]
    assert status_of(fine_dir)["status"] == "Finished", proc.stderr
    assert "Traceback" not in proc.stderr and "AttributeError" not in proc.stderr, proc.stderr
    assert os.path.join(broken_dir, "status.json") in proc.stderr, proc.stderr
    assert "not valid expman JSON" in proc.stderr, proc.stderr


@pytest.mark.parametrize("content", ["null", "[1, 2]", "{\"status\": ", "\"Running\"", "\xff"])
def test_unreadable_status_is_a_corrupt_error_naming_the_file(exp, content):
    path = exp.dir / "status.json"
    good = path.read_bytes()
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(expman.CorruptError) as info:
        exp.status()
    assert str(path) in str(info.value)
    assert "fix or restore this file" in str(info.value)
    # The library reads it the same way.
    with pytest.raises(expman.CorruptError, match="status.json"):
        exp.set_finished()
    path.write_bytes(good)  # so this process's own exit hook finds a run to mark


def test_attach_to_a_run_that_does_not_exist_is_refused(exp, tmp_path):
    """Neither Experiment.attach nor the scheduler's variables create a run nobody started."""
    with pytest.raises(expman.NotFoundError) as info:
        Experiment.attach(exp.dir, "run_0007")
    assert "run_0007" in str(info.value) and str(exp.dir) in str(info.value)
    code = textwrap.dedent("""
        import expman
        try:
            expman.Experiment(name="job", command="x", base_dir="elsewhere")
        except expman.NotFoundError as e:
            print("refused:", e)
    """)
    proc = run_script(code, tmp_path, env=clean_env(EXPMAN_EXPERIMENT_DIR=exp.dir,
                                                    EXPMAN_RUN_ID="run_0007"))
    assert proc.stdout.startswith("refused:"), proc.stdout + proc.stderr
    assert "EXPMAN_RUN_ID=run_0007" in proc.stdout and "unset" in proc.stdout
    assert not (tmp_path / "elsewhere").exists()
    assert not (exp.dir / "logs" / "run_0007.log").exists()
    assert not (exp.dir / "metrics" / "run_0007.csv").exists()


def test_a_retry_of_a_run_started_by_hand_runs_where_it_was_started(tmp_path):
    """A script started by hand recorded no working directory, so a retry (`EXP retry`, the
    UI's Rerun) ran its command in the retrying process's directory: `python job.py` failed
    with "can't open file" there. The directory it was started in is recorded now."""
    import subprocess
    import sys
    import time

    from test_arrow import exp_binary

    work = tmp_path / "work"
    work.mkdir()
    (work / "job.py").write_text(textwrap.dedent(f"""
        import os
        from expman import Experiment
        exp = Experiment(name="hand", command={sys.executable + " job.py"!r}, base_dir="exps")
        with open("ran.txt", "a") as out:
            out.write(os.getcwd() + "\\n")
        exp.upd_row(step=1); exp.save_row()
    """))
    proc = subprocess.run([sys.executable, "job.py"], cwd=work, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (exp_dir,) = experiment_dirs(work / "exps")
    assert read_json(os.path.join(exp_dir, "config.json"))["launch"]["cwd"] == str(work)

    retry = subprocess.run([str(exp_binary()), "retry", exp_dir], cwd=tmp_path,
                           env=clean_env(), capture_output=True, text=True, timeout=120)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    deadline = time.monotonic() + 60
    while True:
        status = status_of(exp_dir)
        if status.get("run_id") == "run_0002" and status["status"] in ("Finished", "Error"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["status"] == "Finished", status
    assert (work / "ran.txt").read_text().splitlines() == [str(work)] * 2
    assert not (tmp_path / "ran.txt").exists()


def test_atexit_leaves_a_run_handed_to_another_process_alone(tmp_path):
    """`set_running(pid)` says another process does the run; the creating script's exit marked
    it Finished all the same (and the listing's Error for a gone process flipped to Finished)."""
    import subprocess
    import sys

    worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)
    try:
        run_script(SCRIPT_PREFIX + f"exp.set_running(pid={worker.pid})\n", tmp_path)
        (exp_dir,) = experiment_dirs(tmp_path)
        status = status_of(exp_dir)
        assert status["status"] == "Running" and status["pid"] == worker.pid, status
    finally:
        worker.communicate(timeout=60)
