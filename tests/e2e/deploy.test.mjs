// What `npx wrangler deploy` would upload, without uploading: wrangler runs scripts/build.sh,
// takes build/index.js (edge-sts's entry bundled with wasm-bindgen's glue) and its wasm module,
// and the result fits Workers' free-plan limit of 3 MB compressed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import path from "node:path";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

test("wrangler deploy --dry-run bundles the entry and the wasm module", { timeout: 120_000 }, async () => {
  const out = mkdtempSync(path.join(tmpdir(), "edge-sts-deploy-"));
  try {
    const { stdout } = await promisify(execFile)(
      path.join(ROOT, "node_modules/.bin/wrangler"),
      ["deploy", "--dry-run", "--outdir", out],
      { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    const files = readdirSync(out);
    assert.ok(files.includes("index.js"), `index.js uploaded: ${files}`);
    const wasm = files.filter((name) => name.endsWith(".wasm"));
    assert.equal(wasm.length, 1, `one wasm module: ${files}`);
    // The entry imports the module wrangler uploads, by the name wrangler gave it.
    assert.ok(readFileSync(path.join(out, "index.js"), "utf8").includes(wasm[0]), "the entry imports the uploaded module");
    const [, gzipKiB] = stdout.match(/Total Upload: [\d.]+ KiB \/ gzip: ([\d.]+) KiB/) ?? [];
    assert.ok(gzipKiB, `wrangler reports the upload size: ${stdout}`);
    assert.ok(Number(gzipKiB) < 3 * 1024, `${gzipKiB} KiB gzipped fits 3 MB`);
    assert.match(stdout, /env\.ACCOUNTS\s+KV Namespace/);
    assert.match(stdout, /env\.JWKS_CACHE\s+KV Namespace/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
