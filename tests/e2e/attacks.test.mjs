// Known JWT attacks against the built worker in workerd. Each case states the expected status
// and `reason`; none may mint a token, and none may answer 5xx. Tokens are made with Node's
// Web Crypto and node:crypto by the local identity provider (and by an attacker's server).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFileSync } from "node:fs";
import { createHmac, createPublicKey, generateKeyPairSync, sign as nodeSign, webcrypto } from "node:crypto";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, now, sign, startIdp } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-admin-token-attacks-0123456789";
const AUDIENCE = "https://sts.example.com";
const SUBJECT = "repo:acme/app:ref:refs/heads/main";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const P256_N = Buffer.from("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", "hex");

/** Splits a compact JWS. */
const parts = (jws) => jws.split(".");
/** Re-assembles with a replaced signature (bytes). */
const withSignature = (jws, bytes) => `${parts(jws)[0]}.${parts(jws)[1]}.${Buffer.from(bytes).toString("base64url")}`;

describe("attacks on the token endpoint", () => {
  let worker;
  let idp;
  let attacker; // a server the attacker controls, which must never be contacted
  let attackerHits = 0;
  let rsa;
  let es256;
  let es384;
  let weakRsa;
  let otherAccount;
  const keys = {};

  const exchange = (assertion, extra = {}) =>
    worker.json("/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, ...extra }).toString(),
    });
  const admin = (path, method, body) =>
    worker.json(path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  before(async () => {
    idp = await startIdp();
    rsa = await newKey("RS256", "rsa");
    es256 = await newKey("ES256", "p256");
    es384 = await newKey("ES384", "p384");
    // A 1024-bit RSA key, published by a careless issuer.
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 });
    weakRsa = { kid: "weak-rsa", privateKey: weak.privateKey, publicJwk: { ...weak.publicKey.export({ format: "jwk" }), kid: "weak-rsa" } };
    idp.keys = [rsa, es256, es384, weakRsa];
    Object.assign(keys, { rsa, es256, es384 });
    attackerKey = await newKey("ES256", "attacker");

    attacker = http.createServer((request, response) => {
      attackerHits++;
      response.end(JSON.stringify({ keys: [] }));
    });
    await new Promise((resolve) => attacker.listen(0, "127.0.0.1", resolve));

    worker = await startWorker({
      ...DEFAULT_VARS,
      ALLOW_HTTP_LOOPBACK: "true",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN,
    });
    const base = { scopes: ["certificate-issuance"], issuerURL: idp.url, jwksURI: `${idp.url}/jwks`, audience: AUDIENCE };
    assert.equal((await admin("/v1/serviceaccounts", "POST", { ...base, name: "target", subject: SUBJECT })).status, 201);
    otherAccount = (await admin("/v1/serviceaccounts", "POST", { ...base, name: "other", subject: "repo:acme/other:ref:refs/heads/main" })).body;
    // An issuer with letters in its host, to try another case of it.
    const lettered = idp.url.replace("127.0.0.1", "localhost");
    assert.equal((await admin("/v1/serviceaccounts", "POST", { ...base, name: "lettered", issuerURL: lettered, jwksURI: `${lettered}/jwks`, subject: SUBJECT })).status, 201);
  });
  after(async () => {
    await worker?.dispose();
    await idp?.close();
    await new Promise((resolve) => attacker?.close(resolve));
  });

  test("the baseline token is accepted (so every refusal below is the attack's doing)", async () => {
    const { status, body } = await exchange(await sign(es256, idp.claims()));
    assert.equal(status, 200, JSON.stringify(body));
  });

  // [name, () => token, expected reason (status 400 unless given), extra form fields]
  const cases = [
    // alg none, every casing, with an empty and with a present signature
    ...["none", "None", "NONE", "nOnE"].flatMap((alg) => [
      [`alg ${alg}, empty signature`, () => `${b64({ alg })}.${b64(idp.claims())}.`, "unsupported_algorithm"],
      [`alg ${alg}, with a signature`, () => `${b64({ alg })}.${b64(idp.claims())}.${b64("sig")}`, "unsupported_algorithm"],
    ]),
    ["alg none, signature part stripped (two parts)", () => `${b64({ alg: "none" })}.${b64(idp.claims())}`, "malformed_token"],
    // HMAC with the issuer's RSA public key as the secret (key confusion)
    ...["HS256", "HS384", "HS512"].flatMap((alg) => [
      [`${alg} keyed with the issuer's RSA public key (PEM)`, () => hmacToken(alg, createPublicKey({ key: rsa.publicJwk, format: "jwk" }).export({ type: "spki", format: "pem" })), "unsupported_algorithm"],
      [`${alg} keyed with the issuer's RSA modulus`, () => hmacToken(alg, Buffer.from(rsa.publicJwk.n, "base64url")), "unsupported_algorithm"],
    ]),
    // Keys named in the header are never fetched or used
    ["jwk header with the attacker's key and kid", async () => attackerToken({ jwk: attackerKey.publicJwk, kid: attackerKey.kid }), "unknown_key"],
    ["jwk header with the attacker's key, no kid", async () => attackerToken({ jwk: attackerKey.publicJwk, kid: null }), "bad_signature"],
    ["jku pointing at the attacker", async () => attackerToken({ jku: `http://127.0.0.1:${attacker.address().port}/jwks`, kid: attackerKey.kid }), "unknown_key"],
    ["x5u pointing at the attacker", async () => attackerToken({ x5u: `http://127.0.0.1:${attacker.address().port}/cert`, kid: null }), "bad_signature"],
    ["x5c with the attacker's certificate", async () => attackerToken({ x5c: [b64("not-really-a-cert")], kid: null }), "bad_signature"],
    // Hostile kids
    ["kid with path traversal", () => sign(es256, idp.claims(), { kid: "../../../../etc/passwd" }), "unknown_key"],
    ["kid with SQL", () => sign(es256, idp.claims(), { kid: "' OR '1'='1' --" }), "unknown_key"],
    ["kid of 8 KiB", () => sign(es256, idp.claims(), { kid: "k".repeat(8192) }), "unknown_key"],
    // ECDSA signature forgeries
    ["ECDSA psychic signature r = s = 0", async () => withSignature(await sign(es256, idp.claims()), Buffer.alloc(64)), "bad_signature"],
    ["ECDSA r = n", async () => withSignature(await sign(es256, idp.claims()), Buffer.concat([P256_N, Buffer.from(parts(await sign(es256, idp.claims()))[2], "base64url").subarray(32)])), "bad_signature"],
    ["ECDSA s = n", async () => withSignature(await sign(es256, idp.claims()), Buffer.concat([Buffer.from(parts(await sign(es256, idp.claims()))[2], "base64url").subarray(0, 32), P256_N])), "bad_signature"],
    ["ECDSA r, s = 0xff…ff", async () => withSignature(await sign(es256, idp.claims()), Buffer.alloc(64, 0xff)), "bad_signature"],
    ["ECDSA signature DER-encoded", async () => derToken(), "bad_signature"],
    // Keys that do not fit
    ["RSA key under 2048 bits", () => rsaNodeToken(weakRsa, "RS256"), "key_mismatch"],
    ["ES256 header naming the P-384 key", () => sign(es256, idp.claims(), { kid: "p384" }), "key_mismatch"],
    ["ES384 header naming the P-256 key", () => sign(es384, idp.claims(), { kid: "p256" }), "key_mismatch"],
    ["RS256 header naming an EC key", () => sign(rsa, idp.claims(), { kid: "p256" }), "key_mismatch"],
    ["EdDSA header naming the RSA key", () => `${b64({ alg: "EdDSA", kid: "rsa" })}.${b64(idp.claims())}.${b64(Buffer.alloc(64))}`, "key_mismatch"],
    ["PS256 header naming an EC key", () => `${b64({ alg: "PS256", kid: "p384" })}.${b64(idp.claims())}.${b64(Buffer.alloc(256))}`, "key_mismatch"],
    // Shapes
    ["crit header", () => sign(es256, idp.claims(), { crit: ["exp"] }), "malformed_token"],
    ["JWE (five parts)", () => `${b64({ alg: "RSA-OAEP", enc: "A256GCM" })}.a.b.c.d`, "malformed_token"],
    ["JSON serialization", () => JSON.stringify({ payload: b64(idp.claims()), signatures: [] }), "malformed_token"],
    ["padded base64", async () => { const [h, p, s] = parts(await sign(es256, idp.claims())); return `${h}==.${p}.${s}`; }, "malformed_token"],
    ["standard base64 alphabet", () => `${Buffer.from(JSON.stringify({ alg: "ES256", kid: "p256", x: "???>>>" })).toString("base64").replace(/=+$/, "")}.${b64(idp.claims())}.${b64("s")}`, "malformed_token"],
    ["whitespace inside", async () => { const [h, p, s] = parts(await sign(es256, idp.claims())); return `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`; }, "malformed_token"],
    ["line break inside", async () => { const [h, p, s] = parts(await sign(es256, idp.claims())); return `${h}.${p}\n.${s}`; }, "malformed_token"],
    ["duplicate member names in the payload", () => signRaw(es256, `{"alg":"ES256","kid":"p256"}`, `{"iss":"${idp.url}","sub":"${SUBJECT}","sub":"repo:evil/x","aud":"${AUDIENCE}","iat":${now()},"exp":${now() + 600}}`), "malformed_token"],
    ["duplicate alg in the header", () => signRaw(es256, `{"alg":"ES256","alg":"none","kid":"p256"}`, JSON.stringify(idp.claims())), "malformed_token"],
    ["JSON nested 40 deep", () => sign(es256, idp.claims({ deep: JSON.parse("[".repeat(40) + "]".repeat(40)) })), "malformed_token"],
    ["17 KiB token", () => sign(es256, idp.claims({ padding: "x".repeat(17 * 1024) })), "token_too_large"],
    // Numeric dates
    ["exp as a string", () => sign(es256, idp.claims({ exp: String(now() + 600) })), "invalid_claim"],
    ["iat as a string", () => sign(es256, idp.claims({ iat: String(now()) })), "invalid_claim"],
    ["exp as a float is fine", () => sign(es256, idp.claims({ exp: now() + 600.5 })), 200],
    ["iat negative: exp − iat is then far over 2 h", () => sign(es256, idp.claims({ iat: -1 })), "lifetime_too_long"],
    ["exp 1e309 (not a finite number)", () => signRaw(es256, `{"alg":"ES256","kid":"p256"}`, JSON.stringify(idp.claims()).replace(/"exp":\d+/, '"exp":1e309')), "malformed_token"],
    ["exp beyond 2^53", () => signRaw(es256, `{"alg":"ES256","kid":"p256"}`, JSON.stringify(idp.claims()).replace(/"exp":\d+/, '"exp":9007199254740993')), "invalid_claim"],
    ["exp as a huge integer", () => signRaw(es256, `{"alg":"ES256","kid":"p256"}`, JSON.stringify(idp.claims()).replace(/"exp":\d+/, `"exp":${"9".repeat(40)}`)), "invalid_claim"],
    // Audience, issuer, lifetime, nbf
    ["aud array containing the audience", () => sign(es256, idp.claims({ aud: ["other", AUDIENCE] })), 200],
    ["aud array without the audience", () => sign(es256, idp.claims({ aud: ["other", `${AUDIENCE}/`] })), "audience_mismatch"],
    ["issuer with a trailing slash", () => sign(es256, idp.claims({ iss: `${idp.url}/` })), "no_matching_account"],
    ["issuer in another case", () => sign(es256, idp.claims({ iss: idp.url.replace("127.0.0.1", "LocalHost") })), "no_matching_account"],
    ["issuer with a trailing slash, named client_id", () => sign(es256, idp.claims({ iss: `${idp.url}/` })), "issuer_mismatch", () => ({ client_id: otherAccount.id })],
    ["lifetime 7201 s", () => sign(es256, idp.claims({ iat: now() - 1, exp: now() + 7200 })), "lifetime_too_long"],
    ["nbf in the future", () => sign(es256, idp.claims({ nbf: now() + 3600 })), "token_not_yet_valid"],
    ["a valid token replayed for another account's client_id", () => sign(es256, idp.claims()), "subject_mismatch", () => ({ client_id: otherAccount.id })],
    ["a client_id of 4 KiB (no valid KV key)", () => sign(es256, idp.claims()), "no_matching_account", () => ({ client_id: "x".repeat(4096) })],
    ["a client_id with path characters", () => sign(es256, idp.claims()), "no_matching_account", () => ({ client_id: "../issuer:abc" })],
  ];

  let attackerKey;
  async function attackerToken(header) {
    return sign(attackerKey, idp.claims(), header);
  }
  function hmacToken(alg, secret) {
    const input = `${b64({ alg, kid: "rsa" })}.${b64(idp.claims())}`;
    const mac = createHmac(`sha${alg.slice(2)}`, secret).update(input).digest();
    return `${input}.${mac.toString("base64url")}`;
  }
  function derToken() {
    // node:crypto signs ECDSA in DER by default; import the same P-256 key.
    const input = `${b64({ alg: "ES256", kid: "p256" })}.${b64(idp.claims())}`;
    return webcrypto.subtle.exportKey("jwk", es256.privateKey).then((jwk) => {
      const der = nodeSign("sha256", Buffer.from(input), { key: jwk, format: "jwk" });
      return `${input}.${der.toString("base64url")}`;
    });
  }
  function rsaNodeToken(key, alg) {
    const input = `${b64({ alg, kid: key.kid })}.${b64(idp.claims())}`;
    return `${input}.${nodeSign("sha256", Buffer.from(input), key.privateKey).toString("base64url")}`;
  }
  async function signRaw(key, header, payload) {
    const input = `${b64(header)}.${b64(payload)}`;
    const signature = await webcrypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, Buffer.from(input));
    return `${input}.${Buffer.from(signature).toString("base64url")}`;
  }

  for (const [name, makeToken, expected, extra] of cases) {
    test(`${name} → ${expected}`, async () => {
      const { status, body } = await exchange(await makeToken(), extra ? extra() : {});
      if (expected === 200) {
        assert.equal(status, 200, JSON.stringify(body));
        return;
      }
      assert.equal(body.reason, expected, JSON.stringify(body));
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal(body.error, "invalid_grant");
      assert.equal(body.access_token, undefined);
    });
  }

  test("the attacker's server was never contacted", () => {
    assert.equal(attackerHits, 0);
  });
});

// The holes a red-team review found in the service's own logic (issue 12), each shown refused.
describe("attacks on the service's own logic", () => {
  const ISSUER = "https://sts.example.com";
  let worker;
  let idp;
  let key;

  const admin = (path, method = "GET", body) =>
    worker.json(path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const exchange = (assertion, extra = {}) =>
    worker.json("/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, ...extra }).toString(),
    });
  /** An issuer of its own on the local IdP's port, serving `keys` at /{name}/jwks. */
  async function issuerWith(name, keys, rule = { subject: SUBJECT }) {
    const issuerURL = `${base}/${name}`;
    served[name] = keys;
    const created = await admin("/v1/serviceaccounts", "POST", {
      name,
      scopes: ["certificate-issuance"],
      issuerURL,
      jwksURI: `${base}/${name}/jwks`,
      audience: AUDIENCE,
      ...rule,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return { issuerURL, id: created.body.id };
  }
  const served = {}; // issuer name → published JWKs
  let jwksServer;
  let base;

  before(async () => {
    idp = await startIdp(); // for its claims(); the issuers are served by jwksServer below
    key = await newKey("ES256", "own-logic");
    // A server for issuers with hand-made key sets.
    jwksServer = http.createServer((request, response) => {
      const name = request.url.split("/")[1];
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ keys: served[name] ?? [] }));
    });
    await new Promise((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${jwksServer.address().port}`;
    worker = await startWorker({
      ...DEFAULT_VARS,
      ISSUER,
      ALLOW_HTTP_LOOPBACK: "true",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN,
    });
  });
  after(async () => {
    await worker?.dispose();
    await idp?.close();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  test("a 64 KiB form of 16,000 parameters is refused at once, as is an admin query of 33", async () => {
    const names = Array.from({ length: 16_000 }, (_, i) => `p${i}=`).join("&");
    const { status, body } = await worker.json("/oauth2/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=${JWT_BEARER}&assertion=x&${names}`.slice(0, 64 * 1024),
    });
    assert.equal(status, 400);
    assert.equal(body.error, "invalid_request");
    assert.match(body.error_description, /more than 32 parameters/);
    const query = Array.from({ length: 33 }, (_, i) => `p${i}=1`).join("&");
    const list = await admin(`/v1/serviceaccounts?${query}`);
    assert.equal(list.status, 400);
    assert.match(list.body.error_description, /more than 32 parameters/);
  });

  test("the Host header does not choose the minted iss and aud: ISSUER does", async () => {
    const { issuerURL } = await issuerWith("hosted", [key.publicJwk]);
    const token = await sign(key, { ...idp.claims(), iss: issuerURL });
    const body = new URLSearchParams({ grant_type: JWT_BEARER, assertion: token }).toString();
    const port = new URL(worker.url).port;
    const answer = await new Promise((resolve, reject) => {
      const request = http.request(
        { host: "127.0.0.1", port, path: "/oauth2/token", method: "POST", headers: { host: "api.victim.example", "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) } },
        (response) => {
          let text = "";
          response.on("data", (chunk) => (text += chunk));
          response.on("end", () => resolve({ status: response.statusCode, body: JSON.parse(text) }));
        },
      );
      request.on("error", reject);
      request.end(body);
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const claims = JSON.parse(Buffer.from(answer.body.access_token.split(".")[1], "base64url"));
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, ISSUER);
  });

  test("ambiguous_account names no other account", async () => {
    const a = await issuerWith("ambiguous", [key.publicJwk], { subjectPattern: "repo:acme/app:*" });
    const second = await admin("/v1/serviceaccounts", "POST", {
      name: "ambiguous-2",
      scopes: ["certificate-issuance"],
      issuerURL: a.issuerURL,
      jwksURI: `${a.issuerURL}/jwks`,
      audience: AUDIENCE,
      subjectPattern: "repo:acme/*",
    });
    assert.equal(second.status, 201);
    const { status, body } = await exchange(await sign(key, { ...idp.claims(), iss: a.issuerURL }));
    assert.equal(body.reason, "ambiguous_account", JSON.stringify(body));
    assert.equal(status, 400);
    assert.ok(!body.error_description.includes(a.id) && !body.error_description.includes(second.body.id), body.error_description);
  });

  test("a token without kid is tried against at most 3 keys: a fourth is never reached", async () => {
    const others = await Promise.all([1, 2, 3].map((n) => newKey("ES512", `decoy-${n}`)));
    const real = await newKey("ES512", "real");
    const strip = ({ kid, ...jwk }) => jwk;
    const behind = await issuerWith("kidless4", [...others.map((k) => strip(k.publicJwk)), strip(real.publicJwk)]);
    const token = (issuerURL) => sign(real, { ...idp.claims(), iss: issuerURL }, { kid: null });
    const refused = await exchange(await token(behind.issuerURL));
    assert.equal(refused.body.reason, "bad_signature", JSON.stringify(refused.body));
    const third = await issuerWith("kidless3", [...others.slice(0, 2).map((k) => strip(k.publicJwk)), strip(real.publicJwk)]);
    assert.equal((await exchange(await token(third.issuerURL))).status, 200);
    // One key published 100 times is one key.
    const repeated = await issuerWith("kidless-repeated", [...Array(99).fill(strip(others[0].publicJwk)), strip(real.publicJwk)]);
    assert.equal((await exchange(await token(repeated.issuerURL))).status, 200);
  });

  test("of several keys with one kid, only the first is used", async () => {
    const first = await newKey("ES256", "same");
    const second = await newKey("ES256", "same");
    const { issuerURL } = await issuerWith("samekid", [first.publicJwk, second.publicJwk]);
    assert.equal((await exchange(await sign(first, { ...idp.claims(), iss: issuerURL }))).status, 200);
    const refused = await exchange(await sign(second, { ...idp.claims(), iss: issuerURL }));
    assert.equal(refused.body.reason, "bad_signature", JSON.stringify(refused.body));
  });

  test("a disabled exact account blocks its subject, also with client_id naming a pattern account", async () => {
    const pattern = await issuerWith("blocked", [key.publicJwk], { subjectPattern: "repo:acme/*" });
    const legacy = await admin("/v1/serviceaccounts", "POST", {
      name: "legacy",
      scopes: ["certificate-issuance"],
      issuerURL: pattern.issuerURL,
      jwksURI: `${pattern.issuerURL}/jwks`,
      audience: AUDIENCE,
      subject: "repo:acme/legacy",
      enabled: false,
    });
    assert.equal(legacy.status, 201);
    const token = await sign(key, { ...idp.claims(), iss: pattern.issuerURL, sub: "repo:acme/legacy" });
    const { status, body } = await exchange(token, { client_id: pattern.id });
    assert.equal(body.reason, "account_disabled", JSON.stringify(body));
    assert.equal(status, 400);
    assert.equal((await exchange(token)).body.reason, "account_disabled");
    const other = await sign(key, { ...idp.claims(), iss: pattern.issuerURL, sub: "repo:acme/app" });
    assert.equal((await exchange(other, { client_id: pattern.id })).status, 200);
  });

  test("a literal * in the subject does not defeat the pattern's wildcard", async () => {
    const { issuerURL } = await issuerWith("literal-star", [key.publicJwk], { subjectPattern: "repo:acme/x*c" });
    const { status, body } = await exchange(await sign(key, { ...idp.claims(), iss: issuerURL, sub: "repo:acme/x*bc" }));
    assert.equal(status, 200, JSON.stringify(body));
  });

  test("a sub over 1 KiB is invalid_claim before any pattern is matched", async () => {
    const { issuerURL } = await issuerWith("long-sub", [key.publicJwk], { subjectPattern: `repo:acme/${"*a".repeat(295)}` });
    const { status, body } = await exchange(await sign(key, { ...idp.claims(), iss: issuerURL, sub: `repo:acme/${"a".repeat(12_000)}` }));
    assert.equal(body.reason, "invalid_claim", JSON.stringify(body));
    assert.equal(status, 400);
  });

  test("with ALLOW_HTTP_LOOPBACK, URLs follow the loopback rows of tests/vectors/urls.json", async () => {
    const { normalize } = JSON.parse(readFileSync(new URL("../vectors/urls.json", import.meta.url), "utf8"));
    let n = 0;
    for (const { input, loopback, stored } of normalize.filter((row) => row.loopback)) {
      const { status, body } = await admin("/v1/serviceaccounts", "POST", {
        name: "loopback url",
        scopes: ["certificate-issuance"],
        issuerURL: input,
        subject: `loopback-${n++}`,
        audience: AUDIENCE,
      });
      if (stored !== undefined) {
        assert.equal(status, 201, `${input}: ${JSON.stringify(body)}`);
        assert.equal(body.issuerURL, stored, input);
      } else {
        assert.equal(status, 400, `${input}: ${JSON.stringify(body)}`);
        assert.equal(body.field, "issuerURL");
      }
    }
  });

  test("every error description keeps to RFC 6749 §5.2's characters", async () => {
    const tokens = [
      "not a token",
      await sign(key, { ...idp.claims(), iss: "https://\"quoted\".example/\u202e\\" }),
      await sign(key, { ...idp.claims(), iss: `${base}/hosted`, exp: now() - 3600 }),
      await sign(key, { ...idp.claims(), iss: `${base}/hosted`, iat: now() - 10, exp: now() + 7300 }),
    ];
    for (const token of tokens) {
      const { body } = await exchange(token);
      assert.match(body.error_description, /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/, body.error_description);
    }
  });
});

describe("rate limits (TOKEN_RATE_LIMIT bound)", () => {
  let worker;
  before(async () => {
    worker = await startWorker(
      {
        ...DEFAULT_VARS,
        ISSUER: "https://sts.example.com",
        SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
        ADMIN_TOKEN,
      },
      { ratelimits: { TOKEN_RATE_LIMIT: { limit: 3, period: 60 } } },
    );
  });
  after(() => worker?.dispose());

  test("an address over its limit gets 429 slow_down with Retry-After, on the token endpoint and for admin guesses", async () => {
    const fromAddress = (ip, init) => ({ ...init, headers: { ...init.headers, "cf-connecting-ip": ip } });
    const token = (ip) =>
      worker.json("/oauth2/token", fromAddress(ip, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=password" }));
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await token("203.0.113.5")).status);
    assert.deepEqual(statuses, [400, 400, 400, 429]);
    const limited = await token("203.0.113.5");
    assert.equal(limited.body.error, "slow_down");
    assert.equal(limited.body.reason, undefined);
    assert.equal(limited.headers.get("retry-after"), "60");
    assert.equal((await token("203.0.113.6")).status, 400, "another address has its own count");

    const guess = (ip) => worker.json("/v1/serviceaccounts", fromAddress(ip, { headers: { authorization: "Bearer guess" } }));
    const guesses = [];
    for (let i = 0; i < 4; i++) guesses.push((await guess("203.0.113.9")).status);
    assert.deepEqual(guesses, [401, 401, 401, 429]);
    const right = await worker.json("/v1/serviceaccounts", fromAddress("203.0.113.9", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    assert.equal(right.status, 200, "the right token is never limited");
  });
});
