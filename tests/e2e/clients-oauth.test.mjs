// Generic OAuth client libraries, unmodified from npm, against the worker in workerd:
// google-auth-library's external-account ("workload identity federation") client, whose STS
// token URL is edge-sts's RFC 8693 endpoint, and openid-client (discovery, then an RFC 8693
// exchange and a client-credentials grant with a client assertion).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ExternalAccountClient } from "google-auth-library";
import * as client from "openid-client";
import { decodeJwt } from "jose";
import { DEFAULT_VARS, createAccount, freePort, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, sign, startIdp } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-admin-token-oauth-clients-0123456789";
const AUDIENCE = "https://sts.example.com";
const SUBJECT = "repo:acme/app:ref:refs/heads/main";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

describe("generic OAuth client libraries against edge-sts", () => {
  let worker;
  let idp;
  let key;
  let account;
  let issuer;
  let scratch;

  before(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    idp = await startIdp();
    key = await newKey("ES256", "gha");
    idp.keys = [key];
    worker = await startWorker(
      {
        ...DEFAULT_VARS,
        ISSUER: issuer,
        ALLOW_HTTP_LOOPBACK: "true",
        SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
        ADMIN_TOKEN,
      },
      { port },
    );
    account = await createAccount(worker, ADMIN_TOKEN, {
      name: "ci",
      scopes: ["certificate-issuance", "api-integration"],
      issuerURL: idp.url,
      subject: SUBJECT,
      audience: AUDIENCE,
    });
    scratch = mkdtempSync(path.join(tmpdir(), "edge-sts-oauth-"));
  });
  after(async () => {
    await worker?.dispose();
    await idp?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const workloadToken = (claims = {}) => sign(key, idp.claims(claims));

  test("google-auth-library: an external-account credential file whose token_url is edge-sts", async () => {
    const tokenFile = path.join(scratch, "oidc-token");
    writeFileSync(tokenFile, await workloadToken());
    // The JSON a user writes (docs/recipes/google-auth.md): Google's own format, with edge-sts's
    // token URL and the edge-sts scopes to ask for (google-auth's default scope is Google's).
    const credentials = {
      type: "external_account",
      audience: "edge-sts", // sent as RFC 8693 `audience`; edge-sts ignores it
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      token_url: `${issuer}/oauth2/token`,
      credential_source: { file: tokenFile },
      scopes: ["certificate-issuance"],
    };
    const auth = ExternalAccountClient.fromJSON(credentials);
    const { token } = await auth.getAccessToken();
    const claims = decodeJwt(token);
    assert.equal(claims.iss, issuer);
    assert.equal(claims.client_id, account.id);
    assert.equal(claims.scope, "certificate-issuance");
    // A refusal reaches the caller as google-auth's OAuth error, with edge-sts's words.
    writeFileSync(tokenFile, await workloadToken({ aud: "https://elsewhere.example.com" }));
    const refused = ExternalAccountClient.fromJSON(credentials);
    await assert.rejects(refused.getAccessToken(), (error) => {
      assert.match(error.message, /invalid_grant/);
      assert.match(error.message, /does not contain the account's audience/);
      return true;
    });
  });

  test("openid-client: discovery, an RFC 8693 exchange, and client credentials with a client assertion", async () => {
    const config = await client.discovery(new URL(issuer), account.id, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
    });
    assert.equal(config.serverMetadata().token_endpoint, `${issuer}/oauth2/token`);
    const exchanged = await client.genericGrantRequest(config, TOKEN_EXCHANGE, {
      subject_token: await workloadToken(),
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
      scope: "api-integration",
    });
    assert.equal(exchanged.token_type, "bearer"); // openid-client lower-cases it
    assert.equal(exchanged.expires_in, 900);
    assert.equal(exchanged.scope, "api-integration");
    assert.equal(decodeJwt(exchanged.access_token).client_id, account.id);

    const credentials = await client.clientCredentialsGrant(config, {
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await workloadToken(),
    });
    assert.equal(decodeJwt(credentials.access_token).sub, account.id);

    // A refused token is openid-client's ResponseBodyError carrying edge-sts's error.
    await assert.rejects(
      client.genericGrantRequest(config, TOKEN_EXCHANGE, {
        subject_token: await workloadToken({ exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 4000 }),
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      }),
      (error) => {
        assert.equal(error.error, "invalid_grant");
        assert.match(error.error_description, /expired/);
        return true;
      },
    );
  });
});
