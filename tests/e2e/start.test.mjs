// `npm start` as a newcomer runs it: scripts/start.sh serves the worker with wrangler's local
// runtime; /healthz answers and /.well-known/jwks.json lists one EC P-256 key with a kid. Then
// the README's walkthrough, exactly as written there (its `sh test:walkthrough` blocks), against
// it and `npm run idp`: register, exchange at all three token paths, introspect, dry run; and
// the identity provider restarted keeps its key, so exchanges go on.
// Runs on spare ports with its own local state; creates .dev.vars only if the checkout has none
// (and then says so).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { execFileSync } from "node:child_process";
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
  const state = mkdtempSync(path.join(tmpdir(), "edge-sts-state-"));
  const child = spawn("bash", ["scripts/start.sh"], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), EDGE_STS_STATE: state },
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
    await walkthrough(port);
  } finally {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
    rmSync(state, { recursive: true, force: true });
  }
});

/** Starts `npm run idp`'s script on `idpPort`; resolves once it prints its issuer. */
function startIdp(idpPort) {
  const idp = spawn(process.execPath, ["scripts/local-idp.mjs"], { cwd: ROOT, env: { ...process.env, IDP_PORT: String(idpPort) }, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let output = "";
    idp.stdout.on("data", (chunk) => {
      output += chunk;
      if (output.includes("issuer")) resolve({ idp, output });
    });
    idp.on("exit", (code) => reject(new Error(`the identity provider exited ${code}: ${output}`)));
  });
}

async function walkthrough(port) {
  const idpPort = await freePort();
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```sh test:walkthrough\n([\s\S]*?)```/g)].map((match) => match[1]);
  assert.equal(blocks.length, 3, "the walkthrough's three blocks");
  let { idp, output } = await startIdp(idpPort);
  try {
    assert.match(output, new RegExp(`issuer http://127\\.0\\.0\\.1:${idpPort}`), "the provider prints its issuer");
    const run = execFileSync("bash", ["-euo", "pipefail", "-c", blocks.join("\n")], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), IDP_PORT: String(idpPort) },
    }).toString();
    const answers = run.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
    const tokens = answers.filter((answer) => answer.access_token);
    assert.equal(tokens.length, 3, `an access token from each path:\n${run}`);
    assert.ok(tokens.every((answer) => answer.expires_in === 900));
    // Entra's `.default` is answered as asked (MSAL keeps the token under it); the token holds
    // every scope of the account.
    assert.deepEqual(tokens.map((answer) => answer.scope), ["certificate-issuance", "certificate-issuance", "api://edge-sts/.default"]);
    assert.ok(answers.some((answer) => answer.active === true), `introspection: active\n${run}`);
    assert.ok(answers.some((answer) => answer.ok === true && answer.checks.length >= 8), `the dry run: ok\n${run}`);

    // Restarted, the provider signs with the same key: edge-sts's cached key set still fits.
    idp.kill();
    ({ idp } = await startIdp(idpPort));
    const jwt = await (await fetch(`http://127.0.0.1:${idpPort}/token?sub=repo:acme/app:ref:refs/heads/main&aud=https://sts.example.com`)).text();
    const again = await fetch(`http://127.0.0.1:${port}/oauth2/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: jwt.trim() }),
    });
    assert.equal(again.status, 200, await again.clone().text());
  } finally {
    idp.kill();
  }
}
