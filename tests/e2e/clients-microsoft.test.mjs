// Microsoft's own client libraries, unmodified from npm, against the worker in workerd over
// https: @azure/msal-node (ConfidentialClientApplication with a client assertion) and
// @azure/identity (ClientAssertionCredential, and WorkloadIdentityCredential configured from
// the environment as on AKS). The authority is edge-sts itself, {ISSUER}/{TENANT_ID}.
//
// Offline as every test here: MSAL asks login.microsoftonline.com for "instance discovery"
// first unless the authority is known — msal-node's `knownAuthorities`, azure-identity's
// `disableInstanceDiscovery: true` (the README's Clients section says the same).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfidentialClientApplication } from "@azure/msal-node";
import { ClientAssertionCredential, WorkloadIdentityCredential } from "@azure/identity";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { DEFAULT_VARS, createAccount, freePort, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, sign, startIdp } from "./idp.mjs";
import { localTls } from "./tls.mjs";

const ADMIN_TOKEN = "e2e-admin-token-microsoft-0123456789";
const TENANT_ID = "Acme-Tenant-0001"; // mixed case: MSAL lower-cases the authority it calls
const AUDIENCE = "api://AzureADTokenExchange"; // what AKS projects into its service-account tokens
const SUBJECT = "system:serviceaccount:payments:deployer";

describe("Microsoft's client libraries against edge-sts", () => {
  let worker;
  let idp;
  let key;
  let account;
  let issuer;
  let scratch;

  before(async () => {
    for (const name of ["MSAL_FORCE_REGION", "REGION_NAME", "AZURE_REGIONAL_AUTHORITY_NAME"]) delete process.env[name];
    const tls = localTls();
    const port = await freePort();
    issuer = `https://127.0.0.1:${port}`;
    idp = await startIdp();
    key = await newKey("RS256", "aks-oidc");
    idp.keys = [key];
    worker = await startWorker(
      {
        ...DEFAULT_VARS,
        ISSUER: issuer,
        TENANT_ID,
        ALLOW_HTTP_LOOPBACK: "true",
        SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
        ADMIN_TOKEN,
      },
      { tls, port },
    );
    assert.equal(worker.url, issuer);
    account = await createAccount(worker, ADMIN_TOKEN, {
      name: "payments deployer on AKS",
      scopes: ["certificate-issuance", "api-integration"],
      issuerURL: idp.url,
      subject: SUBJECT,
      audience: AUDIENCE,
    });
    scratch = mkdtempSync(path.join(tmpdir(), "edge-sts-aks-"));
  });
  after(async () => {
    await worker?.dispose();
    await idp?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const workloadToken = () => sign(key, idp.claims({ sub: SUBJECT, aud: AUDIENCE }));

  /** The access token verifies against edge-sts's keys and was minted for the account. */
  async function assertMinted(accessToken) {
    const { payload, protectedHeader } = await jwtVerify(accessToken, createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)), {
      issuer,
      audience: issuer,
      typ: "at+jwt",
    });
    assert.equal(protectedHeader.alg, "ES256");
    assert.equal(payload.client_id, account.id);
    assert.equal(payload.scope, "certificate-issuance api-integration", "<resource>/.default is every scope");
    assert.equal(payload.exp - payload.iat, 900);
  }

  test("the Entra-style discovery document is what MSAL requires, for the tenant in any case", async () => {
    for (const path of [`/${TENANT_ID}/v2.0/.well-known/openid-configuration`, `/${TENANT_ID.toLowerCase()}/.well-known/openid-configuration`]) {
      const { status, body } = await worker.json(path);
      assert.equal(status, 200, path);
      assert.equal(body.issuer, issuer);
      assert.equal(body.token_endpoint, `${issuer}/${TENANT_ID}/oauth2/v2.0/token`);
      assert.equal(body.authorization_endpoint, `${issuer}/${TENANT_ID}/oauth2/v2.0/authorize`);
      assert.equal(body.jwks_uri, `${issuer}/.well-known/jwks.json`);
    }
    assert.equal((await worker.json("/another-tenant/v2.0/.well-known/openid-configuration")).status, 404);
    const authorize = await worker.json(`/${TENANT_ID}/oauth2/v2.0/authorize?response_type=code`);
    assert.equal(authorize.status, 400);
    assert.match(authorize.body.error_description, /only the client credentials grant/);
  });

  test("@azure/msal-node: acquireTokenByClientCredential with a client assertion; the second call is served from its cache", async () => {
    let assertions = 0;
    const app = new ConfidentialClientApplication({
      auth: {
        clientId: account.id,
        authority: `${issuer}/${TENANT_ID}`,
        knownAuthorities: [new URL(issuer).host],
        clientAssertion: async () => {
          assertions++;
          return workloadToken();
        },
      },
    });
    const first = await app.acquireTokenByClientCredential({ scopes: ["https://sts.example.com/.default"] });
    assert.equal(first.tokenType, "Bearer");
    assert.equal(first.fromCache, false);
    await assertMinted(first.accessToken);
    const second = await app.acquireTokenByClientCredential({ scopes: ["https://sts.example.com/.default"] });
    assert.equal(second.fromCache, true);
    assert.equal(second.accessToken, first.accessToken);
    assert.equal(assertions, 2, "MSAL builds the assertion on every call, cached or not");
  });

  test("@azure/msal-node: a refused assertion is MSAL's error with edge-sts's error code and words", async () => {
    const app = new ConfidentialClientApplication({
      auth: {
        clientId: account.id,
        authority: `${issuer}/${TENANT_ID}`,
        knownAuthorities: [new URL(issuer).host],
        clientAssertion: await sign(key, idp.claims({ sub: SUBJECT, aud: "api://someone-else" })),
      },
    });
    await assert.rejects(app.acquireTokenByClientCredential({ scopes: ["https://sts.example.com/.default"] }), (error) => {
      assert.equal(error.errorCode, "invalid_client");
      assert.match(error.errorMessage, /aud .* does not contain the account's audience/);
      return true;
    });
  });

  test("@azure/identity: ClientAssertionCredential", async () => {
    const credential = new ClientAssertionCredential(TENANT_ID, account.id, workloadToken, {
      authorityHost: issuer,
      disableInstanceDiscovery: true,
    });
    const token = await credential.getToken("https://sts.example.com/.default");
    assert.ok(token.expiresOnTimestamp > Date.now() + 800_000, "expires in about 15 minutes");
    await assertMinted(token.token);
  });

  test("@azure/identity: WorkloadIdentityCredential from AKS's environment variables and a token file", async () => {
    const tokenFile = path.join(scratch, "azure-identity-token");
    writeFileSync(tokenFile, await workloadToken());
    const saved = { ...process.env };
    Object.assign(process.env, {
      AZURE_AUTHORITY_HOST: issuer,
      AZURE_TENANT_ID: TENANT_ID,
      AZURE_CLIENT_ID: account.id,
      AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    });
    try {
      const credential = new WorkloadIdentityCredential({ disableInstanceDiscovery: true });
      const token = await credential.getToken(["https://sts.example.com/.default"]);
      await assertMinted(token.token);
    } finally {
      for (const name of ["AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"]) {
        if (name in saved) process.env[name] = saved[name];
        else delete process.env[name];
      }
    }
  });
});
