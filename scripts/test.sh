#!/usr/bin/env bash
# Sets up everything the tests need (Debian packages, the Python venv with moto and the AWS
# CLI) and runs every test: formatting, clippy, unit tests and the end-to-end tests that run
# the real binaries against real servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
# A fresh checkout gains nothing from incremental compilation (1.1 GB of target/debug/incremental).
[ -z "${CI:-}" ] || export CARGO_INCREMENTAL=0
# A clean run writes about 5.5 GB (measured: target/debug 3.0 GB, target/release 1.8 GB, .venv 0.5 GB).
# Say so up front rather than fail half an hour in with "No space left on device".
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
free_kb=$(df -Pk "$target_dir" | awk 'NR == 2 { print $4 }')
if [ "$free_kb" -lt $((6 * 1024 * 1024)) ]; then
  echo "warning: $((free_kb / 1024)) MB free where $target_dir is; a clean run needs about 6 GB" >&2
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace -- --test-threads="${TEST_THREADS:-4}" 2>&1 | tee "$log"
# the .deb: release build, bundle, contents, and the packaged programs run
bash scripts/package.sh
# benchmark smoke (not timed): one short iteration of each measurement, criterion in test mode
bash bench/run.sh --quick
# one closing line for the whole run
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
