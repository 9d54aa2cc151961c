#!/usr/bin/env bash
# Fails when a C++ file differs from what clang-format (.clang-format) makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=()
for d in include src tools examples tests bench fuzz; do [ -d "$d" ] && dirs+=("$d"); done
find "${dirs[@]}" \( -name '*.cpp' -o -name '*.hpp' -o -name '*.c' -o -name '*.h' \) -print0 |
  sort -z | xargs -0 -r clang-format --dry-run --Werror
echo "format: ok"
