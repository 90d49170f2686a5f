#!/usr/bin/env bash
# Regenerates icons/ from the tray agent's own drawing (needs ImageMagick).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p astran-tray
bin=target/debug/astran-tray
mkdir -p icons
for s in 16 32 48 64 128 256 512; do
  "$bin" --icon-rgba "$s" | convert -size "${s}x${s}" -depth 8 rgba:- "PNG32:/tmp/astran-icon-$s.png"
done
cp /tmp/astran-icon-32.png icons/32x32.png
cp /tmp/astran-icon-128.png icons/128x128.png
cp /tmp/astran-icon-256.png icons/128x128@2x.png
cp /tmp/astran-icon-512.png icons/icon.png
convert /tmp/astran-icon-16.png /tmp/astran-icon-32.png /tmp/astran-icon-48.png /tmp/astran-icon-256.png icons/icon.ico
convert /tmp/astran-icon-512.png icons/icon.icns 2>/dev/null || cp /tmp/astran-icon-512.png icons/icon.icns
ls -la icons
