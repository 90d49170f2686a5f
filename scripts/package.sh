#!/usr/bin/env bash
# Builds the release binaries and the .deb (astran-tray agent, astran-tray-window, astran-creds,
# the autostart entry), then checks the package: its contents, and the extracted programs run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/@tauri-apps/cli ] || npm install --no-audit --no-fund --silent
cargo build --release -p astran-creds -p astran-tray
npx tauri build --bundles deb --ci
deb=$(ls -t target/release/bundle/deb/*.deb | head -1)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | sed -n '1,20p'
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/astran-tray ./usr/bin/astran-tray-window ./usr/bin/astran-creds \
         ./etc/xdg/autostart/astran-tray.desktop ./usr/share/applications/astran-tray.desktop; do
  grep -Eq " \.?/?${f#./}\$" <<<"$contents" || { echo "missing in the package: $f"; exit 1; }
done
x=$(mktemp -d); trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
"$x/usr/bin/astran-creds" --version
"$x/usr/bin/astran-tray" --version
grep -q '^Exec=/usr/bin/astran-tray$' "$x/etc/xdg/autostart/astran-tray.desktop"
echo "package: ok"
