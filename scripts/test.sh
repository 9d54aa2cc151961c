#!/usr/bin/env bash
# The whole test suite: formatting, static analysis (clang-tidy, cppcheck),
# a 5-second libFuzzer run of each fuzz target (clang),
# then the debug build (and valgrind memcheck over its command-line tool) (warnings are errors),
# the AddressSanitizer+UBSan build, the integration tests once more with the
# pidfd syscalls answering ENOSYS (as on kernels before 5.3), and the
# optimized build that the README's first command uses, each configured,
# built and tested by one CMake workflow preset; then the Debian package,
# checked by lintian, installed on a clean Debian 12 under systemd-nspawn,
# with daemonkit run as the container's pid 1 (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/check-format.sh
cmake --preset dev >/dev/null  # compile_commands.json for the linters
scripts/lint.sh
if command -v clang++ >/dev/null; then
  scripts/fuzz.sh --smoke 5
else
  echo "fuzz: clang++ is not installed (apt-get install clang libclang-rt-14-dev): smoke run SKIPPED"
fi
cmake --workflow --preset dev
scripts/valgrind.sh build/dev
cmake --workflow --preset asan
cmake --workflow --preset nopidfd
cmake --workflow --preset release
scripts/package.sh
scripts/container-test.sh build/package/daemonkit_*.deb
