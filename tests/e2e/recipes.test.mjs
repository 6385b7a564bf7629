// docs/recipes/: every block marked `test:<name>` runs here as written. Accounts are created
// through the admin API; YAML is parsed and checked for the fields that matter; shell scripts
// run in bash (or sh, as the container would) and JavaScript in its own Node process with the
// real libraries; each with a token of the platform's real shape (header, claims, lifetime),
// signed by a key that a stand-in for the platform's issuer serves at the platform's real URLs
// (the harness's `outbound`, so nothing leaves the machine).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { webcrypto } from "node:crypto";
import { parse as parseYaml } from "yaml";
import { decodeJwt } from "jose";
import { DEFAULT_VARS, createAccount, freePort, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, now, sign } from "./idp.mjs";
import { localTls } from "./tls.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RECIPES = path.join(ROOT, "docs/recipes");
const ADMIN_TOKEN = "e2e-recipes-admin-token-0123456789";
const TENANT_ID = "recipes-tenant";

/** The page's blocks marked `test:<name>`, by name. */
function blocks(page) {
  const text = readFileSync(path.join(RECIPES, page), "utf8");
  const found = {};
  for (const [, name, body] of text.matchAll(/```\w+ test:([\w-]+)\n([\s\S]*?)```/g)) found[name] = body;
  return found;
}

/** A stand-in for a platform's issuer at its real URLs: discovery and its key set. */
function issuerDocs(issuer, jwksUrl, keys) {
  return {
    [`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`]: { issuer, jwks_uri: jwksUrl },
    [jwksUrl]: { keys: keys.map((key) => key.publicJwk) },
  };
}

function outboundFrom(documents) {
  return (request) => {
    const document = documents[new URL(request.url).href];
    return document
      ? Response.json(document, { headers: { "cache-control": "max-age=3600" } })
      : new Response("not served here", { status: 404 });
  };
}

const scratch = mkdtempSync(path.join(tmpdir(), "edge-sts-recipes-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
const file = (name, content) => {
  const at = path.join(scratch, name);
  writeFileSync(at, content);
  return at;
};
// Asynchronous, so that this process's stand-ins (the outbound issuer documents, GitHub's token
// service) go on answering while the script runs.
const run = promisify(execFile);
const bash = async (script, env, shell = "bash") =>
  (await run(shell, ["-c", script], { cwd: scratch, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } })).stdout;
const nodeModule = async (code, env) =>
  (await run(process.execPath, ["--input-type=module", "-e", code], { cwd: ROOT, env: { ...process.env, ...env } })).stdout;

const keys = {
  github: await newKey("RS256", "cc413527-173f-5a05-976e-9c52b1d7b431"),
  eks: await newKey("RS256", "eks-5c9b3f"),
  gitlab: await newKey("RS256", "kewiQq9jiC84CvSsJYOB-N6A8WFLSV20Mb-y7IlWDSQ"),
  spire: await newKey("ES256", "spire-jwt-1"),
  aks: await newKey("RS256", "aks-oidc-1"),
  private: await newKey("RS256", "private-cluster-1"),
};
const GITHUB = "https://token.actions.githubusercontent.com";
const EKS = "https://oidc.eks.eu-west-1.amazonaws.com/id/B1D2C3E4F5A6B7C8D9E0F1A2B3C4D5E6";
const AKS = "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/11111111-1111-1111-1111-111111111111/";
const DOCUMENTS = {
  ...issuerDocs(GITHUB, `${GITHUB}/.well-known/jwks`, [keys.github]),
  ...issuerDocs(EKS, `${EKS}/keys`, [keys.eks]),
  ...issuerDocs("https://gitlab.com", "https://gitlab.com/oauth/discovery/keys", [keys.gitlab]),
  ...issuerDocs(AKS, `${AKS}openid/v1/jwks`, [keys.aks]),
  // A trust bundle in SPIFFE's form: a JWT-SVID key, and an X.509-SVID key beside it.
  "https://spire-bundle.example.org/bundle": {
    keys: [
      { ...keys.spire.publicJwk, use: "jwt-svid" },
      { kty: "EC", crv: "P-256", use: "x509-svid", x: keys.spire.publicJwk.x, y: keys.spire.publicJwk.y, x5c: ["MIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUA"] },
    ],
    spiffe_sequence: 12,
    spiffe_refresh_hint: 300,
  },
};

/** GitHub Actions' OIDC token for a job: RS256 with x5t, its claims, 5 minutes. */
function githubToken(aud, overrides = {}) {
  const iat = now();
  return sign(keys.github, {
    jti: crypto.randomUUID(),
    sub: "repo:acme/app:environment:production",
    environment: "production",
    aud,
    ref: "refs/heads/main",
    sha: "d6e4b5a3c2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7",
    repository: "acme/app",
    repository_owner: "acme",
    repository_owner_id: "1234567",
    repository_id: "7654321",
    repository_visibility: "private",
    actor: "octocat",
    actor_id: "583231",
    workflow: "deploy",
    run_id: "9876543210",
    run_number: "42",
    run_attempt: "1",
    runner_environment: "github-hosted",
    event_name: "push",
    ref_type: "branch",
    head_ref: "",
    base_ref: "",
    job_workflow_ref: "acme/app/.github/workflows/deploy.yml@refs/heads/main",
    iss: GITHUB,
    nbf: iat - 600,
    iat,
    exp: iat + 300,
    ...overrides,
  }, { x5t: "cc413527173f5a05976e9c52b1d7b431" });
}

/** A kubelet-projected service-account token: RS256, aud an array, kubernetes.io claims. */
function kubeletToken(key, iss, { aud, sub, lifetime }) {
  const iat = now();
  const [, , namespace, name] = sub.split(":");
  return sign(key, {
    aud: [aud],
    exp: iat + lifetime,
    iat,
    iss,
    jti: crypto.randomUUID(),
    "kubernetes.io": {
      namespace,
      node: { name: "ip-10-0-1-23.eu-west-1.compute.internal", uid: crypto.randomUUID() },
      pod: { name: `${name}-5f7d8c9b6-x2k4p`, uid: crypto.randomUUID() },
      serviceaccount: { name, uid: crypto.randomUUID() },
    },
    nbf: iat,
    sub,
  });
}

const signingJwk = await newSigningKey();

describe("docs/recipes", () => {
  let worker;
  const admin = (p, body) =>
    worker.json(p, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
  /** Creates the page's `test:account`, as written. */
  async function registerAccount(page) {
    const created = await admin("/v1/serviceaccounts", blocks(page).account);
    assert.equal(created.status, 201, `${page}: ${JSON.stringify(created.body)}`);
    return created.body;
  }
  const exchange = (assertion) =>
    worker.json("/oauth2/token", {
      method: "POST",
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
    });
  const mintedFor = (accessToken, account) => {
    const claims = decodeJwt(accessToken);
    assert.equal(claims.client_id, account.id);
    assert.equal(claims.iss, worker.url);
    return claims;
  };

  before(async () => {
    const port = await freePort();
    worker = await startWorker(
      {
        ...DEFAULT_VARS,
        ISSUER: `http://127.0.0.1:${port}`,
        ALLOW_HTTP_LOOPBACK: "true",
        TENANT_ID,
        SIGNING_KEYS: JSON.stringify({ keys: [signingJwk] }),
        ADMIN_TOKEN,
      },
      { port, outbound: outboundFrom(DOCUMENTS) },
    );
  });
  after(() => worker?.dispose());

  test("every page is listed in the index, and every marked block is used below", () => {
    const index = readFileSync(path.join(RECIPES, "README.md"), "utf8");
    for (const page of ["github-actions.md", "kubernetes.md", "gitlab.md", "spiffe.md", "vcert.md", "microsoft.md", "google-auth.md", "resource-server.md"]) {
      assert.match(index, new RegExp(`\\(${page.replace(".", "\\.")}\\)`), page);
    }
  });

  describe("GitHub Actions", () => {
    let account;
    let tokenService;
    const requestToken = "runtime-request-token-for-the-test";
    before(async () => {
      account = await registerAccount("github-actions.md");
      // GitHub's token service as the runner sees it: ACTIONS_ID_TOKEN_REQUEST_URL answers
      // {"value": "<JWT>"} to the job's request token; `audience` sets the token's aud.
      tokenService = http.createServer(async (request, response) => {
        const url = new URL(request.url, "http://x");
        if (request.headers.authorization?.toLowerCase() !== `bearer ${requestToken}`) {
          response.statusCode = 401;
          response.end("{}");
          return;
        }
        const aud = url.searchParams.get("audience") ?? "https://github.com/acme";
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ count: 1, value: await githubToken(aud) }));
      });
      await new Promise((resolve) => tokenService.listen(0, "127.0.0.1", resolve));
    });
    after(() => tokenService?.close());
    const runnerEnv = () => ({
      ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${tokenService.address().port}/token?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
      GITHUB_ENV: file(`github-env-${Math.random().toString(36).slice(2)}`, ""),
    });
    /** GITHUB_ENV's KEY=VALUE and KEY<<DELIMITER forms. */
    const readGithubEnv = (at) => {
      const values = {};
      const lines = readFileSync(at, "utf8").split("\n");
      for (let i = 0; i < lines.length; i++) {
        const heredoc = /^([^=<]+)<<(.+)$/.exec(lines[i]);
        if (heredoc) {
          const end = lines.indexOf(heredoc[2], i + 1);
          values[heredoc[1]] = lines.slice(i + 1, end).join("\n");
          i = end;
        } else if (lines[i].includes("=")) {
          const at = lines[i].indexOf("=");
          values[lines[i].slice(0, at)] = lines[i].slice(at + 1);
        }
      }
      return values;
    };

    test("the workflow: id-token: write, the environment of the account's subject, its curl steps as written", async () => {
      const workflow = parseYaml(blocks("github-actions.md").workflow);
      assert.equal(workflow.permissions["id-token"], "write");
      const job = workflow.jobs.deploy;
      assert.ok(account.subject.endsWith(`:environment:${job.environment}`), "the job's environment is the account's subject");
      assert.equal(workflow.env.STS_AUDIENCE, account.audience, "the token is asked for the account's audience");
      const env = { ...runnerEnv(), STS_URL: worker.url, STS_AUDIENCE: workflow.env.STS_AUDIENCE };
      for (const id of ["oidc", "sts"]) {
        const step = job.steps.find((candidate) => candidate.id === id);
        const output = await bash(step.run, { ...env, ...readGithubEnv(env.GITHUB_ENV) });
        assert.match(output, /::add-mask::/, `step ${id} masks what it learns`);
      }
      const { ACCESS_TOKEN } = readGithubEnv(env.GITHUB_ENV);
      const claims = mintedFor(ACCESS_TOKEN, account);
      assert.equal(claims.federated.sub, "repo:acme/app:environment:production");
    });

    test("the github-script step, with the real @actions/core", async () => {
      const [step] = parseYaml(blocks("github-actions.md")["github-script"]);
      assert.match(step.uses, /^actions\/github-script@v\d+$/);
      assert.equal(step.env.STS_AUDIENCE, account.audience);
      const env = { ...runnerEnv(), STS_URL: worker.url, STS_AUDIENCE: step.env.STS_AUDIENCE };
      await nodeModule(`import * as core from "@actions/core";\n${step.with.script}`, env);
      const { ACCESS_TOKEN } = readGithubEnv(env.GITHUB_ENV);
      mintedFor(ACCESS_TOKEN, account);
    });

    test("without audience=, GitHub's default aud is refused with audience_mismatch", async () => {
      const answer = await exchange(await githubToken("https://github.com/acme"));
      assert.deepEqual([answer.status, answer.body.reason], [400, "audience_mismatch"]);
    });
  });

  describe("Kubernetes", () => {
    let account;
    before(async () => {
      account = await registerAccount("kubernetes.md");
    });

    test("the CronJob: a projected token for the account's audience, ≤ 2 h, and its script as written", async () => {
      const cronjob = parseYaml(blocks("kubernetes.md").cronjob);
      const pod = cronjob.spec.jobTemplate.spec.template.spec;
      const [container] = pod.containers;
      const projected = pod.volumes.find((volume) => volume.projected).projected.sources[0].serviceAccountToken;
      assert.equal(projected.audience, account.audience);
      assert.ok(projected.expirationSeconds >= 600 && projected.expirationSeconds <= 7200, projected.expirationSeconds);
      const env = Object.fromEntries(container.env.map(({ name, value }) => [name, value]));
      const mount = container.volumeMounts.find((volumeMount) => volumeMount.name === pod.volumes.find((volume) => volume.projected).name);
      assert.equal(env.TOKEN_FILE, `${mount.mountPath}/${projected.path}`);
      assert.equal(env.STS_URL, account.audience);
      assert.deepEqual(container.command, ["/bin/sh", "-c"]);
      const token = await kubeletToken(keys.eks, EKS, { aud: projected.audience, sub: "system:serviceaccount:ci:deployer", lifetime: projected.expirationSeconds });
      const output = await bash(container.args[0], { STS_URL: worker.url, TOKEN_FILE: file("k8s-token", token) }, "sh");
      assert.match(output, /got an access token for certificate-issuance/);
    });

    test("the default token (the API server's audience, a year) is refused", async () => {
      const kubelet = (aud, lifetime) => kubeletToken(keys.eks, EKS, { aud, sub: "system:serviceaccount:ci:deployer", lifetime });
      const longLived = await exchange(await kubelet(account.audience, 365 * 24 * 3600));
      assert.deepEqual([longLived.status, longLived.body.reason], [400, "lifetime_too_long"]);
      const apiServers = await exchange(await kubelet("https://kubernetes.default.svc", 3600));
      assert.deepEqual([apiServers.status, apiServers.body.reason], [400, "audience_mismatch"]);
    });

    test("a private cluster: the inline key set, registered by the page's script with a stand-in kubectl", async () => {
      const bin = mkdtempSync(path.join(scratch, "bin-"));
      const kubectl = path.join(bin, "kubectl");
      writeFileSync(kubectl, `#!/bin/sh\n[ "$*" = "get --raw /openid/v1/jwks" ] || exit 2\necho '${JSON.stringify({ keys: [keys.private.publicJwk] })}'\n`);
      chmodSync(kubectl, 0o755);
      const output = await bash(blocks("kubernetes.md")["private-cluster"], {
        PATH: `${bin}:${process.env.PATH}`,
        STS: worker.url,
        auth: `Authorization: Bearer ${ADMIN_TOKEN}`,
      });
      const created = JSON.parse(output);
      assert.ok(created.id, output);
      assert.deepEqual(created.jwks.keys.map((key) => key.kid), [keys.private.kid]);
      const token = await kubeletToken(keys.private, created.issuerURL, { aud: created.audience, sub: created.subject, lifetime: 3600 });
      const answer = await exchange(token);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      mintedFor(answer.body.access_token, created);
    });
  });

  describe("GitLab CI", () => {
    let account;
    before(async () => {
      account = await registerAccount("gitlab.md");
    });
    /** GitLab's ID token: RS256, its claims, valid for the job's timeout. */
    const gitlabToken = (aud, lifetime) => {
      const iat = now();
      return sign(keys.gitlab, {
        namespace_id: "4242",
        namespace_path: "acme",
        project_id: "9001",
        project_path: "acme/app",
        user_id: "17",
        user_login: "alice",
        user_email: "alice@example.com",
        user_access_level: "maintainer",
        pipeline_id: "1200",
        pipeline_source: "push",
        job_id: "30001",
        ref: "main",
        ref_type: "branch",
        ref_path: "refs/heads/main",
        ref_protected: "true",
        runner_id: 12,
        runner_environment: "gitlab-hosted",
        sha: "714a629c0b401fdce83e847fc9589983fc6f46bc",
        project_visibility: "private",
        ci_config_ref_uri: "gitlab.com/acme/app//.gitlab-ci.yml@refs/heads/main",
        ci_config_sha: "714a629c0b401fdce83e847fc9589983fc6f46bc",
        jti: crypto.randomUUID(),
        iat,
        nbf: iat - 5,
        exp: iat + lifetime,
        iss: "https://gitlab.com",
        sub: "project_path:acme/app:ref_type:branch:ref:main",
        aud,
      });
    };

    test("the job: id_tokens for the account's audience, a timeout ≤ 2 h, its script as written", async () => {
      const { deploy } = parseYaml(blocks("gitlab.md")["gitlab-ci"]);
      assert.equal(deploy.id_tokens.STS_ID_TOKEN.aud, account.audience);
      const [, amount, unit] = /^(\d+)\s*(h|m)$/.exec(deploy.timeout);
      const seconds = Number(amount) * (unit === "h" ? 3600 : 60);
      assert.ok(seconds <= 7200, deploy.timeout);
      const output = await bash(deploy.script.join("\n"), { STS_URL: worker.url, STS_ID_TOKEN: await gitlabToken(account.audience, seconds + 300) });
      assert.match(output, /got an edge-sts access token/);
    });

    test("a job timeout of 3 hours makes the token too long-lived", async () => {
      const answer = await exchange(await gitlabToken(account.audience, 3 * 3600));
      assert.deepEqual([answer.status, answer.body.reason], [400, "lifetime_too_long"]);
    });
  });

  test("SPIFFE: a JWT-SVID verified against a bundle in SPIFFE's form, the page's script as written", async () => {
    const account = await registerAccount("spiffe.md");
    const iat = now();
    const svid = await sign(keys.spire, {
      iss: account.issuerURL,
      sub: account.subject,
      aud: [account.audience],
      iat,
      exp: iat + 300,
    });
    const output = await bash(blocks("spiffe.md").exchange, { STS_URL: worker.url, JWT_SVID_FILE: file("jwt_svid.token", svid) });
    assert.match(output, /got an edge-sts access token/);
  });

  test("vcert: the form vcert getcred sends, at the Venafi path the page names", async () => {
    const page = readFileSync(path.join(RECIPES, "vcert.md"), "utf8");
    assert.match(page, /vcert getcred -p vcp \\\n\s+--token-url "https:\/\/sts\.example\.com\/v1\/oauth2\/v2\.0\/\$TENANT_ID\/token" \\\n\s+--external-jwt/);
    const account = await registerAccount("vcert.md");
    const token = await kubeletToken(keys.eks, EKS, { aud: account.audience, sub: account.subject, lifetime: 3600 });
    const answer = await worker.json(`/v1/oauth2/v2.0/${TENANT_ID}/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: token,
      }),
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    mintedFor(answer.body.access_token, account);
  });

  test("google-auth: the credential file and the snippet as written, with the real google-auth-library", async () => {
    const account = await registerAccount("google-auth.md");
    const credentials = JSON.parse(blocks("google-auth.md").credentials);
    assert.equal(credentials.type, "external_account");
    assert.deepEqual(credentials.scopes, account.scopes);
    // Pointed at this test's edge-sts and token file; a trailing newline, as files have.
    credentials.token_url = `${worker.url}/oauth2/token`;
    credentials.credential_source.file = file("github-token", `${await githubToken(account.audience, { sub: account.subject, environment: undefined })}\n`);
    const output = await nodeModule(blocks("google-auth.md")["google-auth"], { GOOGLE_APPLICATION_CREDENTIALS: file("credentials.json", JSON.stringify(credentials)) });
    const claims = mintedFor(JSON.parse(output).token, account);
    assert.equal(claims.scope, "certificate-issuance");
  });

  test("a resource server: the jose snippet as written accepts a minted token and refuses others", async () => {
    const account = await admin("/v1/serviceaccounts").then(({ body }) => body.find((candidate) => candidate.issuerURL === GITHUB));
    const minted = await exchange(await githubToken(account.audience, { sub: account.subject }));
    assert.equal(minted.status, 200, JSON.stringify(minted.body));
    const code = blocks("resource-server.md").jose;
    const output = await nodeModule(code, { STS: worker.url, ACCESS_TOKEN: minted.body.access_token });
    assert.deepEqual(JSON.parse(output), { account: account.id, scope: "certificate-issuance" });
    // Signed by edge-sts's own key, but for another audience, or expired: refused.
    const { keys: [published] } = (await worker.json("/.well-known/jwks.json")).body;
    for (const [claims, says] of [[{ aud: "https://elsewhere.example.com" }, /aud/], [{ exp: now() - 60 }, /exp/]]) {
      const forged = await sign(await edgeStsKey(published.kid), { ...decodeJwt(minted.body.access_token), ...claims }, { typ: "at+jwt" });
      await assert.rejects(nodeModule(code, { STS: worker.url, ACCESS_TOKEN: forged }), says);
    }
  });

  test("MSAL and azure-identity: the snippets as written, over https, with AKS's environment", async () => {
    const tls = localTls();
    const caFile = file("ca.pem", tls.ca);
    const port = await freePort();
    const issuer = `https://127.0.0.1:${port}`;
    const secure = await startWorker(
      { ...DEFAULT_VARS, ISSUER: issuer, ALLOW_HTTP_LOOPBACK: "true", TENANT_ID, SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }), ADMIN_TOKEN },
      { tls, port, outbound: outboundFrom(DOCUMENTS) },
    );
    try {
      const account = await createAccount(secure, ADMIN_TOKEN, JSON.parse(blocks("microsoft.md").account));
      const env = {
        AZURE_AUTHORITY_HOST: issuer,
        AZURE_TENANT_ID: TENANT_ID,
        AZURE_CLIENT_ID: account.id,
        AZURE_FEDERATED_TOKEN_FILE: file("azure-token", await kubeletToken(keys.aks, AKS, { aud: account.audience, sub: account.subject, lifetime: 3600 })),
        NODE_EXTRA_CA_CERTS: caFile,
      };
      for (const name of ["azure-identity", "msal"]) {
        const output = await nodeModule(blocks("microsoft.md")[name], env);
        const claims = decodeJwt(JSON.parse(output).token);
        assert.equal(claims.client_id, account.id, name);
        assert.equal(claims.scope, "certificate-issuance api-integration", name);
      }
    } finally {
      await secure.dispose();
    }
  });

  /** edge-sts's signing key, as a key idp.mjs can sign with (the test made SIGNING_KEYS). */
  async function edgeStsKey(kid) {
    return { alg: "ES256", kid, privateKey: await webcrypto.subtle.importKey("jwk", signingJwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]) };
  }
});
