#!/usr/bin/env bash
# Sets up and runs astran-creds' main job end to end on this machine, with local stand-ins
# for Astran's services (this machine cannot reach astran.cloud-iam.com): the project's
# Keycloak-faithful test IdP and moto as STS/S3/IAM (checking every signature, with Astran's
# root account: tests/support/moto_astran.py). It logs in, writes the `astran` profile into
# a scratch credentials file, creates a bucket with the real AWS CLI, shows the status, then
# the tutorial's second half: a permanent key made, used, rotated and deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ASTRAN_DEMO_INNER:-}" ]; then
  bash scripts/setup.sh
  cargo build --release -p astran-creds -p astran-testkit
  # a private D-Bus session with an unlocked gnome-keyring, as a desktop session has
  exec env ASTRAN_DEMO_INNER=1 dbus-run-session -- "$0" "$@"
fi
bin=target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/python tests/support/moto_astran.py -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
"$bin/astran-test-idp" --bind 127.0.0.1:0 \
  --user "demo@astran.io:PASSWORD123:arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced80013:root" \
  > "$work/idp.out" 2>/dev/null &
for _ in $(seq 100); do grep -q listening "$work/idp.out" 2>/dev/null && \
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
idp=$(sed -n 's/^listening on //p' "$work/idp.out")

export HOME="$work" AWS_SHARED_CREDENTIALS_FILE="$work/.aws/credentials" AWS_CONFIG_FILE="$work/.aws/config"
export ASTRAN_IDP_URL="$idp/auth/realms/root-accounts/protocol/openid-connect/token"
export ASTRAN_STS_ENDPOINT="http://127.0.0.1:$port" ASTRAN_IAM_ENDPOINT="http://127.0.0.1:$port"
export XDG_RUNTIME_DIR="$work/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
printf 'demo-keyring' | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
echo "== astran-creds login (password from stdin)"
printf 'PASSWORD123\n' | "$bin/astran-creds" login --email demo@astran.io --password-stdin
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
