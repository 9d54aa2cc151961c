#!/usr/bin/env bash
# Static analysis: clang-tidy (.clang-tidy: bugprone, performance, misc) and
# cppcheck over the library, the tool, the example and the benchmark, from the dev build's
# compile_commands.json. Any finding fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/dev/compile_commands.json ] || cmake --preset dev >/dev/null
files=(src/*.cpp src/sys/*.cpp src/detach/*.cpp src/spawn/*.cpp tools/daemonkit/*.cpp
       tools/daemonkit/supervisor/*.cpp examples/heartbeat/main.cpp bench/*.cpp)
# GCC-only warning flags in the compile commands mean nothing to clang.
# (It counts the warnings it suppressed in system headers on stderr: noise.)
clang-tidy -p build/dev --quiet --extra-arg=-Wno-unknown-warning-option "${files[@]}" \
  2> >(grep -v 'warnings generated' >&2)
if command -v cppcheck >/dev/null; then
  cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
    --inline-suppr --std=c++20 --language=c++ -Iinclude -Isrc -Itools/daemonkit \
    --suppress=missingIncludeSystem "${files[@]}"
fi
echo "lint: ok"
