// A cold location (issue 17): a new isolate with nothing in memory, the account and its key set
// already in KV. Before the signature it waits on KV twice — the issuer's index, then every
// candidate record in one read together with the key set's cache entry (for an account found
// by discovery, the issuer's discovered key set: the URL and the keys in one entry) — however
// many candidates there are, with or without client_id, with a jwksURI or by discovery. Counted by the worker itself in its
// Server-Timing header (SERVER_TIMING=true): `kv-waits` is the number of times the request
// waited on KV with nothing else under way.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_VARS, createAccount, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, now, sign, startIdp } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-admin-token-cold-0123456789abcdef";
const AUDIENCE = "https://sts.example.com";
const SUBJECT = "repo:acme/app:ref:refs/heads/main";
const DISCOVERED = "repo:acme/site:ref:refs/heads/main";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** Server-Timing's counters as numbers: { "kv-read": 3, "kv-waits": 2, … }. */
const counters = (response) =>
  Object.fromEntries(
    (response.headers.get("server-timing") ?? "").split(",").filter(Boolean).map((metric) => {
      const [name, desc] = metric.trim().split(";desc=");
      return [name, Number(desc)];
    }),
  );

/** The account a minted access token was issued for (its payload's `client_id`). */
const clientIdOf = (accessToken) => JSON.parse(Buffer.from(accessToken.split(".")[1], "base64url")).client_id;

describe("a cold location", () => {
  let idp;
  let key;
  let bindings;
  const state = {};
  const ids = {};

  before(async () => {
    idp = await startIdp();
    key = await newKey("ES256", "cold-es256");
    idp.keys = [key];
    bindings = { ...DEFAULT_VARS, ALLOW_HTTP_LOOPBACK: "true", SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }), ADMIN_TOKEN, SERVER_TIMING: "true" };
    const seed = await startWorker(bindings, { logs: [] });
    const create = async (name, rule) =>
      (await createAccount(seed, ADMIN_TOKEN, { name, scopes: ["certificate-issuance"], issuerURL: idp.url, jwksURI: `${idp.url}/jwks`, audience: AUDIENCE, ...rule })).id;
    // Three candidates for SUBJECT: the exact account wins, the two patterns are read too.
    ids.exact = await create("exact", { subject: SUBJECT });
    ids.repo = await create("repo", { subjectPattern: "repo:acme/app:*" });
    ids.owner = await create("owner", { subjectPattern: "repo:acme/*" });
    // And one whose key set is found by OIDC discovery (no jwksURI).
    ids.discovered = await create("discovered", { subject: DISCOVERED, jwksURI: undefined });
    for (const sub of [SUBJECT, DISCOVERED]) {
      const first = await seed.fetch("/oauth2/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: await form({}, sub) });
      assert.equal(first.status, 200);
    }
    for (const name of ["ACCOUNTS", "JWKS_CACHE"]) {
      const kv = await seed.kv(name);
      // The key-set cache (the key set, the discovery document, the issuer's discovered key
      // set) is written after the answer.
      for (let tries = 0; name === "JWKS_CACHE" && (await kv.list()).keys.length < 3 && tries < 50; tries++) await new Promise((resolve) => setTimeout(resolve, 100));
      state[name] = [];
      for (const { name: stored } of (await kv.list()).keys) state[name].push([stored, await kv.get(stored)]);
    }
    assert.deepEqual(
      state.JWKS_CACHE.map(([stored]) => stored.split(":")[0]).sort(),
      ["jwks", "oidc", "oidc-jwks"],
      "the seed exchanges cached the key set, the discovery document and the issuer's discovered key set",
    );
    await seed.dispose();
  });
  after(() => idp.close());

  async function form(extra = {}, sub = SUBJECT) {
    const assertion = await sign(key, { iss: idp.url, sub, aud: AUDIENCE, iat: now() - 5, exp: now() + 600, jti: crypto.randomUUID() });
    return new URLSearchParams({ grant_type: JWT_BEARER, assertion, ...extra }).toString();
  }

  /**
   * A new workerd holding the KV state of a location that has served the account before;
   * `edit(key, value)` may change a stored value on the way.
   */
  async function location({ keySetCached = true, edit = (key, value) => value } = {}) {
    const worker = await startWorker(bindings, { logs: [] });
    for (const name of keySetCached ? ["ACCOUNTS", "JWKS_CACHE"] : ["ACCOUNTS"]) {
      const kv = await worker.kv(name);
      for (const [stored, value] of state[name]) await kv.put(stored, edit(stored, value));
    }
    return worker;
  }
  const exchange = async (worker, extra, sub) => {
    const response = await worker.fetch("/oauth2/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: await form(extra, sub) });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    return { body, io: counters(response) };
  };

  /** Runs `check` on a new location's worker (options as for `location`), then disposes of it. */
  async function atLocation(options, check) {
    const worker = await location(options);
    try {
      await check(worker);
    } finally {
      await worker.dispose();
    }
  }

  test("the first exchange waits on KV twice: the index, then the records and the key set together", () =>
    atLocation({}, async (worker) => {
      const { body, io } = await exchange(worker);
      assert.equal(clientIdOf(body.access_token), ids.exact);
      // Reads: the index, then the three records (one bulk read) and the key set.
      assert.deepEqual(io, { "kv-read": 3, "kv-write": 0, "kv-waits": 2, subrequest: 0 });
    }));

  test("the exchanges after the first touch neither KV nor the network, with a jwksURI or by discovery", () =>
    atLocation({}, async (worker) => {
      for (const sub of [SUBJECT, DISCOVERED]) {
        await exchange(worker, {}, sub);
        const warm = await exchange(worker, {}, sub);
        assert.deepEqual(warm.io, { "kv-read": 0, "kv-write": 0, "kv-waits": 0, subrequest: 0 }, sub);
      }
    }));

  test("an account without jwksURI: the index, then the record with the issuer's discovered key set", () =>
    atLocation({}, async (worker) => {
      const { body, io } = await exchange(worker, {}, DISCOVERED);
      assert.equal(clientIdOf(body.access_token), ids.discovered);
      assert.deepEqual(io, { "kv-read": 3, "kv-write": 0, "kv-waits": 2, subrequest: 0 });
    }));

  test("an account without jwksURI, with client_id: the record with the index, then the issuer's discovered key set", () =>
    atLocation({}, async (worker) => {
      const { body, io } = await exchange(worker, { client_id: ids.discovered }, DISCOVERED);
      assert.equal(clientIdOf(body.access_token), ids.discovered);
      assert.deepEqual(io, { "kv-read": 3, "kv-write": 0, "kv-waits": 2, subrequest: 0 });
    }));

  test("a stale discovered key set names the key set, read together with the discovery document: three waits, then written anew", () => {
    const stale = (key, value) => {
      if (!key.startsWith("oidc-jwks:")) return value;
      return JSON.stringify({ ...JSON.parse(value), freshUntil: now() - 1 });
    };
    return atLocation({ edit: stale }, async (worker) => {
      const { body, io } = await exchange(worker, {}, DISCOVERED);
      assert.equal(clientIdOf(body.access_token), ids.discovered);
      // The index; the record with the stale entry; the discovery document with the key set.
      assert.deepEqual(io, { "kv-read": 5, "kv-write": 1, "kv-waits": 3, subrequest: 0 });
    });
  });

  test("with client_id: the record, then the key set", () =>
    atLocation({}, async (worker) => {
      const { body, io } = await exchange(worker, { client_id: ids.owner });
      assert.equal(clientIdOf(body.access_token), ids.owner);
      assert.equal(io["kv-waits"], 2);
      assert.equal(io.subrequest, 0);
    }));

  test("a location that never cached the key set: the same two waits, then the issuer, and the cache written without waiting", () =>
    atLocation({ keySetCached: false }, async (worker) => {
      const { io } = await exchange(worker);
      assert.deepEqual(io, { "kv-read": 3, "kv-write": 1, "kv-waits": 2, subrequest: 1 });
    }));
});
