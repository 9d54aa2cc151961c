#!/usr/bin/env bash
# The whole test suite: formatting, then the debug build (warnings are errors)
# and the AddressSanitizer+UBSan build, each configured, built and tested by
# one CMake workflow preset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/check-format.sh
cmake --workflow --preset dev
cmake --workflow --preset asan
