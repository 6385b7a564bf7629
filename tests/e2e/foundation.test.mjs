// The skeleton's endpoints, against the built wasm in workerd: health, the published signing
// keys, discovery metadata, 404/405, and a JSON 500 naming a missing or bad SIGNING_KEYS or a
// missing ISSUER.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";

const ISSUER = "https://sts.example.com";

describe("a configured worker", () => {
  let worker;
  let key;
  before(async () => {
    key = await newSigningKey();
    worker = await startWorker({ ...DEFAULT_VARS, ISSUER, SIGNING_KEYS: JSON.stringify({ keys: [key] }) });
  });
  after(() => worker?.dispose());

  test("GET /healthz answers 200 {status: ok}", async () => {
    const { status, body, headers } = await worker.json("/healthz");
    assert.equal(status, 200);
    assert.deepEqual(body, { status: "ok" });
    assert.match(headers.get("content-type"), /^application\/json/);
  });

  test("GET /.well-known/jwks.json publishes the public half of the signing key, with a kid", async () => {
    const { status, body } = await worker.json("/.well-known/jwks.json");
    assert.equal(status, 200);
    assert.equal(body.keys.length, 1);
    const [jwk] = body.keys;
    assert.equal(jwk.kty, "EC");
    assert.equal(jwk.crv, "P-256");
    assert.equal(jwk.alg, "ES256");
    assert.equal(jwk.use, "sig");
    assert.equal(jwk.x, key.x);
    assert.equal(jwk.y, key.y);
    assert.equal(jwk.d, undefined, "the private scalar must never be published");
    assert.match(jwk.kid, /^[A-Za-z0-9_-]{43}$/, "the default kid is the RFC 7638 thumbprint");
  });

  test("the published key verifies what the private key signs (it is the same key)", async () => {
    const { body } = await worker.json("/.well-known/jwks.json");
    const subtle = globalThis.crypto.subtle;
    const algorithm = { name: "ECDSA", namedCurve: "P-256" };
    const publicKey = await subtle.importKey("jwk", body.keys[0], algorithm, false, ["verify"]);
    const privateKey = await subtle.importKey("jwk", key, algorithm, false, ["sign"]);
    const data = new TextEncoder().encode("edge-sts");
    const signature = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, data);
    assert.ok(await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, signature, data));
  });

  for (const path of ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]) {
    test(`GET ${path} is RFC 8414 metadata rooted at ISSUER`, async () => {
      const { status, body } = await worker.json(path);
      assert.equal(status, 200);
      assert.equal(body.issuer, ISSUER);
      assert.equal(body.token_endpoint, `${ISSUER}/oauth2/token`);
      assert.equal(body.jwks_uri, `${ISSUER}/.well-known/jwks.json`);
      assert.equal(body.introspection_endpoint, `${ISSUER}/oauth2/introspect`);
      assert.deepEqual(body.grant_types_supported, [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
      ]);
      assert.deepEqual(body.scopes_supported, ["certificate-issuance", "api-integration", "kubernetes-discovery-federated"]);
    });
  }

  test("an unknown path is a JSON 404", async () => {
    const { status, body } = await worker.json("/nope");
    assert.equal(status, 404);
    assert.equal(body.error, "not_found");
    assert.match(body.error_description, /\/nope/);
  });

  test("a wrong method is a JSON 405 with Allow", async () => {
    for (const method of ["POST", "DELETE", "PUT"]) {
      const { status, headers, body } = await worker.json("/healthz", { method });
      assert.equal(status, 405, method);
      assert.equal(headers.get("allow"), "GET");
      assert.equal(body.error, "method_not_allowed");
    }
  });
});

describe("ISSUER and SCOPES", () => {
  let worker;
  before(async () => {
    worker = await startWorker({
      ...DEFAULT_VARS,
      ISSUER: "https://sts.example.com",
      SCOPES: "read,write",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
    });
  });
  after(() => worker?.dispose());

  test("metadata uses ISSUER and the configured scope catalogue", async () => {
    const { body } = await worker.json("/.well-known/openid-configuration");
    assert.equal(body.issuer, "https://sts.example.com");
    assert.equal(body.token_endpoint, "https://sts.example.com/oauth2/token");
    assert.deepEqual(body.scopes_supported, ["read", "write"]);
  });
});

describe("ISSUER is required outside local development", () => {
  test("without ISSUER: /healthz, metadata, the token endpoints and introspection answer 500 naming ISSUER", async () => {
    const worker = await startWorker({
      ...DEFAULT_VARS,
      TENANT_ID: "acme",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN: "e2e-admin-token-foundation-0123456789",
    });
    try {
      const form = { "content-type": "application/x-www-form-urlencoded" };
      const calls = [
        ["/healthz"],
        ["/.well-known/openid-configuration"],
        ["/.well-known/oauth-authorization-server"],
        ["/oauth2/token", { method: "POST", headers: form, body: "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=x" }],
        ["/v1/oauth2/v2.0/acme/token", { method: "POST", headers: form, body: "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=x" }],
        ["/oauth2/introspect", { method: "POST", headers: { ...form, authorization: "Bearer e2e-admin-token-foundation-0123456789" }, body: "token=x" }],
      ];
      for (const [path, init] of calls) {
        const { status, body, headers } = await worker.json(path, init);
        assert.equal(status, 500, path);
        assert.equal(body.error, "server_error", path);
        assert.match(body.error_description, /ISSUER is not set/, path);
        assert.equal(headers.get("cache-control"), null, `${path}: an error is never cached publicly`);
      }
      // What does not mint still works: the published keys and the admin API.
      assert.equal((await worker.json("/.well-known/jwks.json")).status, 200);
      const list = await worker.json("/v1/serviceaccounts", {
        headers: { authorization: "Bearer e2e-admin-token-foundation-0123456789" },
      });
      assert.equal(list.status, 200);
    } finally {
      await worker.dispose();
    }
  });

  test("with ALLOW_HTTP_LOOPBACK=true (local development) an unset ISSUER is the request's origin", async () => {
    const worker = await startWorker({
      ...DEFAULT_VARS,
      ALLOW_HTTP_LOOPBACK: "true",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
    });
    try {
      assert.equal((await worker.json("/healthz")).status, 200);
      const { body } = await worker.json("/.well-known/openid-configuration");
      assert.equal(body.issuer, worker.url);
    } finally {
      await worker.dispose();
    }
  });
});

describe("a misconfigured worker answers a JSON 500 that names the problem", () => {
  // Each case: its name, and a function from two fresh keys to the bindings that break it.
  const keySet = (...keys) => JSON.stringify({ keys });
  const cases = [
    ["SIGNING_KEYS unset", () => ({}), /SIGNING_KEYS is not set/],
    ["SIGNING_KEYS not JSON", () => ({ SIGNING_KEYS: "{not json" }), /SIGNING_KEYS is not valid JSON/],
    ["a public key in SIGNING_KEYS", ({ d, ...pub }) => ({ SIGNING_KEYS: keySet(pub) }), /key 0: has no 'd'/],
    ["a point off the curve", (a) => ({ SIGNING_KEYS: keySet({ ...a, y: a.x }) }), /key 0: Web Crypto refused it: .*not on curve/],
    ["a d of another key", (a, b) => ({ SIGNING_KEYS: keySet({ ...a, d: b.d }) }), /key 0: Web Crypto refused it: Invalid EC key/],
    ["a bad second key", (a, b) => ({ SIGNING_KEYS: keySet(a, { ...b, crv: "P-384" }) }), /key 1: is kty 'EC' crv 'P-384'/],
    ["a bad CLOCK_SKEW_SECONDS", (a) => ({ SIGNING_KEYS: keySet(a), CLOCK_SKEW_SECONDS: "soon" }), /CLOCK_SKEW_SECONDS must be a whole number/],
  ];
  for (const [name, breaking, message] of cases) {
    test(name, async () => {
      const [a, b] = [await newSigningKey(), await newSigningKey()];
      const worker = await startWorker({ ...DEFAULT_VARS, ISSUER, ...breaking(a, b) });
      try {
        for (const path of ["/healthz", "/.well-known/jwks.json"]) {
          const { status, body } = await worker.json(path);
          assert.equal(status, 500, path);
          assert.equal(body.error, "server_error");
          assert.match(body.error_description, message);
          for (const secret of [a.d, b.d]) {
            assert.ok(!body.error_description.includes(secret), "a private key must not be echoed");
          }
        }
      } finally {
        await worker.dispose();
      }
    });
  }
});
