#!/usr/bin/env bash
# Memcheck over the command-line tool: every command once, under valgrind with
# --track-fds=yes. Fails on any memory error, definite leak, or a descriptor
# open at exit that was not inherited (children after fork are silent: the
# daemons run on, and the intermediate child's _exit is not a leak).
#   scripts/valgrind.sh [BUILD_DIR]   (default build/dev)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/dev}
dk="$bin/daemonkit"
hb="$bin/heartbeat"
work=$(mktemp -d)
log="$work/valgrind.log"
trap 'rm -rf "$work"' EXIT
vg() {
  valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --track-fds=yes --child-silent-after-fork=yes --log-file="$work/vg.%p" "$@"
}
check_logs() {  # every "Open ..." entry must be followed by "<inherited from parent>"
  for f in "$work"/vg.*; do
    [ -e "$f" ] || continue
    if awk '/Open (file descriptor|AF_)/ {open=1; next} open && /inherited from parent/ {open=0; next}
            open && /^==[0-9]+== *$/ {bad=1} END {exit bad}' "$f"; then :; else
      echo "valgrind: a descriptor leaked:" >&2; cat "$f" >&2; exit 1
    fi
    grep -q 'ERROR SUMMARY: [1-9]' "$f" && { cat "$f" >&2; exit 1; }
    cat "$f" >> "$log"
    rm -f "$f"
  done
}
p="$work/dk.pid"
vg "$dk" start --pidfile "$p" --stdout "$work/out" -- /bin/sh -c 'trap "" HUP; exec sleep 100'
vg "$dk" status --pidfile "$p" >/dev/null
vg "$dk" status --pidfile "$p" --json >/dev/null
vg "$dk" reopen --pidfile "$p"
vg "$dk" reload --pidfile "$p"
vg "$dk" stop --pidfile "$p"
vg "$dk" status --pidfile "$p" >/dev/null || [ $? = 3 ]
vg "$dk" run -- /bin/sh -c 'exit 3' || [ $? = 3 ]
vg "$dk" start --pidfile "$p" -- no-such-program-dk 2>/dev/null || [ $? = 5 ]
vg "$dk" start --bogus 2>/dev/null || [ $? = 2 ]
vg "$hb" start --pidfile "$work/hb.pid" --log "$work/hb.log" --interval 0.1
vg "$hb" status --pidfile "$work/hb.pid" --log "$work/hb.log" >/dev/null
vg "$hb" stop --pidfile "$work/hb.pid"
check_logs
echo "valgrind: ok (memcheck and descriptors, $(ls "$work" | wc -l) files left in the scratch dir)"
