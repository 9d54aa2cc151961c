#!/usr/bin/env bash
# Fuzzes every parser of outside input, and the escaping of a daemon's text
# for display, with libFuzzer (clang, ASan+UBSan):
#   scripts/fuzz.sh [SECONDS_PER_TARGET]           (default 60)
#       New inputs that grow coverage land in fuzz/corpus/<target>/, which is
#       then minimized; commit what it changed.
#   scripts/fuzz.sh --smoke [SECONDS_PER_TARGET]   (default 5)
#       Fuzzes a copy of the corpus and leaves fuzz/corpus/ as it is: the
#       short run that scripts/test.sh makes.
# A crash, a leak or a sanitizer report fails the script; the input that
# caused it is kept in build/fuzz/. The normal test suite replays the corpus
# under g++ (tests/CMakeLists.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=false
if [ "${1:-}" = --smoke ]; then
  smoke=true
  shift
fi
seconds=${1:-$($smoke && echo 5 || echo 60)}
out=build/fuzz
rm -rf "$out/obj" && mkdir -p "$out/obj"
flags=(-std=c++20 -g -O1 -fno-sanitize-recover=all -Iinclude -Isrc -Itools/daemonkit)
# The library once (instrumented for coverage, not linked with a main), then
# each target links it with libFuzzer's main.
lib=(src/*.cpp src/sys/*.cpp src/detach/*.cpp src/spawn/*.cpp tools/daemonkit/options.cpp
  tools/daemonkit/supervisor/fields.cpp tools/daemonkit/supervisor/state_file.cpp)
# shellcheck disable=SC2016  # expanded by the inner sh
printf '%s\n' "${lib[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'src=$0 obj=$1/obj; shift; exec clang++ "$@" -fsanitize=fuzzer-no-link,address,undefined -c "$src" -o "$obj/$(echo "$src" | tr / _).o"' \
  {} "$out" "${flags[@]}"
for target in values command_line text record; do
  clang++ "${flags[@]}" -fsanitize=fuzzer,address,undefined "fuzz/${target}_fuzz.cpp" \
    "$out"/obj/*.o -o "$out/${target}_fuzz"
done
max_len() { [ "$1" = values ] && echo 256 || echo 1024; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in values command_line text record; do
  echo "fuzz: $target for ${seconds}s"
  corpus="fuzz/corpus/$target"
  if $smoke; then
    cp -r "$corpus" "$work/$target"
    corpus="$work/$target"
  fi
  status=0
  "$out/${target}_fuzz" -max_total_time="$seconds" -max_len="$(max_len "$target")" \
    -print_final_stats=1 -artifact_prefix="$out/$target-" "$corpus" >"$work/$target.log" 2>&1 ||
    status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$target.log" || true
  if [ "$status" -ne 0 ]; then
    grep -E -A40 'ERROR|SUMMARY|==[0-9]+==' "$work/$target.log" | head -80 >&2 || tail -40 "$work/$target.log" >&2
    echo "fuzz: $target failed (exit $status); the input is in $out/" >&2
    exit 1
  fi
  $smoke && continue
  # Keep only the inputs that add coverage.
  min="$work/$target.min"
  mkdir "$min"
  "$out/${target}_fuzz" -merge=1 -max_len="$(max_len "$target")" "$min" "$corpus" >/dev/null 2>&1
  rm -rf "$corpus" && mv "$min" "$corpus" && chmod 755 "$corpus"
done
echo "fuzz: ok"
