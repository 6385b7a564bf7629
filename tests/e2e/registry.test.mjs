// The account registry (the AccountRegistry Durable Object, SQLite-backed, in workerd):
// concurrent admin writes, the audit trail, roles, Cloudflare Access, the projection into KV
// catching up after KV writes fail, and the one-time import of accounts written to KV before.
//
// The races are bounded, repeated trials: each fires its two writes at the same moment and then
// checks the outcome, 50 times each. Before the registry (writes straight to KV), these lost a
// disable in 2-4 of 12 trials and resurrected a deleted account in 1-3 of 12.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";

const ADMIN_TOKEN = "e2e-registry-admin-token-0123456789";
const COLLECTION = "/v1/serviceaccounts";
const TRIALS = 50;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const indexKey = (issuerURL) => `issuer:${createHash("sha256").update(issuerURL).digest("base64url")}`;

function account(overrides = {}) {
  return {
    name: "deploy",
    scopes: ["certificate-issuance"],
    issuerURL: "https://token.actions.githubusercontent.com",
    subject: "repo:acme/app:ref:refs/heads/main",
    audience: "https://sts.example.com",
    ...overrides,
  };
}

/** A client of one worker, as one credential. */
function client(worker, credential = { authorization: `Bearer ${ADMIN_TOKEN}` }) {
  return (p, { method = "GET", body, headers = {} } = {}) =>
    worker.json(p, {
      method,
      headers: {
        ...credential,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
}

describe("registry: concurrent writes", () => {
  let worker;
  let admin;
  before(async () => {
    worker = await startWorker({
      ...DEFAULT_VARS,
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN,
    });
    admin = client(worker);
  });
  after(() => worker?.dispose());

  /** What the token path reads: the account's record and its issuer's index, from KV. */
  async function readModel(id, issuerURL) {
    const kv = await worker.kv("ACCOUNTS");
    const record = await kv.get(`account:${id}`, "json");
    const index = (await kv.get(indexKey(issuerURL), "json")) ?? { accounts: [] };
    return { record, entries: index.accounts.filter((entry) => entry.id === id) };
  }

  test(`disable vs. a subject edit, ${TRIALS} trials: the disable always holds`, async () => {
    let lost = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const issuerURL = `https://idp-disable-${trial}.example.com`;
      const created = await admin(COLLECTION, { method: "POST", body: account({ issuerURL, subject: "repo:acme/app" }) });
      assert.equal(created.status, 201);
      const item = `${COLLECTION}/${created.body.id}`;
      const [disable, edit] = await Promise.all([
        admin(item, { method: "PATCH", body: { enabled: false } }),
        admin(item, { method: "PATCH", body: { subject: "repo:acme/app:ref:refs/heads/main" } }),
      ]);
      assert.deepEqual([disable.status, edit.status], [204, 204]);
      const now = await admin(item);
      assert.equal(now.body.subject, "repo:acme/app:ref:refs/heads/main", "the edit holds too");
      assert.equal(now.headers.get("etag"), '"3"');
      const { record } = await readModel(created.body.id, issuerURL);
      if (now.body.enabled !== false || record.enabled !== false) lost++;
      const events = await admin(`/v1/audit?account=${created.body.id}`);
      assert.deepEqual(events.body.map((event) => event.action).sort(), ["create", "disable", "update"]);
    }
    assert.equal(lost, 0, `${lost} of ${TRIALS} disables were undone`);
  });

  test(`delete vs. an edit, ${TRIALS} trials: a deleted account never comes back`, async () => {
    let resurrected = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const issuerURL = `https://idp-delete-${trial}.example.com`;
      const created = await admin(COLLECTION, { method: "POST", body: account({ issuerURL }) });
      const item = `${COLLECTION}/${created.body.id}`;
      const [deleted, edit] = await Promise.all([
        admin(item, { method: "DELETE" }),
        admin(item, { method: "PATCH", body: { name: "renamed" } }),
      ]);
      assert.equal(deleted.status, 204);
      assert.ok([204, 404].includes(edit.status), `the edit answered ${edit.status}`);
      const now = await admin(item);
      const { record, entries } = await readModel(created.body.id, issuerURL);
      if (now.status !== 404 || record !== null || entries.length !== 0) resurrected++;
      const events = await admin(`/v1/audit?account=${created.body.id}`);
      assert.equal(events.body[0].action, "delete", "the delete is the last event");
    }
    assert.equal(resurrected, 0, `${resurrected} of ${TRIALS} deleted accounts came back`);
  });

  test(`create vs. create of one pair, ${TRIALS} trials: exactly one 201`, async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const body = account({ subject: `repo:acme/pair-${trial}` });
      const answers = await Promise.all([
        admin(COLLECTION, { method: "POST", body }),
        admin(COLLECTION, { method: "POST", body }),
      ]);
      assert.deepEqual(answers.map((answer) => answer.status).sort(), [201, 409], `trial ${trial}`);
      const winner = answers.find((answer) => answer.status === 201).body.id;
      const loser = answers.find((answer) => answer.status === 409).body;
      assert.match(loser.error_description, new RegExp(winner));
    }
    const kv = await worker.kv("ACCOUNTS");
    const index = await kv.get(indexKey("https://token.actions.githubusercontent.com"), "json");
    const subjects = index.accounts.map((entry) => entry.subject);
    assert.equal(new Set(subjects).size, subjects.length, "no pair twice in the read model");
  });

  test(`moving an account onto a pair vs. creating that pair, ${TRIALS} trials: exactly one wins`, async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const issuerURL = `https://idp-move-${trial}.example.com`;
      const mover = await admin(COLLECTION, { method: "POST", body: account({ issuerURL, subject: "repo:acme/old" }) });
      const [move, create] = await Promise.all([
        admin(`${COLLECTION}/${mover.body.id}`, { method: "PATCH", body: { subject: "repo:acme/new" } }),
        admin(COLLECTION, { method: "POST", body: account({ issuerURL, subject: "repo:acme/new" }) }),
      ]);
      const outcome = [move.status, create.status];
      assert.ok(
        JSON.stringify(outcome) === "[204,409]" || JSON.stringify(outcome) === "[409,201]",
        `trial ${trial}: ${outcome}`,
      );
      const kv = await worker.kv("ACCOUNTS");
      const index = await kv.get(indexKey(issuerURL), "json");
      assert.equal(index.accounts.filter((entry) => entry.subject === "repo:acme/new").length, 1);
    }
  });
});

describe("registry: audit trail, roles, Access", () => {
  let worker;
  const team = "acme.cloudflareaccess.com";
  const aud = "f3b1c7c2d0e84d63a5b0c8e9d7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8";
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "access-key-1", alg: "RS256", use: "sig" };
  const tokens = { tf: "tf-token-for-e2e", reader: "reader-token-for-e2e", gateway: "gw-token-for-e2e" };
  const sha = (token) => createHash("sha256").update(token).digest("hex");
  const as = (token) => client(worker, { authorization: `Bearer ${token}` });

  function assertion(claims = {}) {
    const now = Math.floor(Date.now() / 1000);
    const header = Buffer.from(JSON.stringify({ alg: "RS256", kid: jwk.kid, typ: "JWT" })).toString("base64url");
    const payload = Buffer.from(
      JSON.stringify({
        iss: `https://${team}`,
        aud: [aud],
        email: "alice@example.com",
        sub: "7335d417-61da-459d-899c-0a01c76a2f94",
        iat: now,
        nbf: now,
        exp: now + 24 * 3600,
        type: "app",
        ...claims,
      }),
    ).toString("base64url");
    const signature = sign("sha256", Buffer.from(`${header}.${payload}`), privateKey).toString("base64url");
    return `${header}.${payload}.${signature}`;
  }

  before(async () => {
    worker = await startWorker(
      {
        ...DEFAULT_VARS,
        SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
        ADMIN_TOKEN,
        ADMIN_TOKENS: JSON.stringify([
          { name: "ci-terraform", role: "admin", sha256: sha(tokens.tf) },
          { name: "dashboards", role: "reader", sha256: sha(tokens.reader) },
          { name: "api-gateway", role: "introspector", sha256: sha(tokens.gateway) },
        ]),
        ACCESS_TEAM_DOMAIN: team,
        ACCESS_AUD: aud,
        ISSUER: "https://sts.example.com",
      },
      {
        // The team's certs, as Access publishes them; nothing else is reachable.
        outbound: (request) =>
          new URL(request.url).href === `https://${team}/cdn-cgi/access/certs`
            ? Response.json({ keys: [jwk], public_cert: { kid: jwk.kid, cert: "-----BEGIN CERTIFICATE-----" } })
            : new Response("not here", { status: 404 }),
      },
    );
  });
  after(() => worker?.dispose());

  test("each role calls its routes; any other is 403 naming the credential", async () => {
    const created = await as(tokens.tf)(COLLECTION, { method: "POST", body: account({ subject: "repo:acme/roles" }) });
    assert.equal(created.status, 201);
    const item = `${COLLECTION}/${created.body.id}`;
    const routes = [
      ["GET", COLLECTION, undefined, ["admin", "reader"]],
      ["POST", COLLECTION, account({ subject: "repo:acme/other" }), ["admin"]],
      ["GET", item, undefined, ["admin", "reader"]],
      ["PATCH", item, { owner: "sre" }, ["admin"]],
      ["GET", `${COLLECTION}/scopes`, undefined, ["admin", "reader"]],
      ["POST", `${item}/verify`, { token: "x.y.z" }, ["admin", "reader"]],
      ["GET", "/v1/audit", undefined, ["admin", "reader"]],
      ["GET", "/healthz?deep=1", undefined, ["admin", "reader"]],
      ["POST", "/oauth2/introspect", "form", ["admin", "introspector"]],
      ["DELETE", item, undefined, ["admin"]],
    ];
    for (const [method, route, body, allowed] of routes) {
      for (const [role, token, name] of [
        ["reader", tokens.reader, "dashboards"],
        ["introspector", tokens.gateway, "api-gateway"],
        ["admin", tokens.tf, "ci-terraform"],
      ]) {
        const answer =
          body === "form"
            ? await worker.json(route, {
                method,
                headers: { authorization: `Bearer ${token}`, "content-type": "application/x-www-form-urlencoded" },
                body: "token=x",
              })
            : await as(token)(route, { method, body });
        if (allowed.includes(role)) {
          assert.ok(![401, 403].includes(answer.status), `${role} ${method} ${route}: ${answer.status}`);
        } else {
          assert.equal(answer.status, 403, `${role} ${method} ${route}`);
          assert.equal(answer.body.error, "forbidden");
          assert.ok(answer.body.error_description.startsWith(name), answer.body.error_description);
        }
      }
    }
  });

  test("every change names its actor; the trail pages newest first and cannot be changed", async () => {
    const created = await as(tokens.tf)(COLLECTION, { method: "POST", body: account({ subject: "repo:acme/audited" }) });
    const id = created.body.id;
    const item = `${COLLECTION}/${id}`;
    assert.equal((await as(ADMIN_TOKEN)(item, { method: "PATCH", body: { enabled: false } })).status, 204);
    const viaAccess = client(worker, { "cf-access-jwt-assertion": assertion() });
    assert.equal((await viaAccess(item, { method: "PATCH", body: { enabled: true } })).status, 204);
    assert.equal(
      (await as(tokens.tf)(item, { method: "PATCH", body: { owner: "platform" }, headers: { "cf-ray": "8e1f2a3b4c5d6e7f-LHR" } })).status,
      204,
    );
    const first = await as(tokens.reader)(`/v1/audit?account=${id}&limit=2`);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.map((event) => [event.action, event.actor]), [
      ["update", "ci-terraform"],
      ["enable", "alice@example.com"],
    ]);
    assert.deepEqual(first.body[0].changes, { owner: { old: null, new: "platform" } });
    assert.equal(first.body[0].requestId, "8e1f2a3b4c5d6e7f-LHR");
    assert.match(first.body[0].at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const link = first.headers.get("link");
    assert.match(link, /^<\/v1\/audit\?limit=2&account=[0-9a-f-]+&cursor=\d+>; rel="next"$/);
    const rest = await as(tokens.reader)(/<([^>]+)>/.exec(link)[1]);
    assert.deepEqual(rest.body.map((event) => [event.action, event.actor]), [
      ["disable", "admin"],
      ["create", "ci-terraform"],
    ]);
    const byAlice = await as(tokens.reader)("/v1/audit?actor=alice%40example.com");
    assert.ok(byAlice.body.length >= 1 && byAlice.body.every((event) => event.actor === "alice@example.com"));
    const since = await as(tokens.reader)(`/v1/audit?since=${encodeURIComponent(first.body[1].at)}&account=${id}`);
    assert.ok(since.body.length >= 2 && since.body.every((event) => event.at >= first.body[1].at));
    for (const method of ["POST", "PATCH", "PUT", "DELETE"]) {
      const answer = await as(ADMIN_TOKEN)(`/v1/audit`, { method, body: {} });
      assert.equal(answer.status, 405, method);
    }
    const again = await as(tokens.reader)(`/v1/audit?account=${id}`);
    assert.equal(again.body.length, 4, "nothing was removed");
    // The export script pages through all of it, as JSON Lines.
    const exported = execFileSync(process.execPath, [path.join(ROOT, "scripts/audit-export.mjs"), "--account", id], {
      env: { ...process.env, STS: worker.url, ADMIN_TOKEN: tokens.reader },
      stdio: ["ignore", "pipe", "pipe"],
    })
      .toString()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(exported, again.body);
  });

  test("a Cloudflare Access assertion is checked against the team's keys, audience and time", async () => {
    const call = (token) => client(worker, { "cf-access-jwt-assertion": token })(COLLECTION);
    assert.equal((await call(assertion())).status, 200);
    assert.equal((await call(assertion({ email: undefined, common_name: "ci.access" }))).status, 200);
    const { privateKey: otherKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const forged = (() => {
      const [header, payload] = assertion().split(".");
      return `${header}.${payload}.${sign("sha256", Buffer.from(`${header}.${payload}`), otherKey).toString("base64url")}`;
    })();
    for (const [token, says] of [
      [assertion({ aud: ["another-app"] }), "another Access application"],
      [assertion({ iss: "https://evil.cloudflareaccess.com" }), "not issued by"],
      [assertion({ exp: Math.floor(Date.now() / 1000) - 3600 }), "expired"],
      [forged, "signature"],
      ["not-a-jwt", "not valid"],
    ]) {
      const answer = await call(token);
      assert.equal(answer.status, 401, says);
      assert.equal(answer.body.error, "invalid_token");
      assert.match(answer.body.error_description, new RegExp(says));
    }
  });
});

describe("registry: the read model", () => {
  test("a projection that fails is retried by the alarm until KV matches; /healthz?deep=1 says so meanwhile", async () => {
    const worker = await startWorker(
      {
        ...DEFAULT_VARS,
        ISSUER: "https://sts.example.com",
        SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
        ADMIN_TOKEN,
      },
      { build: "build-selftest" },
    );
    try {
      const admin = client(worker);
      const kv = await worker.kv("ACCOUNTS");
      assert.equal((await worker.json("/__selftest/registry/kv-down", { method: "POST" })).status, 200);
      const created = await admin(COLLECTION, { method: "POST", body: account() });
      assert.equal(created.status, 201, "the change is committed even though KV is down");
      assert.equal(await kv.get(`account:${created.body.id}`), null, "not yet in the read model");
      const lagging = await admin("/healthz?deep=1");
      assert.equal(lagging.status, 503);
      assert.equal(lagging.body.status, "lagging");
      assert.equal(lagging.body.projection.pending, 2);
      assert.match(lagging.body.projection.lastError, /KV made to fail/);
      assert.ok(lagging.body.projection.oldestPendingAt <= new Date().toISOString());
      // KV works again. Nothing calls the registry now: only its alarm can write the record.
      assert.equal((await worker.json("/__selftest/registry/kv-up", { method: "POST" })).status, 200);
      let record = null;
      for (let attempt = 0; attempt < 60 && record === null; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        record = await kv.get(`account:${created.body.id}`, "json");
      }
      assert.ok(record, "the alarm wrote the record within 30 s");
      assert.equal(record.subject, account().subject);
      const index = await kv.get(indexKey(account().issuerURL), "json");
      assert.deepEqual(index.accounts, [{ id: created.body.id, subject: account().subject }]);
      const healthy = await admin("/healthz?deep=1");
      assert.deepEqual([healthy.status, healthy.body.projection.pending, healthy.body.projection.lastError], [200, 0, null]);
    } finally {
      await worker.dispose();
    }
  });

  test("accounts written to KV before the registry are imported once, on first use; duplicates go", async () => {
    const worker = await startWorker({ ...DEFAULT_VARS, ADMIN_TOKEN });
    try {
      const kv = await worker.kv("ACCOUNTS");
      const legacy = (id, createdAt, subject) => ({
        id,
        name: `legacy ${id.slice(0, 4)}`,
        authenticationType: "rsaKeyFederated",
        scopes: ["certificate-issuance"],
        issuerURL: "https://gitlab.com",
        subject,
        audience: "https://sts.example.com",
        enabled: true,
        createdAt,
        updatedAt: createdAt,
      });
      const kept = legacy("11111111-1111-4111-8111-111111111111", "2026-01-01T00:00:00.000Z", "project_path:acme/app:ref_type:branch:ref:main");
      const duplicate = legacy("22222222-2222-4222-8222-222222222222", "2026-02-01T00:00:00.000Z", kept.subject);
      const other = legacy("33333333-3333-4333-8333-333333333333", "2026-03-01T00:00:00.000Z", "project_path:acme/api:ref_type:branch:ref:main");
      for (const record of [kept, duplicate, other]) await kv.put(`account:${record.id}`, JSON.stringify(record));
      await kv.put(
        indexKey("https://gitlab.com"),
        JSON.stringify({
          issuerURL: "https://gitlab.com",
          accounts: [kept, duplicate, other].map(({ id, subject }) => ({ id, subject })),
        }),
      );
      const admin = client(worker);
      const list = await admin(COLLECTION);
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.map((entry) => entry.id), [kept.id, other.id]);
      assert.equal((await admin(`${COLLECTION}/${kept.id}`)).headers.get("etag"), '"1"');
      const events = await admin("/v1/audit");
      assert.deepEqual(
        events.body.map((event) => [event.actor, event.action, event.account]).reverse(),
        [
          ["import", "create", kept.id],
          ["import", "delete", duplicate.id],
          ["import", "create", other.id],
        ],
      );
      assert.equal(await kv.get(`account:${duplicate.id}`), null, "the duplicate left the read model");
      const index = await kv.get(indexKey("https://gitlab.com"), "json");
      assert.deepEqual(index.accounts.map((entry) => entry.id), [kept.id, other.id]);
      // Once: a record put into KV behind the registry's back now is not taken in.
      await kv.put(`account:44444444-4444-4444-8444-444444444444`, JSON.stringify(legacy("44444444-4444-4444-8444-444444444444", "2026-04-01T00:00:00.000Z", "x:y/z-0000")));
      assert.equal((await admin(COLLECTION)).body.length, 2);
    } finally {
      await worker.dispose();
    }
  });
});

test("npm run admin-token mints a named token whose hash line works as ADMIN_TOKENS", async () => {
  const run = (args) =>
    execFileSync(process.execPath, [path.join(ROOT, "scripts/admin-token.mjs"), ...args], { stdio: ["ignore", "pipe", "pipe"] })
      .toString()
      .trim()
      .split("\n");
  const [token, entry] = run(["--name", "dashboards", "--role", "reader"]);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  const parsed = JSON.parse(entry);
  assert.deepEqual(Object.keys(parsed), ["name", "role", "sha256"]);
  assert.equal(parsed.sha256, createHash("sha256").update(token).digest("hex"));
  const [second, list] = run(["--name", "ci-terraform", "--role", "admin", "--add", JSON.stringify([parsed])]);
  assert.equal(JSON.parse(list).length, 2);
  assert.throws(() => run(["--name", "admin"]), /reserved/);
  assert.throws(() => run(["--name", "x", "--role", "owner"]), /role/);
  const worker = await startWorker({ ...DEFAULT_VARS, ADMIN_TOKENS: list });
  try {
    assert.equal((await client(worker, { authorization: `Bearer ${token}` })(COLLECTION)).status, 200);
    const write = await client(worker, { authorization: `Bearer ${token}` })(COLLECTION, { method: "POST", body: account() });
    assert.equal(write.status, 403);
    const created = await client(worker, { "tppl-api-key": second })(COLLECTION, { method: "POST", body: account() });
    assert.equal(created.status, 201);
  } finally {
    await worker.dispose();
  }
});
