// Where a cold isolate's first request spends its CPU: `npm run bench:profile [-- /healthz]`.
// Starts a new workerd on the profiling build (scripts/build.sh --profiling: the release wasm
// with function names), attaches to V8's inspector, profiles the first request (default: an
// exchange with account and key set in KV) at 50 µs sampling; PROFILE_RUNS times (default 5),
// a new workerd each, summed, since one profile on a shared machine is noisy. Prints the
// functions with the most self time (TOP, default 25) and the call tree by inclusive time
// (TREE_DEPTH, default 0: none), both per run. Compilation shows as "(program)" or as self time
// of the function compiled.
//
// PROFILE_WARM=n instead profiles a warm isolate: n exchanges one after another, after 300
// that warm it up (JIT tiers, caches), and prints self time per exchange in µs: where the warm
// net CPU (docs/performance.md) goes.
import { setUp } from "./setup.mjs";

const path = process.argv[2] ?? "/oauth2/token";
const RUNS = Number(process.env.PROFILE_RUNS ?? 5);
const TOP = Number(process.env.TOP ?? 25);
const DEPTH = Number(process.env.TREE_DEPTH ?? 0);
const WARM = Number(process.env.PROFILE_WARM ?? 0);
const WARM_UP = 300;
const INSPECTOR_PORT = 9231;
const bench = await setUp();

/** One new workerd, its first request profiled: { ms, status, profile }. */
async function profileFirstRequest() {
  const worker = await bench.start("edge-sts", { build: "build-profiling", inspectorPort: INSPECTOR_PORT });
  const [target] = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json();
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve) => socket.addEventListener("open", resolve));
  let lastId = 0;
  const pending = new Map();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const id = ++lastId;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  const init = () => path === "/oauth2/token"
    ? { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: bench.exchangeBody("ES256") }
    : undefined;
  const request = async () => {
    const response = await fetch(worker.url + path, init());
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
    return response;
  };
  for (let i = 0; WARM && i < WARM_UP; i++) await request();
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 50 });
  await send("Profiler.start");
  const started = performance.now();
  let response;
  for (let i = 0; i < Math.max(WARM, 1); i++) response = await request();
  const ms = performance.now() - started;
  const { result } = await send("Profiler.stop");
  socket.close();
  await worker.dispose();
  return { ms, status: response.status, profile: result.profile };
}

const self = new Map();
const inclusive = new Map();
const latencies = [];
for (let run = 0; run < RUNS; run++) {
  const { ms, status, profile } = await profileFirstRequest();
  latencies.push(ms);
  if (status !== 200) throw new Error(`first ${path}: ${status}`);
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfOf = new Map();
  profile.samples.forEach((sample, i) => selfOf.set(sample, (selfOf.get(sample) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const label = (node) => `${node.callFrame.functionName || "(anonymous)"}  ${node.callFrame.url.split("/").pop()}`;
  for (const [id, micros] of selfOf) self.set(label(nodes.get(id)), (self.get(label(nodes.get(id))) ?? 0) + micros);
  // Inclusive time per call path (function names from the root), summed over the runs.
  const walk = (node, trail, level) => {
    const name = node.callFrame.functionName || "(anonymous)";
    const key = `${trail}/${name}`;
    const micros = (selfOf.get(node.id) ?? 0) + (node.children ?? []).reduce((sum, child) => sum + walk(nodes.get(child), key, level + 1), 0);
    if (level <= DEPTH) inclusive.set(key, { level, name, micros: (inclusive.get(key)?.micros ?? 0) + micros });
    return micros;
  };
  walk(profile.nodes[0], "", 0);
  process.stderr.write(".");
}
process.stderr.write("\n");

const sorted = [...latencies].sort((a, b) => a - b);
const total = [...self.values()].reduce((sum, value) => sum + value, 0) / RUNS;
const idle = (self.get("(idle)  ") ?? 0) / RUNS;
if (WARM) {
  // Per warm request, in µs.
  const per = (micros) => (micros / RUNS / WARM).toFixed(1).padStart(7);
  console.log(`${WARM} warm ${path} after ${WARM_UP}, ${RUNS} workerds: ${per(total - idle)} µs not idle per request (V8's samples: JavaScript, wasm and the runtime's own code run from them)`);
  console.log("\nself time per request:");
  for (const [name, micros] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`${per(micros)} µs  ${name.slice(0, 140)}`);
  }
} else {
  console.log(`first ${path}, ${RUNS} new workerds: median ${sorted[Math.floor(RUNS / 2)].toFixed(1)} ms (${sorted.map((ms) => ms.toFixed(1)).join(", ")}); per run ${(total / 1000).toFixed(1)} ms sampled, ${((total - idle) / 1000).toFixed(1)} ms not idle`);
  console.log("\nself time per run:");
  for (const [name, micros] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`${(micros / RUNS / 1000).toFixed(2).padStart(7)} ms  ${name.slice(0, 140)}`);
  }
}
if (DEPTH > 0) {
  console.log("\ncall tree, inclusive time per run (≥ 0.2 ms):");
  // Keys sort as paths, so children follow their parent.
  for (const [key, { level, name, micros }] of [...inclusive.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (micros / RUNS >= 200) console.log(`${(micros / RUNS / 1000).toFixed(2).padStart(7)} ms  ${"  ".repeat(level)}${name.slice(0, 110)}`);
  }
}
await bench.close();
