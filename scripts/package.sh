#!/usr/bin/env bash
# Builds the release binaries and the .deb (astran-tray agent, astran-tray-window, astran-creds,
# the autostart entry), then checks the package: its contents, and the extracted programs run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/@tauri-apps/cli ] || npm install --no-audit --no-fund --silent
cargo build --release -p astran-creds -p astran-tray
# tauri.conf.json names the agent and the CLI under ../target/release; with CARGO_TARGET_DIR
# set elsewhere, point the package at the binaries this run built (checked below)
rel=$(realpath -m "${CARGO_TARGET_DIR:-target}")/release
files=$(printf '{"bundle":{"linux":{"deb":{"files":{"/usr/bin/astran-tray":"%s","/usr/bin/astran-creds":"%s"}}}}}' \
  "$rel/astran-tray" "$rel/astran-creds")
npx tauri build --bundles deb --ci --config "$files"
deb=$(ls -t "$rel"/bundle/deb/*.deb | head -1)
# Tauri's bundler compresses the payload with gzip (8.2 MB); Debian's own packages use xz,
# which packs the same files into about half of that (4.3 MB, docs/benchmarks.md). Repack the same
# tree (control files, md5sums and all) with xz -9: apt and dpkg read it everywhere.
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
raw=$work/raw; x=$work/x; mkdir "$raw" "$x"
dpkg-deb -R "$deb" "$raw/pkg"
gz=$(stat -c %s "$deb")
dpkg-deb -Zxz -z9 --root-owner-group --build "$raw/pkg" "$deb.tmp" >/dev/null
mv "$deb.tmp" "$deb"
size=$(stat -c %s "$deb")
echo "package: $deb ($size bytes; $gz with Tauri's gzip)"
ar t "$deb" | grep -qx data.tar.xz || { echo "the package payload is not xz"; exit 1; }
# dpkg itself reads the repacked archive and finds its dependencies (installs nothing)
dpkg --dry-run -i "$deb" >/dev/null
[ "$size" -le 8000000 ] || { echo "the package is over its 8 MB budget (issue 5): $size bytes"; exit 1; }
dpkg-deb --info "$deb" | sed -n '1,20p'
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/astran-tray ./usr/bin/astran-tray-window ./usr/bin/astran-creds \
         ./etc/xdg/autostart/astran-tray.desktop ./usr/share/applications/astran-tray.desktop \
         ./etc/xdg/astran-tray/config.toml; do
  grep -Eq " \.?/?${f#./}\$" <<<"$contents" || { echo "missing in the package: $f"; exit 1; }
done
dpkg-deb -x "$deb" "$x"
# (the window is Tauri's own, which it patches with the bundle type, so it is not compared)
for b in astran-tray astran-creds; do
  cmp -s "$x/usr/bin/$b" "$rel/$b" || { echo "the package's $b is not the one this build made ($rel/$b)"; exit 1; }
done
"$x/usr/bin/astran-creds" --version
"$x/usr/bin/astran-tray" --version
grep -q '^Exec=/usr/bin/astran-tray$' "$x/etc/xdg/autostart/astran-tray.desktop"
# the example system config is all comments: it parses and sets nothing; uncommented, as an
# administrator would, it parses and sets its keys
sys=$x/etc/xdg/astran-tray/config.toml
shown=$(ASTRAN_SYSTEM_CONFIG="$sys" HOME="$work" XDG_CONFIG_HOME="$work/cfg" "$x/usr/bin/astran-creds" config show --json)
! grep -q '"source": "system"' <<<"$shown" || { echo "the example system config sets something"; exit 1; }
sed -n '/^# locked/,$s/^# //p' "$sys" >"$work/uncommented.toml"
shown=$(ASTRAN_SYSTEM_CONFIG="$work/uncommented.toml" HOME="$work" XDG_CONFIG_HOME="$work/cfg" "$x/usr/bin/astran-creds" config show --json)
[ "$(grep -c '"source": "system"' <<<"$shown")" -ge 5 ] || { echo "the uncommented example system config does not apply"; exit 1; }
echo "package: ok"
