"""The native layer matches include/expman.h: every function declared with its arity, the
ABI version and the status codes the same, and a wrong library refused at import."""

import re
import shutil
import subprocess

import pytest

from conftest import REPO, clean_env, run_python

HEADER = REPO / "include" / "expman.h"


def header_functions():
    """{name: [parameter, ...]} for every expman_* function declared in the header."""
    text = HEADER.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)  # preprocessor lines
    functions = {}
    for m in re.finditer(r"([\w\s\*]+?)\b(expman_\w+)\s*\(([^()]*)\)\s*;", text):
        if "typedef" in m.group(1):
            continue
        params = [p.strip() for p in m.group(3).split(",")]
        if params == ["void"]:
            params = []
        functions[m.group(2)] = (m.group(1).split()[-1] if m.group(1).split() else "", params,
                                 " ".join(m.group(1).split()))
    return functions


def test_header_has_functions():
    names = header_functions()
    assert len(names) >= 30, sorted(names)
    assert "expman_table_save_row_f64" in names


def test_every_header_function_is_declared_with_its_arity():
    from expman import _ffi

    declared = {name: (restype, argtypes) for name, restype, argtypes in _ffi._SIGNATURES}
    problems = []
    for name, (_, params, ret) in header_functions().items():
        if name not in declared:
            problems.append(f"{name}: in the header, not declared in _ffi.py")
            continue
        restype, argtypes = declared[name]
        if len(argtypes) != len(params):
            problems.append(f"{name}: header has {len(params)} parameters, _ffi.py {len(argtypes)}")
        if (ret == "void") != (restype is None):
            problems.append(f"{name}: header returns {ret!r}, _ffi.py restype {restype}")
    for name in declared:
        if name not in header_functions():
            problems.append(f"{name}: declared in _ffi.py, gone from the header")
    assert not problems, "\n".join(problems)


def test_every_declared_function_has_argtypes_on_the_loaded_library():
    from expman import _ffi

    for name, restype, argtypes in _ffi._SIGNATURES:
        fn = getattr(_ffi.lib, name)
        assert fn.argtypes == argtypes, name
        assert fn.restype == restype, name


def test_abi_version_and_status_codes_match_the_header():
    import expman
    from expman import _ffi

    text = HEADER.read_text(encoding="utf-8")
    abi = int(re.search(r"#define EXPMAN_ABI_VERSION (\d+)", text).group(1))
    assert abi == _ffi.ABI_VERSION == _ffi.lib.expman_abi_version()
    codes = {m.group(1): int(m.group(2))
             for m in re.finditer(r"#define EXPMAN_ERR_(\w+) (\d+)", text)}
    by_code = {cls.code: cls for cls in vars(expman).values()
               if isinstance(cls, type) and issubclass(cls, expman.ExpmanError)
               and cls.code is not None}
    assert set(by_code) == set(codes.values()), (codes, by_code)
    for prefix, field in (("VALUE", "KIND"), ("FEATURE", "FEATURE"), ("SYNC", "SYNC"),
                          ("STATE", "STATE")):
        for m in re.finditer(rf"#define EXPMAN_{prefix}_(\w+) (\d+)", text):
            assert getattr(_ffi, f"{field}_{m.group(1)}") == int(m.group(2)), m.group(0)


def test_field_name_limit_matches_the_header():
    import expman

    text = HEADER.read_text(encoding="utf-8")
    limit = int(re.search(r"#define EXPMAN_MAX_FIELD_NAME_LEN (\d+)", text).group(1))
    assert expman.MAX_FIELD_NAME_LEN == limit


def test_value_struct_layout_matches_the_header():
    import ctypes

    from expman import _ffi

    text = HEADER.read_text(encoding="utf-8")
    body = re.search(r"typedef struct expman_value \{(.*?)\} expman_value;", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    fields = [line.split()[-1].rstrip(";").lstrip("*") for line in body.splitlines()
              if line.strip().endswith(";")]
    assert fields == [name for name, _ in _ffi.ExpmanValue._fields_]
    assert ctypes.sizeof(_ffi.ExpmanValue) == 40


def test_bundled_library_is_loaded_by_absolute_path():
    import os

    import expman

    assert os.path.isabs(expman.library_path)
    assert os.path.exists(expman.library_path)
    assert expman.library_version.count(".") == 2


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_import_refuses_a_library_with_another_abi_version(tmp_path):
    src = tmp_path / "fake.c"
    src.write_text("unsigned expman_abi_version(void) { return 999; }\n")
    lib = tmp_path / "libfake.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    proc = run_python(["-c", "import expman"], tmp_path,
                      env=clean_env(EXPMAN_LIBRARY=lib), check=False)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "ABI version 999" in proc.stderr and "version 1" in proc.stderr, proc.stderr


def test_import_names_a_missing_library(tmp_path):
    proc = run_python(["-c", "import expman"], tmp_path,
                      env=clean_env(EXPMAN_LIBRARY=tmp_path / "nope.so"), check=False)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "nope.so" in proc.stderr, proc.stderr
