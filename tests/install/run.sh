#!/usr/bin/env bash
# What `cmake --install` of bindings/cpp gives a user, tested as a user has it: installs a
# configured and built bindings/cpp (tests/cpp's build: `ctest` runs this as its
# install_consumers test) into a scratch prefix, checks every file is there, then builds and runs
#   - the C++ program consumer.cpp with CMake (find_package(expman), CMakeLists.txt here), against
#     libexpman.so (expman::expman) and libexpman.a (expman::expman_static);
#   - the C program consumer.c with gcc and pkg-config, `expman` (libexpman.so) and
#     `expman-static` (libexpman.a), from the prefix and from a copy of it moved elsewhere.
#
#   tests/install/run.sh BUILD_DIR WORK_DIR [CXX_COMPILER] [CMAKE_GENERATOR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=$1
work=$2
cxx=${3:-c++}
generator=${4:-Unix Makefiles}
cc=${CC:-gcc}
cmake=${CMAKE:-cmake}

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
step() { printf 'install test: %s\n' "$*"; }

step "cmake --install $build_dir --prefix $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" >"$work/install.log"
# GNUInstallDirs puts libraries in lib/ or lib64/ depending on the system.
libdir=lib
[[ -d $prefix/lib64 ]] && libdir=lib64
for f in include/expman.h include/expman.hpp "$libdir/libexpman.so" "$libdir/libexpman.a" \
    "$libdir/cmake/expman/expmanConfig.cmake" "$libdir/cmake/expman/expmanConfigVersion.cmake" \
    "$libdir/pkgconfig/expman.pc" "$libdir/pkgconfig/expman-static.pc"; do
    if [[ ! -f $prefix/$f ]]; then
        echo "install test: cmake --install did not install $f; it installed:" >&2
        (cd "$prefix" && find . -type f | sort) >&2
        exit 1
    fi
done
soname=$(readelf -d "$prefix/$libdir/libexpman.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libexpman.so ]] || { echo "install test: SONAME is '$soname'" >&2; exit 1; }

step "CMake consumer: find_package(expman), expman::expman and expman::expman_static"
"$cmake" -S "$here" -B "$work/cmake-build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake-configure.log"
"$cmake" --build "$work/cmake-build" >"$work/cmake-build.log"
readelf -d "$work/cmake-build/consumer" | grep -q 'NEEDED.*\[libexpman.so\]' ||
    { echo "install test: consumer does not link libexpman.so" >&2; exit 1; }
if readelf -d "$work/cmake-build/consumer_static" | grep -q 'libexpman'; then
    echo "install test: consumer_static links libexpman dynamically" >&2
    exit 1
fi
# The shared one finds libexpman.so through the RPATH CMake wrote; nothing else is set.
env -u LD_LIBRARY_PATH "$work/cmake-build/consumer" "$work/run-cmake-shared"
env -u LD_LIBRARY_PATH "$work/cmake-build/consumer_static" "$work/run-cmake-static"

c_consumer() { # NAME PKG_CONFIG_PATH PACKAGE
    local name=$1 pcpath=$2 package=$3 cflags libs libdir_pc
    cflags=$(PKG_CONFIG_PATH=$pcpath pkg-config --cflags "$package")
    libs=$(PKG_CONFIG_PATH=$pcpath pkg-config --libs "$package")
    libdir_pc=$(PKG_CONFIG_PATH=$pcpath pkg-config --variable=libdir "$package")
    # shellcheck disable=SC2086 # the flags are words
    "$cc" -std=c11 -Wall -Wextra -Werror -pedantic "$here/consumer.c" -o "$work/$name" \
        $cflags $libs -Wl,-rpath,"$libdir_pc"
    env -u LD_LIBRARY_PATH "$work/$name" "$work/run-$name"
}

step "C consumer: gcc \$(pkg-config --cflags --libs expman)"
c_consumer c-shared "$prefix/$libdir/pkgconfig" expman
readelf -d "$work/c-shared" | grep -q 'NEEDED.*\[libexpman.so\]' ||
    { echo "install test: c-shared does not link libexpman.so" >&2; exit 1; }
step "C consumer: gcc \$(pkg-config --cflags --libs expman-static)"
c_consumer c-static "$prefix/$libdir/pkgconfig" expman-static
if readelf -d "$work/c-static" | grep -q 'libexpman'; then
    echo "install test: c-static links libexpman dynamically" >&2
    exit 1
fi

step "the prefix moved elsewhere: expman.pc finds it from its own place"
mv "$prefix" "$work/moved"
c_consumer c-moved "$work/moved/$libdir/pkgconfig" expman
[[ $(PKG_CONFIG_PATH=$work/moved/$libdir/pkgconfig pkg-config --variable=prefix expman) -ef $work/moved ]]

# The static libraries of a debug build are large: keep only the logs.
rm -rf "$work/moved" "$work/cmake-build"
step "ok"
