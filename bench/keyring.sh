#!/usr/bin/env bash
# `astran-creds login` as a desktop runs it: inside a private D-Bus session (run me with
# dbus-run-session) with gnome-keyring started and unlocked, as a desktop login leaves it, so
# the session is saved in the Secret Service. Two phases: the command alone (no agent runs:
# it opens its own keyring session), then with the session's owner running as on a desktop
# (`astran-creds daemon` of each build in turn: the tray agent's owner code, without the
# icon), which holds the keyring open and makes the command's login for it. After each
# login, the servers' own time for the same two requests, side by side (bench/servers.py
# --each, one Python process that times them inside), each after the same pause as a login.
# Interleaves the builds given as LABEL=DIR (DIR holds astran-creds) and writes the samples,
# in ms, to $OUT/keyring-LABEL (alone), $OUT/keyring-owner-LABEL (owner running),
# $OUT/servers (one after each login), $OUT/servers-quiet (in a block at the end, back to
# back: no pause, nothing else running, the servers' best case), and each login's
# difference from the servers' time taken after it to $OUT/over-keyring-LABEL and
# $OUT/over-keyring-owner-LABEL.
#
#   OUT=dir RUNS=21 ASTRAN_IDP_URL=… ASTRAN_STS_ENDPOINT=… dbus-run-session -- bash bench/keyring.sh ours=target/release
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?}" "${RUNS:?}" "${ASTRAN_IDP_URL:?}" "${ASTRAN_STS_ENDPOINT:?}"
home=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$home"' EXIT
export HOME=$home XDG_RUNTIME_DIR=$home/run XDG_DATA_HOME=$home/.local/share XDG_CONFIG_HOME=$home/.config
export AWS_SHARED_CREDENTIALS_FILE=$home/.aws/credentials AWS_CONFIG_FILE=$home/.aws/config
unset ASTRAN_KEYRING
mkdir -p "$home/.aws" && mkdir -p -m 700 "$XDG_RUNTIME_DIR"
printf 'bench' | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
for _ in $(seq 100); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true && break
  sleep 0.05
done
login() { "$1/astran-creds" login --email demo@astran.io --password-stdin <<<'PASSWORD123' >/dev/null; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f\n", (b - a) * 1000}'; }
for a in "$@"; do login "${a#*=}"; done # warm-up: the keyring item exists from here on, as for a user
coproc SERVERS { exec python3 bench/servers.py --each; }
# Each login and each timing of the servers alone come after the same pause (PACE seconds,
# default 0.05: the previous one's trailing work, such as the owner's reload and the keyring
# daemon's write, has ended by then), so that neither finds the machine busier, or warmer,
# than the other; the pair's difference is our overhead at that moment.
pace() { sleep "${PACE:-0.05}"; }
phase() { # $1: file prefix, then the builds
  local prefix=$1 line ours srv; shift
  for _ in $(seq "$RUNS"); do
    for a in "$@"; do
      pace; t0=$EPOCHREALTIME; login "${a#*=}"; t1=$EPOCHREALTIME; ours=$(ms "$t0" "$t1")
      pace; echo >&"${SERVERS[1]}"; read -r line <&"${SERVERS[0]}"; srv=${line#srv }
      echo "$ours" >>"$OUT/$prefix-${a%%=*}"; echo "$srv" >>"$OUT/servers"
      awk -v a="$ours" -v b="$srv" 'BEGIN{printf "%.2f\n", a - b}' >>"$OUT/over-$prefix-${a%%=*}"
    done
  done
  # the session really is in the keyring
  secret-tool lookup service astran-tray username session:default | grep -q refresh_token
}
phase keyring "$@"
# the owner phase: each build's logins beside its own owner (`astran-creds daemon` of that
# build), the builds alternating in blocks of BLOCK logins (one build: one block of all), so
# that an owner's change is compared side by side too
owner=""
start_owner() { # $1: the build's directory
  "$1/astran-creds" daemon --notify log >>"$home/daemon.log" 2>&1 &
  owner=$!
  for _ in $(seq 200); do
    [ -S "$XDG_RUNTIME_DIR/astran-tray/agent.sock" ] && break
    sleep 0.05
  done
  login "$1" # warm-up: the owner's keyring session opens here
  printf 'PASSWORD123\n' | RUST_LOG=astran_creds=debug "$1/astran-creds" login --email demo@astran.io \
    --password-stdin 2>&1 >/dev/null | grep -q "the login is made by the running agent" \
    || echo "warning: $1 did not have the running owner make its login" >&2
}
stop_owner() { kill "$owner"; wait "$owner" 2>/dev/null || true; rm -f "$XDG_RUNTIME_DIR/astran-tray/agent.sock"; }
block=${BLOCK:-$RUNS}; [ $# -gt 1 ] || block=$RUNS
left=$RUNS
while [ "$left" -gt 0 ]; do
  k=$(( left < block ? left : block )); left=$(( left - k ))
  for a in "$@"; do
    start_owner "${a#*=}"
    RUNS=$k phase keyring-owner "$a"
    stop_owner
  done
done
# and the servers alone once more, in a block with nothing else running and no pause: their
# best case (hot caches, a machine that never idles between the requests)
for _ in $(seq "$RUNS"); do
  echo >&"${SERVERS[1]}"; read -r line <&"${SERVERS[0]}"; echo "${line#srv }" >>"$OUT/servers-quiet"
done
