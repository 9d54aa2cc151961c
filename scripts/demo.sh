#!/usr/bin/env bash
# The main job: build heartbeat, start it, show it alive, stop it.
# As root the pidfile is /run/heartbeat.pid and the log /var/log/heartbeat.log;
# as a user both live in $XDG_RUNTIME_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release -B build/demo -DDAEMONKIT_BUILD_TESTS=OFF >/dev/null
cmake --build build/demo
hb=build/demo/heartbeat
if [ "$(id -u)" = 0 ]; then log=/var/log/heartbeat.log; else log=${XDG_RUNTIME_DIR:?set XDG_RUNTIME_DIR}/heartbeat.log; fi
set -x
"$hb" start --interval 1          # returns once the daemon is up
"$hb" status                      # exit 0: running
sleep 3
tail -n 4 "$log"
"$hb" stop                        # returns once the daemon is gone
"$hb" status || echo "status exit code $? (3: not running)"
