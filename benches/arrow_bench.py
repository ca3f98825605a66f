#!/usr/bin/env python3
"""A1/A2 from Python: metrics into pandas and pyarrow through expman's Arrow path, against
pandas' and pyarrow's own CSV readers, in the same run.

    python benches/arrow_bench.py [--rows 1000000] [--runs 1000] [--run-rows 10000]
                                  [--repeat 5] [--dir DIR]

A1: one run of ``--rows`` rows x 12 columns (timestamp, run_id, 2 int, 6 float, 1 text,
1 bool), written by expman, into a pandas DataFrame:

* expman: ``load_metrics_df()``'s path with pyarrow installed (the library parses the file
  into Arrow buffers on all cores, pyarrow imports them through the C stream interface without
  a copy, ``expman.arrow.to_pandas`` converts);
* ``pandas.read_csv(path)`` (C engine) and ``pandas.read_csv(path, engine="pyarrow")``;
* for information: expman's column buffers (its path without pyarrow; here pandas converts
  the text to pyarrow strings) and ``pyarrow.csv.read_csv``.

The DataFrames are checked equal to ``pandas.read_csv``'s. Goal: expman faster than both
``read_csv`` engines.

A2: ``--runs`` experiments of one run of ``--run-rows`` rows (epoch, loss, acc; the same file
copied into every experiment) into one Arrow table with ``expman.arrow.read_dir``, and into
one DataFrame with ``expman.load_experiments``; for comparison, ``pyarrow.csv.read_csv`` of
every file plus ``pyarrow.concat_tables`` (without the experiment columns). Goal: < 1 s.

Each case runs ``--repeat`` times, interleaved with the others; the best and the median wall
time are reported, with the CPU time (all threads) of the best run. Exit status 1 when a goal
is missed.
"""

import argparse
import ctypes
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def make_wide(base, rows):
    """The A1 table, written once by expman and reused."""
    marker = base / f"wide-{rows}.json"
    if marker.exists():
        return Path(json.loads(marker.read_text())["path"])
    from expman import Experiment

    exp = Experiment(name="wide", command="arrow_bench.py", base_dir=base / f"wide-{rows}")
    import random

    rnd = random.Random(7)
    r = rnd.random
    for row in range(rows):
        exp.upd_row(epoch=row // 1000, step=row, loss=r(), val_loss=r(), acc=r(),
                    val_acc=r(), lr=r(), grad_norm=r(),
                    phase="eval" if row % 10 == 0 else "train", is_best=row % 97 == 0)
        exp.save_row()
    exp.set_finished()
    path = exp.metrics_path
    exp.close()
    marker.write_text(json.dumps({"path": str(path)}))
    return path


def make_many(base, runs, run_rows):
    """The A2 directory: one run written by expman, its experiment directory copied."""
    root = base / f"many-{runs}x{run_rows}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    from expman import Experiment

    seed = base / "many-seed"
    shutil.rmtree(seed, ignore_errors=True)
    exp = Experiment(name="sweep", command="arrow_bench.py", base_dir=seed, tags=["lr0"])
    import random

    rnd = random.Random(11)
    for row in range(run_rows):
        exp.upd_row(epoch=row, loss=rnd.random(), acc=rnd.random())
        exp.save_row()
    exp.set_finished()
    src = exp.dir
    exp.close()
    root.mkdir(parents=True)
    for i in range(runs):
        dst = root / f"sweep{i % 10}_2026-01-01__00-00-{i:04d}"
        shutil.copytree(src, dst)
        config = json.loads((dst / "config.json").read_text())
        config["name"] = f"sweep{i % 10}"
        config["tags"] = [f"lr{i % 3}"]
        (dst / "config.json").write_text(json.dumps(config))
    shutil.rmtree(seed)
    (root / ".complete").write_text("")
    return root


def plain_reader_df(path):
    """expman without pyarrow: the column buffers behind load_metrics_df()'s other path."""
    from expman._readback import read_columns

    return read_columns(path).to_dataframe()


def measure(cases, repeat):
    """{label: (best wall, median wall, CPU of the best)}, the cases interleaved."""
    times = {label: [] for label, _ in cases}
    for _ in range(repeat):
        for label, fn in cases:
            gc.collect()
            start, cpu = time.perf_counter(), time.process_time()
            result = fn()
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            del result
            times[label].append((wall, cpu))
    return {
        label: (min(t)[0], statistics.median(w for w, _ in t), min(t)[1])
        for label, t in times.items()
    }


def report(title, results, mb):
    print(title)
    for label, (best, median, cpu) in results.items():
        print(f"  {label:<52} best {best * 1e3:8.1f} ms  median {median * 1e3:8.1f} ms  "
              f"CPU {cpu * 1e3:8.1f} ms  {mb / best:6.0f} MB/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--run-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "expman-arrow-bench-py")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv

    import expman
    import expman.arrow

    print(f"expman {expman.library_version}, pandas {pd.__version__}, pyarrow {pa.__version__}, "
          f"{os.cpu_count()} cores")
    ok = True

    path = make_wide(args.dir, args.rows)
    mb = path.stat().st_size / 1e6
    expman_df = expman.arrow.to_pandas(expman.arrow.read_table(path))
    pd.testing.assert_frame_equal(expman_df, pd.read_csv(path))
    pd.testing.assert_frame_equal(expman_df, plain_reader_df(path))
    del expman_df
    label = "expman load_metrics_df (Arrow path)"
    a1 = measure([
        (label, lambda: expman.arrow.to_pandas(expman.arrow.read_table(path))),
        ("pandas.read_csv (C engine)", lambda: pd.read_csv(path)),
        ('pandas.read_csv(engine="pyarrow")', lambda: pd.read_csv(path, engine="pyarrow")),
        ("  expman.arrow.read_table -> pyarrow.Table", lambda: expman.arrow.read_table(path)),
        ("  pyarrow.csv.read_csv -> pyarrow.Table", lambda: pcsv.read_csv(path)),
    ], args.repeat)
    a1[" expman without pyarrow (column buffers)"] = measure(
        [("plain", lambda: plain_reader_df(path))], max(1, args.repeat // 3))["plain"]
    report(f"A1: {args.rows} rows x 12 columns, {mb:.0f} MB, into pandas", a1, mb)
    best = a1[label][0]
    others = [a1["pandas.read_csv (C engine)"][0], a1['pandas.read_csv(engine="pyarrow")'][0]]
    met = best < min(others)
    ok &= met
    print(f"  goal: expman faster than both read_csv engines: {'met' if met else 'missed'} "
          f"({min(others) / best:.2f}x the faster one)")

    root = make_many(args.dir, args.runs, args.run_rows)
    files = sorted(root.glob("*/metrics/run_0001.csv"))
    mb = sum(f.stat().st_size for f in files) / 1e6
    table = expman.arrow.read_dir(root)
    assert table.num_rows == args.runs * args.run_rows, table.num_rows
    columns = table.num_columns
    del table
    a2 = measure([
        ("expman.arrow.read_dir -> pyarrow.Table", lambda: expman.arrow.read_dir(root)),
        ("expman.load_experiments -> pandas", lambda: expman.load_experiments(root)),
        ("  pyarrow.csv.read_csv each + concat_tables",
         lambda: pa.concat_tables([pcsv.read_csv(f) for f in files])),
    ], max(1, args.repeat // 2))
    report(f"A2: {args.runs} runs x {args.run_rows} rows -> {args.runs * args.run_rows} rows x "
           f"{columns} columns, {mb:.0f} MB", a2, mb)
    best = a2["expman.arrow.read_dir -> pyarrow.Table"][0]
    met = best < 1.0
    ok &= met
    print(f"  goal: one Arrow table in < 1 s: {'met' if met else 'missed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
