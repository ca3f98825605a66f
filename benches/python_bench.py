#!/usr/bin/env python3
"""P1: the Python hot path, `upd_row(**10 floats)` + `save_row()`, against two baselines.

    python benches/python_bench.py [--rows 100000] [--repeat 3] [--dir DIR] [--profile]

Measured in the same run, on the same machine and directory, one after another and repeated
(the median of the repeats is reported):

* expman: this package (one library call per row, the line appended with one write(2) under
  the table's lock).
* (a) seed-style: a plain-Python implementation written the way the seed framework's CSV
  logger works: the `csv` module, the file opened in append mode on every save, and the
  whole file rewritten when a row brings a new field.
* (b) csv.writer on a file kept open, flushed after every row (so, like expman, a killed
  process loses no saved row), with the same timestamp and run_id columns.

Goals (issue 3): expman >= 3.5x faster than (a) and >= 1.8x faster than (b).
`--profile` also prints where expman's time goes (row build, upd_row, packing, the ctypes call,
the library) and the binding's own cost (goal of issue 15: <= 3 µs per row beyond the row
build and the library's write).
"""

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
import timeit
from datetime import datetime
from pathlib import Path

FIELDS = (
    "loss",
    "acc",
    "val_loss",
    "val_acc",
    "lr",
    "grad_norm",
    "f1",
    "precision",
    "recall",
    "epoch_time",
)


class SeedStyleLogger:
    """(a) The seed framework's CSV logger, in plain Python.

    As in the seed: `upd_row` merges fields into the current row; `save_row` adds `timestamp`
    and `run_id`, appends the row with `csv.DictWriter` to a file opened in append mode for
    that one save, and when the row has a field the header lacks, reads the whole file and
    writes it again with the wider header.
    """

    def __init__(self, path, run_id):
        self.path = Path(path)
        self.run_id = run_id
        self.fieldnames = []
        self.current_row = {}

    def upd_row(self, **fields):
        self.current_row.update(fields)

    def save_row(self):
        if not self.current_row:
            return
        row = {
            "timestamp": datetime.now().isoformat(),
            "run_id": self.run_id,
            **self.current_row,
        }
        new_fields = [k for k in row if k not in self.fieldnames]
        if new_fields:
            self.fieldnames.extend(new_fields)
            rows = []
            if self.path.exists():
                with open(self.path, newline="") as f:
                    rows = list(csv.DictReader(f))
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fieldnames)
                writer.writeheader()
                writer.writerows(rows)
                writer.writerow(row)
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fieldnames).writerow(row)
        self.current_row = {}


class OpenWriterLogger:
    """(b) `csv.writer` on a file opened once, one flush per row."""

    def __init__(self, path, run_id):
        self.file = open(path, "w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["timestamp", "run_id", *FIELDS])
        self.run_id = run_id
        self.current_row = {}

    def upd_row(self, **fields):
        self.current_row.update(fields)

    def save_row(self):
        row = self.current_row
        self.writer.writerow(
            [datetime.now().isoformat(), self.run_id, *[row.get(f) for f in FIELDS]]
        )
        self.file.flush()
        self.current_row = {}

    def close(self):
        self.file.close()


def values(n):
    """Row values, made before timing so that no implementation pays for them."""
    return [tuple((r + 1.0) / (f + 3.0) for f in range(len(FIELDS))) for r in range(n)]


def drive(logger, rows):
    """The measured loop: the same code for every implementation.

    Returns (wall seconds, CPU seconds of this process). CPU time (user + system, so the
    write(2) calls count) is the steadier figure on a machine busy with other work.
    """
    upd_row, save_row = logger.upd_row, logger.save_row
    start, cpu_start = time.perf_counter(), time.process_time()
    for a, b, c, d, e, f, g, h, i, j in rows:
        upd_row(
            loss=a,
            acc=b,
            val_loss=c,
            val_acc=d,
            lr=e,
            grad_norm=f,
            f1=g,
            precision=h,
            recall=i,
            epoch_time=j,
        )
        save_row()
    return time.perf_counter() - start, time.process_time() - cpu_start


def count_rows(path):
    with open(path, newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def run_expman(workdir, rows, tag):
    from expman import Experiment

    exp = Experiment(name=f"bench_{tag}", command="python_bench.py", base_dir=workdir)
    try:
        seconds = drive(exp, rows)
        assert count_rows(exp.metrics_path) == len(rows), "expman lost rows"
        exp.set_finished()
    finally:
        exp.close()
    return seconds


def run_seed(workdir, rows, tag):
    path = Path(workdir) / f"seed_{tag}.csv"
    seconds = drive(SeedStyleLogger(path, "run_0001"), rows)
    assert count_rows(path) == len(rows), "seed-style lost rows"
    return seconds


def run_open_writer(workdir, rows, tag):
    path = Path(workdir) / f"writer_{tag}.csv"
    logger = OpenWriterLogger(path, "run_0001")
    try:
        seconds = drive(logger, rows)
    finally:
        logger.close()
    assert count_rows(path) == len(rows), "csv.writer lost rows"
    return seconds


def profile(workdir):
    """Where expman's time per row goes, each part timed on its own (best of 7), and the
    binding's own cost: the full ``upd_row`` + ``save_row`` less the row build and the
    library's write (goal of issue 15: <= 3 µs)."""
    import ctypes
    import struct

    from expman import Experiment, _ffi, _rows

    exp = Experiment(name="bench_profile", command="python_bench.py", base_dir=workdir,
                     capture_output=False, system_metrics=False)
    row = dict(zip(FIELDS, values(1)[0]))
    exp.upd_row(**row)
    exp.save_row()  # builds the plan for this row shape
    _, _, _, ids, pack, _, n = exp._last
    data = pack(*row.values())
    n = 200_000
    env = {
        "exp": exp, "row": row, "ids": ids, "data": data, "pack": pack, "t": exp._t,
        "n10": ctypes.c_size_t(len(row)), "n0": ctypes.c_size_t(0),
        "fast": _rows._save_f64, "checked": _ffi.lib.expman_table_save_row_f64,
        "lib": _ffi.lib, "last": exp._last, "struct": struct,
    }

    def per_call(stmt, setup="pass", number=n):
        best = min(timeit.repeat(stmt, setup, globals=env, number=number, repeat=7))
        return best / number * 1e6

    kwargs = ", ".join(f"{k}={v!r}" for k, v in row.items())
    build = per_call(f"f({kwargs})", "def f(**kw): return kw")
    upd = per_call(f"exp.upd_row({kwargs}); exp._row = {{}}")
    shape = per_call("k = tuple(row); t = tuple(map(type, row.values())); "
                     "k != last[0] or t != last[1]")
    packing = per_call("pack(*row.values())")
    call_floor = per_call("fast(t, ids, data, n0)")  # n = 0: the call, no row to write
    call_checked = per_call("checked(t, ids, data, n0)")
    write = per_call("fast(t, ids, data, n10)", number=n // 2)
    full = per_call(f"exp.upd_row({kwargs}); exp.save_row()", number=n // 2)
    exp.set_finished()
    exp.close()
    library = write - call_floor
    own = full - build - library
    print("\nwhere the time goes (best of 7, µs per row):")
    for label, us in [
        ("row build: f(**10 floats) returning its dict", build),
        ("upd_row(**10 floats), beyond the row build", upd - build),
        ("save_row's shape check (tuple of keys and of types)", shape),
        ("packing: struct.pack of 10 doubles", packing),
        ("the ctypes call, no argtypes (the hot path now)", call_floor),
        ("  baseline: the same call through argtypes", call_checked),
        ("the library: saving the row (call minus empty call)", library),
        ("full upd_row + save_row", full),
        ("binding's own cost: full - row build - library", own),
    ]:
        print(f"  {label:55s} {us:6.2f}")
    print(f"  goal (issue 15): binding's own cost <= 3 µs: {'met' if own <= 3 else 'NOT met'}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default=".", help="where to write (a temporary directory inside it; default: .)")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()

    impls = [
        ("expman", run_expman),
        ("(a) seed-style csv, reopen per row", run_seed),
        ("(b) csv.writer, flush per row", run_open_writer),
    ]
    rows = values(args.rows)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="expman-pybench-") as workdir:
        # Warm up caches and imports with a short run of each.
        for _, run in impls:
            run(workdir, rows[:2000], "warmup")
        wall = {name: [] for name, _ in impls}
        cpu = {name: [] for name, _ in impls}
        for rep in range(args.repeat):
            for name, run in impls:
                w, c = run(workdir, rows, f"r{rep}")
                wall[name].append(w / args.rows * 1e6)
                cpu[name].append(c / args.rows * 1e6)
        if args.profile:
            profile(workdir)
        fs = os.statvfs(workdir)
        where = f"{workdir} ({fs.f_bsize}-byte blocks)"

    print(f"\nrows: {args.rows} x {len(FIELDS)} float fields, median of {args.repeat} runs")
    print(f"python {sys.version.split()[0]}, writing under {where}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    met = True
    for title, times in (("wall clock", wall), ("CPU time (user + system)", cpu)):
        median = {name: statistics.median(ts) for name, ts in times.items()}
        ours = median["expman"]
        print(f"{title}:")
        for name, us in median.items():
            spread = ", ".join(f"{t:.2f}" for t in times[name])
            ratio = "" if name == "expman" else f"   expman is {us / ours:.2f}x faster"
            print(f"  {name:36s} {us:7.2f} µs/row  [{spread}]{ratio}")
        goal_a = median["(a) seed-style csv, reopen per row"] / ours >= 3.5
        goal_b = median["(b) csv.writer, flush per row"] / ours >= 1.8
        print(f"  goals: >= 3.5x vs (a): {'met' if goal_a else 'NOT met'}; "
              f">= 1.8x vs (b): {'met' if goal_b else 'NOT met'}")
        met = met and goal_a and goal_b
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
