"""Logging from Python when something goes wrong mid-row, as researchers' code meets it: a value
the library refuses, Ctrl-C as a row is written, rows from several threads at once, and the
wandb drop-in after a refused log. Each reads the table back to check what was written."""

import sys
import threading

import pytest

import expman.wandb as wandb
from conftest import read_csv_rows, read_json


def test_a_refused_value_in_log_metrics_drops_only_that_row(exp):
    exp.log_metrics({"loss": 1.0}, step=0)
    with pytest.raises(OverflowError, match="n_seen"):
        exp.log_metrics({"n_seen": 2**63}, step=1)  # does not fit a 64-bit integer
    for step in (2, 3):
        exp.log_metrics({"loss": 0.5}, step=step)
    rows = exp.load_metrics_dict()
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 1.0), (2, 0.5), (3, 0.5)]


def test_upd_row_save_row_keeps_a_refused_row_pending_as_documented(exp):
    exp.upd_row(step=0, n=2**63)
    with pytest.raises(OverflowError):
        exp.save_row()
    exp.upd_row(n=5)  # fix the field and save again
    exp.save_row()
    assert [(r["step"], r["n"]) for r in exp.load_metrics_dict()] == [(0, 5)]


def test_ctrl_c_as_a_row_is_written_does_not_write_it_again(exp):
    # The KeyboardInterrupt lands right after the row reached the file (a line trace raises
    # it at the first line run once the file has grown): the next save must not repeat it.
    exp.upd_row(epoch=0, loss=1.0)
    exp.save_row()
    path = exp.metrics_path
    size = path.stat().st_size

    def local(frame, event, arg):
        if event == "line" and path.stat().st_size > size:
            sys.settrace(None)
            raise KeyboardInterrupt
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename.endswith("_rows.py") else None

    exp.upd_row(epoch=1, loss=0.5)
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            exp.save_row()
    finally:
        sys.settrace(None)
    exp.upd_row(test_acc=0.9)
    exp.save_row()
    rows = exp.load_metrics_dict()
    assert [(r["epoch"], r["test_acc"]) for r in rows] == [(0, None), (1, None), (None, 0.9)]


def test_log_metrics_from_eight_threads_writes_each_row_once_and_whole(exp):
    per_thread = 400

    def work(t):
        for k in range(per_thread):
            exp.log_metrics({"thread": t, "k": k, f"val_t{t}": float(k), "tag": f"t{t}"})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = exp.load_metrics_dict()
    assert len(rows) == 8 * per_thread
    assert len({(r["thread"], r["k"]) for r in rows}) == 8 * per_thread
    for r in rows:
        mine = f"val_t{r['thread']}"
        assert r["tag"] == f"t{r['thread']}" and r[mine] == float(r["k"]), r
        assert all(r[f"val_t{t}"] is None for t in range(8) if f"val_t{t}" != mine), r


def test_wandb_log_refused_once_then_logs_and_finishes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = wandb.init(project="faults", dir=str(tmp_path))
    wandb.log({"loss": 1.0})
    with pytest.raises(OverflowError):
        wandb.log({"tokens": 2**64})
    wandb.log({"loss": 0.5})
    wandb.finish()
    exp = run.experiment
    assert read_json(exp.dir / "status.json")["status"] == "Finished"
    header, rows = read_csv_rows(exp.metrics_path)
    assert [row[header.index("loss")] for row in rows] == ["1.0", "0.5"]


@pytest.mark.parametrize("child_raises", [False, True])
def test_a_child_forked_inside_with_does_not_end_the_parents_run(tmp_path, child_raises):
    import os

    from expman import Experiment

    with Experiment(name="forks", command="x", base_dir=tmp_path) as exp:
        pid = os.fork()
        if pid == 0:  # the child leaves the block as it ends: normally, or by an exception
            code = 0
            try:
                with exp:
                    exp.log_metrics({"from_child": 1})
                    if child_raises:
                        raise RuntimeError("child boom")
            except RuntimeError:
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == (3 if child_raises else 0)
        assert exp.status()["status"] == "Running"
        exp.log_metrics({"from_parent": 2})
    assert read_json(exp.dir / "status.json")["status"] == "Finished"
    header, rows = read_csv_rows(exp.metrics_path)
    assert len(rows) == 2


def test_the_error_after_close_says_how_to_reach_this_run(exp):
    from expman import Experiment, InvalidStateError

    exp.log_metrics({"loss": 1.0})
    exp.close()
    with pytest.raises(InvalidStateError) as info:
        exp.set_finished()
    message = str(info.value)
    assert "Experiment.attach(" in message and "'run_0001'" in message, message
    # Doing what it says ends this run (not a new one).
    code = message.split("; to log into or end this run, ", 1)[1].split("; Experiment.open", 1)[0]
    again = eval(code, {"Experiment": Experiment})  # noqa: S307 - the message's own call
    again.log_metrics({"loss": 0.5})
    again.set_finished()
    assert [r["loss"] for r in again.load_metrics_dict()] == [1.0, 0.5]
    again.close()
    status = read_json(exp.dir / "status.json")
    assert (status["run_id"], status["status"]) == ("run_0001", "Finished")


def test_a_run_ended_after_a_later_one_started_changes_only_its_own_record(tmp_path):
    from expman import Experiment

    a = Experiment(name="seq", command="x", base_dir=tmp_path)
    b = Experiment.open(a.dir)
    b.set_error("oom")
    assert (a.state(), b.state()) == ("Running", "Error")
    a.set_finished()
    assert (a.state(), b.state()) == ("Finished", "Error")
    status = read_json(a.dir / "status.json")
    assert (status["run_id"], status["status"], status["error"]) == ("run_0002", "Error", "oom")
    assert [(r["run_id"], r["status"]) for r in status["history"]] == [("run_0001", "Finished")]
    a.close()
    b.close()
