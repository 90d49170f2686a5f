#!/usr/bin/env bash
# Installs what building and testing astran-tray needs on a fresh Debian 12 machine:
# Debian packages (build + test), and a Python venv (.venv) with moto[server] and awscli.
# Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# build: the core needs only a C compiler; the Tauri window app needs WebKitGTK.
# test: a private D-Bus with gnome-keyring, Xvfb, WebKitWebDriver, screenshots, and
# libdbusmenu-gtk3 (what GTK panels render tray menus with) for the tray menu's screenshot;
# curl and jq for the benchmarks.
APT_PKGS=(build-essential pkg-config file libwebkit2gtk-4.1-dev librsvg2-dev libxdo-dev
          dbus dbus-x11 gnome-keyring libsecret-tools keyutils dunst
          xvfb xauth xdotool imagemagick x11-utils webkit2gtk-driver procps
          python3-gi gir1.2-gtk-3.0 gir1.2-dbusmenu-gtk3-0.4
          curl jq)  # bench/run.sh: the tutorial's manual flow, criterion's JSON
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/aws ] || ! .venv/bin/python -c 'import dbus_next, selenium' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q 'moto[server]>=5,<6' 'awscli>=1.32,<2' 'dbus-next>=0.2.3' 'selenium>=4.20,<5'
fi
# WebDriver for the Tauri window (WebKitWebDriver comes from webkit2gtk-driver above)
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
  cargo install tauri-driver --locked --version '^2'
fi
echo "setup: ok (venv: $(pwd)/.venv)"
