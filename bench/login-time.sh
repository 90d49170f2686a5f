#!/usr/bin/env bash
# Times `astran-creds login` (release) end to end against the local test IdP and moto:
# password grant + JWT decode + AssumeRoleWithWebIdentity + profile written. N runs.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
idp_bin=target/release/astran-test-idp; [ -x "$idp_bin" ] || idp_bin=target/debug/astran-test-idp
"$idp_bin" --bind 127.0.0.1:0 --user "demo@astran.io:PASSWORD123:arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced80013:root" >"$work/idp" 2>/dev/null &
until grep -q listening "$work/idp" 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; do sleep 0.1; done
export HOME="$work" AWS_SHARED_CREDENTIALS_FILE="$work/credentials" ASTRAN_KEYRING=none
export ASTRAN_IDP_URL="$(sed -n 's/^listening on //p' "$work/idp")/auth/realms/root-accounts/protocol/openid-connect/token"
export ASTRAN_STS_ENDPOINT="http://127.0.0.1:$port"
login() { printf 'PASSWORD123\n' | target/release/astran-creds login --email demo@astran.io --password-stdin >/dev/null 2>&1; }
login # warm-up (first STS call starts moto's backends)
for i in $(seq "$n"); do
  t0=$(date +%s%N); login; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
done | sort -n | awk '{a[NR]=$1} END {printf "login, %d runs: median %.1f ms, min %.1f ms, max %.1f ms\n", NR, a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'
t0=$(date +%s%N); for i in $(seq "$n"); do target/release/astran-creds credential-process >/dev/null; done; t1=$(date +%s%N)
echo "credential-process (fresh credentials), mean of $n: $(( (t1 - t0) / n / 1000 )) us"
