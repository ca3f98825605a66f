"""Reading back (issue 16): load_metrics_df() equals pandas.read_csv and load_metrics_dict()
equals csv.DictReader with its strings typed, with and without pyarrow, over tables with
widened headers, NaN/inf, quoted commas and line breaks, empty cells, booleans, text, a column
that is int in some rows and float in others, and text that looks like numbers.

The suite's venv has pyarrow, so the no-pyarrow path runs in a child process in which
``import pyarrow`` fails (``sys.modules["pyarrow"] = None`` before anything imports it), as on
an install without the extra; pandas picks its string storage at import, so it must be a
fresh interpreter.
"""

import csv
import math
import re
import sys
from pathlib import Path

import pytest

from conftest import HERE, run_python

pd = pytest.importorskip("pandas")

from expman import Experiment  # noqa: E402

INT = re.compile(r"[+-]?[0-9]+\Z")
FLOAT = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?|nan|inf|infinity)\Z",
    re.I,
)


def cell_type(cell):
    if INT.match(cell) and -(2**63) <= int(cell) < 2**63:
        return "int"
    if cell.lower() in ("true", "false"):
        return "bool"
    if FLOAT.match(cell):
        return "float"
    return "str"


def column_type(cells):
    """The documented rule: the narrowest type of all non-empty cells (int and float make
    float, any other mix is text); timestamp and run_id are text."""
    types = {cell_type(c) for c in cells if c != ""}
    if not types:
        return "null"
    if len(types) == 1:
        return types.pop()
    return "float" if types == {"int", "float"} else "str"


def typed_dict_reader(path):
    """csv.DictReader's rows with each cell typed by its column's type, None for empty."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return rows
    names = list(rows[0])
    convert = {}
    for name in names:
        ty = "str" if name in ("timestamp", "run_id") else column_type(r[name] for r in rows)
        convert[name] = {
            "int": int,
            "float": float,
            "bool": lambda c: c.lower() == "true",
            "str": str,
            "null": str,
        }[ty]
    return [
        {k: (None if (v is None or v == "") else convert[k](v)) for k, v in row.items()}
        for row in rows
    ]


def same(a, b):
    """Values equal, NaN equal to NaN, and of the same type."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_dicts_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert list(a) == list(b), (i, list(a), list(b))
        bad = {k: (a[k], b[k]) for k in a if not same(a[k], b[k])}
        assert not bad, f"row {i}: {bad}"


def fill(exp, rows=40):
    """Rows of every kind, with the header widened twice after rows were written."""
    for i in range(rows):
        row = {"step": i, "loss": 1.0 / (i + 1)}
        if i % 7 == 3:
            row["loss"] = float("nan")
        if i % 11 == 5:
            row["loss"] = float("inf") if i % 2 else float("-inf")
        if i >= 5:  # widens: rows 0-4 lack these columns
            row["note"] = ["plain", "with, comma", 'a "quote"', "two\nlines", "", "x\r\ny"][i % 6]
            row["flag"] = i % 3 == 0
            row["mixed"] = i if i % 2 else i + 0.5  # int in some rows, float in others
        if i >= 20:  # widens again
            row["code"] = ["007", "1e5", "nan", "abc", "12"][i % 5]  # text that looks numeric
            row["maybe"] = True if i % 4 == 0 else None  # booleans with empty cells
            row["empty"] = None
            row["big"] = 2**62 + i  # integers a double cannot hold
        exp.upd_row(**{k: v for k, v in row.items() if v is not None})
        exp.save_row()


CHECK = """
import sys
if {block!r}:
    sys.modules["pyarrow"] = None
sys.path.insert(0, {here!r})
import test_readback as t
t.check({path!r}, {pyarrow!r})
print("checked")
"""


def check(path, pyarrow):
    """Both readings of the table at ``path`` against pandas and csv, in this process."""
    import expman.arrow

    path = Path(path)
    assert expman.arrow.available() == pyarrow
    exp = Experiment.attach(str(path.parent.parent), path.stem)
    try:
        df = exp.load_metrics_df()
        pd.testing.assert_frame_equal(df, pd.read_csv(path))
        assert_dicts_equal(exp.load_metrics_dict(), typed_dict_reader(path))
    finally:
        exp.close()


def check_both(tmp_path, path):
    """``check`` with pyarrow (this process) and without it (a child process)."""
    import expman.arrow

    if expman.arrow.available():
        check(path, True)
    code = CHECK.format(block=True, here=str(HERE), path=str(path), pyarrow=False)
    script = tmp_path / "check_no_pyarrow.py"
    script.write_text(code, encoding="utf-8")
    proc = run_python([str(script)], tmp_path, timeout=300)
    assert "checked" in proc.stdout


def test_every_kind_of_cell_reads_as_pandas_and_csv_read_it(exp, tmp_path):
    fill(exp)
    text = exp.metrics_path.read_text(encoding="utf-8")
    assert '"with, comma"' in text and '"two\nlines"' in text
    check_both(tmp_path, exp.metrics_path)


NO_NUMPY = """
import pickle, sys
for name in ("numpy", "pandas", "pyarrow"):
    sys.modules[name] = None  # `import numpy` raises ImportError from here on
from expman import Experiment
exp = Experiment.attach({exp_dir!r}, {run!r})
rows = exp.load_metrics_dict()
try:
    exp.load_metrics_df()
    error = None
except ImportError as e:
    error = str(e)
with open({out!r}, "wb") as f:
    pickle.dump((rows, error), f)
"""


def test_load_metrics_dict_needs_nothing_but_the_package(exp, tmp_path):
    # The package declares no dependencies: on a plain `pip install`, without numpy, pandas
    # or pyarrow, the seed's load_metrics_dict() still reads every kind of cell.
    import pickle

    fill(exp)
    for i in range(3):  # text of every control character: values cut out by their offsets
        exp.upd_row(raw="".join(chr(c) for c in range(1, 32) if chr(c) not in "\r\n") + str(i))
        exp.save_row()
    path = exp.metrics_path
    out = tmp_path / "rows.pickle"
    script = tmp_path / "no_numpy.py"
    script.write_text(NO_NUMPY.format(exp_dir=str(path.parent.parent), run=path.stem,
                                      out=str(out)), encoding="utf-8")
    run_python([str(script)], tmp_path, timeout=300)
    with open(out, "rb") as f:
        rows, error = pickle.load(f)
    assert_dicts_equal(rows, typed_dict_reader(path))
    assert "pip install pandas" in error and "load_metrics_dict()" in error


def test_text_with_every_control_character_is_cut_by_offsets(exp, tmp_path):
    # No byte is free to separate the values, so Python cuts them out one by one.
    every = "".join(chr(c) for c in range(1, 32) if chr(c) not in "\r\n") + "\x00"
    for i in range(30):
        exp.upd_row(step=i, text=f"{every}{i}" if i % 3 else "\x1f", n=i * 0.5)
        exp.save_row()
    dicts = exp.load_metrics_dict()
    assert dicts[1]["text"] == f"{every}1" and dicts[0]["text"] == "\x1f"


def test_a_large_table_parsed_in_parallel_parts(tmp_path):
    """More than 4 MiB: the library parses it in parts on several threads, and the columns
    are joined: dictionary text across parts, empty cells in one part only, a column whose
    type changes between parts (int to float, and numbers to text: the first part is parsed
    again so that `00042` stays `00042`)."""
    exp = Experiment(name="big", command="pytest", base_dir=tmp_path)
    n = 60_000
    for i in range(n):
        row = {"step": i, "loss": i / 7, "phase": "train" if i % 10 else "eval",
               "note": f"n{i}", "late": i / 2 if i > n - 10 else None,
               "switch": i if i < n // 2 else i + 0.25,
               # Numbers-as-text in the first part, text in the last: read as written.
               "label": f"{i:05d}" if i < n - 100 else f"x{i}"}
        exp.upd_row(**{k: v for k, v in row.items() if v is not None})
        exp.save_row()
    path = exp.metrics_path
    exp.close()
    assert path.stat().st_size > 4 << 20
    check_both(tmp_path, path)
    dicts = Experiment.attach(str(path.parent.parent), path.stem).load_metrics_dict()
    assert dicts[42]["label"] == "00042" and dicts[-1]["label"] == f"x{n - 1}"


def test_a_table_never_written_reads_as_the_fixed_columns(exp):
    df = exp.load_metrics_df()
    assert list(df.columns) == ["timestamp", "run_id"] and len(df) == 0
    assert exp.load_metrics_dict() == []


def test_named_tables_read_back_the_same_way(exp, tmp_path):
    t = exp.table("progress")
    for i in range(5):
        t.upd_row(i=i, frac=i / 4, state="ok" if i else "start")
        t.save_row()
    dicts = t.load_dicts()
    assert [d["i"] for d in dicts] == list(range(5))
    assert dicts[0]["state"] == "start" and dicts[2]["frac"] == 0.5
    pd.testing.assert_frame_equal(t.load_df(), pd.read_csv(exp.dir / "metrics" / "progress.csv"))


def test_frames_outlive_the_library_buffers(exp):
    """The numpy views keep the library's buffers alive until pandas no longer needs them,
    and are read-only (pandas copies before writing)."""
    import gc

    fill(exp)
    df = exp.load_metrics_df()
    gc.collect()
    expected = pd.read_csv(exp.metrics_path)
    df["step"] += 1
    expected["step"] += 1
    pd.testing.assert_frame_equal(df, expected)


def test_read_columns_names_the_missing_file(tmp_path):
    from expman import IoError
    from expman._readback import read_columns

    missing = tmp_path / "nope.csv"
    with pytest.raises(IoError, match="nope.csv"):
        read_columns(missing)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
