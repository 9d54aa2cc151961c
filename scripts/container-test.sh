#!/usr/bin/env bash
# daemonkit under a real container manager: systemd-nspawn boots a clean
# Debian 12 (debootstrap --variant=minbase bookworm, cached), the project's
# .deb is installed there with apt-get and no network, and
# `daemonkit run -- heartbeat run` is the container's first process. From
# outside, through /proc, it checks that daemonkit is pid 1 of the
# container's pid namespace and heartbeat its child, that heartbeat's log
# grows and that `daemonkit status` answers inside; then it sends SIGTERM to
# the container's leader and checks systemd-nspawn's exit status and that no
# process of the container remains. A second boot runs a payload that dies
# of the SIGTERM, for the 128+15 path.
#
#   scripts/container-test.sh [DEB]    (default: build one with scripts/package.sh)
#
# Needs root with CAP_SYS_ADMIN, systemd-nspawn (systemd-container) and
# debootstrap; the first run downloads the root from the Debian mirror apt
# uses. Environment:
#   DAEMONKIT_ROOTFS_CACHE   the cached root (default /var/cache/daemonkit/bookworm-minbase)
#   DAEMONKIT_DEBIAN_MIRROR  the mirror for debootstrap (default: the one apt uses)
set -eEuo pipefail
cd "$(dirname "$0")/.."

pass() { echo "container: PASS: $*"; }
note() { echo "container: $*"; }
fail() { echo "container: FAIL: $*" >&2; exit 1; }
clock() { echo "${EPOCHREALTIME//[.,]/}"; }  # microseconds
elapsed() { local us=$(($(clock) - $1)); printf '%d.%d s' $((us / 1000000)) $((us % 1000000 / 100000)); }
began=$(clock)

nspawn_pid=""   # the systemd-nspawn running now, started by this script
leader=""       # its container's pid 1, as the host sees it
work=""         # this run's scratch directory (mktemp)
mounted=""      # the overlay root, while mounted
building=""     # a debootstrap in progress (a temporary directory beside the cache)
cgroups=()      # this run's own cgroups (see make_cgroups)

# systemd-nspawn --keep-unit creates its payload/ and supervisor/ cgroups
# inside the caller's cgroup, and with no systemd on the host nobody removes
# them. So every systemd-nspawn of this run starts in a cgroup of the run's
# own, in the hierarchies systemd-nspawn uses (cgroup2, and the v1
# name=systemd one on a hybrid host): nothing is shared with other runs,
# nothing is left, and the kernel refuses to remove a cgroup that still holds
# a process.
make_cgroups() {
  local kind mnt rel
  while read -r kind mnt; do
    if [ "$kind" = unified ]; then
      rel=$(awk -F: '$1 == "0" && $2 == "" {print $3}' /proc/self/cgroup)
    else
      rel=$(awk -F: '$2 == "name=systemd" {print $3}' /proc/self/cgroup)
    fi
    [ -n "$rel" ] || continue
    local dir=${mnt}${rel%/}/daemonkit-test.${work##*.}
    mkdir "$dir" || fail "cannot create the cgroup $dir: systemd-nspawn needs a writable cgroup hierarchy"
    cgroups+=("$dir")
  done < <(awk '{ for (i = 7; $i != "-"; i++); fs = $(i + 1); opts = $(i + 3)
                  if (fs == "cgroup2") print "unified", $5
                  else if (fs == "cgroup" && opts ~ /(^|,)name=systemd(,|$)/) print "systemd", $5 }' \
             /proc/self/mountinfo)
  [ ${#cgroups[@]} -gt 0 ] || fail "no cgroup2 or name=systemd hierarchy is mounted: systemd-nspawn needs one"
}
# Fails, naming the cgroup, while a process remains in one.
remove_cgroups() {
  local dir sub
  for dir in "${cgroups[@]}"; do
    [ -d "$dir" ] || continue
    while read -r sub; do
      rmdir "$sub" 2>/dev/null || {
        echo "container: cgroup $sub still holds: $(cat "$sub/cgroup.procs" | tr '\n' ' ')" >&2
        return 1
      }
    done < <(find "$dir" -depth -type d)
  done
  cgroups=()
}
# Kill only what this script started, by pid; then unmount and remove.
cleanup() {
  local rc=$?
  set +e
  trap - ERR
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # SIGKILL to the container's pid 1 ends its whole pid namespace.
    [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null
    kill -TERM "$nspawn_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null
    wait "$nspawn_pid" 2>/dev/null
  fi
  if [ -n "$mounted" ] && ! umount "$mounted"; then
    echo "container: cleanup: cannot unmount $mounted; left $work" >&2
    work=""
  fi
  remove_cgroups || true
  [ -n "$building" ] && rm -rf --one-file-system "$building"
  [ -n "$work" ] && rm -rf --one-file-system "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "container: FAIL: unexpected exit $? at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'echo "container: FAIL: interrupted (SIGINT)" >&2; exit 130' INT
trap 'echo "container: FAIL: interrupted (SIGTERM)" >&2; exit 143' TERM

# --- what the host must offer -------------------------------------------------
[ "$(id -u)" = 0 ] || fail "needs root: systemd-nspawn and the overlay mount need CAP_SYS_ADMIN"
capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
(((16#$capeff >> 21) & 1)) ||
  fail "CAP_SYS_ADMIN is missing (CapEff $capeff): systemd-nspawn cannot create namespaces or mount here (an unprivileged container?)"
# systemd-nspawn remounts "/" (MS_REC|MS_SLAVE), which needs "/" to be a
# mount point of this mount namespace: a plain chroot is not one.
awk '$5 == "/" {found = 1} END {exit !found}' /proc/self/mountinfo ||
  fail "the root directory is not a mount point here (a plain chroot?): systemd-nspawn needs one; enter the chroot from a mount namespace of its own whose root is a mount point (unshare --mount, then mount --rbind DIR DIR and chroot DIR), with /proc, /dev and /sys (recursively: mount --rbind /sys DIR/sys) mounted"
for tool in systemd-nspawn:systemd-container debootstrap:debootstrap nsenter:util-linux flock:util-linux; do
  command -v "${tool%%:*}" >/dev/null || fail "${tool%%:*} not found: apt-get install ${tool#*:}"
done

# --- the package --------------------------------------------------------------
if [ $# -ge 1 ]; then
  deb=$1
else
  scripts/package.sh
  deb=$(ls build/package/daemonkit_*.deb)
fi
[ -f "$deb" ] || fail "no package at '$deb'"
deb=$(realpath "$deb")
version=$(dpkg-deb --field "$deb" Version)
note "package: $deb (version $version)"

# --- the cached root ----------------------------------------------------------
cache=${DAEMONKIT_ROOTFS_CACHE:-/var/cache/daemonkit/bookworm-minbase}

# The first archive apt uses for bookworm (deb822 .sources, then one-line
# lists); empty when there is none.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    case $f in
      *.sources)
        awk 'function found() { if (uri != "" && types ~ / deb / && suites ~ / bookworm /) { print uri; exit } uri = "" }
             /^[[:space:]]*$/ { found(); next }
             tolower($1) == "types:" { $1 = ""; types = $0 " " }
             tolower($1) == "uris:" { uri = $2 }
             tolower($1) == "suites:" { $1 = ""; suites = $0 " " }
             END { found() }' "$f" ;;
      *)
        awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                           if ($(i + 1) == "bookworm") { print $i; exit } }' "$f" ;;
    esac
  done
}

if [ ! -d "$cache" ]; then
  mirror=${DAEMONKIT_DEBIAN_MIRROR:-$(apt_mirror | awk 'NR == 1')}
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$(dirname "$cache")"
  # One builder at a time; the root appears under its name only when
  # complete (a rename), so an interrupted run never leaves a half root.
  exec {lock}>"$cache.lock"
  flock "$lock"
  if [ ! -d "$cache" ]; then
    # Under the lock no one else builds: what a killed run left is garbage.
    rm -rf --one-file-system "$cache".tmp.* ||
      fail "cannot remove what an interrupted build left in $cache.tmp.* (a mount inside?)"
    building=$(mktemp -d "$cache.tmp.XXXXXX")
    note "building $cache: debootstrap --variant=minbase bookworm from $mirror"
    start=$(clock)
    if ! debootstrap --variant=minbase bookworm "$building/root" "$mirror" >"$building/debootstrap.log" 2>&1; then
      tail -n 20 "$building/debootstrap.log" >&2
      fail "debootstrap failed (log above; mirror $mirror)"
    fi
    mv -T "$building/root" "$cache"
    rm -rf --one-file-system "$building"
    building=""
    note "built $cache in $(elapsed $start)"
  fi
  exec {lock}>&-
fi
grep -qs '^VERSION_CODENAME=bookworm$' "$cache/etc/os-release" && [ -x "$cache/usr/bin/apt-get" ] ||
  fail "$cache is not a Debian 12 root; remove it and run again"

# --- this run's root: an overlay on the cache, which stays untouched -------------
work=$(mktemp -d)
mkdir "$work/upper" "$work/ovl" "$work/root" "$work/log"
root=$work/root
if mount -t overlay overlay -o "lowerdir=$cache,upperdir=$work/upper,workdir=$work/ovl" "$root" 2>"$work/mount.err"; then
  mounted=$root
else
  note "overlay mount failed ($(cat "$work/mount.err")); copying the cached root instead"
  cp -a --reflink=auto "$cache/." "$root/"
fi

make_cgroups

machine=daemonkit-test-${work##*.}
nspawn_opts=(--quiet --register=no --keep-unit --directory="$root" --machine="$machine"
             --private-network --console=pipe --link-journal=no)

# nspawn OUTPUT ARG...: systemd-nspawn in the background, in this run's
# cgroups, stdin /dev/null, stdout and stderr to OUTPUT; sets nspawn_pid.
nspawn() {
  local output=$1
  shift
  (
    for dir in "${cgroups[@]}"; do echo "$BASHPID" >"$dir/cgroup.procs"; done
    exec systemd-nspawn "${nspawn_opts[@]}" "$@"
  ) </dev/null >"$output" 2>&1 &
  nspawn_pid=$!
}

# wait_nspawn SECONDS: waits for systemd-nspawn to end, at most SECONDS, and
# sets nspawn_rc; fails naming the deadline.
wait_nspawn() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$nspawn_pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "systemd-nspawn (pid $nspawn_pid) still runs after $1 s"
    sleep 0.1
  done
  nspawn_rc=0
  wait "$nspawn_pid" || nspawn_rc=$?
  nspawn_pid=""
  leader=""
}

# --- install the package, offline ---------------------------------------------
start=$(clock)
cp "$deb" "$root/var/tmp/"
inside_deb=/var/tmp/$(basename "$deb")
nspawn "$work/install.log" --setenv=DEBIAN_FRONTEND=noninteractive -- /bin/sh -euc '
  net=$(ls /sys/class/net)
  [ "$net" = lo ] || { echo "the container has network devices: $net"; exit 1; }
  apt-get install -y "$1"
  changed=$(dpkg --verify daemonkit)
  [ -z "$changed" ] || { echo "dpkg --verify daemonkit: $changed"; exit 1; }
  daemonkit --version
  heartbeat --version
  heartbeat --help >/dev/null
  daemonkit run --help >/dev/null' sh "$inside_deb"
wait_nspawn 300
if [ $nspawn_rc != 0 ]; then
  cat "$work/install.log" >&2
  fail "installing $inside_deb in the container exited $nspawn_rc (output above)"
fi
grep -qx "daemonkit $version" "$work/install.log" || fail "daemonkit --version did not print 'daemonkit $version'"
grep -qx "heartbeat $version" "$work/install.log" || fail "heartbeat --version did not print 'heartbeat $version'"
pass "apt-get install of the package on a clean Debian 12 with no network; dpkg --verify clean; --version says $version ($(elapsed $start))"

# --- helpers over /proc (empty answers once the process is gone) ---------------
children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true; }
ns_pid() { awk '/^NSpid:/ {print $NF}' /proc/"$1"/status 2>/dev/null || true; }
pid_ns() { readlink /proc/"$1"/ns/pid 2>/dev/null || true; }
start_time() { awk '{sub(/.*\) /, ""); print $20}' /proc/"$1"/stat 2>/dev/null || true; }
comm() { cat /proc/"$1"/comm 2>/dev/null || true; }
# Every process (pid:start time) in the pid namespace NS.
members() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(pid_ns "${p#/proc/}")" = "$1" ] && echo "${p#/proc/}:$(start_time "${p#/proc/}")"
  done
  return 0
}

# find_leader OUTPUT: waits until the container's pid 1, a child of
# systemd-nspawn, has executed daemonkit; sets leader.
find_leader() {
  local deadline=$((SECONDS + 30)) child
  while :; do
    for child in $(children "$nspawn_pid"); do
      [ "$(ns_pid "$child")" = 1 ] && [ "$(comm "$child")" = daemonkit ] && leader=$child
    done
    [ -n "$leader" ] && return 0
    if ! kill -0 "$nspawn_pid" 2>/dev/null; then
      cat "$1" >&2
      fail "systemd-nspawn ended before daemonkit ran as the container's pid 1 (its output above)"
    fi
    [ $SECONDS -lt $deadline ] || fail "no daemonkit as pid 1 of the container after 30 s"
    sleep 0.1
  done
}

# stop_and_check OUTPUT EXPECTED WHY: SIGTERM to the leader; systemd-nspawn
# must exit EXPECTED, and nothing of the container may remain.
stop_and_check() {
  local output=$1 expected=$2 why=$3 ns before start p
  ns=$(pid_ns "$leader")
  before=$(members "$ns")
  start=$(clock)
  kill -TERM "$leader"
  wait_nspawn 30
  if [ "$nspawn_rc" != "$expected" ]; then
    cat "$output" >&2
    fail "systemd-nspawn exited $nspawn_rc after SIGTERM to the container's pid 1, expected $expected ($why)"
  fi
  pass "SIGTERM to the container's pid 1: systemd-nspawn exited $nspawn_rc ($why) after $(elapsed $start)"
  for p in $before; do
    [ "$(start_time "${p%%:*}")" != "${p#*:}" ] || fail "pid ${p%%:*} of the container still runs: $(comm "${p%%:*}")"
  done
  [ -z "$(members "$ns")" ] || fail "processes remain in the container's pid namespace: $(members "$ns")"
  remove_cgroups || fail "a process remains in this run's cgroups"
  make_cgroups
  pass "nothing remains: systemd-nspawn gone, none of the container's $(wc -w <<<"$before") processes ($(tr '\n' ' ' <<<"$before" | sed 's/ $//')), an empty pid namespace, empty cgroups"
}

# --- boot 1: daemonkit run -- heartbeat run -------------------------------------
start=$(clock)
nspawn "$work/boot.log" --bind="$work/log:/var/log/heartbeat" -- \
  daemonkit run --pidfile /run/heartbeat.pid -- heartbeat run --log /var/log/heartbeat/heartbeat.log --interval 1
find_leader "$work/boot.log"
[ "$(pid_ns "$leader")" != "$(pid_ns $$)" ] || fail "the container's leader $leader shares the host's pid namespace"
[ "$(tr '\0' ' ' </proc/"$leader"/cmdline | cut -d' ' -f1-2)" = "daemonkit run" ] ||
  fail "the container's pid 1 runs '$(tr '\0' ' ' </proc/"$leader"/cmdline)', not daemonkit run"
pass "daemonkit run is pid 1 of the container's pid namespace (host pid $leader, a child of systemd-nspawn $nspawn_pid)"

log=$work/log/heartbeat.log
alive_lines() { if [ -f "$log" ]; then grep -c '^Daemon Alive! ' "$log" || true; else echo 0; fi; }
deadline=$((SECONDS + 20))
while [ "$(alive_lines)" -lt 3 ]; do
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/boot.log" >&2; fail "the container ended early (output above)"; }
  [ $SECONDS -lt $deadline ] || fail "heartbeat's log has fewer than 3 'Daemon Alive!' lines after 20 s: $(cat "$log" 2>/dev/null)"
  sleep 0.2
done
hb=""
for child in $(children "$leader"); do [ "$(comm "$child")" = heartbeat ] && hb=$child; done
[ -n "$hb" ] || fail "no heartbeat among the children of daemonkit (pid $leader): $(children "$leader" | tr '\n' ' ')"
[ "$(pid_ns "$hb")" = "$(pid_ns "$leader")" ] || fail "heartbeat (pid $hb) is not in the container's pid namespace"
hb_inside=$(ns_pid "$hb")
grep -qx "Daemon started with pid $hb_inside" "$log" ||
  fail "heartbeat's log does not say 'Daemon started with pid $hb_inside': $(head -n 1 "$log")"
pass "heartbeat is daemonkit's child (host pid $hb, pid $hb_inside inside); its log grows: $(alive_lines) 'Daemon Alive!' lines so far"

# The liveness probe of docs/containers.md, asked inside the container.
# --root and --wd: the container's own root and working directory. Without
# them our view of "/" stays, and it differs from the mount namespace's when
# this script itself runs in a chroot (sbuild, pbuilder).
if status=$(timeout 10 nsenter --target "$leader" --pid --mount --root --wd -- daemonkit status --pidfile /run/heartbeat.pid); then
  pass "daemonkit status inside the container: $(head -n 1 <<<"$status")"
else
  fail "daemonkit status inside the container exited $?: $status"
fi

# heartbeat ends its loop on SIGTERM and returns 0 (examples/heartbeat); run
# exits with its payload's status; systemd-nspawn with its pid 1's.
stop_and_check "$work/boot.log" 0 "heartbeat exits 0 on SIGTERM, and run with it"
# On a host whose /run is not a tmpfs, systemd-nspawn says it will not
# remove its propagation directory there; it is gone all the same.
grep -q . "$work/boot.log" && note "output of systemd-nspawn and the container: $(tr '\n' ' ' <"$work/boot.log")"
note "boot 1 took $(elapsed $start)"

# --- boot 2: a payload killed by the SIGTERM ---------------------------------------
# The payload's process group gets the SIGTERM: the shell's background sleep
# dies too, and run exits 128 + 15.
start=$(clock)
nspawn "$work/boot2.log" -- daemonkit run -- /bin/sh -c 'sleep 600 & exec sleep 600'
find_leader "$work/boot2.log"
deadline=$((SECONDS + 10))
sleeps() {  # the payload and its child, as seen from outside
  local c g
  for c in $(children "$leader"); do
    comm "$c"
    for g in $(children "$c"); do comm "$g"; done
  done | grep -c '^sleep$' || true
}
until [ "$(sleeps)" = 2 ]; do
  [ $SECONDS -lt $deadline ] || fail "the payload's two sleeps did not appear in the container"
  sleep 0.1
done
stop_and_check "$work/boot2.log" 143 "the payload died of SIGTERM: 128 + 15"
note "boot 2 took $(elapsed $start)"
note "ok ($(elapsed "$began") in all)"
