#!/usr/bin/env bash
# Runs a command with the project's toolchain (Node 24, wrangler, the wasm tools) on PATH,
# installing it first if needed. Usage: scripts/with-toolchain.sh COMMAND [ARGS…]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -f "$ROOT/.tools/env" ] || bash "$ROOT/scripts/toolchain.sh" >&2
# shellcheck source=/dev/null
source "$ROOT/.tools/env"
exec "$@"
