"""Every value type goes in and comes back: Python and numpy scalars, NaN/inf, awkward text."""

import math

import numpy as np
import pytest

from conftest import read_csv_rows


def saved(exp, **fields):
    exp.upd_row(**fields)
    exp.save_row()
    header, rows = read_csv_rows(exp.metrics_path)
    return dict(zip(header, rows[-1]))


def test_python_scalars(exp):
    row = saved(exp, i=-7, big=2**63 - 1, small=-(2**63), f=0.1, b=True, c=False, s="text",
                n=None)
    assert row["i"] == "-7"
    assert row["big"] == str(2**63 - 1) and row["small"] == str(-(2**63))
    assert row["f"] == "0.1"
    assert (row["b"], row["c"]) == ("true", "false")
    assert row["s"] == "text" and row["n"] == ""
    back = exp.load_metrics_dict()[-1]
    assert back["i"] == -7 and type(back["i"]) is int
    assert back["big"] == 2**63 - 1 and back["small"] == -(2**63)
    assert back["f"] == 0.1 and back["b"] is True and back["c"] is False
    assert back["s"] == "text" and back["n"] is None


def test_numpy_scalars(exp):
    row = saved(exp, f64=np.float64(0.25), f32=np.float32(0.5), f16=np.float16(1.5),
                i64=np.int64(-3), i32=np.int32(4), u8=np.uint8(255), u64=np.uint64(2**63 - 1),
                b=np.bool_(True), nb=np.False_)
    assert row["f64"] == "0.25" and row["f32"] == "0.5" and row["f16"] == "1.5"
    assert (row["i64"], row["i32"], row["u8"]) == ("-3", "4", "255")
    assert row["u64"] == str(2**63 - 1)
    assert (row["b"], row["nb"]) == ("true", "false")
    back = exp.load_metrics_dict()[-1]
    assert back["i64"] == -3 and type(back["i64"]) is int
    assert back["b"] is True and back["nb"] is False


def test_float32_is_written_exactly_as_its_double(exp):
    x = np.float32(0.1)
    row = saved(exp, x=x)
    assert float(row["x"]) == float(x)


def test_nan_and_infinities(exp):
    row = saved(exp, nan=float("nan"), inf=math.inf, ninf=-math.inf, npnan=np.float32("nan"))
    assert (row["nan"], row["inf"], row["ninf"], row["npnan"]) == ("NaN", "inf", "-inf", "NaN")
    back = exp.load_metrics_dict()[-1]
    assert math.isnan(back["nan"]) and math.isnan(back["npnan"])
    assert back["inf"] == math.inf and back["ninf"] == -math.inf


@pytest.mark.parametrize("text", [
    "a,b", 'say "hi"', "two\nlines", "crlf\r\nend", "", " padded ", "日本語 ✓", "tab\there",
    '",\n"', "a\0b",
])
def test_awkward_strings_round_trip(exp, text):
    exp.upd_row(s=text, x=1.5)
    exp.save_row()
    back = exp.load_metrics_dict()
    # An empty string is an empty cell in CSV: it reads back as None (pandas: NaN).
    assert back[-1]["s"] == (text or None) and back[-1]["x"] == 1.5
    pd = pytest.importorskip("pandas")
    if text.strip() and "\0" not in text and "\r" not in text:
        # pandas reads expman's quoting as it reads any RFC 4180 file.
        assert pd.read_csv(exp.metrics_path, keep_default_na=False)["s"].iloc[-1] == text


@pytest.mark.parametrize("value, type_name", [
    ([1, 2], "list"), ({"a": 1}, "dict"), (np.array([1.0, 2.0]), "ndarray"), (1j, "complex"),
    (object(), "object"), (b"bytes", "bytes"), (np.complex64(1), "complex64"),
])
def test_unsupported_types_raise_type_error_naming_the_field(exp, value, type_name):
    with pytest.raises(TypeError) as info:
        exp.upd_row(ok=1.0, weird_field=value)
    message = str(info.value)
    assert "'weird_field'" in message and type_name in message, message
    # Nothing was added to the pending row, and nothing was written.
    exp.save_row()
    assert not exp.metrics_path.exists()


def test_integer_out_of_range_raises_overflow_naming_the_field(exp):
    for value in (2**63, -(2**63) - 1, np.uint64(2**64 - 1)):
        exp.upd_row(epoch=1, huge=value)
        with pytest.raises(OverflowError, match="huge"):
            exp.save_row()
        exp.clear_row()
    exp.upd_row(epoch=1, text="keeps working")
    exp.save_row()
    assert exp.load_metrics_dict()[-1]["text"] == "keeps working"
    exp.upd_row(epoch=2, s="a string row takes the other path", huge=2**64)
    with pytest.raises(OverflowError, match="huge"):
        exp.save_row()


def test_upd_row_merges_and_later_values_win(exp):
    exp.upd_row(a=1, b=2.0)
    exp.upd_row(b=3.0, c="x")
    exp.save_row()
    assert exp.load_metrics_dict() == [
        {"timestamp": exp.load_metrics_dict()[0]["timestamp"], "run_id": "run_0001",
         "a": 1, "b": 3.0, "c": "x"}]


def test_empty_row_writes_nothing(exp):
    exp.save_row()
    assert not exp.metrics_path.exists()
    exp.upd_row(a=1.0)
    exp.clear_row()
    exp.save_row()
    assert not exp.metrics_path.exists()


def test_row_shapes_change_freely(exp):
    """Each shape (names and types) has its own cached plan; all must write correctly."""
    shapes = [
        dict(a=1.0, b=2.0),             # all floats
        dict(b=2.5, a=1.5),             # same names, other order
        dict(a=1, b=2.0),               # int + float
        dict(a=None, b=np.float32(3)),  # null + numpy
        dict(a="x", b=True),            # text
        dict(c=1.0),                    # a new field
        dict(a=1.0, b=2.0),             # the first shape again
    ]
    for fields in shapes:
        exp.upd_row(**fields)
        exp.save_row()
    rows = exp.load_metrics_dict()
    got = [{k: r[k] for k in ("a", "b", "c")} for r in rows]
    assert got == [
        {"a": "1.0", "b": "2.0", "c": None},
        {"a": "1.5", "b": "2.5", "c": None},
        {"a": "1", "b": "2.0", "c": None},
        {"a": None, "b": "3.0", "c": None},
        {"a": "x", "b": "true", "c": None},
        {"a": None, "b": None, "c": 1.0},
        {"a": "1.0", "b": "2.0", "c": None},
    ]  # `a` and `b` hold text and numbers, so they read back as text


def test_load_metrics_df_types_columns_like_read_csv(exp):
    pd = pytest.importorskip("pandas")
    for step in range(5):
        exp.upd_row(step=step, loss=1.0 / (step + 1), ok=step % 2 == 0, name=f"m,{step}",
                    big=2**60 + step)
        if step >= 2:
            exp.upd_row(late=step * 10)  # empty in the first rows
        if step == 3:
            exp.upd_row(nan=float("nan"), flag=None)
        exp.save_row()
    df = exp.load_metrics_df()
    assert df["step"].dtype == np.int64 and df["step"].tolist() == [0, 1, 2, 3, 4]
    assert df["big"].dtype == np.int64 and df["big"].iloc[-1] == 2**60 + 4
    assert df["loss"].dtype == np.float64
    assert df["ok"].dtype == bool and df["ok"].tolist() == [True, False, True, False, True]
    assert df["late"].dtype == np.float64 and df["late"].isna().sum() == 2
    assert df["name"].tolist() == [f"m,{i}" for i in range(5)]
    pd.testing.assert_frame_equal(df, pd.read_csv(exp.metrics_path))


def test_load_metrics_df_of_an_empty_run(exp):
    pytest.importorskip("pandas")
    df = exp.load_metrics_df()
    assert len(df) == 0 and list(df.columns) == ["timestamp", "run_id"]
    assert exp.load_metrics_dict() == []
    assert exp.table("never_saved").load_dicts() == []
    # The library's rule, the same in C, C++ and Rust: a table never written reads as empty.
    assert exp.load_table("never_written") == []
    assert len(exp.table("never_saved").load_df()) == 0
