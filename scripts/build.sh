#!/usr/bin/env bash
# Builds the worker into build/: the release wasm, wasm-bindgen's glue, and the JavaScript entry
# (src/platform/entry.mjs) bundled with that glue by esbuild.
# Usage: scripts/build.sh [--dev]   (--dev: unoptimised, for a quicker edit-and-run loop)
#        scripts/build.sh --selftest   (the test-only build with /__selftest/* routes, into
#                                       build-selftest/; never deployed)
#        scripts/build.sh --profiling  (the release build with its function names kept, into
#                                       build-profiling/, for `npm run bench:profile`)
#
# These are worker-build's steps with edge-sts's own entry instead of worker-build's (see
# entry.mjs for why), and the same wasm-bindgen options, so panics recover the same way.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -f .tools/env ]; then
  bash scripts/toolchain.sh
fi
# shellcheck source=/dev/null
source .tools/env
profile=release
out="build"
features=()
case "${1:-}" in
  --dev) profile=dev ;;
  --selftest) profile=dev out="build-selftest" features=(--features selftest) ;;
  --profiling) out="build-profiling" ;;
esac
# Nothing to do when the build is newer than every input (wrangler dev runs this on start too).
stamp="$out/.stamp-$profile"
if [ -f "$stamp" ] && [ -z "$(find src Cargo.toml Cargo.lock scripts/build.sh -newer "$stamp" -print -quit)" ]; then
  echo "==> $out/ is up to date ($profile)"
  exit 0
fi

echo "==> cargo build ($profile${features[*]:+, ${features[*]}})"
cargo_profile=()
[ "$profile" = release ] && cargo_profile=(--release)
cargo build --lib --target wasm32-unknown-unknown "${cargo_profile[@]}" "${features[@]}"
wasm="target/wasm32-unknown-unknown/$([ "$profile" = release ] && echo release || echo debug)/edge_sts.wasm"

stage="$out/.stage"
rm -rf "$stage"
mkdir -p "$stage"
echo "==> wasm-bindgen"
wasm-bindgen "$wasm" --out-dir "$stage" --out-name index --target module --no-typescript \
  --experimental-reset-state-function --force-enable-abort-handler
# wasm-bindgen writes the source-phase `import source m from "x.wasm"`; workerd (and wrangler)
# take a plain import of a .wasm file as the compiled module.
sed -i 's/^import source wasmModule from /import wasmModule from /' "$stage/index.js"
if grep -q '^import source ' "$stage/index.js"; then
  echo "error: wasm-bindgen's glue has an 'import source' this script does not rewrite" >&2
  exit 1
fi
cp src/platform/entry.mjs "$stage/entry.mjs"

if [ "$profile" = release ]; then
  echo "==> wasm-opt -O3"
  # No name section (function names, ~100 KB, only for debugging) and no producers section,
  # except in the profiling build. Features as wasm-bindgen's output uses them, so nothing newer
  # than workerd supports is written.
  #
  # -ocimfs 0 (--one-caller-inline-max-function-size): binaryen inlines every function with one
  # caller whatever its size, which folded the whole request path (entry, router, every
  # endpoint) into one 82 KB function; V8 compiles a function on its first call, so the first
  # request paid for compiling all of it, /healthz included (~12 ms of the first request's CPU
  # in a profile). Without it each endpoint is compiled when first used: a cold isolate's
  # first /healthz −12 %, first exchange −17 %, warm CPU unchanged (docs/performance.md).
  names=(--strip-debug)
  [ "$out" = build-profiling ] && names=(--debuginfo)
  wasm-opt "$stage/index_bg.wasm" -o "$stage/index_bg.wasm" -O3 -ocimfs 0 "${names[@]}" --strip-producers \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
fi

echo "==> esbuild (entry + glue → $out/index.js)"
minify=()
[ "$profile" = release ] && minify=(--minify)
esbuild "$stage/entry.mjs" --bundle --format=esm "${minify[@]}" --log-level=warning \
  --external:./index_bg.wasm '--external:cloudflare:*' --outfile="$stage/index.js" --allow-overwrite
# Swap in the new build only now: a failed build leaves the previous one in place.
find "$out" -mindepth 1 -maxdepth 1 ! -name .stage -exec rm -rf {} +
mv "$stage/index.js" "$stage/index_bg.wasm" "$out/"
rm -rf "$stage"
touch "$stamp"
echo "    built $out/index_bg.wasm: $(stat -c %s "$out/index_bg.wasm") bytes, $(gzip -9 -c "$out/index_bg.wasm" | wc -c) gzipped"
