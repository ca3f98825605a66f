"""The seed framework's install, `pip install -e .` at the repository root: the Python package
of bindings/python, built by its setup.py (which builds the crate here with Cargo). The
project's metadata is bindings/python/pyproject.toml, which the root pyproject.toml links to."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parent / "bindings" / "python" / "setup.py"),
               run_name="__main__")
