#!/usr/bin/env bash
# Builds the Debian package (build/package/daemonkit_*.deb), checks that it
# holds the programs, library, headers, CMake/pkg-config files, man pages and
# completion, and runs lintian on it when lintian is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/package -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAEMONKIT_BUILD_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build build/package
(cd build/package && cpack -G DEB >/dev/null)
deb=$(ls build/package/daemonkit_*.deb)
echo "package: $deb"
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/daemonkit ./usr/bin/heartbeat ./usr/include/daemonkit/daemonkit.hpp \
    /libdaemonkit.a /cmake/daemonkit/daemonkitConfig.cmake /pkgconfig/daemonkit.pc \
    ./usr/share/man/man1/daemonkit.1 ./usr/share/man/man3/daemonkit.3 \
    ./usr/share/bash-completion/completions/daemonkit; do
  grep -q -- "$f" <<<"$contents" || { echo "package: $f is missing" >&2; exit 1; }
done
dpkg-deb --field "$deb" Depends
if command -v lintian >/dev/null; then
  lintian --no-tag-display-limit "$deb" || true
else
  echo "package: lintian is not installed; skipped"
fi
