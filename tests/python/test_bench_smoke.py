"""benches/python_bench.py keeps running (a tiny run; the figures come from a full run)."""

from conftest import REPO, run_python


def test_python_bench_runs(tmp_path):
    proc = run_python([str(REPO / "benches" / "python_bench.py"), "--rows", "2000",
                       "--repeat", "1", "--dir", str(tmp_path)], tmp_path, timeout=300)
    out = proc.stdout
    for label in ("expman", "(a) seed-style", "(b) csv.writer", "µs/row", "goals:"):
        assert label in out, out
