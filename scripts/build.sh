#!/usr/bin/env bash
# Builds the worker: release wasm, wasm-bindgen glue and the JS shim, into build/.
# Usage: scripts/build.sh [--dev]   (--dev: unoptimised, for a quicker edit-and-run loop)
#        scripts/build.sh --selftest   (the test-only build with /__selftest/verify, into
#                                       build-selftest/; never deployed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -f .tools/env ]; then
  bash scripts/toolchain.sh
fi
# shellcheck source=/dev/null
source .tools/env
profile="--release"
out="build"
extra=()
case "${1:-}" in
  --dev) profile="--dev" ;;
  --selftest) profile="--dev" out="build-selftest" extra=(--no-opt --out-dir build-selftest . --features selftest) ;;
esac
# Nothing to do when the build is newer than every input (wrangler dev runs this on start too).
stamp="$out/.stamp$profile"
if [ -f "$stamp" ] && [ -z "$(find src Cargo.toml Cargo.lock -newer "$stamp" -print -quit)" ]; then
  echo "==> $out/ is up to date ($profile)"
  exit 0
fi
echo "==> worker-build $profile ${extra[*]}"
worker-build "$profile" "${extra[@]}"
if [ "$profile" = "--release" ]; then
  # The name section (function names, ~100 KB) only serves debugging; worker-build keeps it.
  # Features as worker-build enables them, so nothing newer than workerd supports is written.
  wasm-opt "$out/index_bg.wasm" -o "$out/index_bg.wasm" --strip-debug \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
fi
rm -f "$out"/.stamp--*
touch "$stamp"
wasm="$(ls "$out"/*.wasm 2>/dev/null | head -1)"
if [ -n "$wasm" ]; then
  echo "    built $wasm: $(stat -c %s "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped"
fi
