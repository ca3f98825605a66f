"""Tables are rectangular, as the seed shows them: after a widening every line has the header's
width, so strict readers (pyarrow's CSV reader, RFC 4180) read them, not only lenient ones.

Two writers in two processes: the first keeps writing after the second widened the table,
and its rows still come out full width."""
import csv

import pytest

from conftest import clean_env, run_script


def raw_widths(path):
    """The number of cells of every record, as the csv module reads them (no padding)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [len(r) for r in csv.reader(f)]


WRITER = """
import sys
from expman import Experiment
exp = Experiment(name="rect", command="t", base_dir=sys.argv[1])
exp.upd_row(model="CNN", accuracy=0.85, note='a "quoted",\\nmulti-line note')
exp.save_row()
print(exp.dir, flush=True)
sys.stdin.readline()              # the other process widens the table meanwhile
exp.upd_row(model="CNN", accuracy=0.86)
exp.save_row()
exp.close()
"""

WIDENER = """
from expman import Experiment
# Attached to the first process's run, as a DataLoader worker or an eval process would be.
exp = Experiment(name="rect", command="t", base_dir="unused: attached")
exp.upd_row(model="CNN", accuracy=0.88, f1_score=0.87, precision=0.89)
exp.save_row()
"""


def test_rows_before_and_after_a_widening_have_the_headers_width(tmp_path):
    import subprocess
    import sys

    base = tmp_path / "experiments"
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    writer = subprocess.Popen([sys.executable, str(script), str(base)], cwd=tmp_path,
                              env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    exp_dir = writer.stdout.readline().strip()
    run_script(WIDENER, tmp_path,
               env=clean_env(EXPMAN_EXPERIMENT_DIR=exp_dir, EXPMAN_RUN_ID="run_0001"))
    writer.stdin.write("\n")
    writer.stdin.flush()
    assert writer.wait(timeout=60) == 0
    path = f"{exp_dir}/metrics/run_0001.csv"

    widths = raw_widths(path)
    assert widths == [7, 7, 7, 7], widths

    pa_csv = pytest.importorskip("pyarrow.csv")
    table = pa_csv.read_csv(path)
    assert table.column_names == ["timestamp", "run_id", "model", "accuracy", "note",
                                  "f1_score", "precision"]
    assert table.num_rows == 3
    assert table.column("accuracy").to_pylist() == [0.85, 0.88, 0.86]
    assert table.column("f1_score").to_pylist() == [None, 0.87, None]
    assert table.column("note").to_pylist()[0] == 'a "quoted",\nmulti-line note'


def test_the_seed_dynamic_fields_table_reads_with_strict_readers(tmp_path):
    from expman import Experiment

    exp = Experiment(name="dynamic_fields", command="t", base_dir=tmp_path)
    exp.upd_row(model="CNN", accuracy=0.85)
    exp.save_row()
    exp.upd_row(model="CNN", accuracy=0.88, f1_score=0.87, precision=0.89)
    exp.save_row()
    exp.close()
    path = exp.dir / "metrics" / "run_0001.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "timestamp,run_id,model,accuracy,f1_score,precision"
    assert lines[1].endswith(",run_0001,CNN,0.85,,")
    assert raw_widths(path) == [6, 6, 6]
    pa_csv = pytest.importorskip("pyarrow.csv")
    assert pa_csv.read_csv(path).num_rows == 2
