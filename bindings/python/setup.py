"""Builds the Rust crate at the repository root and bundles it in the `expman` package.

    pip install ./bindings/python                       # release build of ../../Cargo.toml
    EXPMAN_FEATURES=gpu pip install ./bindings/python   # with optional Cargo features

The library is a plain cdylib with a C ABI (no Python bindings compiled in): setuptools-rust's
`Binding.NoBinding` copies it into the package as `expman/libexpman.<abi tag>.so`, where
`expman/_ffi.py` loads it by absolute path with ctypes.
"""

import os
import re
from pathlib import Path

from setuptools import setup
from setuptools_rust import Binding, RustBin, RustExtension

HERE = Path(__file__).resolve().parent
CARGO_TOML = os.path.relpath(HERE.parent.parent / "Cargo.toml", Path.cwd())
FEATURES = [f for f in re.split(r"[,\s]+", os.environ.get("EXPMAN_FEATURES", "")) if f]

rust_extensions = [
    RustExtension(
        "expman.libexpman",
        path=CARGO_TOML,
        binding=Binding.NoBinding,
        features=FEATURES,
        py_limited_api=False,
    ),
]


# ---- The `EXP` command (scheduler + web UI) ----------------------------------------------
# Installed into the environment's bin/ (on the PATH) when the crate declares the binary (a
# [[bin]] named EXP, or src/bin/EXP.rs), built with the "ui" feature. A checkout without it
# installs the library alone. `optional`: a failing EXP build (its extra dependencies) must
# not take the Python library down with it; setuptools-rust then skips the binary with a
# warning, and the Rust tests report the failure.
def _crate_has_exp_binary():
    src_bin = HERE.parent.parent / "src" / "bin"
    if (src_bin / "EXP.rs").is_file() or (src_bin / "EXP" / "main.rs").is_file():
        return True
    manifest = (HERE.parent.parent / "Cargo.toml").read_text(encoding="utf-8")
    return re.search(r'^\s*name\s*=\s*"EXP"\s*$', manifest, re.MULTILINE) is not None


if _crate_has_exp_binary():
    rust_extensions.append(
        RustBin(
            "EXP",
            path=CARGO_TOML,
            args=["--bin", "EXP"],
            features=sorted(set(FEATURES) | {"ui"}),
            optional=True,
        )
    )
# -------------------------------------------------------------------------------------------

setup(
    packages=["expman", "experiment_manager", "experiment_manager.core"],
    rust_extensions=rust_extensions,
    zip_safe=False,
)
