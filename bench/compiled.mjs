// What a cold isolate compiles before it answers: `npm run bench:compiled [-- build-dir …]`.
//
// V8 compiles each wasm function when it is first called, whole, and on a cold isolate that
// compiling is a large part of the first request's time (docs/performance.md). This counts it
// exactly, where timing a first request on a shared machine is noisy: for each build (default
// build-profiling/, the release wasm with function names), a new workerd runs with V8's
// --trace-wasm-compilation-times (through MINIFLARE_WORKERD_V8_FLAGS), and a first `/healthz`
// and a first exchange (account and key set in KV, as `npm run bench` sets them up) are each
// answered by a new one. workerd's lines reach the log handler in order, so a marker written
// there tells the isolate's startup from the request. Printed per request: the wasm bytes,
// functions and V8's own compile time at startup and for the request itself; how many of the
// startup's functions the request compiled again (workerd drops the Liftoff code compiled while
// the isolate started, see docs/performance.md); and the largest functions (TOP, default 15).
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, setUp } from "./setup.mjs";

const TOP = Number(process.env.TOP ?? 15);
const builds = process.argv.slice(2).length ? process.argv.slice(2) : ["build-profiling"];
process.env.MINIFLARE_WORKERD_V8_FLAGS = [process.env.MINIFLARE_WORKERD_V8_FLAGS, "--trace-wasm-compilation-times"].filter(Boolean).join(" ");

/** Function index → name, from the wasm's name section (empty without one). */
function functionNames(wasm) {
  const names = new Map();
  let at = 8;
  const leb = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = wasm[at++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) return value;
    }
  };
  const text = (length) => new TextDecoder().decode(wasm.subarray(at, (at += length)));
  while (at < wasm.length) {
    const id = wasm[at++];
    const size = leb();
    const end = at + size;
    if (id === 0 && text(leb()) === "name") {
      while (at < end) {
        const kind = wasm[at++];
        const subsectionEnd = leb() + at;
        if (kind === 1) {
          for (let count = leb(); count > 0; count--) names.set(leb(), text(leb()));
        }
        at = subsectionEnd;
      }
    }
    at = end;
  }
  return names;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
const REQUEST = "--- request";
const ANSWERED = "--- answered";
const bench = await setUp();
const requests = {
  "/healthz": () => ({}),
  "/oauth2/token": () => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: bench.exchangeBody("ES256") }),
};

for (const build of builds) {
  const names = functionNames(readFileSync(path.resolve(ROOT, build, "index_bg.wasm")));
  for (const [requestPath, init] of Object.entries(requests)) {
    const logs = [];
    const worker = await bench.start("edge-sts", { build, logs });
    // What the isolate's startup left running (the signing key's import) settles first.
    await settle();
    logs.push(REQUEST);
    const started = performance.now();
    const response = await fetch(worker.url + requestPath, init());
    await response.arrayBuffer();
    const ms = performance.now() - started;
    await settle();
    logs.push(ANSWERED);
    await worker.dispose();
    if (response.status !== 200) throw new Error(`${build} ${requestPath}: ${response.status}`);

    const phases = { startup: [], request: [] };
    let phase = phases.startup;
    for (const line of logs) {
      if (line === REQUEST) phase = phases.request;
      if (line === ANSWERED) break;
      const compiled = /Compiled function \S+#(\d+) using \w+, took (\d+) (μs|ms).* bodysize (\d+)/.exec(line);
      if (compiled) phase.push({ index: Number(compiled[1]), us: Number(compiled[2]) * (compiled[3] === "ms" ? 1000 : 1), bytes: Number(compiled[4]) });
    }
    if (phases.startup.length + phases.request.length === 0) throw new Error("workerd wrote no compile trace (MINIFLARE_WORKERD_V8_FLAGS not applied?)");
    const total = (list) =>
      `${(list.reduce((sum, { bytes }) => sum + bytes, 0) / 1024).toFixed(1).padStart(6)} KB in ${String(list.length).padStart(3)} functions, ` +
      `${(list.reduce((sum, { us }) => sum + us, 0) / 1000).toFixed(1)} ms`;
    const startupIndexes = new Set(phases.startup.map(({ index }) => index));
    const again = phases.request.filter(({ index }) => startupIndexes.has(index));
    console.log(
      `${build} ${requestPath}: startup ${total(phases.startup)}; first request ${total(phases.request)} ` +
        `(${again.length} of them compiled at startup too; answered ${response.status} in ${ms.toFixed(1)} ms)`,
    );
    for (const { index, bytes } of phases.request.sort((a, b) => b.bytes - a.bytes).slice(0, TOP)) {
      console.log(`  ${String(bytes).padStart(7)}  ${(names.get(index) ?? `#${index}`).slice(0, 130)}`);
    }
  }
}
await bench.close();
