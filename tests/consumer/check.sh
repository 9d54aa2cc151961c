#!/usr/bin/env bash
# Installs the build tree into a private prefix and builds a consumer against
# it twice: with find_package(daemonkit) and with pkg-config; runs both.
#   check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -x "$work/prefix/bin/daemonkit" && test -x "$work/prefix/bin/heartbeat"
test -f "$work/prefix/share/man/man1/daemonkit.1" && test -f "$work/prefix/share/man/man3/daemonkit.3"
test -f "$work/prefix/share/bash-completion/completions/daemonkit"

cmake -S "$src/tests/consumer" -B "$work/cmake-build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/cmake-build" > "$work/build.log"
"$work/cmake-build/consumer" "$work/none.pid"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
# shellcheck disable=SC2046
g++ -o "$work/pc-consumer" "$src/tests/consumer/main.cpp" $(pkg-config --cflags --libs daemonkit)
"$work/pc-consumer" "$work/none.pid"
echo "consumer: ok (CMake package and pkg-config)"
