#!/usr/bin/env bash
# Runs Tollgate locally in front of a demo origin and prints curl commands to try.
#
# It runs setup and build, and creates a demo ES256 key in .demo/ on the first run. It
# seeds the local ENTITLEMENTS namespace with a `pro` caller (user-pro) and a `free`
# caller (user-free). Then it starts the demo origin on 127.0.0.1:8788, which also
# serves the demo JWK Set at /.well-known/jwks.json, and `wrangler dev` on
# 127.0.0.1:8787 with JWT_JWKS_URL pointing there. It prints curl commands with fresh
# tokens. Ctrl-C stops both servers.
#
# Environment: TOLLGATE_DEMO_PORT (default 8787), TOLLGATE_DEMO_ORIGIN_PORT (default 8788),
# TOLLGATE_DEMO_KEYS: `url` (default) gives the worker JWT_JWKS_URL, `inline` gives it
# the JWK Set itself in JWT_PUBLIC_KEYS.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$TOLLGATE_ROOT"

port="${TOLLGATE_DEMO_PORT:-8787}"
origin_port="${TOLLGATE_DEMO_ORIGIN_PORT:-8788}"
key_source="${TOLLGATE_DEMO_KEYS:-url}"
demo_dir=.demo
# The demo tokens carry these claims. The worker gets them with --var, so the demo
# keeps working after the [vars] in wrangler.toml are changed for a deployment.
issuer="https://issuer.example"
audience="https://api.example"

case "$key_source" in
  url | inline) ;;
  *)
    echo "demo: TOLLGATE_DEMO_KEYS is '$key_source'; expected 'url' or 'inline'" >&2
    exit 2
    ;;
esac

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for p in "$port" "$origin_port"; do
  if port_in_use "$p"; then
    echo "demo: port $p on 127.0.0.1 is already in use. Stop what listens there, or set TOLLGATE_DEMO_PORT / TOLLGATE_DEMO_ORIGIN_PORT." >&2
    exit 1
  fi
done

scripts/setup.sh
scripts/build.sh

node scripts/demo-keys.mjs prepare "$demo_dir"
echo "demo: seeding local KV (user-pro, user-free)"
wrangler kv bulk put "$demo_dir/entitlements.json" --binding ENTITLEMENTS --local

origin_pid=""
wrangler_pid=""
stop_servers() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for pid in $wrangler_pid $origin_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $wrangler_pid $origin_pid; do
    wait "$pid" 2>/dev/null || true
  done
}
trap stop_servers INT TERM EXIT

node scripts/demo-origin.mjs "$origin_port" "$demo_dir/jwks.json" &
origin_pid=$!

# The worker fetches the key set from the origin on the first request with a token.
for _ in $(seq 1 50); do
  if port_in_use "$origin_port"; then
    break
  fi
  if ! kill -0 "$origin_pid" 2>/dev/null; then
    echo "demo: the demo origin exited before it listened on 127.0.0.1:$origin_port" >&2
    exit 1
  fi
  sleep 0.2
done
if ! port_in_use "$origin_port"; then
  echo "demo: the demo origin was not listening on 127.0.0.1:$origin_port after 10 s" >&2
  exit 1
fi

jwks_url="http://127.0.0.1:$origin_port/.well-known/jwks.json"
if [[ "$key_source" == url ]]; then
  key_var="JWT_JWKS_URL:$jwks_url"
  key_note="The gateway fetches its signing keys from $jwks_url."
else
  key_var="JWT_PUBLIC_KEYS:$(cat "$demo_dir/jwks.json")"
  key_note="The gateway reads its signing keys from JWT_PUBLIC_KEYS."
fi

log_file="$demo_dir/wrangler-dev.log"
: >"$log_file"
wrangler dev \
  --ip 127.0.0.1 --port "$port" \
  --show-interactive-dev-session=false \
  --var "JWT_ISSUER:$issuer" \
  --var "JWT_AUDIENCE:$audience" \
  --var "$key_var" \
  --var "ORIGIN_URL:http://127.0.0.1:$origin_port" \
  > >(tee -a "$log_file") 2>&1 &
wrangler_pid=$!

# wrangler prints "Ready on http://..." once the worker accepts requests.
for _ in $(seq 1 120); do
  if grep -q "Ready on http" "$log_file"; then
    break
  fi
  if ! kill -0 "$wrangler_pid" 2>/dev/null; then
    echo "demo: wrangler dev exited before it was ready; its output is above and in $log_file" >&2
    exit 1
  fi
  sleep 0.5
done
if ! grep -q "Ready on http" "$log_file"; then
  echo "demo: wrangler dev was not ready after 60 s; its output is above and in $log_file" >&2
  exit 1
fi

pro_token="$(node scripts/demo-keys.mjs token "$demo_dir" "$issuer" "$audience" user-pro 3600)"
free_token="$(node scripts/demo-keys.mjs token "$demo_dir" "$issuer" "$audience" user-free 3600)"
base="http://127.0.0.1:$port"

cat <<EOT

Tollgate is running on $base in front of the demo origin on http://127.0.0.1:$origin_port.
$key_note
The tokens below expire in one hour; rerun scripts/demo.sh for new ones.

# 200: user-pro has the "reports" feature; the origin echoes what it received
curl -i -H "Authorization: Bearer $pro_token" $base/v1/reports/summary

# 401: no token
curl -i $base/v1/reports/summary

# 402: user-free's plan lacks "reports"
curl -i -H "Authorization: Bearer $free_token" $base/v1/reports/summary

Press Ctrl-C to stop both servers.
EOT

wait "$wrangler_pid"
