#!/usr/bin/env bash
# tests/package/install_test.sh BUILD_DIR CXX [SANITIZERS] — libudax as a
# package: `cmake --install` into a temporary prefix; the install holds the
# shared library, the public headers (not the tests' src/fs/test_access.h),
# udax.pc, the CMake package and the tool; a program outside the tree
# (program.cc, copied away from the sources) is built twice against it —
# with `pkg-config --cflags --libs udax` and with find_package(udax) — and
# each build runs: mkfs, mount, write, read, map, store, unmount, mount again,
# every byte checked. SANITIZERS (a UDAX_SANITIZE build) are passed to the
# program's compiler, as the library needs their runtime.
set -euo pipefail
build=$1 cxx=$2 san=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build" --prefix "$T/prefix" >"$T/install.log" || { cat "$T/install.log"; fail "cmake --install"; }
pc=$(find "$T/prefix" -name udax.pc)
[ -n "$pc" ] || fail "no udax.pc installed"
libdir=$(cd "$(dirname "$pc")/.." && pwd)
for f in include/udax/fs.h include/udax/mapping.h include/udax/status.h include/udax/check.h \
         include/udax/fuse.h include/udax/export.h bin/udax; do
  [ -e "$T/prefix/$f" ] || fail "$f not installed"
done
[ -e "$libdir/libudax.so" ] || fail "libudax.so not in $libdir"
[ -e "$libdir/cmake/udax/udaxConfig.cmake" ] || fail "no CMake package config"
if find "$T/prefix" -name 'test_access.h' -o -name 'fs_impl.h' -o -name '*.a' | grep -q .; then
  fail "internal headers or static archives installed: $(find "$T/prefix" -name 'test_access.h' -o -name 'fs_impl.h' -o -name '*.a')"
fi

# The installed tool finds the installed library (its RPATH), not the build's.
loaded=$(ldd "$T/prefix/bin/udax" | sed -nE 's#^[[:space:]]*libudax\.so[^ ]* => ([^ ]+) .*#\1#p')
[ -n "$loaded" ] && [ "$(realpath "$loaded")" = "$(realpath "$libdir/libudax.so")" ] ||
  fail "the installed udax does not load $libdir/libudax.so: $(ldd "$T/prefix/bin/udax" | grep udax)"

# Outside the tree: only the install is on the include and library paths.
mkdir "$T/src"
cp "$here/program.cc" "$here/CMakeLists.txt" "$T/src/"
flags=(-std=c++20 -O1 -Wall)
[ -z "$san" ] || flags+=("-fsanitize=$san")

export PKG_CONFIG_PATH=$(dirname "$pc")
cflags=$(pkg-config --cflags udax) libs=$(pkg-config --libs udax)
[[ $cflags == *"$T/prefix/"* ]] || fail "pkg-config --cflags udax gives '$cflags', not the install"
# shellcheck disable=SC2086
"$cxx" "${flags[@]}" "$T/src/program.cc" -o "$T/program-pc" $cflags $libs || fail "building against pkg-config udax"
LD_LIBRARY_PATH=$libdir "$T/program-pc" "$T/pc.img" || fail "the pkg-config build's run"
"$T/prefix/bin/udax" fsck -n "$T/pc.img" >/dev/null || fail "the installed udax fsck -n of the program's image"

gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$T/src" -B "$T/consumer" "${gen[@]}" -DCMAKE_PREFIX_PATH="$T/prefix" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_CXX_FLAGS="${flags[*]}" >"$T/consumer.log" 2>&1 || { cat "$T/consumer.log"; fail "find_package(udax)"; }
cmake --build "$T/consumer" >>"$T/consumer.log" 2>&1 || { cat "$T/consumer.log"; fail "building against udax::udax"; }
LD_LIBRARY_PATH=$libdir "$T/consumer/program" "$T/cmake.img" || fail "the find_package build's run"
echo "ok: installed, built with pkg-config and with find_package(udax), both ran"
