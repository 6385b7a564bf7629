#!/usr/bin/env bash
# `npm run fuzz`: each fuzz target of tests/fuzz.rs for FUZZ_SECONDS seconds (default 60),
# optimised, printing how many inputs each tried. Not part of `npm test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
echo "==> fuzzing each target for ${FUZZ_SECONDS} s (FUZZ_SECONDS=… to change)"
cargo test --release --features testing --test fuzz -- --ignored --nocapture --test-threads 1 2>&1 | grep -E "inputs in|panicked|test result|FAILED|error"
