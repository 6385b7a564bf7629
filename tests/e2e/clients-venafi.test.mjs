// Venafi's own tools, whose Go module sources cannot be fetched on this machine: their exact
// requests replayed from their source, and their response handling applied to edge-sts's
// answers, against the worker in workerd.
//
// - vcert `getcred -p vcp --token-url … --external-jwt …`: Venafi/vcert
//   pkg/venafi/cloud/connector.go (the service-account token request: a form of grant_type,
//   client_assertion_type and client_assertion; 200 expected; token_type compared
//   case-insensitively with "Bearer"; expires_in an integer), pkg/venafi/cloud/oauth.go
//   (parseAccessTokenResponse: on any other status, the `errors` array printed as
//   "Error Code: %d Error: %s") and pkg/venafi/cloud/error.go (parseResponseErrors).
// - Venafi's Terraform provider: jetstack/terraform-provider-tlspc internal/tlspc/tlspc.go
//   (CreateServiceAccount, GetServiceAccount, UpdateServiceAccount, DeleteServiceAccount: the
//   `tppl-api-key` header, the ServiceAccount struct as the JSON body, an `id` required in
//   create and read answers, exactly 204 for PATCH and DELETE).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, sign, startIdp } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-admin-token-venafi-0123456789";
const TENANT_ID = "0b6f4e2c-8a1d-4c3e-9f57-2d6a1b8c9e10";
const AUDIENCE = "https://sts.example.com";
const SUBJECT = "system:serviceaccount:cert-manager:venafi-issuer";

describe("Venafi's tools against edge-sts (requests replayed from their source)", () => {
  let worker;
  let idp;
  let key;

  before(async () => {
    idp = await startIdp();
    key = await newKey("RS256", "cluster");
    idp.keys = [key];
    worker = await startWorker({
      ...DEFAULT_VARS,
      ISSUER: "https://sts.example.com",
      TENANT_ID,
      ALLOW_HTTP_LOOPBACK: "true",
      SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
      ADMIN_TOKEN,
    });
  });
  after(async () => {
    await worker?.dispose();
    await idp?.close();
  });

  /** terraform-provider-tlspc's doRequest: JSON body, tppl-api-key, its User-Agent. */
  const terraform = (method, path, body) =>
    worker.fetch(path, {
      method,
      headers: { "content-type": "application/json", "tppl-api-key": ADMIN_TOKEN, "user-agent": "terraform-provider-tlspc/0.1.0" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  /** The provider's ServiceAccount struct as encoding/json writes it (omitempty members left out when empty). */
  const serviceAccount = (fields) => {
    const sa = { id: fields.id, name: fields.name, owner: fields.owner ?? "", scopes: fields.scopes };
    for (const name of ["credentialLifetime", "publicKey", "authenticationType", "ociAccountName", "ociRegistryToken", "jwksURI", "issuerURL", "audience", "subject", "applications"]) {
      if (fields[name]) sa[name] = fields[name];
    }
    if (!sa.id) delete sa.id;
    return sa;
  };

  test("Terraform provider: create, read, update (PATCH → 204), delete (→ 204)", async () => {
    const desired = {
      name: "cert-manager venafi issuer",
      scopes: ["certificate-issuance"],
      authenticationType: "rsaKeyFederated",
      issuerURL: idp.url,
      jwksURI: `${idp.url}/jwks`,
      audience: AUDIENCE,
      subject: SUBJECT,
    };
    // CreateServiceAccount: the answer must decode into the struct with a non-empty id.
    const created = await terraform("POST", "/v1/serviceaccounts", serviceAccount(desired));
    const createdBody = JSON.parse(await created.text());
    assert.ok(createdBody.id, `Didn't create a service account; response was: ${JSON.stringify(createdBody)}`);
    // GetServiceAccount: likewise.
    const read = JSON.parse(await (await terraform("GET", `/v1/serviceaccounts/${createdBody.id}`)).text());
    assert.equal(read.id, createdBody.id);
    assert.equal(read.subject, SUBJECT);
    assert.equal(read.companyId, TENANT_ID);
    // UpdateServiceAccount: the whole struct again (id emptied, so omitted), and exactly 204.
    const updated = await terraform("PATCH", `/v1/serviceaccounts/${createdBody.id}`, serviceAccount({ ...desired, name: "renamed by terraform", owner: "" }));
    assert.equal(updated.status, 204, `Failed to update Service Account; response was: ${await updated.text()}`);
    const reread = JSON.parse(await (await terraform("GET", `/v1/serviceaccounts/${createdBody.id}`)).text());
    assert.equal(reread.name, "renamed by terraform");
    // DeleteServiceAccount: exactly 204 (the provider sends its JSON content type, no body).
    const deleted = await terraform("DELETE", `/v1/serviceaccounts/${createdBody.id}`);
    assert.equal(deleted.status, 204, `Failed to delete Service Account; response was: ${await deleted.text()}`);
  });

  // jetstack-secure's end-to-end script (hack/e2e/test.sh) and scripts like it: the catalogue with
  // `readableName`s, Venafi's federated Kubernetes scope, the list as a JSON array whose
  // accounts carry `companyId`.
  test("scripts written for Venafi's API: the scope catalogue, the list as an array, companyId", async () => {
    const scopes = JSON.parse(await (await terraform("GET", "/v1/serviceaccounts/scopes")).text());
    assert.ok(Array.isArray(scopes));
    const federated = scopes.find((scope) => scope.id === "kubernetes-discovery-federated");
    assert.deepEqual(federated, {
      id: "kubernetes-discovery-federated",
      readableName: "Kubernetes Discovery (federated)",
      authenticationType: "rsaKeyFederated",
      authenticationTypes: ["rsaKeyFederated"],
    });
    const created = await terraform("POST", "/v1/serviceaccounts", serviceAccount({
      name: "venafi-kubernetes-agent",
      scopes: ["kubernetes-discovery-federated"],
      authenticationType: "rsaKeyFederated",
      issuerURL: idp.url,
      audience: "venafi-cloud",
      subject: "system:serviceaccount:venafi:venafi-kubernetes-agent",
    }));
    assert.equal(created.status, 201);
    const list = JSON.parse(await (await terraform("GET", "/v1/serviceaccounts")).text());
    assert.ok(Array.isArray(list));
    const agent = list.find((account) => account.name === "venafi-kubernetes-agent");
    assert.equal(agent.companyId, TENANT_ID);
    assert.deepEqual(agent.scopes, ["kubernetes-discovery-federated"]);
  });

  test("vcert getcred --external-jwt: a token, and on a refusal the errors array it prints", async () => {
    const created = await terraform("POST", "/v1/serviceaccounts", serviceAccount({
      name: "vcert",
      scopes: ["certificate-issuance"],
      authenticationType: "rsaKeyFederated",
      issuerURL: idp.url,
      audience: AUDIENCE,
      subject: SUBJECT,
    }));
    assert.equal(created.status, 201);
    // vcert's token request, as connector.go builds it.
    const getcred = (jwt) =>
      worker.fetch(`/v1/oauth2/v2.0/${TENANT_ID}/token`, {
        method: "POST",
        headers: { "user-agent": "vcert/v5.8.0", "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "client_credentials",
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: jwt,
        }).toString(),
      });
    /** parseAccessTokenResponse(http.StatusOK, …) and the token-type check, as vcert has them. */
    const vcertParse = async (response) => {
      const text = await response.text();
      if (response.status === 200) {
        const token = JSON.parse(text);
        if (token.token_type.toLowerCase() !== "bearer") throw new Error(`token type is not Bearer: ${token.token_type}`);
        if (!Number.isInteger(token.expires_in)) throw new Error("expires_in does not decode into a Go int");
        return token;
      }
      const { errors } = JSON.parse(text);
      let message = `unexpected status code on Venafi Cloud Authentication. Status: ${response.status}\n`;
      for (const error of errors) {
        if (!Number.isInteger(error.code)) throw new Error("errors[].code does not decode into a Go int");
        message += `Error Code: ${error.code} Error: ${error.message}\n`;
      }
      throw new Error(message);
    };
    const token = await vcertParse(await getcred(await sign(key, idp.claims({ sub: SUBJECT }))));
    assert.equal(token.expires_in, 900);
    await assert.rejects(vcertParse(await getcred(await sign(key, idp.claims({ sub: SUBJECT, aud: "wrong" })))), (error) => {
      assert.match(error.message, /Status: 401/);
      assert.match(error.message, /Error Code: 1014 Error: aud \['wrong'\] does not contain the account's audience/);
      return true;
    });
  });
});
