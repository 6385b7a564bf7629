// The admin API (/v1/serviceaccounts) against the built wasm in workerd with local KV:
// the whole lifecycle, pagination, every 4xx a client can cause, and authentication.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFileSync } from "node:fs";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";

const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";
const COLLECTION = "/v1/serviceaccounts";
const GITHUB = "https://token.actions.githubusercontent.com";
const TENANT_ID = "acme-tenant";

/** The cursor of an RFC 8288 `Link: <…?cursor=…>; rel="next"` header, or null. */
function nextCursor(headers) {
  const link = headers.get("link");
  if (!link) return null;
  const match = /<([^>]+)>;\s*rel="next"/.exec(link);
  return new URL(match[1], "http://x").searchParams.get("cursor");
}

function account(overrides = {}) {
  return {
    name: "deploy from main",
    scopes: ["certificate-issuance"],
    issuerURL: GITHUB,
    subject: "repo:acme/app:ref:refs/heads/main",
    audience: "https://sts.example.com",
    ...overrides,
  };
}

describe("admin API", () => {
  let worker;
  const admin = (path, { method = "GET", body, headers = {} } = {}) =>
    worker.json(path, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });

  before(async () => {
    worker = await startWorker({
      ...DEFAULT_VARS,
      TENANT_ID,
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN,
    });
  });
  after(() => worker?.dispose());

  test("create → read → list → patch → delete → 404", async () => {
    const created = await admin(COLLECTION, { method: "POST", body: account({ owner: "platform" }) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { id } = created.body;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(created.headers.get("location"), `${COLLECTION}/${id}`);
    assert.equal(created.body.authenticationType, "rsaKeyFederated");
    assert.equal(created.body.enabled, true);
    assert.ok(!Number.isNaN(Date.parse(created.body.createdAt)));
    assert.equal(created.body.createdAt, created.body.updatedAt);

    const read = await admin(`${COLLECTION}/${id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, created.body);

    assert.equal(read.body.companyId, TENANT_ID, "Venafi's read-only companyId is the tenant");
    assert.equal(read.headers.get("etag"), created.headers.get("etag"));

    const listed = await admin(COLLECTION);
    assert.equal(listed.status, 200);
    assert.ok(Array.isArray(listed.body), "a JSON array, as Venafi's list is");
    assert.ok(listed.body.some((a) => a.id === id && a.companyId === TENANT_ID));
    assert.equal(listed.headers.get("link"), null, "one page: no next link");

    // Venafi's shape: 204 with the new ETag, no body.
    const plain = await worker.fetch(`${COLLECTION}/${id}`, {
      method: "PATCH",
      headers: { "tppl-api-key": ADMIN_TOKEN, "content-type": "application/json" },
      body: JSON.stringify({ name: "renamed" }),
    });
    assert.equal(plain.status, 204);
    assert.equal(await plain.text(), "");
    assert.ok(plain.headers.get("etag") && plain.headers.get("etag") !== created.headers.get("etag"));
    const patched = await admin(`${COLLECTION}/${id}`, {
      method: "PATCH",
      headers: { prefer: "return=representation" },
      body: { subjectPattern: "repo:acme/app:*", enabled: false, owner: null },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.name, "renamed");
    assert.equal(patched.body.subjectPattern, "repo:acme/app:*");
    assert.equal(patched.body.subject, undefined);
    assert.equal(patched.body.enabled, false);
    assert.equal(patched.body.owner, undefined);
    assert.equal(patched.body.createdAt, created.body.createdAt);
    assert.deepEqual((await admin(`${COLLECTION}/${id}`)).body, patched.body);

    const deleted = await worker.fetch(`${COLLECTION}/${id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(deleted.status, 204);
    assert.equal(await deleted.text(), "");
    const gone = await admin(`${COLLECTION}/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error, "not_found");
    assert.equal((await admin(`${COLLECTION}/${id}`, { method: "DELETE" })).status, 404);
  });

  test("the list pages through every account exactly once", async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const { status, body } = await admin(COLLECTION, {
        method: "POST",
        body: account({ name: `page ${i}`, subject: `repo:acme/paging-${i}:ref:refs/heads/main` }),
      });
      assert.equal(status, 201);
      ids.push(body.id);
    }
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const query = `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const { status, body, headers } = await admin(COLLECTION + query);
      assert.equal(status, 200, JSON.stringify(body));
      assert.ok(body.length <= 2);
      seen.push(...body.map((a) => a.id));
      cursor = nextCursor(headers);
      pages++;
    } while (cursor);
    assert.ok(pages >= 3, `5+ accounts in pages of 2 take 3+ pages, took ${pages}`);
    assert.equal(new Set(seen).size, seen.length, "no account twice");
    for (const id of ids) assert.ok(seen.includes(id), `${id} listed`);
    for (const id of ids) await admin(`${COLLECTION}/${id}`, { method: "DELETE" });
  });

  test("a second account with the same issuerURL and subject is 409", async () => {
    const body = account({ subject: "repo:acme/unique:ref:refs/heads/main" });
    const first = await admin(COLLECTION, { method: "POST", body });
    assert.equal(first.status, 201);
    const second = await admin(COLLECTION, { method: "POST", body: { ...body, name: "copy" } });
    assert.equal(second.status, 409);
    assert.equal(second.body.error, "conflict");
    assert.match(second.body.error_description, new RegExp(first.body.id));
    // Issuer URLs are compared in normalised form: scheme and host case do not matter.
    const shouting = await admin(COLLECTION, {
      method: "POST",
      body: { ...body, issuerURL: "HTTPS://TOKEN.ACTIONS.GITHUBUSERCONTENT.COM" },
    });
    assert.equal(shouting.status, 409);
    // A PATCH onto another account's pair is a conflict too.
    const other = await admin(COLLECTION, { method: "POST", body: account({ subject: "repo:acme/other" }) });
    const moved = await admin(`${COLLECTION}/${other.body.id}`, { method: "PATCH", body: { subject: body.subject } });
    assert.equal(moved.status, 409);
    // Once the first is deleted, the pair is free again.
    await admin(`${COLLECTION}/${first.body.id}`, { method: "DELETE" });
    assert.equal((await admin(COLLECTION, { method: "POST", body })).status, 201);
  });

  test("every invalid field is a 400 that names it", async () => {
    const cases = [
      [{ ...account(), name: "" }, "name"],
      [{ ...account(), name: undefined }, "name"],
      [{ ...account(), scopes: [] }, "scopes"],
      [{ ...account(), scopes: ["root"] }, "scopes"],
      [{ ...account(), issuerURL: "http://issuer.example.com" }, "issuerURL"],
      [{ ...account(), issuerURL: " https://issuer.example.com" }, "issuerURL"],
      [{ ...account(), jwksURI: "https://issuer.example.com/keys?x=1" }, "jwksURI"],
      [{ ...account(), subjectPattern: "repo:*" }, "subjectPattern"],
      [{ ...account(), subject: undefined }, "subject"],
      [{ ...account(), audience: "" }, "audience"],
      [{ ...account(), claims: { ref: 1 } }, "claims"],
      [{ ...account(), enabled: "yes" }, "enabled"],
      [{ ...account(), authenticationType: "password" }, "authenticationType"],
      [{ ...account(), id: "mine" }, "id"],
      [{ ...account(), companyId: "other" }, "companyId"],
      [{ ...account(), createdAt: "2020-01-01T00:00:00Z" }, "createdAt"],
      [{ ...account(), color: "blue" }, "color"],
    ];
    for (const [body, field] of cases) {
      const { status, body: error } = await admin(COLLECTION, { method: "POST", body });
      assert.equal(status, 400, `${field}: ${JSON.stringify(error)}`);
      assert.equal(error.error, "invalid_request");
      assert.equal(error.field, field, JSON.stringify(error));
      assert.ok(error.error_description.length > 0);
    }
  });

  test("broad subject patterns are refused: a literal prefix of 8+ characters with ':' or '/' is needed", async () => {
    for (const pattern of ["*:*", "r*", "*/*", "*o*", "*", "repo:ab*", "repository*"]) {
      const { status, body } = await admin(COLLECTION, { method: "POST", body: account({ subject: undefined, subjectPattern: pattern }) });
      assert.equal(status, 400, `${pattern}: ${JSON.stringify(body)}`);
      assert.equal(body.field, "subjectPattern");
      assert.match(body.error_description, /too broad/);
    }
    const { status, body } = await admin(COLLECTION, { method: "POST", body: account({ subject: undefined, subjectPattern: "repo:acme/*" }) });
    assert.equal(status, 201, JSON.stringify(body));
    await admin(`${COLLECTION}/${body.id}`, { method: "DELETE" });
  });

  test("names with bidirectional overrides or zero-width characters are refused", async () => {
    for (const name of ["deploy\u202Eniam", "dep\u200Bloy", "\u2066prod\u2069", "x\uFEFF"]) {
      const { status, body } = await admin(COLLECTION, { method: "POST", body: account({ name: JSON.parse(`"${name}"`) }) });
      assert.equal(status, 400, name);
      assert.equal(body.field, "name");
      assert.match(body.error_description, /format characters/);
    }
  });

  test("URLs are stored as the runtime's URL parser (what fetch uses) serialises them: the table of tests/vectors/urls.json", async () => {
    const { normalize } = JSON.parse(readFileSync(new URL("../vectors/urls.json", import.meta.url), "utf8"));
    let n = 0;
    for (const { input, loopback, stored, error } of normalize) {
      if (loopback) continue; // this worker has ALLOW_HTTP_LOOPBACK=false; the loopback rows run below
      const { status, body } = await admin(COLLECTION, {
        method: "POST",
        body: account({ issuerURL: input, subject: `repo:acme/url-${n++}` }),
      });
      if (stored !== undefined) {
        assert.equal(status, 201, `${input}: ${JSON.stringify(body)}`);
        assert.equal(body.issuerURL, stored, input);
        await admin(`${COLLECTION}/${body.id}`, { method: "DELETE" });
      } else {
        assert.equal(status, 400, `${input} (${error}): ${JSON.stringify(body)}`);
        assert.equal(body.field, "issuerURL");
      }
    }
  });

  test("a list page holds at most 4 MiB of accounts, and paging still reaches every one", async () => {
    // Accounts of ~39 KiB each (the longest applications, owner and claims): 120 are ~4.6 MiB.
    const big = (i) =>
      account({
        name: `big ${i}`,
        subject: `repo:acme/big-${String(i).padStart(3, "0")}`,
        applications: Array.from({ length: 100 }, (_, j) => `app-${j}-${"x".repeat(590 - 10)}`.slice(0, 256)),
        owner: "o".repeat(1024),
        claims: Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`claim${j}`, "c".repeat(600)])),
      });
    const ids = [];
    for (let i = 0; i < 120; i++) {
      const { status, body } = await admin(COLLECTION, { method: "POST", body: big(i) });
      assert.equal(status, 201, JSON.stringify(body).slice(0, 300));
      ids.push(body.id);
    }
    const seen = new Set();
    let cursor = null;
    let pages = 0;
    do {
      const response = await worker.fetch(`${COLLECTION}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      const text = await response.text();
      assert.equal(response.status, 200);
      assert.ok(Buffer.byteLength(text) <= 4 * 1024 * 1024 + 1024, `page of ${Buffer.byteLength(text)} bytes`);
      const body = JSON.parse(text);
      for (const { id } of body) seen.add(id);
      cursor = nextCursor(response.headers);
      pages++;
    } while (cursor);
    assert.ok(pages >= 2, `120 accounts of ~39 KiB need 2+ pages, took ${pages}`);
    for (const id of ids) assert.ok(seen.has(id), `${id} listed`);
    for (const id of ids) await admin(`${COLLECTION}/${id}`, { method: "DELETE" });
  });

  test("malformed JSON is a 400 with field null", async () => {
    for (const raw of ["{", "", "[1]", '{"name":"a","name":"b"}', "null"]) {
      const { status, body } = await admin(COLLECTION, { method: "POST", body: raw });
      assert.equal(status, 400, raw);
      assert.ok("field" in body && body.field === null, `${raw}: ${JSON.stringify(body)}`);
    }
  });

  test("a body that is not JSON is 415; one over 64 KiB is 413", async () => {
    const form = await admin(COLLECTION, {
      method: "POST",
      body: JSON.stringify(account()),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(form.status, 415);
    const big = await admin(COLLECTION, { method: "POST", body: account({ owner: "x".repeat(70 * 1024) }) });
    assert.equal(big.status, 413);
    assert.equal(big.body.error, "invalid_request");
  });

  test("a 413 leaves the keep-alive connection usable for the next request", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method, path, body) =>
      new Promise((resolve, reject) => {
        const request = http.request(`${worker.url}${path}`, {
          method,
          agent,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        });
        request.on("response", (response) => {
          response.resume();
          response.on("end", () => resolve({ status: response.statusCode, socket: request.socket }));
        });
        request.on("error", reject);
        request.end(body);
      });
    try {
      const big = await send("POST", COLLECTION, JSON.stringify(account({ owner: "x".repeat(70 * 1024) })));
      assert.equal(big.status, 413);
      const next = await send("GET", COLLECTION);
      assert.equal(next.status, 200);
      assert.equal(next.socket, big.socket, "the same connection was reused");
    } finally {
      agent.destroy();
    }
  });

  test("bad list parameters are 400 naming the parameter", async () => {
    for (const [query, field] of [["limit=0", "limit"], ["limit=1001", "limit"], ["cursor=%%%", null], ["cursor=***", "cursor"], ["sort=name", "sort"]]) {
      const { status, body } = await admin(`${COLLECTION}?${query}`);
      assert.equal(status, 400, query);
      assert.equal(body.field, field, `${query}: ${JSON.stringify(body)}`);
    }
    assert.equal((await admin(`${COLLECTION}?limit=1000`)).status, 200);
  });

  test("unknown ids are 404; wrong methods are 405 with Allow", async () => {
    assert.equal((await admin(`${COLLECTION}/00000000-0000-4000-8000-000000000000`)).status, 404);
    assert.equal((await admin(`${COLLECTION}/nope`)).status, 404);
    const put = await admin(`${COLLECTION}/nope`, { method: "PUT", body: {} });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, PATCH, DELETE");
    const del = await admin(COLLECTION, { method: "DELETE" });
    assert.equal(del.status, 405);
    assert.equal(del.headers.get("allow"), "GET, POST");
  });

  test("a missing or wrong admin token is 401 with WWW-Authenticate, and changes nothing", async () => {
    const before = (await admin(`${COLLECTION}?limit=1000`)).body.length;
    for (const authorization of [undefined, "Bearer wrong", `Bearer ${ADMIN_TOKEN}x`, `Basic ${ADMIN_TOKEN}`]) {
      const headers = { "content-type": "application/json" };
      if (authorization) headers.authorization = authorization;
      const { status, headers: responseHeaders, body } = await worker.json(COLLECTION, {
        method: "POST",
        headers,
        body: JSON.stringify(account({ subject: "repo:acme/unauthorized" })),
      });
      assert.equal(status, 401, String(authorization));
      assert.match(responseHeaders.get("www-authenticate"), /^Bearer/);
      assert.ok(body.error_description);
    }
    assert.equal((await admin(`${COLLECTION}?limit=1000`)).body.length, before);
  });
});

describe("admin API without ADMIN_TOKEN", () => {
  let worker;
  before(async () => {
    worker = await startWorker({ ...DEFAULT_VARS, SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }) });
  });
  after(() => worker?.dispose());

  test("answers 401 admin API disabled, whatever token is sent", async () => {
    for (const authorization of [undefined, "Bearer anything", "Bearer "]) {
      const { status, headers, body } = await worker.json(COLLECTION, {
        headers: authorization ? { authorization } : {},
      });
      assert.equal(status, 401);
      assert.equal(body.error_description, "admin API disabled");
      assert.match(headers.get("www-authenticate"), /^Bearer/);
    }
  });
});
