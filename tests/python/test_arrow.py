"""Metrics through Arrow: load_metrics_arrow(), load_metrics_df() on the Arrow path (the same
DataFrame as pandas.read_csv and as the plain reader), expman.load_experiments(), polars,
the C stream released, a table read while another process writes it, and EXP export read
back by pyarrow and pandas."""

import ctypes
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REPO, clean_env

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

import expman  # noqa: E402
import expman.arrow  # noqa: E402
from expman import _ffi  # noqa: E402

pytestmark = pytest.mark.skipif(
    "arrow" not in expman.features(), reason="library built without the arrow feature"
)

TEXTS = ["plain", "a,b", "line\nbreak", 'quote "q"', "ünï,cødé\n", "x"]


def fill_mixed(exp):
    for step, text in enumerate(TEXTS):
        exp.upd_row(step=step, loss=[math.nan, math.inf, -math.inf, 0.5, 1e300, 0.1][step],
                    ok=step % 2 == 0, text=text, big=2**60 + step)
        if step >= 2:
            exp.upd_row(late=step * 10)  # empty in the first rows
        if step == 3:
            exp.upd_row(flag=None, mixed="x")
        elif step % 2:
            exp.upd_row(mixed=step)
        exp.save_row()


def test_load_metrics_arrow_types_the_columns(exp):
    fill_mixed(exp)
    table = exp.load_metrics_arrow()
    assert isinstance(table, pa.Table)
    types = {f.name: f.type for f in table.schema}
    assert types["timestamp"] == pa.string() and types["run_id"] == pa.string()
    assert types["step"] == pa.int64() and types["big"] == pa.int64()
    assert types["loss"] == pa.float64() and types["ok"] == pa.bool_()
    assert types["text"] == pa.string() and types["late"] == pa.int64()
    assert types["flag"] == pa.null() and types["mixed"] == pa.string()
    assert table.column("text").to_pylist() == TEXTS
    assert table.column("late").to_pylist() == [None, None, 20, 30, 40, 50]
    assert table.column("mixed").to_pylist() == [None, "1", None, "x", None, "5"]
    loss = table.column("loss").to_pylist()
    assert math.isnan(loss[0]) and loss[1:3] == [math.inf, -math.inf]
    assert table.column("big").to_pylist()[-1] == 2**60 + 5


def test_load_metrics_df_through_arrow_equals_read_csv_and_the_plain_reader(exp):
    fill_mixed(exp)
    df = exp.load_metrics_df()
    pd.testing.assert_frame_equal(df, pd.read_csv(exp.metrics_path))
    pd.testing.assert_frame_equal(df, exp._load(None).to_dataframe())
    assert df["late"].dtype == np.float64 and df["flag"].dtype == np.float64
    assert df["text"].tolist() == TEXTS


def test_load_metrics_df_with_empty_booleans_and_text_matches_read_csv(exp):
    for step in range(4):
        if step != 1:
            exp.upd_row(flag=step % 2 == 0, name=f"n{step}")
        exp.upd_row(step=step)
        exp.save_row()
    df = exp.load_metrics_df()
    pd.testing.assert_frame_equal(df, pd.read_csv(exp.metrics_path))


def test_na_words_in_text_read_as_read_csv_reads_them_in_any_slice_or_chunk(exp):
    # read_csv reads "NA", "nan", "None", ... as NaN; text that only starts like one ("nesterov",
    # "Nadam") or is one with other case stays text. The word sits in the last rows, so a
    # slice that starts later (an offset into the column's buffers) must still find it.
    phases = ["train"] * 6 + ["nesterov", "Nadam", "NONE", "eval"] + ["train"] * 6 + ["NA"]
    for step, phase in enumerate(phases):
        exp.upd_row(step=step, phase=phase, plain="train" if step % 2 else "eval")
        exp.save_row()
    expected = pd.read_csv(exp.metrics_path)
    assert expected["phase"].isna().sum() == 1 and expected["plain"].notna().all()
    table = exp.load_metrics_arrow()
    pd.testing.assert_frame_equal(expman.arrow.to_pandas(table), expected)
    for start in (1, 10, 16):
        pd.testing.assert_frame_equal(expman.arrow.to_pandas(table.slice(start)),
                                      expected.iloc[start:].reset_index(drop=True))
    chunked = pa.concat_tables([table.slice(0, 11), table.slice(11)])
    assert chunked.column("phase").num_chunks == 2
    pd.testing.assert_frame_equal(expman.arrow.to_pandas(chunked), expected)
    without = pa.concat_tables([table.slice(0, 11), table.slice(11, 5)])
    pd.testing.assert_frame_equal(expman.arrow.to_pandas(without), expected.iloc[:16])


def test_named_tables_and_empty_runs(exp):
    progress = exp.table("progress")
    progress.upd_row(stage="load", pct=10)
    progress.save_row()
    assert progress.load_arrow().column("stage").to_pylist() == ["load"]
    pd.testing.assert_frame_equal(progress.load_df(),
                                  pd.read_csv(exp.dir / "metrics" / "progress.csv"))
    empty = exp.load_metrics_arrow()
    assert empty.num_rows == 0 and empty.column_names == ["timestamp", "run_id"]
    assert list(exp.load_metrics_df().columns) == ["timestamp", "run_id"]


def make_experiments(base):
    from expman import Experiment

    made = []
    for i, (name, tags) in enumerate([("resnet18", ["baseline"]), ("resnet50", ["big"]),
                                       ("vit", ["baseline"])]):
        exp = Experiment(name=name, command="x", base_dir=base, tags=tags)
        for step in range(3):
            exp.upd_row(step=step, loss=1.0 / (step + 1))
            if name == "vit":
                exp.upd_row(heads=12)
            exp.save_row()
        if name == "resnet50":
            exp.set_error("diverged")
        else:
            exp.set_finished()
        made.append(exp)
        exp.close()
    return made


def test_load_experiments_gives_one_dataframe_with_filters(tmp_path):
    make_experiments(tmp_path)
    df = expman.load_experiments(tmp_path)
    assert len(df) == 9
    assert list(df.columns[:6]) == ["experiment", "name", "status", "tags", "timestamp", "run_id"]
    assert isinstance(df["name"].dtype, pd.CategoricalDtype)
    assert sorted(df["name"].unique()) == ["resnet18", "resnet50", "vit"]
    assert df.loc[df["name"] == "vit", "heads"].tolist() == [12.0] * 3
    assert df.loc[df["name"] != "vit", "heads"].isna().all()
    assert len(expman.load_experiments(tmp_path, name="resnet*")) == 6
    assert set(expman.load_experiments(tmp_path, status="error")["name"]) == {"resnet50"}
    assert set(expman.load_experiments(tmp_path, tag="baseline")["name"]) == {"resnet18", "vit"}
    by_name = df.groupby("name", observed=True)["loss"].min()
    assert by_name["vit"] == pytest.approx(1 / 3)
    with pytest.raises(expman.ConfigError, match="Finished"):
        expman.load_experiments(tmp_path, status="done")
    with pytest.raises(expman.NotFoundError):
        expman.load_experiments(tmp_path / "missing")


def test_a_damaged_run_is_left_out_with_a_warning_naming_it(tmp_path):
    # A row typed by hand with one cell too many: the run is left out with a warning that
    # names its file, and the others load (before, load_experiments raised for all of them).
    made = make_experiments(tmp_path)
    damaged = made[1].metrics_path
    with open(damaged, "a", encoding="utf-8") as f:
        f.write("2026-01-01T00:00:00.000000,run_0001,3,0.1,extra\n")
    with pytest.warns(expman.arrow.SkippedTableWarning, match=str(damaged)) as caught:
        df = expman.load_experiments(tmp_path)
    assert len(caught) == 1
    assert "row has 5 cells" in str(caught[0].message)
    assert sorted(df["name"].unique()) == ["resnet18", "vit"] and len(df) == 6
    table = expman.arrow.read_dir(tmp_path, name="vit")  # nothing damaged: no warning, no key
    assert table.schema.metadata is None


def test_meta_columns_are_the_categoricals_pyarrow_makes(tmp_path):
    """to_pandas builds read_dir's meta categoricals from the keys itself: the same frame as
    pyarrow's own conversion, also for a run whose status is unknown (a null key) and for a
    table filtered down to slices of its batches."""
    import json

    import pyarrow.compute as pc

    made = make_experiments(tmp_path)
    status_path = Path(made[1].dir) / "status.json"
    status = json.loads(status_path.read_text())
    status["run_id"] = "run_0099"  # run_0001's state is no longer on record
    status_path.write_text(json.dumps(status))
    table = expman.arrow.read_dir(tmp_path)
    assert table.column("status").null_count == 3
    meta = ["experiment", "name", "status", "tags"]
    for t in (table, table.filter(pc.greater(table.column("step"), 0))):
        ours = expman.arrow.to_pandas(t)[meta]
        theirs = t.select(meta).to_pandas()
        pd.testing.assert_frame_equal(ours, theirs)
        assert ours["status"].isna().sum() == (3 if t is table else 2)
        assert ours["experiment"].cat.codes.dtype == "int8"


def test_polars_reads_the_arrow_table(tmp_path):
    pl = pytest.importorskip("polars")
    make_experiments(tmp_path)
    frame = pl.from_arrow(expman.arrow.read_dir(tmp_path))
    assert frame.height == 9
    assert frame.filter(pl.col("name") == "vit")["heads"].to_list() == [12, 12, 12]
    assert frame["status"].cast(pl.Utf8).to_list().count("Error") == 3


def test_the_c_stream_is_moved_or_released(exp):
    fill_mixed(exp)
    path = _ffi.encode(str(exp.metrics_path), "path")
    # Imported: pyarrow takes the stream and our struct is marked moved.
    stream = expman.arrow.ArrowArrayStream()
    _ffi.check(_ffi.lib.expman_arrow_read_table(path, ctypes.addressof(stream)))
    assert stream.release
    table = pa.RecordBatchReader._import_from_c(ctypes.addressof(stream)).read_all()
    assert stream.release is None and table.num_rows == len(TEXTS)
    # Never imported: C releases it through its own callback, which marks it released.
    stream = expman.arrow.ArrowArrayStream()
    _ffi.check(_ffi.lib.expman_arrow_read_table(path, ctypes.addressof(stream)))
    expman.arrow._RELEASE(stream.release)(ctypes.addressof(stream))
    assert stream.release is None
    # A failed call leaves the struct alone.
    stream = expman.arrow.ArrowArrayStream()
    status = _ffi.lib.expman_arrow_read_table(b"/nonexistent.csv", ctypes.addressof(stream))
    assert status != 0 and stream.release is None


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_reading_again_and_again_does_not_grow_the_process(exp):
    for step in range(100_000):
        exp.upd_row(step=step, loss=step / 7, text="some text, with a comma")
        exp.save_row()
    size = exp.metrics_path.stat().st_size
    for _ in range(3):  # warm up allocator pools
        exp.load_metrics_arrow()
    before = rss_bytes()
    for _ in range(20):
        table = exp.load_metrics_arrow()
        del table
    grown = rss_bytes() - before
    # A leak of the table each time would be 20 x its size (several MB each).
    assert grown < 5 * size, f"RSS grew by {grown} bytes over 20 reads of a {size}-byte table"


WRITER = textwrap.dedent("""
    import sys, time
    from expman import Experiment
    exp = Experiment.attach(sys.argv[1], "run_0001")
    for step in range(int(sys.argv[2])):
        exp.upd_row(step=step, check=step * 3, text=f"row {step}, \\"q\\"\\nnext")
        if step >= 2000:
            exp.upd_row(**{f"w{step // 2000}": step + 0.5})
        exp.save_row()
        if step % 500 == 499:
            time.sleep(0.02)
""")


def test_a_table_written_by_another_process_loads_whole_rows(tmp_path):
    from expman import Experiment

    exp = Experiment(name="live", command="x", base_dir=tmp_path)
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    rows = 12_000
    proc = subprocess.Popen([sys.executable, str(script), str(exp.dir), str(rows)],
                            env=clean_env())
    last, reads = 0, 0
    try:
        while True:
            done = proc.poll() is not None
            if exp.metrics_path.exists():
                df = exp.load_metrics_df()
                n = len(df)
                assert n >= last
                # n == 0: created, header not yet written (the first row brings it): an
                # empty frame without columns.
                if n > 0:
                    assert df["step"].tolist() == list(range(n))
                    assert (df["check"] == df["step"] * 3).all()
                    assert df["text"].tolist() == [f'row {s}, "q"\nnext' for s in range(n)]
                    last, reads = n, reads + 1
            if done:
                break
            time.sleep(0.01)
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0
    assert len(exp.load_metrics_df()) == rows
    assert reads >= 3


def exp_binary(fmt="csv"):
    """An EXP that writes `fmt`: the installed one, or for Parquet and Arrow IPC (Cargo
    feature `parquet`, which the package leaves out by default) the one `cargo test
    --all-features` built."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    candidates = [Path(sys.executable).parent / "EXP", target / "debug" / "EXP",
                  target / "release" / "EXP"]
    for exe in candidates:
        if not exe.exists():
            continue
        if fmt == "csv":
            return exe
        with tempfile.TemporaryDirectory() as empty:
            probe = subprocess.run([str(exe), "export", empty, "--format", fmt, "--out",
                                    os.path.join(empty, "probe")], capture_output=True,
                                   env=clean_env(), timeout=60)
        if probe.returncode == 0:
            return exe
    pytest.skip(f"no EXP built with the `parquet` feature to write {fmt} (cargo test "
                "--all-features builds one)")


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_exp_export_is_read_back_by_pyarrow_and_pandas(tmp_path, fmt):
    exe = exp_binary(fmt)
    base = tmp_path / "exps"
    make_experiments(base)
    out = tmp_path / f"all.{fmt}"
    proc = subprocess.run([str(exe), "export", str(base), "--format", fmt, "--out", str(out),
                           "--tag", "baseline"], capture_output=True, text=True, env=clean_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "exported 2 experiments (2 runs, 6 rows" in proc.stdout, proc.stdout
    expected = expman.arrow.read_dir(base, tag="baseline")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        back = pq.read_table(out)
        # Parquet stores dictionaries per column chunk: compare values, not dictionaries.
        assert back.schema.equals(expected.schema)
        assert back.to_pydict() == expected.to_pydict()
    elif fmt == "arrow":
        import pyarrow.feather as feather

        back = feather.read_table(out)
        assert back.schema.equals(expected.schema)
        assert back.to_pydict() == expected.to_pydict()
    else:
        back = pd.read_csv(out)
        assert len(back) == 6
        assert list(back.columns) == expected.column_names
        assert sorted(back["name"].unique()) == ["resnet18", "vit"]
        assert np.allclose(back["loss"], expected.column("loss").to_numpy())


def test_exp_export_reports_progress_on_large_exports(tmp_path):
    exe = exp_binary()
    base = tmp_path / "many"
    code = textwrap.dedent(f"""
        from expman import Experiment
        for i in range(120):
            exp = Experiment(name=f"e{{i}}", command="x", base_dir={str(base)!r})
            exp.upd_row(step=i)
            exp.save_row()
            exp.set_finished()
            exp.close()
    """)
    subprocess.run([sys.executable, "-c", code], check=True, env=clean_env(), timeout=300)
    out = tmp_path / "many.csv"
    proc = subprocess.run([str(exe), "export", str(base), "--out", str(out)],
                          capture_output=True, text=True, env=clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "EXP export: read 60/120 experiments" in proc.stderr, proc.stderr
    assert "EXP export: exported 120/120 experiments" in proc.stderr, proc.stderr
    assert len(pd.read_csv(out)) == 120
    bad = subprocess.run([str(exe), "export", str(base), "--out", str(tmp_path / "x.txt")],
                         capture_output=True, text=True, env=clean_env(), timeout=60)
    assert bad.returncode != 0 and "--format" in bad.stderr
