// Where a cold isolate's first request spends its CPU: `npm run bench:profile [-- /healthz]`.
// Starts a new workerd on the profiling build (scripts/build.sh --profiling: the release wasm
// with function names), attaches to V8's inspector, profiles the first request (default: an
// exchange with account and key set in KV) at 50 µs sampling, and prints the functions with
// the most self time. Compilation shows as "(program)" or under the function compiled.
import { setUp } from "./setup.mjs";

const path = process.argv[2] ?? "/oauth2/token";
const INSPECTOR_PORT = 9231;
const bench = await setUp();
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

await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 50 });
await send("Profiler.start");
const init = path === "/oauth2/token"
  ? { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: bench.exchangeBody("ES256") }
  : undefined;
const started = performance.now();
const response = await fetch(worker.url + path, init);
await response.arrayBuffer();
const ms = performance.now() - started;
const { result } = await send("Profiler.stop");

const nodes = new Map(result.profile.nodes.map((node) => [node.id, node]));
const self = new Map();
result.profile.samples.forEach((sample, i) => {
  const { functionName, url } = nodes.get(sample).callFrame;
  const name = `${functionName || "(anonymous)"}  ${url.split("/").pop()}`;
  self.set(name, (self.get(name) ?? 0) + (result.profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((sum, value) => sum + value, 0);
console.log(`first ${path}: ${response.status} in ${ms.toFixed(1)} ms; ${(total / 1000).toFixed(1)} ms sampled`);
for (const [name, micros] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 25))) {
  console.log(`${(micros / 1000).toFixed(2).padStart(7)} ms  ${name.slice(0, 140)}`);
}
// The call tree by inclusive time, down to TREE_DEPTH (default 6) and 0.3 ms.
const inclusive = new Map();
const selfOf = new Map();
result.profile.samples.forEach((sample, i) => selfOf.set(sample, (selfOf.get(sample) ?? 0) + (result.profile.timeDeltas[i] ?? 0)));
const total_ = (node) => {
  if (!inclusive.has(node.id)) inclusive.set(node.id, (selfOf.get(node.id) ?? 0) + (node.children ?? []).reduce((sum, child) => sum + total_(nodes.get(child)), 0));
  return inclusive.get(node.id);
};
const depth = Number(process.env.TREE_DEPTH ?? 6);
console.log("\ncall tree (inclusive):");
const walk = (node, level) => {
  const micros = total_(node);
  if (micros < 300 || level > depth) return;
  console.log(`${(micros / 1000).toFixed(2).padStart(7)} ms  ${"  ".repeat(level)}${(node.callFrame.functionName || "(anonymous)").slice(0, 110)}`);
  for (const child of node.children ?? []) walk(nodes.get(child), level + 1);
};
walk(result.profile.nodes[0], 0);
socket.close();
await worker.dispose();
await bench.close();
