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
    assert.match(stdout, /env\.REGISTRY \(AccountRegistry\)\s+Durable Object/);
    assert.match(stdout, /env\.TOKEN_RATE_LIMIT .*Rate Limit/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("the staging environment of docs/deploy.md deploys with its own bindings and ISSUER", { timeout: 120_000 }, async () => {
  const out = mkdtempSync(path.join(tmpdir(), "edge-sts-deploy-"));
  try {
    const { stdout } = await promisify(execFile)(
      path.join(ROOT, "node_modules/.bin/wrangler"),
      ["deploy", "--dry-run", "--outdir", out, "--env", "staging"],
      { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    for (const binding of [/env\.REGISTRY \(AccountRegistry\)\s+Durable Object/, /env\.ACCOUNTS\s+KV Namespace/, /env\.JWKS_CACHE\s+KV Namespace/, /env\.TOKEN_RATE_LIMIT/]) {
      assert.match(stdout, binding);
    }
    assert.match(stdout, /env\.ISSUER \("https:\/\/sts-staging\.example\.com"\)/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("wrangler.toml keeps Workers Logs and declares the registry's SQLite migration", async () => {
  const { parse } = await import("smol-toml");
  // (smol-toml makes prototype-less objects; a JSON round trip makes them plain.)
  const config = JSON.parse(JSON.stringify(parse(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"))));
  assert.equal(config.observability.enabled, true);
  assert.deepEqual(config.migrations, [{ tag: "v1", new_sqlite_classes: ["AccountRegistry"] }]);
  assert.deepEqual(config.durable_objects.bindings, [{ name: "REGISTRY", class_name: "AccountRegistry" }]);
});

test("the deploy workflow builds, tests and deploys with wrangler, secrets only from the repository's secrets", async () => {
  const { parse } = await import("yaml");
  const workflow = parse(readFileSync(path.join(ROOT, ".github/workflows/deploy.yml"), "utf8"));
  const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
  const runs = steps.map((step) => step.run ?? "").join("\n");
  assert.match(runs, /npm test/);
  assert.match(runs, /npx wrangler deploy --env staging/);
  assert.match(runs, /npx wrangler deploy(?! --env)/);
  for (const step of steps.filter((step) => /wrangler deploy/.test(step.run ?? ""))) {
    assert.equal(step.env.CLOUDFLARE_API_TOKEN, "${{ secrets.CLOUDFLARE_API_TOKEN }}");
    assert.equal(step.env.CLOUDFLARE_ACCOUNT_ID, "${{ secrets.CLOUDFLARE_ACCOUNT_ID }}");
  }
  assert.ok(workflow.jobs.production.needs.includes("staging"), "production after staging");
  assert.equal(workflow.jobs.production.environment, "production");
});
