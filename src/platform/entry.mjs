// The worker's JavaScript entry. scripts/build.sh bundles it with wasm-bindgen's glue
// (./index.js, staged next to it at build time) into build/index.js.
//
// A plain handler object, as a hand-written Worker would export. worker-build's entry is a
// WorkerEntrypoint class behind two Proxies, built anew for every request; measured in workerd,
// that cost more than edge-sts's own handling of a `/healthz`. The Durable Object class below is
// only a name in the module's exports until the registry is called: the token path never
// touches it (docs/performance.md measures both).
//
// After a Rust panic (the wasm aborts), the glue starts a fresh instance on the next call: the
// Rust side schedules it (worker's abort handler) and wasm-bindgen's call guard performs it
// (built with --experimental-reset-state-function --force-enable-abort-handler).
import { env } from "cloudflare:workers";
import {
  fetch as handle,
  forget_prepared,
  prepare,
  registry_command,
  registry_import,
  registry_project,
} from "./index.js";

// The isolate's configuration (vars, secrets, the signing key imported into Web Crypto) is
// built now, while the isolate starts, not on its first request (src/platform/mod.rs
// `prepare`). Should that fail, the first request builds it and answers with what went wrong;
// a worker must never fail to start over its configuration.
let preparedFrom = null; // the env prepared from, until the first request has compared its own
try {
  if (env) {
    preparedFrom = env;
    prepare(env);
  }
} catch (error) {
  console.error("preparing the isolate failed; the first request will retry:", error);
}

/** Whether two envs have the same members, each the same value (the same binding object). */
function sameEnv(a, b) {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const name of names) if (a[name] !== b[name]) return false;
  return true;
}

export default {
  fetch(request, env, ctx) {
    if (preparedFrom !== null) {
      // The prepared state is kept only if the handler's env is the one it was built from:
      // under the `disallow_importable_env` flag, say, the imported env is empty, and the first
      // request builds the state from its own.
      if (!sameEnv(preparedFrom, env)) forget_prepared();
      preparedFrom = null;
    }
    return handle(request, env, ctx);
  },
};

// The account registry (src/registry, src/platform/registry.rs): one object, named "registry",
// that applies every admin command one at a time and projects each commit into ACCOUNTS.
// The rules are all Rust; this class only orders the calls:
// 1. the one-time import of accounts written to KV before the registry (every request waits
//    for it);
// 2. the command, committed synchronously in one SQLite transaction: no other request of the
//    object runs in between;
// 3. the projection into KV, for a command that queued keys (a read does not wait on KV). One
//    drain at a time: a request waits until a drain that started after its own commit has
//    finished (or failed: then the alarm retries, backing off).
// Whether a command's answer (src/registry/mod.rs `answer_text`: `{"Ok":{"reply":…,"projected":[…]}}`
// or `{"Err":…}`) says it queued read-model keys. Read from the text's end, not parsed: a list
// answer can be a megabyte. `answer_text`'s tests hold the Rust side to this form.
const queuedKeys = (answer) => answer.startsWith('{"Ok":') && !answer.endsWith('"projected":[]}}');

export class AccountRegistry {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
    this.importing = null;
    this.importQueued = false;
    this.commits = 0;
    this.projectedUpTo = 0;
    this.draining = null;
  }

  async fetch(request) {
    const path = new URL(request.url).pathname;
    const body = await request.text();
    // The selftest build's switches (making KV writes fail) change no account: no projection,
    // so the suite sees the alarm, not the switch, catch the read model up.
    if (path.startsWith("/selftest/")) {
      return new Response(registry_command(this.ctx, this.env, path, body));
    }
    await this.imported();
    const answer = registry_command(this.ctx, this.env, path, body);
    // The import queues keys of its own (dropped duplicates, indexes): the first command
    // projects them even when it is a read.
    if (queuedKeys(answer) || this.importQueued) {
      this.importQueued = false;
      await this.project();
    }
    return new Response(answer, { headers: { "content-type": "application/json" } });
  }

  async alarm() {
    await this.imported();
    await this.project();
  }

  async imported() {
    this.importing ??= Promise.resolve(registry_import(this.ctx, this.env)).then((outcome) => {
      if (outcome !== "ok") {
        this.importing = null;
        throw new Error(`the import of existing accounts failed: ${outcome}`);
      }
      this.importQueued = true;
    });
    await this.importing;
  }

  async project() {
    const mine = ++this.commits;
    while (this.projectedUpTo < mine) {
      if (!this.draining) {
        const upTo = this.commits;
        this.draining = Promise.resolve(registry_project(this.ctx, this.env)).then((drained) => {
          if (drained) this.projectedUpTo = Math.max(this.projectedUpTo, upTo);
          return drained;
        });
        this.draining.finally(() => (this.draining = null));
      }
      const drained = await this.draining;
      if (!drained) return;
    }
  }
}
