"""The seed framework's install, `pip install -e .`, typed at the root of a fresh clone into a
fresh venv: it builds the crate (Cargo, through setuptools-rust, whose build tools pip fetches
as for any user), registers the `EXP` command, and the seed's import path then works from any
directory, running the clone's own Python code (an editable install).

Cargo builds into target/seed-install of this checkout (its own, so that the library and EXP
the other tests use are never replaced by this build's): a minute on two cores the first time,
seconds after."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO, clean_env

SEED_SCRIPT = textwrap.dedent("""
    from pathlib import Path
    import expman
    from experiment_manager.core.experiment import Experiment

    exp = Experiment(name="seed", command="python train.py", base_dir=Path("./experiments"))
    exp.upd_row(epoch=1, loss=0.5)
    exp.save_row()
    print(exp.current_run_id, exp.load_metrics_dict()[0]["loss"], expman.__file__)
    exp.set_finished()
""")


def run(args, cwd, env, timeout=900):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, args))} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc.stdout


def test_pip_install_editable_at_the_root_as_the_seed_says(tmp_path):
    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", REPO, clone], tmp_path, clean_env())
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], tmp_path, clean_env())
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "seed-install"
    env = clean_env(CARGO_TARGET_DIR=target)
    for development_only in ("EXPMAN_LIBRARY", "PYTHONPATH"):
        env.pop(development_only, None)
    run([venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", "-e", "."],
        clone, env)

    assert "EXP" in run([venv / "bin" / "EXP", "--help"], tmp_path, env)
    work = tmp_path / "work"
    work.mkdir()
    (work / "seed.py").write_text(SEED_SCRIPT, encoding="utf-8")
    run_id, loss, module = run([venv / "bin" / "python", "seed.py"], work, env).split()
    assert (run_id, loss) == ("run_0001", "0.5")
    assert module.startswith(str(clone / "bindings" / "python")), module
    assert (work / "experiments").is_dir()
