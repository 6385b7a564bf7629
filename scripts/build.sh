#!/usr/bin/env bash
# Builds the worker: release wasm, wasm-bindgen glue and the JS shim, into build/.
# Usage: scripts/build.sh [--dev]   (--dev: unoptimised, for a quicker edit-and-run loop)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -f .tools/env ]; then
  bash scripts/toolchain.sh
fi
# shellcheck source=/dev/null
source .tools/env
profile="--release"
[ "${1:-}" = "--dev" ] && profile="--dev"
# Nothing to do when the build is newer than every input (wrangler dev runs this on start too).
stamp="build/.stamp$profile"
if [ -f "$stamp" ] && [ -z "$(find src Cargo.toml Cargo.lock -newer "$stamp" -print -quit)" ]; then
  echo "==> build/ is up to date ($profile)"
  exit 0
fi
echo "==> worker-build $profile"
worker-build "$profile"
rm -f build/.stamp--*
touch "$stamp"
wasm="$(ls build/*.wasm 2>/dev/null | head -1)"
if [ -n "$wasm" ]; then
  echo "    built $wasm: $(stat -c %s "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped"
fi
