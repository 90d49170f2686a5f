#!/usr/bin/env bash
# Measures the tray agent (release build): cold start to its item registered on D-Bus, idle RSS
# and PSS of its process tree, click on "Log in…" to the login window mapped, RSS with the
# window open and 30 s after it closed, and the sizes of the release binaries and the .deb.
# Runs in a private D-Bus session under Xvfb with the test StatusNotifier host.
# Usage: bench/tray-footprint.sh   (after scripts/package.sh or cargo build --release --workspace)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ASTRAN_BENCH_INNER:-}" ]; then
  exec env ASTRAN_BENCH_INNER=1 dbus-run-session -- "$0" "$@"
fi
rel=target/release
for b in astran-tray astran-tray-window astran-creds; do [ -x "$rel/$b" ] || { echo "build $rel/$b first"; exit 2; }; done
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; pkill -P $$ 2>/dev/null; rm -rf "$work"' EXIT
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" NO_AT_BRIDGE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1
mkdir -p "$HOME" && mkdir -m 700 "$XDG_RUNTIME_DIR"
disp=:$((200 + RANDOM % 100)); Xvfb "$disp" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & export DISPLAY=$disp
sleep 1
.venv/bin/python tests/support/sni_host.py watch "$work/items" >/dev/null 2>&1 &
for _ in $(seq 50); do [ -e "$work/items" ] || sleep 0.1; done; sleep 0.5

tree_pids() { local p=$1; echo "$p"; for c in $(pgrep -P "$p" || true); do tree_pids "$c"; done; }
tree_mem() { # RSS and PSS in MB summed over the tree
  local rss=0 pss=0
  for p in $(tree_pids "$1"); do
    [ -r /proc/$p/smaps_rollup ] || continue
    r=$(awk '/^Rss:/{print $2}' /proc/$p/smaps_rollup); s=$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)
    rss=$((rss + r)); pss=$((pss + s))
  done
  printf '%.1f MB RSS, %.1f MB PSS' "$(echo "$rss/1024" | bc -l)" "$(echo "$pss/1024" | bc -l)"
}
now() { date +%s.%N; }

t0=$(now)
ASTRAN_KEYRING=none "$rel/astran-tray" >"$work/agent.log" 2>&1 &
agent=$!
until grep -q "StatusNotifierItem-$agent-" "$work/items" 2>/dev/null; do sleep 0.005; done
t1=$(now)
echo "cold start to tray item registered: $(echo "($t1 - $t0)*1000" | bc -l | xargs printf '%.0f') ms"
svc=$(grep -o "org.kde.StatusNotifierItem-$agent-[0-9]*" "$work/items" | head -1)
sleep 15
echo "agent idle (15 s after start): $(tree_mem $agent)"
cpu0=$(awk '{print $14+$15}' /proc/$agent/stat)

t2=$(now)
.venv/bin/python tests/support/sni_host.py click "$svc" "Log in" >/dev/null
until xdotool search --onlyvisible --name "^Log in to Astran$" >/dev/null 2>&1; do sleep 0.01; done
t3=$(now)
echo "click on Log in… to window mapped: $(echo "($t3 - $t2)*1000" | bc -l | xargs printf '%.0f') ms"
sleep 5
echo "with the login window open: $(tree_mem $agent)"
win=$(pgrep -P "$agent" -f "astran-tray-window" || true); echo "window pid: $win" >&2
kill -TERM "$win"; while kill -0 "$win" 2>/dev/null; do sleep 0.1; done
sleep 30
echo "30 s after the window closed: $(tree_mem $agent)"
cpu1=$(awk '{print $14+$15}' /proc/$agent/stat)
echo "agent CPU over those ~36 s (incl. spawning the window): $(( (cpu1 - cpu0) * 10 )) ms"
for b in astran-tray astran-tray-window astran-creds; do
  echo "release binary $b: $(du -h "$rel/$b" | cut -f1) ($(stat -c %s "$rel/$b") bytes)"
done
deb=$(ls -t target/release/bundle/deb/*.deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] && echo ".deb $(basename "$deb"): $(du -h "$deb" | cut -f1) ($(stat -c %s "$deb") bytes)"
