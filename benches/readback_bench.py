#!/usr/bin/env python3
"""Issue 16: reading back from Python is never slower than pandas, with or without pyarrow.

    python benches/readback_bench.py [--rows 1000000] [--small-rows 100000] [--runs 1000]
                                     [--run-rows 10000] [--repeat 5] [--dir DIR]

Every figure is printed beside its baseline, measured in the same process, interleaved with it
and repeated (medians), with the CPU time the process spent (all threads). The exit status is 1
when a goal is missed.

Without pyarrow (a child process in which ``import pyarrow`` fails, as on an install without
the extra): on a table of ``--small-rows`` rows x 5 columns and one of ``--rows`` rows x 12
columns, both written by expman,

* ``exp.load_metrics_df()`` <= 1.0x ``pandas.read_csv(path)``, the frames equal;
* ``exp.load_metrics_dict()`` <= 1.0x ``list(csv.DictReader(open(path)))``.

With pyarrow, on the ``--rows`` x 12 table: ``load_metrics_df()`` at least 1.5x faster than
the faster of ``read_csv`` (C engine) and ``read_csv(engine="pyarrow")``, with where the time
goes (the library's parse into Arrow, the import into pyarrow, ``to_pandas``).

``expman.load_experiments()`` over ``--runs`` runs x ``--run-rows`` rows into pandas: < 1 s.

The tables are written once under ``--dir`` and reused by later runs.
"""

import argparse
import csv
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()

# The 1,000-run directory is the one the Arrow bench reads (same rows, same cache under --dir).
sys.path.insert(0, str(HERE.parent))
from arrow_bench import make_many  # noqa: E402


def make_table(base, rows, wide):
    """A run's table of ``rows`` rows, 5 columns (timestamp, run_id, epoch, loss, acc) or 12
    (``wide``: 2 int, 6 float, 1 text, 1 bool), written by expman once and reused."""
    tag = f"{'wide' if wide else 'narrow'}-{rows}"
    marker = base / f"{tag}.json"
    if marker.exists():
        path = Path(json.loads(marker.read_text())["path"])
        if path.exists():
            return path
    import random

    from expman import Experiment

    shutil.rmtree(base / tag, ignore_errors=True)
    exp = Experiment(name=tag, command="readback_bench.py", base_dir=base / tag)
    r = random.Random(7).random
    upd, save = exp.upd_row, exp.save_row
    for row in range(rows):
        if wide:
            upd(epoch=row // 1000, step=row, loss=r(), val_loss=r(), acc=r(), val_acc=r(),
                lr=r(), grad_norm=r(), phase="eval" if row % 10 == 0 else "train",
                is_best=row % 97 == 0)
        else:
            upd(epoch=row // 1000, loss=r(), acc=r())
        save()
    exp.set_finished()
    path = exp.metrics_path
    exp.close()
    marker.write_text(json.dumps({"path": str(path)}))
    return path


class Runs(list):
    """Wall seconds of each run of one case, and in ``cpu`` the CPU seconds the process spent
    in it (all threads: both expman and pandas 3's C engine parse on several)."""

    def __init__(self):
        super().__init__()
        self.cpu = []


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(cases, repeat):
    """{label: Runs}, the cases interleaved so that load changes hit all."""
    times = {label: Runs() for label, _ in cases}
    for _ in range(repeat):
        for label, fn in cases:
            gc.collect()
            cpu = cpu_seconds()
            start = time.perf_counter()
            result = fn()
            times[label].append(time.perf_counter() - start)
            times[label].cpu.append(cpu_seconds() - cpu)
            del result
    return times


def show(times, label, width=58):
    ts = times[label]
    spread = ", ".join(f"{t * 1e3:.0f}" for t in ts)
    print(f"  {label:<{width}} median {statistics.median(ts) * 1e3:8.1f} ms  "
          f"cpu {statistics.median(ts.cpu) * 1e3:6.0f} ms  [{spread}]")


class Goals:
    def __init__(self):
        self.missed = []

    def check(self, what, ok, detail):
        print(f"  goal: {what}: {'met' if ok else 'MISSED'} ({detail})")
        if not ok:
            self.missed.append(what)


def experiment_for(path):
    """The experiment that wrote ``path`` (``.../<exp dir>/metrics/run_0001.csv``), attached."""
    from expman import Experiment

    return Experiment.attach(str(path.parent.parent), path.stem)


def checked_table(base, rows, wide):
    """The bench table (see make_table), its experiment attached, after checking that
    ``load_metrics_df()`` equals ``read_csv``'s frame: (path, experiment, columns, MB)."""
    import pandas as pd

    path = make_table(base, rows, wide)
    exp = experiment_for(path)
    ours = exp.load_metrics_df()
    pd.testing.assert_frame_equal(ours, pd.read_csv(path))
    return path, exp, ours.shape[1], path.stat().st_size / 1e6


def without_pyarrow(args, goals):
    """The no-pyarrow goals (this process must not have pyarrow)."""
    import pandas as pd

    import expman.arrow

    assert not expman.arrow.available(), "pyarrow is importable here"
    for rows, wide in ((args.small_rows, False), (args.rows, True)):
        path, exp, columns, mb = checked_table(args.dir, rows, wide)
        print(f"{rows} rows x {columns} columns ({mb:.0f} MB), no pyarrow, "
              f"pandas {pd.__version__}:")
        df_label = "exp.load_metrics_df()"
        rc_label = "pandas.read_csv(path)"
        dict_label = "exp.load_metrics_dict()"
        dr_label = "list(csv.DictReader(open(path)))"

        def dict_reader():
            with open(path, newline="") as f:
                return list(csv.DictReader(f))

        times = measure([(df_label, exp.load_metrics_df), (rc_label, lambda: pd.read_csv(path))],
                        args.repeat)
        dict_repeat = args.repeat if rows <= args.small_rows else max(1, args.repeat // 2)
        times.update(measure([(dict_label, exp.load_metrics_dict), (dr_label, dict_reader)],
                             dict_repeat))
        for label in (df_label, rc_label, dict_label, dr_label):
            show(times, label)
        ratio = statistics.median(times[df_label]) / statistics.median(times[rc_label])
        goals.check(f"load_metrics_df <= 1.0x read_csv at {rows} rows", ratio <= 1.0,
                    f"{ratio:.2f}x read_csv's time")
        ratio = statistics.median(times[dict_label]) / statistics.median(times[dr_label])
        goals.check(f"load_metrics_dict <= 1.0x csv.DictReader at {rows} rows", ratio <= 1.0,
                    f"{ratio:.2f}x DictReader's time")
        exp.close()


def one_thread(fn):
    """``fn()`` with the library limited to one thread (it reads EXPMAN_THREADS per call): the
    parse's speed per core. (pandas 3's C engine parses on several threads too: its CPU time
    beside its wall time shows how many it kept busy.)"""
    old = os.environ.get("EXPMAN_THREADS")
    os.environ["EXPMAN_THREADS"] = "1"
    try:
        return fn()
    finally:
        if old is None:
            del os.environ["EXPMAN_THREADS"]
        else:
            os.environ["EXPMAN_THREADS"] = old


def with_pyarrow(args, goals):
    import pandas as pd
    import pyarrow as pa

    import expman
    import expman.arrow

    path, exp, columns, mb = checked_table(args.dir, args.rows, True)
    print(f"{args.rows} rows x {columns} columns ({mb:.0f} MB), pyarrow {pa.__version__}, "
          f"pandas {pd.__version__}:")
    ours = "exp.load_metrics_df() (Arrow path)"
    c_engine = "pandas.read_csv(path) (C engine)"
    pa_engine = 'pandas.read_csv(path, engine="pyarrow")'
    table = expman.arrow.read_table(path)
    times = measure([
        (ours, exp.load_metrics_df),
        (c_engine, lambda: pd.read_csv(path)),
        (pa_engine, lambda: pd.read_csv(path, engine="pyarrow")),
        ("  where: expman.arrow.read_table (parse + import)", lambda: expman.arrow.read_table(path)),
        ("  where: expman.arrow.to_pandas of that table", lambda: expman.arrow.to_pandas(table)),
        ("  per core: expman.arrow.read_table on 1 thread", lambda: one_thread(
            lambda: expman.arrow.read_table(path))),
    ], args.repeat)
    del table
    for label in times:
        show(times, label)
    ours_s = statistics.median(times[ours])
    best = min(statistics.median(times[c_engine]), statistics.median(times[pa_engine]))
    goals.check("load_metrics_df with pyarrow >= 1.5x faster than the faster read_csv",
                best / ours_s >= 1.5, f"{best / ours_s:.2f}x faster than {best * 1e3:.0f} ms")
    exp.close()

    root = make_many(args.dir, args.runs, args.run_rows)
    print(f"{args.runs} runs x {args.run_rows} rows, expman.load_experiments -> pandas:")
    label = "expman.load_experiments(root)"
    times = measure([
        (label, lambda: expman.load_experiments(root)),
        ("  where: expman.arrow.read_dir -> pyarrow.Table", lambda: expman.arrow.read_dir(root)),
    ], args.repeat)
    for name in times:
        show(times, name)
    median = statistics.median(times[label])
    goals.check("load_experiments < 1 s", median < 1.0, f"median {median:.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--run-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "expman-readback-bench")
    parser.add_argument("--part", choices=["all", "no-pyarrow", "pyarrow"], default="all",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    goals = Goals()
    if args.part == "no-pyarrow":
        sys.modules["pyarrow"] = None  # `import pyarrow` raises ImportError from here on
        without_pyarrow(args, goals)
        return 1 if goals.missed else 0

    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, medians of {args.repeat}")
    status = 0
    if args.part == "all":
        # A fresh interpreter, so pandas never saw pyarrow (its string dtype picks its storage
        # at import).
        child = subprocess.run([sys.executable, str(HERE), *sys.argv[1:], "--part", "no-pyarrow"])
        status = child.returncode
        if status not in (0, 1):
            print(f"the no-pyarrow part failed (exit status {status})")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        print("pyarrow is not installed: the pyarrow goals were not measured")
    else:
        with_pyarrow(args, goals)
    if goals.missed:
        print("missed: " + "; ".join(goals.missed))
    return 1 if goals.missed or status else 0


if __name__ == "__main__":
    sys.exit(main())
