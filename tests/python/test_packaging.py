"""What `pip install ./bindings/python` puts in the environment."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import expman

from conftest import REPO


def test_library_is_bundled_inside_the_package():
    if os.environ.get("EXPMAN_LIBRARY"):
        pytest.skip("EXPMAN_LIBRARY overrides the bundled library")
    package_dir = Path(expman.__file__).resolve().parent
    assert Path(expman.library_path).parent == package_dir
    assert Path(expman.library_path).name.startswith("libexpman")


def test_both_import_paths_work_in_a_fresh_interpreter(tmp_path):
    code = ("from experiment_manager.core.experiment import Experiment as A\n"
            "from experiment_manager import Experiment as B\n"
            "import expman\n"
            "assert A is B is expman.Experiment\n"
            "print(expman.__version__, expman.library_version)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == [expman.__version__, expman.library_version]


def test_versions_agree_with_the_crate():
    manifest = (REPO / "Cargo.toml").read_text(encoding="utf-8")
    crate_version = re.search(r'^version\s*=\s*"([^"]+)"', manifest, re.M).group(1)
    assert expman.library_version == crate_version
    pyproject = (REPO / "bindings" / "python" / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.M).group(1) == crate_version
    assert expman.__version__ == crate_version


def test_exp_binary_is_installed_when_the_crate_has_it():
    manifest = (REPO / "Cargo.toml").read_text(encoding="utf-8")
    if not re.search(r'^\s*name\s*=\s*"EXP"\s*$', manifest, re.M):
        pytest.skip("the crate has no EXP binary yet")
    if os.environ.get("EXPMAN_LIBRARY"):
        pytest.skip("a development run, not an installed package")
    exp_bin = Path(sys.executable).parent / "EXP"
    assert exp_bin.is_file(), f"pip install ./bindings/python did not install {exp_bin}"
    proc = subprocess.run([str(exp_bin), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "EXP" in proc.stdout + proc.stderr
