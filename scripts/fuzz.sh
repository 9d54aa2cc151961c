#!/usr/bin/env bash
# Fuzzes every parser of outside input with libFuzzer (clang, ASan+UBSan):
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# New inputs that grow coverage land in fuzz/corpus/<target>/; the normal
# test suite replays that corpus under g++ (tests/CMakeLists.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build/fuzz
mkdir -p "$out"
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -Iinclude -Isrc -Itools/daemonkit)
lib=(src/*.cpp src/sys/*.cpp src/detach/*.cpp src/spawn/*.cpp)
cli=(tools/daemonkit/options.cpp)
clang++ "${flags[@]}" fuzz/values_fuzz.cpp "${lib[@]}" -o "$out/values_fuzz"
clang++ "${flags[@]}" fuzz/command_line_fuzz.cpp "${cli[@]}" "${lib[@]}" -o "$out/command_line_fuzz"
max_len() { [ "$1" = values ] && echo 256 || echo 1024; }
for target in values command_line; do
  echo "fuzz: $target for ${seconds}s"
  "$out/${target}_fuzz" -max_total_time="$seconds" -max_len="$(max_len "$target")" -print_final_stats=1 \
    "fuzz/corpus/$target" 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|ERROR|SUMMARY' || true
  test "${PIPESTATUS[0]}" -eq 0
  # Keep only the inputs that add coverage.
  min=$(mktemp -d)
  "$out/${target}_fuzz" -merge=1 -max_len="$(max_len "$target")" "$min" "fuzz/corpus/$target" >/dev/null 2>&1
  rm -rf "fuzz/corpus/$target" && mv "$min" "fuzz/corpus/$target" && chmod 755 "fuzz/corpus/$target"
done
echo "fuzz: ok"
