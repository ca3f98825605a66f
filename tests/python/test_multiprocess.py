"""Many processes log into the same tables at once: every saved row is there exactly once."""

import multiprocessing
from collections import Counter

from expman import Experiment

from conftest import read_csv_rows

WORKERS = 4
ROWS = 300


def worker(exp_dir, run_id, worker_id, rows):
    """One process: attaches to the run and writes `rows` rows to its table and a named one."""
    exp = Experiment.attach(exp_dir, run_id)
    progress = exp.table("progress")
    for i in range(rows):
        fields = {"worker": worker_id, "i": i, "loss": 1.0 / (i + 1)}
        if i == rows // 2:
            fields[f"only_worker_{worker_id}"] = True  # widens the header mid-run, concurrently
        if i % 50 == 0:
            fields["note"] = f"w{worker_id}, row {i}: \"quoted\""
        exp.upd_row(**fields)
        exp.save_row()
        progress.upd_row(worker=worker_id, i=i)
        progress.save_row()
    exp.close()


def spawn_context():
    # spawn, not fork: each worker loads the library fresh, as separate programs would.
    return multiprocessing.get_context("spawn")


def test_processes_append_to_the_same_tables(tmp_path):
    exp = Experiment(name="multi", command="x", base_dir=tmp_path)
    ctx = spawn_context()
    procs = [ctx.Process(target=worker, args=(str(exp.dir), exp.current_run_id, w, ROWS))
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0

    rows = exp.load_metrics_dict()
    seen = Counter((r["worker"], r["i"]) for r in rows)
    assert len(rows) == WORKERS * ROWS
    assert set(seen.values()) == {1}
    assert set(seen) == {(w, i) for w in range(WORKERS) for i in range(ROWS)}
    header, raw = read_csv_rows(exp.metrics_path)
    for w in range(WORKERS):
        assert f"only_worker_{w}" in header
        flagged = [r for r in rows if r[f"only_worker_{w}"] is True]
        assert [(r["worker"], r["i"]) for r in flagged] == [(w, ROWS // 2)]
    notes = [r["note"] for r in rows if r["note"] is not None]
    assert len(notes) == WORKERS * (ROWS // 50) and all('"quoted"' in n for n in notes)
    # Each worker's rows are in its own order.
    for w in range(WORKERS):
        assert [r["i"] for r in rows if r["worker"] == w] == list(range(ROWS))

    progress = exp.table("progress").load_dicts()
    assert Counter((r["worker"], r["i"]) for r in progress) == Counter(seen.keys())
    exp.set_finished()


def test_processes_racing_to_open_get_distinct_runs(tmp_path):
    exp = Experiment(name="race", command="x", base_dir=tmp_path)
    exp.set_finished()
    ctx = spawn_context()
    with ctx.Pool(WORKERS) as pool:
        run_ids = pool.map(_open_and_log, [str(exp.dir)] * (2 * WORKERS))
    assert sorted(run_ids) == [f"run_{i:04d}" for i in range(2, 2 + 2 * WORKERS)]
    for run_id in run_ids:
        assert [r["opened"] for r in exp.load_table(run_id)] == [run_id]


def _open_and_log(exp_dir):
    exp = Experiment.open(exp_dir)
    exp.log_metrics({"opened": exp.current_run_id})
    exp.set_finished()
    exp.close()
    return exp.current_run_id


def test_threads_each_with_a_table(exp):
    import threading

    def log(n):
        table = exp.table(f"thread_{n}")
        for i in range(200):
            table.upd_row(thread=n, i=i)
            table.save_row()

    threads = [threading.Thread(target=log, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        assert [r["i"] for r in exp.table(f"thread_{n}").load_dicts()] == list(range(200))
