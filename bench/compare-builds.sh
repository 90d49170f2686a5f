#!/usr/bin/env bash
# Compares release builds made with different profiles (opt-level, panic), interleaved in one
# run against the same local servers: `astran-creds login` and `credential-process` times
# (median, min-max) and the sizes of the binaries present in each. With --keyring, also
# `login` with gnome-keyring on (bench/keyring.sh) and the servers' own time.
#
#   bash bench/compare-builds.sh [-n RUNS] [--keyring] LABEL=TARGET_DIR...
#   e.g. CARGO_TARGET_DIR=/tmp/t-s CARGO_PROFILE_RELEASE_OPT_LEVEL=s cargo build --release -p astran-creds -p astran-tray
#        bash bench/compare-builds.sh o3=target s=/tmp/t-s
set -euo pipefail
cd "$(dirname "$0")/.."
n=15 keyring=0
[ "${1:-}" = -n ] && { n=$2; shift 2; }
[ "${1:-}" = --keyring ] && { keyring=1; shift; }
[ $# -ge 1 ] || { sed -n '2,8p' "$0"; exit 2; }
work=$(mktemp -d)
cleanup() { for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
idp=""
for a in "$@"; do d=${a#*=}; for c in "$d/release/astran-test-idp" "$d/debug/astran-test-idp"; do [ -z "$idp" ] && [ -x "$c" ] && idp=$c; done; done
[ -n "$idp" ] || idp=${CARGO_TARGET_DIR:-target}/debug/astran-test-idp
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
"$idp" --user "demo@astran.io:PASSWORD123:arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced80013:root" >"$work/idp" 2>/dev/null &
for _ in $(seq 300); do
  grep -q listening "$work/idp" 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1
done
export ASTRAN_IDP_URL="$(sed -n 's/^listening on //p' "$work/idp")/auth/realms/root-accounts/protocol/openid-connect/token"
export ASTRAN_STS_ENDPOINT="http://127.0.0.1:$port" ASTRAN_KEYRING=none
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config AWS_SHARED_CREDENTIALS_FILE=$work/home/.aws/credentials
mkdir -p "$HOME"
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f\n", (b - a) * 1000}'; }
login() { "$1/release/astran-creds" login --email demo@astran.io --password-stdin <<<'PASSWORD123' >/dev/null 2>&1; }
login "${1#*=}" # warm-up
for _ in $(seq "$n"); do
  for a in "$@"; do
    l=${a%%=*} d=${a#*=}
    t0=$EPOCHREALTIME; login "$d"; t1=$EPOCHREALTIME; ms "$t0" "$t1" >>"$work/login-$l"
    t0=$EPOCHREALTIME; "$d/release/astran-creds" credential-process >/dev/null; t1=$EPOCHREALTIME; ms "$t0" "$t1" >>"$work/cp-$l"
  done
done
if [ $keyring = 1 ]; then
  builds=(); for a in "$@"; do builds+=("${a%%=*}=$(cd "${a#*=}" && pwd)/release"); done
  OUT=$work RUNS=$n BLOCK=5 dbus-run-session -- bash bench/keyring.sh "${builds[@]}" 2>/dev/null
fi
st() { sort -g "$1" | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f (%.1f–%.1f)", m, a[1], a[NR]}'; }
sz() { [ -e "$1" ] && awk -v b="$(stat -c %s "$1")" 'BEGIN{printf "%.2f MB", b/1e6}' || echo "–"; }
kh="" ks=""
[ $keyring = 1 ] && { kh=" login with gnome-keyring, no agent, ms | with gnome-keyring and the owner running (each build's own daemon, alternating in blocks of 5), ms |"; ks="---|---|"; }
echo "| build | login ms (ASTRAN_KEYRING=none), median (min–max), n=$n |$kh credential-process ms | astran-creds | astran-tray | astran-tray-window |"
echo "|---|---|$ks---|---|---|---|"
for a in "$@"; do
  l=${a%%=*} d=${a#*=}
  kc=""; [ $keyring = 1 ] && kc=" $(st "$work/keyring-$l") | $(st "$work/keyring-owner-$l") |"
  echo "| $l | $(st "$work/login-$l") |$kc $(st "$work/cp-$l") | $(sz "$d/release/astran-creds") | $(sz "$d/release/astran-tray") | $(sz "$d/release/astran-tray-window") |"
done
if [ $keyring = 1 ]; then
  echo "| the servers alone (bench/servers.py --each: the two requests in one process), one after each login, each after the same pause | | $(st "$work/servers") | | | | | |"
  echo "| the same in a block at the end, back to back (the servers' best case) | | $(st "$work/servers-quiet") | | | | | |"
  for a in "$@"; do
    l=${a%%=*}
    echo "| $l: each login less the servers' time after it | | $(st "$work/over-keyring-$l") | $(st "$work/over-keyring-owner-$l") | | | | |"
  done
fi
