// What a cold isolate compiles before it answers: `npm run bench:compiled [-- build-dir …]`.
//
// V8 compiles each wasm function when it is first called, whole, and on a cold isolate that
// compiling was most of the first request's time (docs/performance.md). This counts it exactly,
// where timing a first request on a shared machine is noisy: for each build (default
// build-profiling/, the release wasm with function names), a first `/healthz` and a first
// exchange (account and key set in KV, as `npm run bench` sets them up) run in Node
// (bench/compiled-run.mjs) under V8's compile trace. Printed per request: the wasm bytes and
// functions compiled at the isolate's startup and for the request itself, and the largest
// functions (TOP, default 15). Node's V8 is not workerd's, so the milliseconds printed are only
// indicative; the bytes are the build's.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT, setUp } from "./setup.mjs";

const TOP = Number(process.env.TOP ?? 15);
const builds = process.argv.slice(2).length ? process.argv.slice(2) : ["build-profiling"];

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

const bench = await setUp();
// The fixture holds the bench's signing key and admin token (made for this run): removed on exit.
const fixtureFolder = mkdtempSync(path.join(tmpdir(), "edge-sts-fixture-"));
process.on("exit", () => rmSync(fixtureFolder, { recursive: true, force: true }));
const fixture = path.join(fixtureFolder, "fixture.json");
writeFileSync(fixture, JSON.stringify({ bindings: bench.bindings, state: bench.state, exchangeBody: bench.exchangeBody("ES256") }));
await bench.close();

for (const build of builds) {
  const names = functionNames(readFileSync(path.resolve(ROOT, build, "index_bg.wasm")));
  for (const requestPath of ["/healthz", "/oauth2/token"]) {
    const trace = execFileSync(process.execPath, ["--trace-wasm-compilation-times", path.join(ROOT, "bench/compiled-run.mjs"), path.resolve(ROOT, build), fixture, requestPath], { encoding: "utf8", maxBuffer: 64 << 20 });
    const phases = { startup: [], request: [] };
    let phase = null;
    const notes = []; // "startup took … ms", "answered 200 in … ms"
    for (const line of trace.split("\n")) {
      const marker = /^--- (\w+) ?(.*)$/.exec(line);
      if (marker) {
        const [, name, rest] = marker;
        if (name === "body") throw new Error(`${build} ${requestPath}: ${notes.join("; ")}: ${rest}`);
        if (name === "request") notes.push(rest.replace(/^\(|\)$/g, ""));
        if (name === "answered") notes.push(`${name} ${rest}`);
        phase = name in phases ? name : null;
        continue;
      }
      const compiled = /^Compiled function \S+#(\d+) using Liftoff.* bodysize (\d+)/.exec(line);
      if (compiled && phase) phases[phase].push({ index: Number(compiled[1]), bytes: Number(compiled[2]) });
    }
    const total = (list) => `${(list.reduce((sum, { bytes }) => sum + bytes, 0) / 1024).toFixed(1).padStart(6)} KB in ${String(list.length).padStart(3)} functions`;
    console.log(`${build} ${requestPath}: startup ${total(phases.startup)}; first request ${total(phases.request)} (${notes.join("; ")})`);
    for (const { index, bytes } of phases.request.sort((a, b) => b.bytes - a.bytes).slice(0, TOP)) {
      console.log(`  ${String(bytes).padStart(7)}  ${(names.get(index) ?? `#${index}`).slice(0, 130)}`);
    }
  }
}
