#!/usr/bin/env bash
# The example units pass `systemd-analyze verify` (exit 77, a skip, where
# systemd is not installed).   systemd_units_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src=$1 bin=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "skipped: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The units name /usr/bin: point them at the build's binaries instead.
for unit in "$src"/docs/systemd/*.service; do
  sed -e "s|/usr/bin/heartbeat|$bin/heartbeat|g" -e "s|/usr/bin/daemonkit|$bin/daemonkit|g" \
    "$unit" > "$work/$(basename "$unit")"
done
systemd-analyze verify --man=no "$work"/*.service
echo "units: ok"
