"""The seed framework's install, `pip install -e .`, typed at the root of a fresh clone into a
fresh venv: it builds the crate (Cargo, through setuptools-rust, whose build tools pip fetches
as for any user), registers the `EXP` command, and the seed's import path then works from any
directory, running the clone's own Python code (an editable install).

Cargo builds into target/seed-install of this checkout (its own, so that the library and EXP
the other tests use are never replaced by this build's): a minute on two cores the first time,
seconds after."""

import os
import sys
import textwrap
from pathlib import Path

from conftest import REPO, clean_env, run_checked

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


def test_pip_install_editable_at_the_root_as_the_seed_says(tmp_path):
    clone = tmp_path / "clone"
    run_checked(["git", "clone", "--quiet", REPO, clone], clean_env(), tmp_path)
    venv = tmp_path / "venv"
    run_checked([sys.executable, "-m", "venv", venv], clean_env(), tmp_path)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "seed-install"
    env = clean_env(CARGO_TARGET_DIR=target)
    for development_only in ("EXPMAN_LIBRARY", "PYTHONPATH"):
        env.pop(development_only, None)
    run_checked([venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check",
                 "-e", "."], env, clone, timeout=900)

    assert "EXP" in run_checked([venv / "bin" / "EXP", "--help"], env, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "seed.py").write_text(SEED_SCRIPT, encoding="utf-8")
    run_id, loss, module = run_checked([venv / "bin" / "python", "seed.py"], env, work).split()
    assert (run_id, loss) == ("run_0001", "0.5")
    assert module.startswith(str(clone / "bindings" / "python")), module
    assert (work / "experiments").is_dir()
