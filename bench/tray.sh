#!/usr/bin/env bash
# Tray-agent measurements, run by bench/run.sh inside a private D-Bus session (dbus-run-session)
# with the test StatusNotifier host; writes samples into $OUT (one file per measure, one number
# a line) and single values as `key value` lines into $OUT/values.
#
#   tray.sh footprint   cold start to the item registered (RUNS_START times), idle RSS/PSS of
#                       the process tree, click on "Log in…" to the login window shown
#                       (RUNS_WINDOW times, under Xvfb), the same for "Status…" and the
#                       status window, RSS/PSS with the window open and AFTER_S seconds after
#                       the last window closed, and after RENEWALS renewals twice over (the
#                       event ring full: its bound holds), and a menu click's answer while
#                       the IdP hangs
#   tray.sh idle        the agent, logged in, left alone IDLE_S seconds: CPU time (utime+stime)
#                       and wakeups (context switches of all its threads)
#
# Environment: BIN (release binaries), OUT, ASTRAN_IDP_URL, ASTRAN_STS_ENDPOINT, and the
# counts above.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=$1
work=$(mktemp -d)
cleanup() {
  local rc=$?
  [ "$rc" = 0 ] || { echo "bench/tray.sh $mode failed ($rc); agent log:" >&2; tail -30 "$work/agent.log" >&2 2>/dev/null || true; }
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" XDG_CONFIG_HOME="$work/home/.config"
export ASTRAN_KEYRING=none NO_AT_BRIDGE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1
# a request to the hanging IdP (the menu measurement) gives up after 3 s, so the agent stops soon after
export ASTRAN_HTTP_TIMEOUT_SECS=3
export ASTRAN_WINDOW_BIN="$BIN/astran-tray-window" # the measured build, even if BIN holds symlinks
export AWS_SHARED_CREDENTIALS_FILE="$work/home/.aws/credentials"
mkdir -p "$HOME" && mkdir -m 700 "$XDG_RUNTIME_DIR"
py=.venv/bin/python

.venv/bin/python tests/support/sni_host.py watch "$work/items" >"$work/host.out" 2>&1 &
for _ in $(seq 100); do grep -q ready "$work/host.out" 2>/dev/null && break; sleep 0.05; done

val() { echo "$1 $2" >>"$OUT/values"; }

tree_pids() { local p=$1; echo "$p"; for c in $(pgrep -P "$p" || true); do tree_pids "$c"; done; }
tree_mem() { # "RSS_MB PSS_MB" summed over the process tree
  local rss=0 pss=0 r s
  for p in $(tree_pids "$1"); do
    read -r r s < <(awk '/^Rss:/{r=$2} /^Pss:/{s=$2} END{print r+0, s+0}' /proc/"$p"/smaps_rollup 2>/dev/null || echo "0 0")
    rss=$((rss + r)); pss=$((pss + s))
  done
  awk -v r="$rss" -v s="$pss" 'BEGIN{printf "%.1f %.1f", r/1024, s/1024}'
}

# Start the agent; set AGENT to its pid once its StatusNotifierItem is registered, and append the
# milliseconds from exec to registration (the host's receive time) to $OUT/tray_start.
start_agent() {
  local t0 pid line
  t0=$EPOCHREALTIME
  "$BIN/astran-tray" >>"$work/agent.log" 2>&1 &
  pid=$!
  for _ in $(seq 2000); do
    line=$(grep "StatusNotifierItem-$pid-" "$work/items" 2>/dev/null | head -1 || true)
    [ -n "$line" ] && break
    sleep 0.005
  done
  [ -n "$line" ] || { echo "the agent did not register its item; log:" >&2; cat "$work/agent.log" >&2; exit 1; }
  jq -r --arg t0 "$t0" '(.t - ($t0|tonumber)) * 1000' <<<"$line" >>"$OUT/${START_FILE:-tray_start}"
  AGENT=$pid
}
stop_agent() { kill -TERM "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.01; done; }
service_of() { grep -o "org.kde.StatusNotifierItem-$1-[0-9]*" "$work/items" | head -1; }

login_agent() { # log the running agent in through its control socket, as the login window does
  $py - "$XDG_RUNTIME_DIR/astran-tray/agent.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(json.dumps({"cmd": "login", "email": "demo@astran.io", "password": "PASSWORD123"}).encode() + b"\n")
reply = json.loads(s.makefile().readline())
if not reply.get("ok"):
    sys.exit(f"login through the control socket failed: {reply}")
PY
}

renew_agent() { # N renewals through the control socket, one after the other
  $py - "$XDG_RUNTIME_DIR/astran-tray/agent.sock" "$1" <<'PY'
import json, socket, sys
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall(b'{"cmd":"refresh"}\n')
    reply = json.loads(s.makefile().readline())
    if not reply.get("ok"):
        sys.exit(f"refresh through the control socket failed: {reply}")
PY
}

proc_cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
thread_switches() { # "TID SWITCHES" (voluntary + involuntary) for each live thread
  local t
  for t in /proc/"$1"/task/*; do
    awk -v t="${t##*/}" '/^(non)?voluntary_ctxt_switches:/{n += $2} END{print t, n+0}' "$t/status" 2>/dev/null || true
  done
}
# Switches between two thread_switches snapshots: per thread, so one that exits in between does
# not take its count away from the sum (a blocking-pool thread ending after its keep-alive made
# the plain sum negative); a new thread counts whole. Prints "SWITCHES EXITED_THREADS".
switches_between() {
  awk 'NR == FNR {a[$1] = $2; next} {d += ($1 in a) ? $2 - a[$1] : $2; seen[$1] = 1}
       END {for (t in a) if (!(t in seen)) x++; print d + 0, x + 0}' "$1" "$2"
}

case $mode in
footprint)
  : "${RUNS_START:=10}" "${RUNS_WINDOW:=5}" "${IDLE_S:=15}" "${OPEN_S:=5}" "${AFTER_S:=30}"
  disp=:$((200 + RANDOM % 200))
  # -noreset: by default the server resets whenever its last client leaves, and sni_click.py's
  # xdotool polling is often that client; a window connecting during such a reset fails
  # ("Failed to initialize gtk backend!", about 1 opening in 25 here; 102 of 1500 bare
  # connections failed in a race test without it, 0 with it)
  Xvfb "$disp" -screen 0 1280x800x24 -nolisten tcp -noreset >/dev/null 2>&1 &
  export DISPLAY=$disp
  for _ in $(seq 100); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.05; done
  for i in $(seq "$RUNS_START"); do
    start_agent
    if [ "$i" -lt "$RUNS_START" ]; then stop_agent "$AGENT"; fi
  done
  agent=$AGENT
  svc=$(service_of "$agent")
  login_agent
  sleep "$IDLE_S"
  read -r rss pss <<<"$(tree_mem "$agent")"
  val idle_rss "$rss"; val idle_pss "$pss"
  # the login window, then the status window: opened from the menu, measured, closed
  for w in "Log in|Log in to Astran|window_shown|open" "Status|Astran status|status_shown|status_open"; do
    IFS='|' read -r item title shown mem <<<"$w"
    for _ in $(seq "$RUNS_WINDOW"); do
      $py bench/sni_click.py "$svc" "$item" "$title" >>"$OUT/$shown"
      sleep "$OPEN_S"
      tree_mem "$agent" | awk '{print $1 >> "'"$OUT"'/'"$mem"'_rss"; print $2 >> "'"$OUT"'/'"$mem"'_pss"}'
      win=$(pgrep -P "$agent" -f astran-tray-window | head -1)
      kill -TERM "$win"
      while kill -0 "$win" 2>/dev/null; do sleep 0.01; done
      sleep 1
    done
  done
  sleep "$AFTER_S"
  read -r rss pss <<<"$(tree_mem "$agent")"
  val after_rss "$rss"; val after_pss "$pss"; val after_s "$AFTER_S"
  # the event ring (256 events) fills, then stays full: RSS after one batch and after another
  : "${RENEWALS:=300}"
  renew_agent "$RENEWALS"
  read -r rss _ <<<"$(tree_mem "$agent")"; val renewals_rss "$rss"
  renew_agent "$RENEWALS"
  read -r rss _ <<<"$(tree_mem "$agent")"; val renewals2_rss "$rss"; val renewals "$RENEWALS"
  # the menu while the IdP hangs: "Copy export lines" has to renew first (the credentials
  # are made to look expired) and waits on the IdP; "Start at login", clicked right after,
  # is the tray thread's own work: from its click delivered to the autostart entry changed
  idp_base=${ASTRAN_IDP_URL%%/auth/*}
  entry=$XDG_CONFIG_HOME/autostart/astran-tray.desktop
  exp=$(sed -n 's/^x_security_token_expires = //p' "$AWS_SHARED_CREDENTIALS_FILE" | head -1)
  sed -i "s/$exp/2000-01-01T00:00:00Z/" "$AWS_SHARED_CREDENTIALS_FILE"
  curl -s -X POST -d '{"mode":"hang"}' "$idp_base/__test/fault" >/dev/null
  for _ in $(seq "$RUNS_WINDOW"); do
    had=0; [ -e "$entry" ] && had=1
    $py tests/support/sni_host.py click "$svc" "Copy export lines" >/dev/null
    $py tests/support/sni_host.py click "$svc" "Start at login" >/dev/null
    t0=$EPOCHREALTIME
    for _ in $(seq 5000); do
      now=0; [ -e "$entry" ] && now=1
      [ "$now" != "$had" ] && break
      sleep 0.001
    done
    [ "$now" != "$had" ] || { echo "the tray thread did not answer while the IdP hung" >&2; exit 1; }
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f\n", (b - a) * 1000}' >>"$OUT/menu_hang"
  done
  curl -s -X POST -d '{"mode":"none"}' "$idp_base/__test/fault" >/dev/null
  stop_agent "$agent"
  ;;
idle)
  : "${IDLE_S:=600}"
  START_FILE=idle_start start_agent
  agent=$AGENT
  login_agent
  sleep 5
  c0=$(proc_cpu_ticks "$agent"); thread_switches "$agent" >"$work/sw0"; t0=$EPOCHREALTIME
  sleep "$IDLE_S"
  c1=$(proc_cpu_ticks "$agent"); thread_switches "$agent" >"$work/sw1"; t1=$EPOCHREALTIME
  read -r w exited < <(switches_between "$work/sw0" "$work/sw1")
  hz=$(getconf CLK_TCK)
  val idle_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b - a}')"
  val idle_cpu_s "$(awk -v c=$((c1 - c0)) -v hz="$hz" 'BEGIN{printf "%.2f", c / hz}')"
  val idle_wakeups_per_min "$(awk -v w="$w" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", w * 60 / (b - a)}')"
  val idle_threads_exited "$exited"
  val idle_threads "$(ls /proc/"$agent"/task | wc -l)"
  read -r rss pss <<<"$(tree_mem "$agent")"
  val idle_end_rss "$rss"; val idle_end_pss "$pss"
  stop_agent "$agent"
  ;;
*) echo "usage: tray.sh footprint|idle" >&2; exit 2 ;;
esac
