#!/usr/bin/env bash
# Fuzzes the parsers that read what servers and users hand us: the access-token claims
# decoder, the token endpoint's, STS's and IAM's reply parsers, and the credentials-file editor
# (with invariants: set reads back, set twice is a no-op, remove leaves no profile of ours,
# other profiles never change). Not part of CI: it needs nightly and takes minutes.
#
#   scripts/fuzz.sh                  # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh credfile
#   FUZZ_CMIN=1 scripts/fuzz.sh      # then minimize the grown corpus before committing it
#
# Each target reads fuzz/seeds/<target>/ (hand-written inputs and the crashes fixed so far,
# never minimized) and reads and grows fuzz/corpus/<target>/. A crash stops that target,
# leaves the input in fuzz/artifacts/<target>/, and the script exits non-zero; fix it, add a
# unit test, and copy the input into fuzz/seeds/<target>/ as a regression input.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(claims token_reply sts_reply iam_reply device_reply credfile)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

par=
[ "$jobs" -le 1 ] || par="-fork=$jobs"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  echo "== $t: ${seconds}s"
  # replay the seeds and regressions first: a crash fixed once must stay fixed
  if ! nice -n 15 cargo +nightly fuzz run "$t" "seeds/$t" -- -runs=0 >"/tmp/fuzz-$t-seeds.log" 2>&1; then
    echo "$t: a seed or regression input fails; see /tmp/fuzz-$t-seeds.log"; failed+=("$t"); continue
  fi
  if ! nice -n 15 cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$seconds" $par -print_final_stats=1 2>&1 \
      | tee "/tmp/fuzz-$t.log" | grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|panicked|Test unit written)'; then
    :
  fi
  if grep -qE 'Test unit written|==[0-9]+== ERROR|deadly signal' "/tmp/fuzz-$t.log"; then
    echo "$t: CRASH, input in fuzz/artifacts/$t/; log /tmp/fuzz-$t.log"; failed+=("$t")
  fi
  if [ -n "${FUZZ_CMIN:-}" ]; then
    nice -n 15 cargo +nightly fuzz cmin "$t" "corpus/$t" >"/tmp/fuzz-$t-cmin.log" 2>&1
  fi
  echo "$t: corpus $(find "corpus/$t" -type f | wc -l) files, $(du -sh --apparent-size "corpus/$t" | cut -f1)"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"; exit 1
fi
echo "fuzz: ok (${targets[*]}, ${seconds}s each)"
