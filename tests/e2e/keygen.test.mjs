// `npm run keygen` and the rotation procedure of the README: a new key is appended (published,
// not signing), then promoted (signing); the worker publishes both, in that order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { DEFAULT_VARS, startWorker } from "./harness.mjs";

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts/keygen.mjs");
const keygen = (args, input) =>
  execFileSync(process.execPath, [SCRIPT, ...args], { input, stdio: ["pipe", "pipe", "ignore"] }).toString();

test("keygen makes an ES256 key whose kid is its RFC 7638 thumbprint", () => {
  const { keys } = JSON.parse(keygen([]));
  assert.equal(keys.length, 1);
  const [{ kty, crv, x, y, d, kid, alg }] = keys;
  assert.deepEqual([kty, crv, alg], ["EC", "P-256", "ES256"]);
  assert.ok(d, "a private key");
  assert.equal(kid, createHash("sha256").update(JSON.stringify({ crv, kty, x, y })).digest("base64url"));
});

test("append then promote: the worker publishes both keys, the signing one first", async () => {
  const original = keygen([]);
  const appended = keygen(["--append"], original);
  const promoted = keygen(["--promote"], appended);
  const [oldKid, newKid] = JSON.parse(appended).keys.map((key) => key.kid);
  assert.deepEqual(JSON.parse(promoted).keys.map((key) => key.kid), [newKid, oldKid]);

  const worker = await startWorker({ ...DEFAULT_VARS, SIGNING_KEYS: promoted.trim() });
  try {
    const { status, body } = await worker.json("/.well-known/jwks.json");
    assert.equal(status, 200);
    assert.deepEqual(body.keys.map((key) => key.kid), [newKid, oldKid]);
    assert.ok(body.keys.every((key) => key.d === undefined));
  } finally {
    await worker.dispose();
  }
});

test("keygen refuses input that is not a key set", () => {
  assert.throws(() => keygen(["--append"], "{}"));
});

// The README's deploy commands, run as printed: `npm run --silent keygen | …` must put nothing
// but the key set on stdout (npm's banner once made a fresh deployment answer 500), and
// `npm run --silent secrets` nothing but `wrangler secret bulk`'s JSON.
const ROOT = path.resolve(path.dirname(SCRIPT), "..");
const npmRun = (script) =>
  execFileSync("npm", ["run", "--silent", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }).toString();

test("npm run --silent keygen prints a key set and nothing else", async () => {
  const set = JSON.parse(npmRun("keygen"));
  assert.equal(set.keys.length, 1);
  const worker = await startWorker({ ...DEFAULT_VARS, ISSUER: "https://sts.example.com", SIGNING_KEYS: npmRun("keygen").trim() });
  try {
    assert.equal((await worker.json("/healthz")).status, 200, "a worker given exactly that output is healthy");
  } finally {
    await worker.dispose();
  }
});

test("npm run --silent secrets prints both secrets as wrangler secret bulk's JSON", async () => {
  const secrets = JSON.parse(npmRun("secrets"));
  assert.deepEqual(Object.keys(secrets).sort(), ["ADMIN_TOKEN", "SIGNING_KEYS"]);
  assert.match(secrets.ADMIN_TOKEN, /^[A-Za-z0-9_-]{43}$/);
  const worker = await startWorker({ ...DEFAULT_VARS, ISSUER: "https://sts.example.com", ...secrets });
  try {
    assert.equal((await worker.json("/healthz")).status, 200);
    const list = await worker.json("/v1/serviceaccounts", { headers: { authorization: `Bearer ${secrets.ADMIN_TOKEN}` } });
    assert.equal(list.status, 200);
  } finally {
    await worker.dispose();
  }
});
