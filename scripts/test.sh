#!/usr/bin/env bash
# `npm test`: native core tests, the release wasm build, then end-to-end tests that run the
# built wasm in workerd (Miniflare) and talk HTTP to it. Installs the toolchain if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/toolchain.sh
# shellcheck source=/dev/null
source .tools/env

printf '\n==> native core tests (cargo test)\n'
cargo test --quiet

printf '\n==> build (release, and the test-only selftest build for the Wycheproof run)\n'
bash scripts/build.sh
bash scripts/build.sh --selftest

printf '\n==> end-to-end tests: the built wasm in workerd\n'
node --test --test-concurrency=1 'tests/e2e/*.test.mjs'
