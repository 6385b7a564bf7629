// The worker's JavaScript entry. scripts/build.sh bundles it with wasm-bindgen's glue
// (./index.js, staged next to it at build time) into build/index.js.
//
// A plain handler object, as a hand-written Worker would export. worker-build's entry is a
// WorkerEntrypoint class behind two Proxies, built anew for every request; measured in workerd,
// that cost more than edge-sts's own handling of a `/healthz`.
//
// After a Rust panic (the wasm aborts), the glue starts a fresh instance on the next call: the
// Rust side schedules it (worker's abort handler) and wasm-bindgen's call guard performs it
// (built with --experimental-reset-state-function --force-enable-abort-handler).
import { fetch as handle } from "./index.js";

export default {
  fetch(request, env, ctx) {
    return handle(request, env, ctx);
  },
};
