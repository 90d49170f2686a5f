#!/usr/bin/env bash
# Sets up and runs astran-creds' main job end to end on this machine, with local stand-ins
# for Astran's services (this machine cannot reach astran.cloud-iam.com): the project's
# Keycloak-faithful test IdP and moto as STS/S3/IAM (checking every signature, with Astran's
# root account: tests/support/moto_astran.py). It logs in, writes the `astran` profile into
# a scratch credentials file, creates a bucket with the real AWS CLI, shows the status, then
# the tutorial's second half: a permanent key made, used, rotated and deleted.
#
# scripts/demo.sh --tray: the same stand-ins and the tray agent (astran-tray) pointed at them,
# with a scratch HOME for the credentials and the agent's config.
# - On a desktop (a display, and a StatusNotifier host on your session bus): the icon shows in
#   your panel; log in through it with the printed demo password; Ctrl-C ends the demo.
# - Otherwise: everything under a private D-Bus session and Xvfb, with the test StatusNotifier
#   host; the script drives the menu itself (log in through the window, open the status
#   window) and saves screenshots into a folder it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
case "$#:${1:-}" in
  0:) tray="" ;;
  1:--tray) tray=1 ;;
  *) echo "usage: scripts/demo.sh [--tray]" >&2; exit 2 ;;
esac
EMAIL=demo@astran.io PASSWORD=PASSWORD123

# A desktop session with a tray host: a display, and org.kde.StatusNotifierWatcher owned on the
# user's session bus (no bus address and no $XDG_RUNTIME_DIR/bus: no desktop; dbus-send would
# otherwise try to autolaunch a bus of its own).
desktop_with_tray() {
  [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || return 1
  [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] || [ -S "${XDG_RUNTIME_DIR:-/nonexistent}/bus" ] || return 1
  DBUS_SESSION_BUS_ADDRESS=${DBUS_SESSION_BUS_ADDRESS:-unix:path=$XDG_RUNTIME_DIR/bus} \
    bus_has_owner org.kde.StatusNotifierWatcher
}
bus_has_owner() {
  timeout 5 dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep 'boolean true' >/dev/null
}

if [ -z "${ASTRAN_DEMO_INNER:-}" ]; then
  bash scripts/setup.sh
  if [ -z "$tray" ]; then
    cargo build --release -p astran-creds -p astran-testkit
    # a private D-Bus session with an unlocked gnome-keyring, as a desktop session has
    exec env ASTRAN_DEMO_INNER=1 dbus-run-session -- bash scripts/demo.sh "$@"
  fi
  cargo build --release -p astran-creds -p astran-testkit -p astran-tray -p astran-tray-window
  if desktop_with_tray; then
    ASTRAN_DEMO_INNER=desktop  # the user's own session bus: the real panel shows the icon
  else
    # no display or no tray host: a private D-Bus session, with Xvfb and test servers in it
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      echo "demo: no StatusNotifier host (org.kde.StatusNotifierWatcher) on your session bus: running under Xvfb instead"
    fi
    exec env ASTRAN_DEMO_INNER=headless dbus-run-session -- bash scripts/demo.sh "$@"
  fi
fi
bin=target/release
work=$(mktemp -d)
agent=""          # the tray agent's pid, once started
keyring_service=""  # a demo keyring service in the user's keyring, cleared at exit

cleanup() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ] && [ -s "$work/agent.out" ]; then
    echo "-- the tray agent's output (last lines):" >&2
    tail -n 20 "$work/agent.out" >&2
  fi
  if [ "$rc" -ne 0 ] && [ -n "${shots:-}" ]; then echo "-- screenshots so far: $shots" >&2; fi
  if [ -n "$agent" ]; then
    pkill -TERM -P "$agent" 2>/dev/null  # its window, if one is open
    kill -TERM "$agent" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
  fi
  kill $(jobs -p) 2>/dev/null
  for _ in $(seq 50); do [ -z "$(jobs -pr)" ] && break; sleep 0.1; done  # moto takes a moment
  if [ -n "$keyring_service" ]; then
    secret-tool clear service "$keyring_service" 2>/dev/null
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# wait_until SECONDS WHAT COMMAND...: run COMMAND every 0.2 s until it succeeds
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "demo: gave up waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# The local stand-ins for Astran (moto as STS/IAM/S3, the test IdP with the demo user), and the
# scratch HOME and AWS files pointed at them.
start_standins() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .venv/bin/python tests/support/moto_astran.py -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  "$bin/astran-test-idp" --bind 127.0.0.1:0 \
    --user "$EMAIL:$PASSWORD:arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced80013:root" \
    > "$work/idp.out" 2>/dev/null &
  for _ in $(seq 100); do grep -q listening "$work/idp.out" 2>/dev/null && \
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  idp=$(sed -n 's/^listening on //p' "$work/idp.out")
  [ -n "$idp" ] || { echo "demo: the test IdP did not start" >&2; exit 1; }
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || { echo "demo: moto did not start on port $port" >&2; exit 1; }

  export HOME="$work" AWS_SHARED_CREDENTIALS_FILE="$work/.aws/credentials" AWS_CONFIG_FILE="$work/.aws/config"
  export ASTRAN_IDP_URL="$idp/auth/realms/root-accounts/protocol/openid-connect/token"
  export ASTRAN_STS_ENDPOINT="http://127.0.0.1:$port" ASTRAN_IAM_ENDPOINT="http://127.0.0.1:$port"
}

# An unlocked gnome-keyring on the private bus, as a desktop session has.
start_private_keyring() {
  export XDG_RUNTIME_DIR="$work/run"
  mkdir -m 700 "$XDG_RUNTIME_DIR"
  printf 'demo-keyring' | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
}

if [ "$ASTRAN_DEMO_INNER" = 1 ]; then
  start_standins
  start_private_keyring
  echo "== astran-creds login (password from stdin)"
  printf '%s\n' "$PASSWORD" | "$bin/astran-creds" login --email "$EMAIL" --password-stdin
  echo "== $AWS_SHARED_CREDENTIALS_FILE"
  sed -E 's/(secret_access_key|session_token) = .{8}.*/\1 = <redacted>/' "$AWS_SHARED_CREDENTIALS_FILE"
  echo "== aws --profile astran s3 mb s3://tutorial"
  AWS_DEFAULT_REGION=us-east-1 .venv/bin/aws --profile astran --endpoint-url "http://127.0.0.1:$port" s3 mb s3://tutorial
  echo "== astran-creds status"
  "$bin/astran-creds" status
  echo "== astran-creds refresh (with the session held in the keyring)"
  "$bin/astran-creds" refresh
  echo "== astran-creds keys create --yes (a permanent key: discouraged, the tutorial's second half)"
  "$bin/astran-creds" keys create --yes
  echo "== aws --profile astran-permanent s3 mb s3://tutorial3"
  AWS_DEFAULT_REGION=us-east-1 .venv/bin/aws --profile astran-permanent --endpoint-url "http://127.0.0.1:$port" s3 mb s3://tutorial3
  echo "== astran-creds keys rotate --yes (new key proved, written, old key deleted)"
  "$bin/astran-creds" keys rotate --yes
  echo "== astran-creds keys list"
  "$bin/astran-creds" keys list
  key=$("$bin/astran-creds" keys list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["access_key_id"])')
  echo "== astran-creds keys delete $key --yes"
  "$bin/astran-creds" keys delete "$key" --yes
  exit 0
fi

# ---- --tray -------------------------------------------------------------------------------

# The agent's settings stay out of the user's: none of their ASTRAN_* variables, a scratch
# config (the XDG folders also hold the autostart entry), no system config, its own socket.
isolate_tray() {
  local v
  for v in $(compgen -e); do
    case $v in ASTRAN_DEMO_INNER) ;; ASTRAN_*) unset "$v" ;; esac
  done
  export XDG_CONFIG_HOME="$work/.config" XDG_DATA_HOME="$work/.local/share"
  export XDG_CACHE_HOME="$work/.cache" XDG_STATE_HOME="$work/.local/state"
  export ASTRAN_SYSTEM_CONFIG="$work/no-system-config.toml" ASTRAN_CONTROL_SOCKET="$work/agent.sock"
  export ASTRAN_WINDOW_BIN="$PWD/$bin/astran-tray-window" ASTRAN_LOG_FILE="$work/agent.log"
}

# The tray agent; sets $agent and $service (its StatusNotifierItem's bus name).
start_agent() {
  "$bin/astran-tray" >"$work/agent.out" 2>&1 &
  agent=$!
  wait_until 30 "the tray agent's icon on the bus" tray_item >/dev/null
  service=$(tray_item)
}
tray_item() {
  kill -0 "$agent" 2>/dev/null || { echo "demo: the tray agent exited" >&2; exit 1; }
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.ListNames | grep -o "org\.kde\.StatusNotifierItem-$agent-[0-9]*" | sed -n 1p | grep .
}

if [ "$ASTRAN_DEMO_INNER" = desktop ]; then
  # the X cookie is found through HOME, which becomes a scratch folder
  if [ -z "${XAUTHORITY:-}" ] && [ -f "$HOME/.Xauthority" ]; then export XAUTHORITY="$HOME/.Xauthority"; fi
  isolate_tray
  if bus_has_owner org.freedesktop.secrets; then
    # your keyring, under a service name of its own, cleared at exit
    keyring_service="astran-tray-demo-$$"
    export ASTRAN_KEYRING_SERVICE="$keyring_service"
  else
    export ASTRAN_KEYRING=none  # no keyring on this bus: the session in memory only
  fi
  start_standins
  start_agent
  cat <<EOF
== the tray agent runs (pid $agent): its icon is in your panel, pointed at the local stand-ins
   1. click the icon, then "Log in…": email $EMAIL, password $PASSWORD
   2. click the icon again, then "Status…"
   Credentials go to $AWS_SHARED_CREDENTIALS_FILE (scratch, removed at exit);
   once logged in, try them (moto is S3 too):
   AWS_SHARED_CREDENTIALS_FILE=$AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE=$AWS_CONFIG_FILE \\
     AWS_DEFAULT_REGION=us-east-1 $PWD/.venv/bin/aws --profile astran --endpoint-url $ASTRAN_STS_ENDPOINT s3 mb s3://tray-demo
== Ctrl-C ends the demo (and "Quit" in the menu too)
EOF
  trap 'exit 0' INT TERM
  wait "$agent" || true
  exit 0
fi

# Headless: Xvfb, a StatusNotifier host and a notification server on the private bus; the
# script is the user.
isolate_tray
start_standins
start_private_keyring
shots=$(mktemp -d "${TMPDIR:-/tmp}/astran-demo-shots.XXXXXX")
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp -noreset 3>"$work/display" >"$work/xvfb.out" 2>&1 &
wait_until 20 "Xvfb to start" grep -qs . "$work/display"
export DISPLAY=":$(cat "$work/display")"
unset WAYLAND_DISPLAY
export NO_AT_BRIDGE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1
dbus-update-activation-environment DISPLAY XDG_RUNTIME_DIR HOME
.venv/bin/python tests/support/notifyd.py "$work/notifications.jsonl" >"$work/notifyd.out" 2>&1 &
.venv/bin/python tests/support/sni_host.py watch "$work/items.jsonl" >"$work/sni.out" 2>&1 &
wait_until 20 "the notification server" grep -q ready "$work/notifyd.out"
wait_until 20 "the StatusNotifier host" grep -q ready "$work/sni.out"
start_agent
echo "== the tray agent runs under Xvfb $DISPLAY (pid $agent, item $service), with the test tray host"

sni() { .venv/bin/python tests/support/sni_host.py "$@"; }
# the menu's labels, depth first, without separators ("_" mnemonics removed)
menu_labels() {
  sni menu "$service" | python3 -c '
import json, sys
def walk(n):
    for c in n["children"]:
        if c["type"] != "separator":
            print(c["label"].replace("_", ""))
        walk(c)
walk(json.load(sys.stdin)["layout"])'
}
status_line() { menu_labels | sed -n 1p; }
logged_in() { status_line | grep -E 'valid until' >/dev/null; }
click() { sni click "$service" "$1" >/dev/null; }
menu_shot() { /usr/bin/python3 tests/support/menu_shot.py "$service" "$shots/$1" || { echo "demo: the menu screenshot failed" >&2; exit 1; }; }
window_id() { xdotool search --onlyvisible --name "^$1\$" 2>/dev/null | sed -n 1p | grep .; }
window_gone() { ! window_id "$1" >/dev/null; }
# a capture with more than a few colours: WebKit has painted the page (it maps the window first)
painted() { import -window "$1" "$2" 2>/dev/null && [ "$(identify -format %k "$2")" -gt 30 ]; }
# shoot TITLE FILE: wait for the window titled TITLE, save it once painted; sets $wid
shoot() {
  wait_until 60 "the window \"$1\"" window_id "$1" >/dev/null
  wid=$(window_id "$1")
  wait_until 30 "the window \"$1\" to paint" painted "$wid" "$shots/$2"
  sleep 1 && import -window "$wid" "$shots/$2"  # the last paint (fonts, focus ring)
  echo "   saved $2"
}
close_windows() { pkill -TERM -P "$agent" 2>/dev/null || true; }

echo "== the menu, logged out: $(status_line)"
menu_shot menu.png
echo "   saved menu.png"

echo "== clicking \"Log in…\""
click "Log in"
shoot "Log in to Astran" login.png
echo "== typing $EMAIL, Tab, the password, Return into the login window"
# no window manager under Xvfb: set the X input focus directly. The page focuses the email
# field when it is empty, as it is here (a fresh config; the user's ASTRAN_USERNAME unset).
xdotool windowfocus --sync "$wid" 2>/dev/null || xdotool windowfocus "$wid"
sleep 0.5
xdotool type --delay 30 "$EMAIL"
xdotool key Tab
xdotool type --delay 30 "$PASSWORD"
xdotool key Return
if wait_until 30 "the agent to say it is logged in (after typing into the window)" logged_in; then
  echo "   logged in through the window"
  wait_until 15 "the login window to close" window_gone "Log in to Astran" || close_windows
else
  echo "demo: typing into the login window did not log in; logging in with" \
    "\`astran-creds login --email $EMAIL --password-stdin\` instead (the agent picks the login up)"
  close_windows
  printf '%s\n' "$PASSWORD" | "$bin/astran-creds" login --email "$EMAIL" --password-stdin
  wait_until 30 "the agent to say it is logged in" logged_in
fi
echo "== the menu, logged in: $(status_line)"
menu_shot menu-logged-in.png
echo "   saved menu-logged-in.png"

if menu_labels | grep '^Status' >/dev/null; then
  echo "== clicking \"Status…\""
  click "Status"
  shoot "Astran status" status.png
  close_windows
  wait_until 15 "the status window to close" window_gone "Astran status"
else
  echo "demo: this build has no \"Status…\" menu item yet (it is being added): no status.png"
fi

if [ -s "$work/notifications.jsonl" ]; then
  echo "== notifications the agent sent"
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    n = json.loads(line)
    print("   " + n.get("summary", "") + ": " + n.get("body", "").replace("\n", " "))' "$work/notifications.jsonl"
fi
echo "== screenshots in $shots:"
ls "$shots" | sed 's/^/   /'
