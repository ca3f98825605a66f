"""Bad input raises the right typed exception, with the library's message naming the value."""

import pytest

import expman
from expman import Experiment


def quoted(text):
    """How the library's messages quote a value (Rust's {:?})."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.mark.parametrize("name", ["", "a/b", "..", "bad\nname"])
def test_bad_experiment_name(tmp_path, name):
    with pytest.raises(expman.InvalidNameError) as info:
        Experiment(name=name, command="x", base_dir=tmp_path)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, expman.ExpmanError)
    assert err.code == 11
    assert f"experiment name {quoted(name)}" in str(err), str(err)


@pytest.mark.parametrize("field", ["timestamp", "run_id", "bad\nfield", ""])
def test_bad_field_name(exp, field):
    exp.upd_row(ok=1.0)
    exp.save_row()
    with pytest.raises(expman.InvalidNameError) as info:
        exp.log_metrics({field: 1.0})
    message = str(info.value)
    assert f"field name {quoted(field)}" in message, message
    # The failed row did not reach the file, and the table keeps working.
    exp.clear_row()
    exp.log_metrics({"ok": 2.0})
    assert [r["ok"] for r in exp.load_metrics_dict()] == [1.0, 2.0]


@pytest.mark.parametrize("table", ["run_0001", "run_0002", "a/b", ""])
def test_bad_table_name(exp, table):
    with pytest.raises(expman.InvalidNameError) as info:
        exp.table(table)
    assert f"table name {quoted(table)}" in str(info.value), str(info.value)


def test_open_a_missing_directory(tmp_path):
    missing = tmp_path / "no_such_experiment"
    with pytest.raises(expman.NotFoundError) as info:
        Experiment.open(missing)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.code == 14
    assert str(missing) in str(info.value)


def test_attach_to_a_bad_run_id(exp):
    with pytest.raises(expman.ExpmanError) as info:
        Experiment.attach(exp.dir, "not_a_run")
    assert isinstance(info.value, expman.InvalidNameError)
    assert 'run id "not_a_run"' in str(info.value)


def test_errors_have_codes_and_builtin_bases():
    assert issubclass(expman.InvalidNameError, ValueError)
    assert issubclass(expman.NotFoundError, FileNotFoundError)
    assert issubclass(expman.IoError, OSError)
    assert issubclass(expman.UnsupportedError, NotImplementedError)
    assert issubclass(expman.InvalidStateError, RuntimeError)
    codes = [cls.code for cls in (expman.NullArgumentError, expman.EncodingError,
                                  expman.PanicError, expman.InvalidArgumentError, expman.IoError,
                                  expman.InvalidNameError, expman.InvalidValueError,
                                  expman.CorruptError, expman.NotFoundError,
                                  expman.InvalidStateError, expman.ConfigError,
                                  expman.UnsupportedError)]
    assert codes == [1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17]
    err = expman.IoError("disk full")
    assert str(err) == "disk full" and err.code == 10 and err.message == "disk full"


def test_closed_experiment_raises_invalid_state(tmp_path):
    exp = Experiment(name="closed", command="x", base_dir=tmp_path)
    table = exp.table("progress")
    exp.close()
    exp.close()  # twice is fine
    exp.upd_row(a=1.0)
    with pytest.raises(expman.InvalidStateError, match="closed"):
        exp.save_row()
    table.upd_row(a=1.0)
    with pytest.raises(expman.InvalidStateError, match="closed"):
        table.save_row()
    with pytest.raises(expman.InvalidStateError, match="closed"):
        exp.set_finished()


def test_corrupt_table_is_reported_with_its_path(exp):
    exp.upd_row(a=1.0)
    exp.save_row()
    with open(exp.metrics_path, "a") as f:
        f.write("x,y,z,too,many,cells\n")
    with pytest.raises(expman.CorruptError) as info:
        exp.load_metrics_dict()
    assert str(exp.metrics_path) in str(info.value)


def test_bad_arguments_are_rejected_in_python(tmp_path):
    with pytest.raises(TypeError, match="name"):
        Experiment(name=3, command="x", base_dir=tmp_path)
    with pytest.raises(ValueError, match="NUL"):
        Experiment(name="a\0b", command="x", base_dir=tmp_path)
    with pytest.raises(TypeError, match="gpu_ids"):
        Experiment(name="g", command="x", base_dir=tmp_path, gpu_ids=["0"])
    with pytest.raises(ValueError, match="gpu_ids"):
        Experiment(name="g", command="x", base_dir=tmp_path, gpu_ids=[-1])
    with pytest.raises(TypeError, match="log_metrics takes a dict"):
        Experiment(name="g", command="x", base_dir=tmp_path).log_metrics([1, 2])


def test_a_failed_save_keeps_the_row_for_a_retry(exp):
    table = exp.table("progress")
    blocker = exp.dir / "metrics" / "progress.csv"
    blocker.mkdir(parents=True)  # a directory where the table's file should be
    table.upd_row(step=1, loss=0.5)
    with pytest.raises(expman.IoError) as info:
        table.save_row()
    assert isinstance(info.value, OSError) and str(blocker) in str(info.value)
    blocker.rmdir()
    table.save_row()  # the same row, retried
    assert [(r["step"], r["loss"]) for r in table.load_dicts()] == [(1, 0.5)]
    table.upd_row(step=2, note="text rows take the general path")
    table.save_row()
    assert len(table.load_dicts()) == 2


def test_huge_names_are_not_echoed_in_full(exp, tmp_path):
    """A 10 MB name gives a short message that says how long it was (issue 10, item 19), and
    field names are capped at expman.MAX_FIELD_NAME_LEN bytes."""
    huge = "x" * (10 << 20)
    failures = []
    for call in (
        lambda: exp.log_metrics({huge: 1.0}),
        lambda: exp.table(huge),
        lambda: Experiment(name=huge, command="x", base_dir=tmp_path),
        lambda: exp.upd_row(**{huge: object()}),
        lambda: exp.log_metrics({("k" * (10 << 20),): 1.0}),
        lambda: Experiment(name="n", command="x", base_dir=tmp_path, gpu_ids=["0"] * (1 << 20)),
    ):
        with pytest.raises((expman.ExpmanError, TypeError, ValueError)) as info:
            call()
        exp.clear_row()
        failures.append(str(info.value))
    for message in failures:
        assert len(message) < 1000, f"{len(message)} characters: {message[:300]}…"
        assert "bytes)" in message or "characters)" in message, message

    assert expman.MAX_FIELD_NAME_LEN == 256
    longest = "é" * 128  # 256 bytes of UTF-8
    exp.log_metrics({longest: 1.0})
    with pytest.raises(expman.InvalidNameError, match="at most 256 bytes"):
        exp.log_metrics({longest + "x": 1.0})


def test_messages_do_not_start_with_the_c_function_name(tmp_path):
    """Errors read `expman_experiment_attach: ...`: the C ABI's name, which a Python user never
    called. The message now starts with what went wrong."""
    with pytest.raises(expman.ExpmanError) as info:
        expman.Experiment.attach(tmp_path / "missing", "run_0001")
    message = str(info.value)
    assert not message.startswith("expman_"), message
    assert "missing" in message, message
