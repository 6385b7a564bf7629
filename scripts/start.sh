#!/usr/bin/env bash
# `npm start`: installs the toolchain if missing, creates .dev.vars (a fresh signing key and
# admin token) if missing, builds, and serves the worker on http://127.0.0.1:${PORT:-8787}
# with wrangler's local runtime (workerd) and local KV. Ctrl-C stops it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/toolchain.sh
# shellcheck source=/dev/null
source .tools/env

if [ ! -f .dev.vars ]; then
  node scripts/keygen.mjs --dev-vars "http://127.0.0.1:${PORT:-8787}" >.dev.vars
  chmod 600 .dev.vars
  admin_token="$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars)"
  printf '\n==> created .dev.vars with a new signing key and admin token\n'
  printf '    ADMIN_TOKEN=%s\n' "$admin_token"
  printf '    (shown once; it stays in .dev.vars — delete that file to get new secrets)\n'
else
  printf '\n==> using the existing .dev.vars\n'
  # Made by an older version: add what the walkthrough now uses (the Venafi and Entra paths).
  if ! grep -q '^TENANT_ID=' .dev.vars; then
    printf 'TENANT_ID=%s\n' "$(node -e 'console.log(crypto.randomUUID())')" >>.dev.vars
    printf '    added a TENANT_ID (for the Venafi and Entra token paths)\n'
  fi
fi

bash scripts/build.sh
printf '\n==> serving on http://127.0.0.1:%s (try: curl -s http://127.0.0.1:%s/healthz)\n' "${PORT:-8787}" "${PORT:-8787}"
# The build above is fresh, so wrangler's own build step (scripts/build.sh) finds nothing to do.
# Local KV and Durable Object state live in .wrangler/state (EDGE_STS_STATE=dir for another).
exec wrangler dev --local --ip 127.0.0.1 --port "${PORT:-8787}" --show-interactive-dev-session=false \
  --persist-to "${EDGE_STS_STATE:-.wrangler/state}"
