// One cold isolate's first request, in Node, for `bench/compiled.mjs`; not run on its own.
// Usage: node --trace-wasm-compilation-times bench/compiled-run.mjs <build dir> <fixture.json> <path>
//
// The build's bundle is loaded as workerd would load it (its wasm a compiled module, the
// `cloudflare:workers` env the fixture's bindings, KV in memory with the fixture's entries),
// then one request is answered. V8 compiles a wasm function when it is first called, and with
// --trace-wasm-compilation-times says so, by function index, on stdout; the markers below
// (written synchronously, so in order with V8's lines) tell startup from the request.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const [build, fixturePath, requestPath] = process.argv.slice(2);
const fixture = JSON.parse(readFileSync(fixturePath, "utf8"));
// Written synchronously to the same stdout as V8's trace, so the two stay in order; a pipe
// that is full (EAGAIN) is waited out.
function mark(text) {
  const bytes = Buffer.from(`--- ${text}\n`);
  for (let written = 0; written < bytes.length; ) {
    try {
      written += writeSync(1, bytes, written);
    } catch (error) {
      if (error.code !== "EAGAIN") throw error;
    }
  }
}

// Workers KV as the worker uses it: get (one key or up to 100), put, delete, list.
class KvNamespace {
  constructor(entries) {
    this.entries = new Map(entries);
  }
  async get(key) {
    if (Array.isArray(key)) return new Map(key.map((name) => [name, this.entries.get(name) ?? null]));
    return this.entries.get(key) ?? null;
  }
  async put(key, value) {
    this.entries.set(key, value);
  }
  async delete(key) {
    this.entries.delete(key);
  }
  async list() {
    return { keys: [...this.entries.keys()].map((name) => ({ name })), list_complete: true };
  }
}
const env = {
  ...fixture.bindings,
  ACCOUNTS: new KvNamespace(fixture.state.ACCOUNTS),
  JWKS_CACHE: new KvNamespace(fixture.state.JWKS_CACHE),
};

// The bundle, with its two platform imports resolved as workerd resolves them.
let bundle = readFileSync(path.join(build, "index.js"), "utf8");
const wasmImport = /import ?(\w+) ?from ?"\.\/index_bg\.wasm";/;
if (!wasmImport.test(bundle)) throw new Error(`${build}/index.js has no import of ./index_bg.wasm this runner recognises`);
bundle = bundle.replace(wasmImport, (_, name) =>
  `var ${name}=new WebAssembly.Module(__readFileSync(${JSON.stringify(path.resolve(build, "index_bg.wasm"))}));`);
bundle = bundle.replace(/import ?\{ ?env(?: as (\w+))? ?\} ?from ?"cloudflare:workers";/, (_, name) => `var ${name ?? "env"}=globalThis.__env;`);
if (/from ?"cloudflare:/.test(bundle)) throw new Error("the bundle imports a cloudflare: module this runner does not provide");
const folder = mkdtempSync(path.join(tmpdir(), "edge-sts-compiled-"));
process.on("exit", () => rmSync(folder, { recursive: true, force: true }));
const module = path.join(folder, "index.mjs");
writeFileSync(module, `import { readFileSync as __readFileSync } from "node:fs";\n${bundle}`);

// Node's own fetch classes and Web Crypto load lazily: used once first, so that nothing of
// Node's is counted as the worker's.
{
  const warm = new Request("http://127.0.0.1/", { method: "POST", body: "a=b", headers: { "content-type": "text/plain" } });
  await warm.arrayBuffer();
  await new Response(new Uint8Array([1]), { headers: new Headers([["a", "b"]]) }).text();
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new Uint8Array(1));
  await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, signature, new Uint8Array(1));
}

globalThis.__env = env;
mark("startup");
const loading = performance.now();
const worker = (await import(module)).default;
const loaded = performance.now() - loading;
// What the isolate's startup left running (the signing key's import, then the state kept)
// settles first: a macrotask after Web Crypto's promise, with time to spare.
await new Promise((resolve) => setTimeout(resolve, 250));
mark(`request (startup took ${loaded.toFixed(2)} ms)`);
const init = requestPath === "/healthz"
  ? {}
  : { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(fixture.exchangeBody.length) }, body: fixture.exchangeBody };
const started = performance.now();
const response = await worker.fetch(new Request(`http://127.0.0.1:8787${requestPath}`, init), env, { waitUntil() {}, passThroughOnException() {} });
const body = await response.text();
mark(`answered ${response.status} in ${(performance.now() - started).toFixed(2)} ms`);
if (response.status !== 200) mark(`body ${body.slice(0, 300)}`);
