#!/usr/bin/env bash
# Builds the Debian package build/package/daemonkit_VERSION_ARCH.deb with
# CPack, checks what it holds, and runs lintian on it. Fails when lintian
# reports an error, a warning or an informational tag (docs/packaging.md).
#   scripts/package.sh [--no-lintian]
# Needs dpkg-dev (dpkg-shlibdeps, dpkg-buildflags) and lintian.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "package: FAIL: $*" >&2; exit 1; }
lint=yes
case "${1:-}" in
  "") ;;
  --no-lintian) lint=no ;;
  *) echo "usage: scripts/package.sh [--no-lintian]" >&2; exit 2 ;;
esac
# Without dpkg-shlibdeps CPack silently writes a package with no Depends.
command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps not found: apt-get install dpkg-dev"
if [ $lint = yes ] && ! command -v lintian >/dev/null; then
  fail "lintian not found: apt-get install lintian (or run with --no-lintian)"
fi

# Debian's own compiler and linker flags (hardening included: fortified
# functions, stack protector, full RELRO with immediate binding).
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cxxflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
cmake -S . -B build/package -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAEMONKIT_BUILD_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX=/usr -DDAEMONKIT_DEB_LAYOUT=ON -DDAEMONKIT_LEAN_PROGRAMS=ON -DDAEMONKIT_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$cxxflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" >/dev/null
cmake --build build/package
rm -f build/package/daemonkit_*.deb
(cd build/package && cpack -G DEB >/dev/null)
debs=(build/package/daemonkit_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single build/package/daemonkit_*.deb: ${debs[*]}"
deb=${debs[0]}
echo "package: $deb"

contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/daemonkit ./usr/bin/heartbeat ./usr/include/daemonkit/daemonkit.hpp \
    /libdaemonkit.a /cmake/daemonkit/daemonkitConfig.cmake /pkgconfig/daemonkit.pc \
    ./usr/share/man/man1/daemonkit.1.gz ./usr/share/man/man1/heartbeat.1.gz \
    ./usr/share/man/man3/daemonkit.3.gz ./usr/share/bash-completion/completions/daemonkit \
    ./usr/share/doc/daemonkit/changelog.gz ./usr/share/doc/daemonkit/copyright; do
  grep -q -- "$f\$" <<<"$contents" || fail "$f is missing from $deb"
done
depends=$(dpkg-deb --field "$deb" Depends)
grep -q 'libc6' <<<"$depends" || fail "Depends names no libc6: '$depends'"
echo "package: Depends: $depends"

if [ $lint = no ]; then
  echo "package: lintian skipped (--no-lintian)"
  exit 0
fi
# Errors, warnings and informational tags fail; pedantic ones are shown.
# (No --show-overrides: lintian 2.116 then counts overridden tags as failures.)
# lintian 2.116 leaves two mldbm-elf-* files in $TMPDIR on every run: give it
# a directory of its own.
lintian_tmp=$(mktemp -d)
trap 'rm -rf "$lintian_tmp"' EXIT
if ! TMPDIR=$lintian_tmp lintian --fail-on error,warning,info --display-info --pedantic \
    --tag-display-limit 0 "$deb"; then
  fail "lintian reports a tag (docs/packaging.md says how each was handled)"
fi
echo "package: ok (lintian: no tag)"
