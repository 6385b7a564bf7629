// What the worker logs, captured from workerd: exactly one JSON line per token request, with
// The contract's fields, and never a token, a signature, a private key or the admin token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_VARS, createAccount, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, sign, startIdp } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-admin-token-hygiene-SECRET-0123456789";

test("logs: one line per token request, no token, signature or secret", async () => {
  const idp = await startIdp();
  const key = await newKey("ES256", "k");
  idp.keys = [key];
  const signingKey = await newSigningKey();
  const logs = [];
  const worker = await startWorker(
    { ...DEFAULT_VARS, ALLOW_HTTP_LOOPBACK: "true", SIGNING_KEYS: JSON.stringify({ keys: [signingKey] }), ADMIN_TOKEN },
    { logs },
  );
  const secrets = [ADMIN_TOKEN, signingKey.d];
  try {
    const created = await createAccount(worker, ADMIN_TOKEN, { name: "h", scopes: ["certificate-issuance"], issuerURL: idp.url, subject: "repo:acme/app:ref:refs/heads/main", audience: "https://sts.example.com" });
    const good = await sign(key, idp.claims());
    const tampered = good.slice(0, -6) + (good.endsWith("AAAAAA") ? "BBBBBB" : "AAAAAA");
    const requests = [good, tampered, "not.a.token", `${good}.extra.parts`, good.replace(/^[^.]+/, "eyJhbGciOiJub25lIn0")];
    const issued = [];
    for (const assertion of requests) {
      const { body } = await worker.json("/oauth2/token", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }).toString(),
      });
      if (body.access_token) issued.push(body.access_token);
    }
    assert.equal(issued.length, 1);
    await worker.json("/oauth2/introspect", {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: issued[0] }).toString(),
    });

    const tokenLines = logs.filter((line) => line.includes('"token_request"')).map((line) => JSON.parse(line));
    assert.equal(tokenLines.length, requests.length, `one line per token request:\n${logs.join("\n")}`);
    for (const line of tokenLines) {
      for (const field of ["outcome", "reason", "account", "iss", "sub", "jti", "latency_ms", "status"]) {
        assert.ok(field in line, `${field} in ${JSON.stringify(line)}`);
      }
    }
    assert.deepEqual(tokenLines.map((line) => line.outcome), ["issued", "refused", "refused", "refused", "refused"]);
    assert.equal(tokenLines[0].account, created.id);
    assert.equal(tokenLines[1].reason, "bad_signature");

    const everything = logs.join("\n");
    const forbidden = [...secrets, ...issued, ...requests.flatMap((token) => token.split(".").filter((part) => part.length > 20))];
    for (const fragment of [...forbidden, ...issued.map((token) => token.split(".")[2])]) {
      assert.ok(!everything.includes(fragment), `the logs contain ${fragment.slice(0, 24)}…`);
    }
  } finally {
    await worker.dispose();
    await idp.close();
  }
});
