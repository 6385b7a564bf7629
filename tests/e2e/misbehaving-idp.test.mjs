// A misbehaving identity provider, against the built worker in workerd. One local server plays
// many issuers, one per path (`/case-name`), each with its own bad behaviour; each case states
// the SPEC's outcome. The worker must never answer 5xx other than 503 `temporarily_unavailable`
// for an issuer's fault, and with a warm cache it must keep working.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { DEFAULT_VARS, createAccount, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, now, sign } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-admin-token-misbehaving-0123456789";
const AUDIENCE = "https://sts.example.com";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

describe("a misbehaving identity provider", () => {
  let worker;
  let server;
  let base;
  let key;
  const behaviours = {}; // case name → (request, response, path) => void
  const accountIds = {}; // issuer URL → account id
  const hits = {};

  const json = (response, body, status = 200, headers = {}) => {
    response.writeHead(status, { "content-type": "application/json", ...headers });
    response.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  const goodJwks = () => ({ keys: [key.publicJwk] });

  before(async () => {
    key = await newKey("ES256", "good");
    server = http.createServer((request, response) => {
      const [, name, ...rest] = request.url.split("/");
      hits[name] = (hits[name] ?? 0) + 1;
      const behaviour = behaviours[name];
      if (!behaviour) return json(response, {}, 404);
      behaviour(request, response, `/${rest.join("/")}`);
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${server.address().port}`;
    worker = await startWorker({
      ...DEFAULT_VARS,
      ALLOW_HTTP_LOOPBACK: "true",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN,
    });
  });
  after(async () => {
    await worker?.dispose();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  /** Registers an account for issuer `${base}/${name}`, with or without a jwksURI. */
  async function account(name, { discovery = false } = {}) {
    const issuerURL = `${base}/${name}`;
    const body = {
      name,
      scopes: ["certificate-issuance"],
      issuerURL,
      subject: "workload",
      audience: AUDIENCE,
      ...(discovery ? {} : { jwksURI: `${issuerURL}/jwks` }),
    };
    accountIds[issuerURL] = (await createAccount(worker, ADMIN_TOKEN, body)).id;
    return issuerURL;
  }

  /** The admin's dry run of a token of `issuer`: the detail of its signature check. */
  async function signatureDetail(issuer) {
    const token = await sign(key, { iss: issuer, sub: "workload", aud: AUDIENCE, iat: now(), exp: now() + 600 });
    const { body } = await worker.json(`/v1/serviceaccounts/${accountIds[issuer]}/verify`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });
    return body.checks.find((check) => check.check === "signature").detail;
  }

  async function exchange(issuer, signingKey = key) {
    const token = await sign(signingKey, { iss: issuer, sub: "workload", aud: AUDIENCE, iat: now(), exp: now() + 600 });
    return worker.json("/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: token }).toString(),
    });
  }

  function assertUnavailable({ status, body, headers }, reason) {
    assert.equal(status, 503, JSON.stringify(body));
    assert.equal(body.error, "temporarily_unavailable");
    assert.equal(body.reason, reason, JSON.stringify(body));
    assert.ok(Number(headers.get("retry-after")) > 0);
    // Nothing of the account or of the issuer's answer reaches an anonymous caller: no URL,
    // no status, no redirect target, no runtime error text (the contract; the dry run has them).
    assert.doesNotMatch(body.error_description, /127\.0\.0\.1|http|HTTP|\d{3}|internal error|redirect/, JSON.stringify(body));
  }

  test("JWKS endpoint down (connection dropped) → 503 jwks_unavailable", async () => {
    behaviours.down = (request) => request.socket.destroy();
    assertUnavailable(await exchange(await account("down")), "jwks_unavailable");
  });

  test("JWKS slower than the 5 s timeout → 503 jwks_unavailable", { timeout: 20_000 }, async () => {
    behaviours.slow = (request, response) => setTimeout(() => json(response, goodJwks()), 8_000);
    const started = Date.now();
    const result = await exchange(await account("slow"));
    assertUnavailable(result, "jwks_unavailable");
    assert.match(await signatureDetail(`${base}/slow`), /no answer within 5 s/);
    assert.ok(Date.now() - started < 7_500, "the worker gave up at its own timeout");
  });

  test("JWKS answering 500 → 503 jwks_unavailable", async () => {
    behaviours.error500 = (request, response) => json(response, { error: "oops" }, 500);
    assertUnavailable(await exchange(await account("error500")), "jwks_unavailable");
    assert.match(await signatureDetail(`${base}/error500`), /answered HTTP 500/);
  });

  test("an issuer that is down is asked once per 30 s, not once per request", async () => {
    // (A 503, not a dropped connection: the runtime itself retries a dropped one once.)
    behaviours.downonce = (request, response) => json(response, { error: "maintenance" }, 503);
    const issuer = await account("downonce");
    for (let i = 0; i < 5; i++) assertUnavailable(await exchange(issuer), "jwks_unavailable");
    assert.equal(hits.downonce, 1, "five anonymous requests, one fetch");
  });

  test("a relative Location with :// in its query is followed as a relative path", async () => {
    behaviours.relative = (request, response, path) => {
      if (path === "/jwks") {
        response.writeHead(302, { location: "jwks2?next=https://example.com/elsewhere" });
        return response.end();
      }
      if (path.startsWith("/jwks2?next=")) return json(response, goodJwks());
      json(response, {}, 404);
    };
    assert.equal((await exchange(await account("relative"))).status, 200);
  });

  test("JWKS that is not JSON → 503 jwks_invalid", async () => {
    behaviours.notjson = (request, response) => json(response, "<html>maintenance</html>");
    assertUnavailable(await exchange(await account("notjson")), "jwks_invalid");
  });

  test("a 5 MB JWKS → 503 jwks_unavailable (over 256 KiB), with and without Content-Length", async () => {
    const huge = JSON.stringify({ keys: [key.publicJwk], padding: "x".repeat(5 * 1024 * 1024) });
    behaviours.huge = (request, response) => json(response, huge);
    assertUnavailable(await exchange(await account("huge")), "jwks_unavailable");
    behaviours.hugechunked = (request, response) => {
      response.writeHead(200, { "content-type": "application/json" }); // chunked: no length
      for (let i = 0; i < 50; i++) response.write("x".repeat(100 * 1024));
      response.end();
    };
    assertUnavailable(await exchange(await account("hugechunked")), "jwks_unavailable");
  });

  test("150 keys: the first 100 are kept, a key at position 120 is unknown", async () => {
    const filler = await newKey("ES256", "filler");
    const many = (position) => {
      const keys = Array.from({ length: 150 }, (_, i) => ({ ...filler.publicJwk, kid: `filler-${i}` }));
      keys[position] = key.publicJwk;
      return { keys };
    };
    behaviours.keys150early = (request, response) => json(response, many(50));
    assert.equal((await exchange(await account("keys150early"))).status, 200);
    behaviours.keys150late = (request, response) => json(response, many(120));
    const late = await exchange(await account("keys150late"));
    assert.equal(late.status, 400);
    assert.equal(late.body.reason, "unknown_key");
  });

  test("broken keys mixed with a good one: the broken ones are skipped", async () => {
    behaviours.mixed = (request, response) =>
      json(response, {
        keys: [
          { kty: "EC", crv: "P-256", kid: "no-y", x: key.publicJwk.x },
          { kty: "EC", crv: "P-999", kid: "bad-curve", x: "AA", y: "AA" },
          { kty: "RSA", kid: "no-n", e: "AQAB" },
          { kty: "oct", kid: "symmetric", k: "c2VjcmV0" },
          "not an object",
          { kty: "EC", crv: "P-256", kid: "bad-b64", x: "!!!", y: "???" },
          key.publicJwk,
        ],
      });
    assert.equal((await exchange(await account("mixed"))).status, 200);
    behaviours.allbroken = (request, response) => json(response, { keys: [{ kty: "oct", k: "c2VjcmV0" }, { kty: "EC" }] });
    assertUnavailable(await exchange(await account("allbroken")), "jwks_invalid");
  });

  test("redirects: up to 3 followed; a loop, a 4th, or one to plain http elsewhere → jwks_unavailable", async () => {
    const redirect = (response, location) => {
      response.writeHead(302, { location });
      response.end();
    };
    behaviours.redirect3 = (request, response, path) => {
      const hop = Number(path.match(/\d+$/)?.[0] ?? 0);
      if (hop < 3) redirect(response, `${base}/redirect3/jwks${hop + 1}`);
      else json(response, goodJwks());
    };
    assert.equal((await exchange(await account("redirect3"))).status, 200);
    behaviours.redirect4 = (request, response, path) => {
      const hop = Number(path.match(/\d+$/)?.[0] ?? 0);
      if (hop < 4) redirect(response, `${base}/redirect4/jwks${hop + 1}`);
      else json(response, goodJwks());
    };
    assertUnavailable(await exchange(await account("redirect4")), "jwks_unavailable");
    behaviours.loop = (request, response) => redirect(response, `${base}/loop/jwks`);
    assertUnavailable(await exchange(await account("loop")), "jwks_unavailable");
    behaviours.tohttp = (request, response) => redirect(response, "http://example.com/jwks");
    const tohttp = await exchange(await account("tohttp"));
    assertUnavailable(tohttp, "jwks_unavailable");
    assert.match(await signatureDetail(`${base}/tohttp`), /http:\/\/ is allowed only/);
  });

  test("a discovery document whose issuer differs → 503 jwks_invalid; a matching one works", async () => {
    behaviours.liar = (request, response, path) =>
      path === "/.well-known/openid-configuration"
        ? json(response, { issuer: "https://accounts.google.com", jwks_uri: `${base}/liar/jwks` })
        : json(response, goodJwks());
    assertUnavailable(await exchange(await account("liar", { discovery: true })), "jwks_invalid");
    behaviours.honest = (request, response, path) =>
      path === "/.well-known/openid-configuration"
        ? json(response, { issuer: `${base}/honest`, jwks_uri: `${base}/honest/jwks` })
        : json(response, goodJwks());
    assert.equal((await exchange(await account("honest", { discovery: true }))).status, 200);
  });

  test("with a warm cache, the exchange keeps working through every failure", async () => {
    let failure = null;
    behaviours.flaky = (request, response) => {
      if (failure === "down") return request.socket.destroy();
      if (failure === "500") return json(response, {}, 500);
      if (failure === "garbage") return json(response, "garbage");
      json(response, goodJwks(), 200, { "cache-control": "max-age=300" });
    };
    const issuer = await account("flaky");
    assert.equal((await exchange(issuer)).status, 200);
    const fetched = hits.flaky;
    for (failure of ["down", "500", "garbage"]) {
      const { status, body } = await exchange(issuer);
      assert.equal(status, 200, `${failure}: ${JSON.stringify(body)}`);
    }
    assert.equal(hits.flaky, fetched, "a fresh cached set needs no fetch at all");
  });
});

describe("an https issuer, with no loopback allowance (the worker's fetches answered by the test)", () => {
  let worker;
  let key;
  const asked = []; // every URL the worker fetched
  const routes = {}; // URL → (request) => Response

  before(async () => {
    key = await newKey("ES256", "https-good");
    worker = await startWorker(
      {
        ...DEFAULT_VARS,
        ISSUER: "https://sts.example.com",
        SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
        ADMIN_TOKEN,
      },
      {
        outbound: (request) => {
          asked.push(request.url);
          const route = routes[request.url];
          return route ? route(request) : new Response("{}", { status: 404 });
        },
      },
    );
  });
  after(() => worker?.dispose());

  const admin = (path, body) =>
    worker.json(path, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  test("a redirect to the cloud metadata address 169.254.169.254 is refused, never fetched", async () => {
    routes["https://idp.example.com/jwks"] = () =>
      new Response(null, { status: 302, headers: { location: "https://169.254.169.254/latest/meta-data/" } });
    routes["https://169.254.169.254/latest/meta-data/"] = () => Response.json({ keys: [key.publicJwk] });
    const created = await admin("/v1/serviceaccounts", {
      name: "metadata",
      scopes: ["certificate-issuance"],
      issuerURL: "https://idp.example.com",
      jwksURI: "https://idp.example.com/jwks",
      subject: "workload",
      audience: AUDIENCE,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const token = await sign(key, { iss: "https://idp.example.com", sub: "workload", aud: AUDIENCE, iat: now(), exp: now() + 600 });
    const { status, body } = await worker.json("/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: token }).toString(),
    });
    assert.equal(status, 503, JSON.stringify(body));
    assert.equal(body.reason, "jwks_unavailable");
    assert.doesNotMatch(body.error_description, /169\.254|meta-data/);
    assert.deepEqual(asked, ["https://idp.example.com/jwks"], "the redirect's target was never asked");
    const dryRun = await admin(`/v1/serviceaccounts/${created.body.id}/verify`, { token });
    const signature = dryRun.body.checks.find((check) => check.check === "signature");
    assert.match(signature.detail, /169\.254\.169\.254 .*loopback, private or link-local/);
  });

  test("private, loopback and link-local IP literals are refused as issuerURL and jwksURI", async () => {
    for (const url of ["https://10.1.2.3", "https://[::1]/jwks", "https://0x7f.1/", "https://169.254.169.254/"]) {
      for (const field of ["issuerURL", "jwksURI"]) {
        const { status, body } = await admin("/v1/serviceaccounts", {
          name: "internal",
          scopes: ["certificate-issuance"],
          issuerURL: "https://idp.example.com",
          subject: `workload-${field}-${url}`,
          audience: AUDIENCE,
          [field]: url,
        });
        assert.equal(status, 400, `${field} ${url}: ${JSON.stringify(body)}`);
        assert.equal(body.field, field);
        assert.match(body.error_description, /loopback, private or link-local/);
      }
    }
  });
});
