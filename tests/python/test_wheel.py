"""The wheel of scripts/build-wheel, installed as a user without Rust installs it: into a fresh
venv, with no cargo or rustc on PATH and binary packages only, then used from Python and from
the `EXP` command it brings (`EXP ls`, `EXP export --format parquet`, read back with pyarrow).

The wheel is $EXPMAN_WHEEL (./scripts/test-all sets it, so there a missing wheel fails), else
the newest target/wheels/expman-*.whl; without either the test is skipped. pyarrow comes from
PyPI, the version the test venv has, so pip's cache usually serves it.
"""

import os
import shutil
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from conftest import REPO, clean_env, run_checked


def the_wheel():
    named = os.environ.get("EXPMAN_WHEEL")
    if named:
        assert Path(named).is_file(), f"EXPMAN_WHEEL={named} does not exist"
        return Path(named).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    wheels = sorted((target / "wheels").glob("expman-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        pytest.skip("no wheel: run scripts/build-wheel")
    return wheels[-1]


def path_without_rust():
    """PATH less every directory that holds cargo, rustc or rustup."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any(os.path.exists(os.path.join(d, tool))
                             for tool in ("cargo", "rustc", "rustup"))]
    return os.pathsep.join(keep)


def test_wheel_installs_and_works_without_rust(tmp_path):
    wheel = the_wheel()
    assert "manylinux" in wheel.name, f"{wheel.name} is not a manylinux wheel"
    assert "-py3-none-" in wheel.name, f"{wheel.name} should serve every Python 3"

    venv = tmp_path / "venv"
    run_checked([sys.executable, "-m", "venv", venv], clean_env(), tmp_path)
    bin_dir = venv / "bin"
    env = clean_env(PATH=os.pathsep.join([str(bin_dir), path_without_rust()]),
                    VIRTUAL_ENV=str(venv), PIP_DISABLE_PIP_VERSION_CHECK="1")
    for var in ("EXPMAN_LIBRARY", "PYTHONPATH", "CARGO_HOME", "RUSTUP_HOME", "CARGO"):
        env.pop(var, None)
    for tool in ("cargo", "rustc", "rustup"):
        assert shutil.which(tool, path=env["PATH"]) is None, f"{tool} is still on PATH"

    # --only-binary: pip may not fall back to building anything from source.
    pyarrow = f"pyarrow=={metadata.version('pyarrow')}"
    run_checked([bin_dir / "python", "-m", "pip", "install", "--quiet", "--only-binary=:all:",
         wheel, pyarrow], env, tmp_path)

    script = textwrap.dedent("""
        import json, pathlib, sys
        import expman
        import pyarrow.parquet as pq

        venv = pathlib.Path(sys.prefix).resolve()
        assert pathlib.Path(expman.library_path).resolve().is_relative_to(venv), \\
            expman.library_path
        base = pathlib.Path("exps")
        with expman.Experiment(name="wheel", command="train.py", base_dir=base,
                               tags=["wheel"]) as exp:
            for epoch in range(1, 4):
                exp.upd_row(epoch=epoch, loss=1.0 / epoch)
                exp.save_row()
            print(json.dumps({"version": expman.__version__, "run": exp.current_run_id}))
    """)
    out = run_checked([bin_dir / "python", "-c", script], env, tmp_path)
    assert '"run": "run_0001"' in out, out

    exp_cmd = bin_dir / "EXP"
    assert exp_cmd.is_file(), f"the wheel installed no EXP into {bin_dir}"
    listing = run_checked([exp_cmd, "ls", "exps", "--format", "csv"], env, tmp_path)
    assert "Finished,wheel," in listing, listing

    run_checked([exp_cmd, "export", "exps", "--format", "parquet", "--out", "runs.parquet"], env,
        tmp_path)
    check = textwrap.dedent("""
        import pyarrow.parquet as pq
        t = pq.read_table("runs.parquet")
        rows = t.to_pylist()
        assert [r["epoch"] for r in rows] == [1, 2, 3], rows
        assert [round(r["loss"], 6) for r in rows] == [1.0, 0.5, 0.333333], rows
        runs = {(r["name"], r["run_id"], r["status"]) for r in rows}
        assert runs == {("wheel", "run_0001", "Finished")}, rows
        print(t.num_rows)
    """)
    assert run_checked([bin_dir / "python", "-c", check], env, tmp_path).strip() == "3"
