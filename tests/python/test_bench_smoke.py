"""benches/python_bench.py keeps running (a tiny run; the figures come from a full run)."""

from conftest import REPO, run_python


def test_python_bench_runs(tmp_path):
    proc = run_python([str(REPO / "benches" / "python_bench.py"), "--rows", "2000",
                       "--repeat", "1", "--dir", str(tmp_path)], tmp_path, timeout=300,
                      check=False)
    out = proc.stdout
    # Exit status 1 means a goal was missed: timing a 2,000-row run proves nothing either way.
    assert proc.returncode in (0, 1), proc.stderr
    for label in ("expman", "(a) seed-style", "(b) csv.writer", "µs/row", "goals:"):
        assert label in out, out


def test_readback_bench_runs(tmp_path):
    """benches/readback_bench.py on tiny tables: every figure printed beside its baseline."""
    proc = run_python([str(REPO / "benches" / "readback_bench.py"), "--rows", "3000",
                       "--small-rows", "1000", "--runs", "3", "--run-rows", "50",
                       "--repeat", "1", "--dir", str(tmp_path)], tmp_path, timeout=300,
                      check=False)
    out = proc.stdout
    # Exit status 1 means a goal was missed: tiny tables prove nothing either way.
    assert proc.returncode in (0, 1), proc.stderr
    for label in ("exp.load_metrics_df()", "pandas.read_csv(path)", "csv.DictReader",
                  "engine=\"pyarrow\"", "where: expman.arrow.to_pandas", "per core:",
                  "expman.load_experiments", "goal:"):
        assert label in out, out
