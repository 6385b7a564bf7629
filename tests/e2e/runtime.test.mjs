// The worker's own runtime plumbing, in workerd: its JavaScript entry, the executor that drives
// each request's future (src/platform/task.rs), and recovery from a Rust panic. Uses the
// `selftest` build, whose /__selftest/panic routes panic on purpose.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";

const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";

let worker;
let logs;
before(async () => {
  logs = [];
  worker = await startWorker(
    { ...DEFAULT_VARS, ISSUER: "https://sts.example.com", SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }), ADMIN_TOKEN },
    { build: "build-selftest", logs },
  );
});
after(() => worker?.dispose());

const admin = (path, init = {}) =>
  worker.json(path, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...init.headers },
  });

function account(n) {
  return {
    name: `runtime ${n}`,
    scopes: ["certificate-issuance"],
    issuerURL: `https://idp${n}.example.com`,
    jwksURI: `https://idp${n}.example.com/jwks`,
    subject: `workload-${n}`,
    audience: "https://sts.example.com",
  };
}

test("requests that wait on KV at the same time each get their own answer", async () => {
  const ids = [];
  for (let n = 0; n < 12; n++) {
    const created = await admin("/v1/serviceaccounts", { method: "POST", body: JSON.stringify(account(n)) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    ids.push(created.body.id);
  }
  // Reads of different accounts, interleaved with requests answered without waiting.
  const answers = await Promise.all(
    ids.flatMap((id) => [admin(`/v1/serviceaccounts/${id}`), worker.json("/healthz")]),
  );
  ids.forEach((id, n) => {
    const read = answers[2 * n];
    assert.equal(read.status, 200);
    assert.equal(read.body.id, id);
    assert.equal(read.body.subject, `workload-${n}`);
    assert.equal(answers[2 * n + 1].status, 200);
  });
});

for (const route of ["/__selftest/panic", "/__selftest/panic-after-wait"]) {
  test(`after a panic (${route}) the next request is served by a fresh instance`, async () => {
    const failed = await worker.fetch(route);
    await failed.arrayBuffer();
    assert.equal(failed.status, 500);
    assert.ok(
      logs.some((line) => line.includes("selftest: a deliberate panic")),
      `the panic is logged: ${JSON.stringify(logs.slice(-5))}`,
    );
    const healthz = await worker.json("/healthz");
    assert.equal(healthz.status, 200);
    // Still serving everything, the token endpoint's checks included.
    const token = await worker.json("/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials",
    });
    assert.equal(token.status, 400);
    assert.equal(token.body.error, "invalid_request");
  });
}

// The KV twin of the native tests (src/testing/memory.rs) held to Workers KV itself: the same
// cases (src/testing/conformance.rs) run here on the real local KV.
test("Workers KV passes the conformance cases the in-memory twin is held to", async () => {
  const { status, body } = await worker.json(`/__selftest/kv-conformance?${Date.now()}`, { method: "POST" });
  assert.equal(status, 200);
  assert.equal(body.results.length, 12);
  for (const { case: name, passed, detail } of body.results) assert.ok(passed, `${name}: ${detail}`);
});

// The entry prepares the isolate's configuration at startup from `cloudflare:workers`' env
// (src/platform/entry.mjs). Where that env is empty (the `disallow_importable_env` flag), what
// was prepared from it is dropped and the first request builds the configuration from its own
// env: no isolate is left with a configuration that lacks its bindings.
test("an isolate whose importable env is empty configures itself from its first request", async () => {
  const signingKey = await newSigningKey();
  const bindings = { ...DEFAULT_VARS, ISSUER: "https://sts.example.com", SIGNING_KEYS: JSON.stringify({ keys: [signingKey] }), ADMIN_TOKEN };
  for (const compatibilityFlags of [["disallow_importable_env"], []]) {
    const own = await startWorker(bindings, { logs: [], compatibilityFlags });
    try {
      for (const path of ["/healthz", "/.well-known/jwks.json", "/healthz"]) {
        const { status, body } = await own.json(path);
        assert.equal(status, 200, `${compatibilityFlags} ${path}: ${JSON.stringify(body)}`);
      }
      const { body } = await own.json("/.well-known/jwks.json");
      assert.equal(body.keys.length, 1);
      assert.equal(body.keys[0].x, signingKey.x);
      // (Each answer above needs the KV bindings: a configuration without them is a 500 on
      // every route.) The admin API answers too.
      const listed = await own.json("/v1/serviceaccounts", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
    } finally {
      await own.dispose();
    }
  }
});
