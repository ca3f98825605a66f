"""Builds the Rust crate at the repository root and bundles it in the `expman` package.

    pip install ./bindings/python                     # release build of ../../Cargo.toml
    pip install -e .                                  # at the root: the seed's install
    EXPMAN_FEATURES=parquet pip install ./bindings/python  # with more Cargo features
    ./scripts/build-wheel     # the manylinux wheel (with "parquet") that installs without Rust

The library and the `EXP` command are built with the same features ("ui": server, scheduler
and GPU discovery; "arrow": load_metrics_arrow(), load_metrics_df() through Arrow and
`EXP export --format csv`, about 10 s more on a 70 s release build; plus any in
EXPMAN_FEATURES, such as "parquet" for `EXP export --format parquet|arrow`, about 4 minutes
more), so Cargo compiles the crate once for both.

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
FEATURES = sorted(
    {"ui", "arrow"}
    | {f for f in re.split(r"[,\s]+", os.environ.get("EXPMAN_FEATURES", "")) if f}
)

rust_extensions = [
    RustExtension(
        "expman.libexpman",
        path=CARGO_TOML,
        binding=Binding.NoBinding,
        features=FEATURES,
        py_limited_api=False,
        # Cargo.toml's own crate types: setuptools-rust would otherwise build the lib as a
        # cdylib alone, and the EXP build below (which compiles the lib with all three) would
        # compile the whole crate a second time (about a CPU-minute in release).
        args=["--crate-type", "rlib,cdylib,staticlib"],
    ),
]


# ---- The `EXP` command (scheduler + web UI), installed into the environment's bin/. ------
# `optional`: a failing EXP build must not take the Python library down with it;
# setuptools-rust then skips the binary with a warning, and the Rust tests report the failure.
rust_extensions.append(
    RustBin(
        "EXP",
        path=CARGO_TOML,
        args=["--bin", "EXP"],
        features=FEATURES,
        optional=True,
    )
)
# -------------------------------------------------------------------------------------------

setup(
    packages=["expman", "expman.integrations", "experiment_manager", "experiment_manager.core"],
    # From here, or from the repository root (its setup.py runs this file for the seed's
    # `pip install -e .`).
    package_dir={"": os.path.relpath(HERE, Path.cwd())},
    rust_extensions=rust_extensions,
    zip_safe=False,
)
