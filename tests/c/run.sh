#!/usr/bin/env bash
# Builds the expman cdylib, compiles every tests/c/*.c against include/expman.h with warnings as
# errors and AddressSanitizer + UndefinedBehaviorSanitizer, and runs each in a temporary
# directory. Prints PASS/FAIL per test and ends with "C tests: N passed, M failed".
#
#   tests/c/run.sh            # all tests
#   tests/c/run.sh race       # only tests/c/race.c
#
# Honours CARGO_TARGET_DIR (the library is taken from $CARGO_TARGET_DIR/debug) and CC.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

cargo build --lib --quiet
lib_dir=${CARGO_TARGET_DIR:-$root/target}/debug
[[ $lib_dir = /* ]] || lib_dir=$root/$lib_dir
if [[ ! -f $lib_dir/libexpman.so ]]; then
    echo "tests/c/run.sh: $lib_dir/libexpman.so was not built" >&2
    exit 1
fi

cc=${CC:-gcc}
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -O1
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
    -pthread -I"$root/include" -I"$root/tests/c")
# Leak checking stays on: every test frees what it creates, in children too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

work=$(mktemp -d "${TMPDIR:-/tmp}/expman-c-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [[ $# -gt 0 ]]; then
    sources=()
    for name in "$@"; do sources+=("tests/c/${name%.c}.c"); done
else
    sources=(tests/c/*.c)
fi

passed=0
failed=0
for source in "${sources[@]}"; do
    name=$(basename "$source" .c)
    exe=$work/$name
    log=$work/$name.log
    mkdir "$work/$name.tmp"
    if "$cc" "${cflags[@]}" "$source" -o "$exe" -L"$lib_dir" -lexpman \
        -Wl,-rpath,"$lib_dir" -lm >"$log" 2>&1 &&
        EXPMAN_TEST_TMP=$work/$name.tmp timeout 300 "$exe" >>"$log" 2>&1; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/    /' "$log"
        failed=$((failed + 1))
    fi
done

echo "C tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
