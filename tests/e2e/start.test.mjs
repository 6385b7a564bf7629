// `npm start` as a newcomer runs it: scripts/start.sh serves the worker with wrangler's local
// runtime; /healthz answers and /.well-known/jwks.json lists one EC P-256 key with a kid.
// Runs on a spare port; creates .dev.vars only if the checkout has none (and then says so).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const STARTUP_LIMIT_MS = 120_000; // a cold wrangler start; the build is already fresh here

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

test("npm start serves /healthz and one published ES256 key", { timeout: STARTUP_LIMIT_MS + 10_000 }, async () => {
  const port = await freePort();
  const hadDevVars = existsSync(path.join(ROOT, ".dev.vars"));
  const child = spawn("bash", ["scripts/start.sh"], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port) },
    detached: true, // its own process group, so wrangler and workerd stop with it
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  try {
    const deadline = Date.now() + STARTUP_LIMIT_MS;
    let health;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        health = await fetch(`http://127.0.0.1:${port}/healthz`);
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    assert.ok(health, `npm start did not answer on port ${port}:\n${output}`);
    assert.equal(health.status, 200, output);
    assert.deepEqual(await health.json(), { status: "ok" });

    const jwks = await (await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)).json();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kty, "EC");
    assert.equal(jwks.keys[0].crv, "P-256");
    assert.ok(jwks.keys[0].kid);

    if (!hadDevVars) {
      assert.match(output, /ADMIN_TOKEN=[A-Za-z0-9_-]{43}/, "a new admin token is printed once");
      // The new .dev.vars names where it serves as ISSUER, and a tenant for the Venafi and
      // Entra paths.
      const devVars = readFileSync(path.join(ROOT, ".dev.vars"), "utf8");
      assert.match(devVars, new RegExp(`^ISSUER=http://127\\.0\\.0\\.1:${port}$`, "m"));
      assert.match(devVars, /^TENANT_ID=[0-9a-f-]{36}$/m);
      const metadata = await (await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).json();
      assert.equal(metadata.issuer, `http://127.0.0.1:${port}`);
    }
  } finally {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
});
