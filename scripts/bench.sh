#!/usr/bin/env bash
# Takes every benchmark figure again (bench/, about 4 minutes) and writes
# docs/bench.md, docs/bench.svg and the README's benchmark section. Needs
# root (pid namespaces) and the reference tools:
#   apt-get install -y daemonize daemon tini dumb-init
# Extra arguments go to daemonkit-bench (e.g. --quick, --only daemonkit,tini).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in /usr/sbin/start-stop-daemon /usr/bin/daemonize /usr/bin/daemon /usr/bin/tini \
    /usr/bin/dumb-init /usr/bin/unshare; do
  [ -x "$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: not installed: ${missing[*]} (apt-get install -y daemonize daemon tini dumb-init)" >&2
  exit 1
fi
cmake --preset release >/dev/null
cmake --build build/release --target daemonkit_tool heartbeat daemonkit_bench bench_floor \
  bench_idle bench_orphans
if [ $# -eq 0 ]; then
  exec build/release/bench/daemonkit-bench --build build/release --out docs --readme README.md \
    --command scripts/bench.sh
fi
exec build/release/bench/daemonkit-bench --build build/release --command "scripts/bench.sh $*" "$@"
