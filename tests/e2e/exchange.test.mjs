// The token exchange against the built wasm in workerd, with a local identity provider:
// every algorithm, the three request forms and the Venafi path, the 2-hour rule, leeway,
// key rotation, an issuer outage with and without a cached key set, the minted token checked
// with an independent library (jose), introspection and the admin dry run.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createLocalJWKSet, jwtVerify, decodeJwt } from "jose";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";
import { ALGS, newKey, now, sign, startIdp } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-admin-token-exchange-0123456789";
const AUDIENCE = "https://sts.example.com";
const SUBJECT = "repo:acme/app:ref:refs/heads/main";
const ISSUER = "https://sts.example.com";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

describe("token exchange", () => {
  let worker;
  let idp;
  let account;
  const keys = {};

  const admin = (path, method = "GET", body) =>
    worker.json(path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const token = (fields, path = "/oauth2/token") =>
    worker.json(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  const exchange = (assertion, extra = {}) => token({ grant_type: JWT_BEARER, assertion, ...extra });

  before(async () => {
    idp = await startIdp();
    for (const alg of ALGS) keys[alg] = await newKey(alg);
    idp.keys = Object.values(keys);
    worker = await startWorker({
      ...DEFAULT_VARS,
      ISSUER,
      TENANT_ID: "acme-tenant",
      ALLOW_HTTP_LOOPBACK: "true",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN,
    });
    const created = await admin("/v1/serviceaccounts", "POST", {
      name: "deploy",
      scopes: ["certificate-issuance", "api-integration"],
      issuerURL: idp.url,
      subject: SUBJECT,
      audience: AUDIENCE,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    account = created.body;
  });
  after(async () => {
    await worker?.dispose();
    await idp?.close();
  });

  test("every accepted algorithm is exchanged (OIDC discovery finds the JWKS)", async () => {
    for (const alg of ALGS) {
      const { status, body, headers } = await exchange(await sign(keys[alg], idp.claims()));
      assert.equal(status, 200, `${alg}: ${JSON.stringify(body)}`);
      assert.equal(body.token_type, "Bearer");
      assert.equal(body.expires_in, 900);
      assert.equal(body.issued_token_type, "urn:ietf:params:oauth:token-type:access_token");
      assert.equal(body.scope, "certificate-issuance api-integration");
      assert.equal(headers.get("cache-control"), "no-store");
      assert.equal(headers.get("pragma"), "no-cache");
    }
    assert.equal(idp.requests["/.well-known/openid-configuration"], 1, "discovery fetched once");
  });

  test("the issuer's discovery document, key set and discovered key set land in the shared JWKS_CACHE, for other isolates", async () => {
    const { status } = await exchange(await sign(keys.ES256, idp.claims()));
    assert.equal(status, 200);
    // The answer does not wait for these writes (the request's waitUntil does), so look until
    // they are there.
    const kv = await worker.kv("JWKS_CACHE");
    const prefixes = ["jwks:", "oidc:", "oidc-jwks:"];
    let names = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      names = (await kv.list()).keys.map((key) => key.name);
      if (prefixes.every((prefix) => names.some((name) => name.startsWith(prefix)))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [jwksName, oidcName, discoveredName] = prefixes.map((prefix) => names.find((name) => name.startsWith(prefix)));
    assert.ok(jwksName && oidcName && discoveredName, `JWKS_CACHE holds ${JSON.stringify(names)}`);
    const kids = Object.values(keys).map((key) => key.kid).sort();
    const stored = JSON.parse(await kv.get(jwksName));
    assert.equal(stored.url, `${idp.url}/jwks`);
    assert.ok(stored.freshUntil > stored.fetchedAt);
    assert.deepEqual(stored.value.keys.map((key) => key.kid).sort(), kids);
    // The issuer's discovered key set: where its discovery document points, and the keys there.
    const discovered = JSON.parse(await kv.get(discoveredName));
    assert.equal(discovered.url, `${idp.url}/.well-known/openid-configuration`);
    assert.equal(discovered.value.jwks_uri, `${idp.url}/jwks`);
    assert.deepEqual(discovered.value.keys.map((key) => key.kid).sort(), kids);
    assert.ok(discovered.freshUntil > now());
  });

  test("the access token verifies with jose against /.well-known/jwks.json, typ at+jwt, 900 s", async () => {
    const claims = idp.claims({ iat: now() - 30, exp: now() + 7000 });
    const { body } = await exchange(await sign(keys.ES256, claims));
    const jwks = (await worker.json("/.well-known/jwks.json")).body;
    const { payload, protectedHeader } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), {
      issuer: ISSUER,
      audience: ISSUER,
      typ: "at+jwt",
      algorithms: ["ES256"],
    });
    assert.equal(protectedHeader.kid, jwks.keys[0].kid);
    assert.equal(payload.exp - payload.iat, 900, "15 minutes, whatever the incoming lifetime");
    assert.equal(payload.sub, account.id);
    assert.equal(payload.client_id, account.id);
    assert.equal(payload.scope, "certificate-issuance api-integration");
    assert.deepEqual(payload.federated, { iss: idp.url, sub: SUBJECT, jti: claims.jti });
    assert.ok(Buffer.from(payload.jti, "base64url").length >= 16, "jti has at least 128 random bits");
  });

  test("the three request forms and the Venafi path", async () => {
    const assertion = async () => sign(keys.ES256, idp.claims());
    const forms = [
      ["/oauth2/token", { grant_type: "client_credentials", client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion() }],
      ["/oauth2/token", { grant_type: TOKEN_EXCHANGE, subject_token: await assertion(), subject_token_type: "urn:ietf:params:oauth:token-type:jwt" }],
      ["/oauth2/token", { grant_type: TOKEN_EXCHANGE, subject_token: await assertion(), subject_token_type: "urn:ietf:params:oauth:token-type:id_token", requested_token_type: "urn:ietf:params:oauth:token-type:access_token" }],
      ["/oauth2/token", { grant_type: JWT_BEARER, assertion: await assertion() }],
      ["/v1/oauth2/v2.0/acme-tenant/token", { grant_type: "client_credentials", client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion() }],
    ];
    for (const [path, fields] of forms) {
      const { status, body } = await token(fields, path);
      assert.equal(status, 200, `${path} ${fields.grant_type}: ${JSON.stringify(body)}`);
      assert.equal(decodeJwt(body.access_token).client_id, account.id);
    }
    const wrongTenant = await token(forms[4][1], "/v1/oauth2/v2.0/other-tenant/token");
    assert.equal(wrongTenant.status, 404);
  });

  test("refusals: form 1 is invalid_client 401, forms 2 and 3 invalid_grant 400, each with its reason", async () => {
    const expired = await sign(keys.ES256, idp.claims({ iat: now() - 1000, exp: now() - 500 }));
    const cases = [
      [{ grant_type: "client_credentials", client_assertion_type: ASSERTION_TYPE, client_assertion: expired }, 401, "invalid_client"],
      [{ grant_type: TOKEN_EXCHANGE, subject_token: expired, subject_token_type: "urn:ietf:params:oauth:token-type:jwt" }, 400, "invalid_grant"],
      [{ grant_type: JWT_BEARER, assertion: expired }, 400, "invalid_grant"],
    ];
    for (const [fields, status, error] of cases) {
      const response = await token(fields);
      assert.equal(response.status, status, fields.grant_type);
      assert.equal(response.body.error, error);
      assert.equal(response.body.reason, "token_expired");
      assert.match(response.body.error_description, /expired/);
    }
  });

  test("request-shape errors are invalid_request without a reason; unknown grants unsupported_grant_type", async () => {
    const cases = [
      [{ grant_type: JWT_BEARER }, "invalid_request"],
      [{ grant_type: "password", username: "u" }, "unsupported_grant_type"],
      [{ grant_type: TOKEN_EXCHANGE, subject_token: "x", subject_token_type: "urn:ietf:params:oauth:token-type:saml2" }, "invalid_request"],
    ];
    for (const [fields, error] of cases) {
      const { status, body } = await token(fields);
      assert.equal(status, 400);
      assert.equal(body.error, error);
      assert.equal(body.reason, undefined);
    }
    const repeated = await worker.json("/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=a&assertion=b`,
    });
    assert.equal(repeated.body.error, "invalid_request");
    const json = await worker.json("/oauth2/token", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(json.status, 400);
    assert.equal(json.body.error, "invalid_request");
    const huge = await exchange("a".repeat(70 * 1024));
    assert.equal(huge.status, 413);
  });

  test("a chunked upload (no Content-Length) is read when it fits, and is 413 when it does not, however large", async () => {
    // Writes `body` in 16 KiB chunks with Transfer-Encoding: chunked; resolves with the answer's
    // status and JSON (the worker may answer, and stop reading, before the upload ends).
    const chunked = (body) =>
      new Promise((resolve, reject) => {
        const request = http.request(`${worker.url}/oauth2/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", "transfer-encoding": "chunked" },
        });
        request.on("response", (response) => {
          let text = "";
          response.on("data", (chunk) => (text += chunk));
          response.on("end", () => resolve({ status: response.statusCode, body: JSON.parse(text) }));
        });
        request.on("error", (error) => (request.res ? undefined : reject(error)));
        for (let at = 0; at < body.length; at += 16 * 1024) request.write(body.slice(at, at + 16 * 1024));
        request.end();
      });
    const form = (assertion) => new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString();
    const fits = await chunked(form(await sign(keys.ES256, idp.claims())));
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    for (const size of [70 * 1024, 3 * 1024 * 1024]) {
      const big = await chunked(`grant_type=x&assertion=${"a".repeat(size)}`);
      assert.equal(big.status, 413, `${size} bytes: ${JSON.stringify(big.body)}`);
      assert.equal(big.body.error, "invalid_request");
    }
    const after = await exchange(await sign(keys.ES256, idp.claims()));
    assert.equal(after.status, 200, "the worker still answers");
  });

  test("the 2-hour rule: exp − iat of 7200 s is accepted, 7201 s is lifetime_too_long", async () => {
    const iat = now() - 10;
    const ok = await exchange(await sign(keys.RS256, idp.claims({ iat, exp: iat + 7200 })));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const long = await exchange(await sign(keys.RS256, idp.claims({ iat, exp: iat + 7201 })));
    assert.equal(long.status, 400);
    assert.equal(long.body.reason, "lifetime_too_long");
  });

  test("leeway: 60 s either side (checked with a 15 s margin against the real clock)", async () => {
    const t = now();
    const cases = [
      [{ iat: t - 600, exp: t - 45 }, 200],
      [{ iat: t - 600, exp: t - 75 }, "token_expired"],
      [{ nbf: t + 45 }, 200],
      [{ nbf: t + 75 }, "token_not_yet_valid"],
      [{ iat: t + 45, exp: t + 600 }, 200],
      [{ iat: t + 75, exp: t + 600 }, "issued_in_future"],
    ];
    for (const [overrides, expected] of cases) {
      const { status, body } = await exchange(await sign(keys.ES384, idp.claims(overrides)));
      if (expected === 200) assert.equal(status, 200, `${JSON.stringify(overrides)}: ${JSON.stringify(body)}`);
      else assert.equal(body.reason, expected, JSON.stringify(overrides));
    }
  });

  test("scope: a subset is granted; one the account lacks is invalid_scope", async () => {
    const subset = await exchange(await sign(keys.EdDSA, idp.claims()), { scope: "api-integration" });
    assert.equal(subset.body.scope, "api-integration");
    const other = await exchange(await sign(keys.EdDSA, idp.claims()), { scope: "admin" });
    assert.equal(other.status, 400);
    assert.equal(other.body.error, "invalid_scope");
    assert.equal(other.body.reason, "scope_not_allowed");
  });

  test("a tampered signature is bad_signature for every algorithm", async () => {
    for (const alg of ALGS) {
      const good = await sign(keys[alg], idp.claims());
      const [input, signature] = [good.slice(0, good.lastIndexOf(".")), good.slice(good.lastIndexOf(".") + 1)];
      const bytes = Buffer.from(signature, "base64url");
      bytes[5] ^= 0x01;
      const { status, body } = await exchange(`${input}.${bytes.toString("base64url")}`);
      assert.equal(status, 400, alg);
      assert.equal(body.reason, "bad_signature", `${alg}: ${JSON.stringify(body)}`);
    }
  });

  test("key rotation at the issuer: a new kid is picked up, and the old one refused once it left", async () => {
    const old = keys.ES256;
    assert.equal((await exchange(await sign(old, idp.claims()))).status, 200);
    // The issuer replaces its ES256 key in one step.
    const next = await newKey("ES256", "rotated-in");
    idp.keys = [...Object.values(keys).filter((key) => key !== old), next];
    const fetchesBefore = idp.requests["/jwks"];
    const fresh = await exchange(await sign(next, idp.claims()));
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.equal(idp.requests["/jwks"], fetchesBefore + 1, "the unknown kid refetched the set once");
    // The refetched set no longer has the old key.
    const retired = await exchange(await sign(old, idp.claims()));
    assert.equal(retired.status, 400);
    assert.equal(retired.body.reason, "unknown_key", JSON.stringify(retired.body));
    // Within 30 s of that refetch, another unknown kid does not fetch again.
    assert.equal(idp.requests["/jwks"], fetchesBefore + 1);
    keys.ES256 = next;
    idp.keys = Object.values(keys);
  });

  test("introspection: active for a fresh token, inactive for a forged one and after the account is disabled", async () => {
    const introspect = (value, authorization = `Bearer ${ADMIN_TOKEN}`) =>
      worker.json("/oauth2/introspect", {
        method: "POST",
        headers: { authorization, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: value }).toString(),
      });
    const { body } = await exchange(await sign(keys.ES256, idp.claims()));
    const active = await introspect(body.access_token);
    assert.equal(active.status, 200);
    assert.equal(active.body.active, true);
    assert.equal(active.body.client_id, account.id);
    assert.equal(active.body.scope, "certificate-issuance api-integration");
    const forged = body.access_token.slice(0, -4) + (body.access_token.endsWith("AAAA") ? "BBBB" : "AAAA");
    assert.deepEqual((await introspect(forged)).body, { active: false });
    assert.deepEqual((await introspect("not-a-token")).body, { active: false });
    assert.equal((await introspect(body.access_token, "Bearer wrong")).status, 401);

    await admin(`/v1/serviceaccounts/${account.id}`, "PATCH", { enabled: false });
    assert.deepEqual((await introspect(body.access_token)).body, { active: false });
    const disabled = await exchange(await sign(keys.ES256, idp.claims()));
    assert.equal(disabled.body.reason, "account_disabled");
    await admin(`/v1/serviceaccounts/${account.id}`, "PATCH", { enabled: true });
    assert.equal((await introspect(body.access_token)).body.active, true);
  });

  test("the admin dry run reports every check and mints nothing", async () => {
    const good = await admin(`/v1/serviceaccounts/${account.id}/verify`, "POST", { token: await sign(keys.PS256, idp.claims()) });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.equal(good.body.ok, true);
    const names = good.body.checks.map((check) => check.check);
    assert.deepEqual(names, ["format", "identity", "issuer", "signature", "time", "audience", "subject", "claims", "enabled"]);
    assert.ok(good.body.checks.every((check) => check.ok && check.detail));
    assert.ok(!JSON.stringify(good.body).includes("access_token"));

    const bad = await admin(`/v1/serviceaccounts/${account.id}/verify`, "POST", {
      token: await sign(keys.PS256, idp.claims({ aud: "someone-else", sub: "repo:other/app" })),
    });
    assert.equal(bad.body.ok, false);
    const failed = Object.fromEntries(bad.body.checks.filter((c) => !c.ok).map((c) => [c.check, c.reason]));
    assert.deepEqual(failed, { audience: "audience_mismatch", subject: "subject_mismatch" });
    const missing = await admin(`/v1/serviceaccounts/00000000-0000-4000-8000-000000000000/verify`, "POST", { token: "x" });
    assert.equal(missing.status, 404);
  });

  test("an issuer outage: with the key set cached, exchanges go on; a new issuer with none is 503 jwks_unavailable", async () => {
    idp.down = true;
    try {
      const cached = await exchange(await sign(keys.ES512, idp.claims()));
      assert.equal(cached.status, 200, JSON.stringify(cached.body));

      const cold = await startIdp();
      cold.keys = [await newKey("ES256", "cold")];
      const created = await admin("/v1/serviceaccounts", "POST", {
        name: "cold", scopes: ["certificate-issuance"], issuerURL: cold.url, jwksURI: `${cold.url}/jwks`, subject: "s", audience: AUDIENCE,
      });
      assert.equal(created.status, 201);
      cold.down = true;
      const { status, body, headers } = await exchange(await sign(cold.keys[0], cold.claims({ sub: "s" })));
      assert.equal(status, 503);
      assert.equal(body.error, "temporarily_unavailable");
      assert.equal(body.reason, "jwks_unavailable");
      assert.ok(Number(headers.get("retry-after")) > 0);
      await cold.close();
    } finally {
      idp.down = false;
    }
  });
});
