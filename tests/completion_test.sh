#!/usr/bin/env bash
# Bash completion offers the commands and, per command, exactly the options
# that the command's --help lists.   completion_test.sh SOURCE_DIR DAEMONKIT HEARTBEAT
set -euo pipefail
src=$1 dk=$2 hb=$3
# shellcheck source=/dev/null
source "$src/completion/daemonkit"
# shellcheck source=/dev/null
source "$src/completion/heartbeat"
complete_words() {  # completion function, then the words; prints the candidates
  local fn=$1
  shift
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  "$fn"
  printf '%s\n' "${COMPREPLY[@]}" | sort -u
}
fail() { echo "completion: $*" >&2; exit 1; }

[ "$(complete_words _daemonkit daemonkit st | tr '\n' ' ')" = "start status stop " ] ||
  fail "commands starting with 'st'"
for cmd in start run stop restart reload reopen status; do
  offered=$(complete_words _daemonkit daemonkit "$cmd" -- | grep -v '^--$' || true)
  helped=$("$dk" "$cmd" --help | grep -oE '^  --[a-z-]+' | tr -d ' ' | sort -u)
  [ "$offered" = "$helped" ] || fail "$cmd: offers [$(echo $offered)] but --help lists [$(echo $helped)]"
done
for cmd in start stop status; do
  offered=$(complete_words _heartbeat heartbeat "$cmd" -- | grep -v '^--$' || true)
  helped=$("$hb" --help | grep -oE '^  (-h, )?--[a-z-]+' | sed 's/^  -h, /  /' | tr -d ' ' |
    grep -vE '^--(version)$' | sort -u)
  [ "$offered" = "$helped" ] || fail "heartbeat $cmd: offers [$(echo $offered)] but --help lists [$(echo $helped)]"
done
echo "completion: ok"
