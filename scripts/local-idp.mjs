// A local identity provider for trying edge-sts by hand (the README's walkthrough).
//
//   npm run idp                        serves http://127.0.0.1:9000 (IDP_PORT=… for another)
//   curl -s "http://127.0.0.1:9000/token?sub=repo:acme/app:ref:refs/heads/main&aud=https://sts.example.com"
//
// It publishes OIDC discovery and a JWKS with one ES256 key, and signs a workload token (10
// minutes unless `lifetime=` says otherwise) for any sub and aud asked of /token; `claims=` adds
// claims (URL-encoded JSON). The key is kept in .local-idp/key.json (gitignored) and named by its
// RFC 7638 thumbprint, so restarting the provider keeps every cached key set valid; delete the
// folder for a new key (its new kid then makes edge-sts fetch the new set at once).
// Development only: anyone who can reach it gets tokens.
import http from "node:http";
import { createHash, webcrypto } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { now, sign } from "../tests/e2e/idp.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const KEY_FILE = path.join(ROOT, ".local-idp", "key.json");
const port = Number(process.env.IDP_PORT ?? 9000);
const issuer = `http://127.0.0.1:${port}`;
const ES256 = { name: "ECDSA", namedCurve: "P-256" };

/** The provider's key: the one kept on disk, or a new one, saved. */
async function loadKey() {
  let jwk;
  if (existsSync(KEY_FILE)) {
    jwk = JSON.parse(readFileSync(KEY_FILE, "utf8"));
  } else {
    const pair = await webcrypto.subtle.generateKey(ES256, true, ["sign", "verify"]);
    jwk = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
    mkdirSync(path.dirname(KEY_FILE), { recursive: true });
    writeFileSync(KEY_FILE, JSON.stringify(jwk), { mode: 0o600 });
  }
  const { kty, crv, x, y } = jwk;
  // RFC 7638: the required members in lexicographic order, SHA-256, base64url.
  const kid = createHash("sha256").update(JSON.stringify({ crv, kty, x, y })).digest("base64url");
  const privateKey = await webcrypto.subtle.importKey("jwk", jwk, ES256, false, ["sign"]);
  return { alg: "ES256", kid, privateKey, publicJwk: { kty, crv, x, y, kid, alg: "ES256", use: "sig" } };
}

const key = await loadKey();

const server = http.createServer(async (request, response) => {
  const url = new URL(request.url, issuer);
  response.setHeader("content-type", "application/json");
  if (url.pathname === "/.well-known/openid-configuration") {
    response.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
  } else if (url.pathname === "/jwks") {
    response.end(JSON.stringify({ keys: [key.publicJwk] }));
  } else if (url.pathname === "/token") {
    const sub = url.searchParams.get("sub") ?? "repo:acme/app:ref:refs/heads/main";
    const aud = url.searchParams.get("aud") ?? "https://sts.example.com";
    const lifetime = Number(url.searchParams.get("lifetime") ?? 600);
    let extra = {};
    try {
      extra = JSON.parse(url.searchParams.get("claims") ?? "{}");
    } catch {
      response.statusCode = 400;
      response.end(JSON.stringify({ error: "claims= must be URL-encoded JSON" }));
      return;
    }
    const iat = now();
    const token = await sign(key, { iss: issuer, sub, aud, iat, exp: iat + lifetime, jti: crypto.randomUUID(), ...extra });
    response.setHeader("content-type", "text/plain");
    response.end(token + "\n");
  } else {
    response.statusCode = 404;
    response.end(JSON.stringify({ error: "not_found", paths: ["/.well-known/openid-configuration", "/jwks", "/token?sub=…&aud=…&lifetime=…&claims=…"] }));
  }
});
server.listen(port, "127.0.0.1", () => {
  console.log(`local identity provider: issuer ${issuer} (key ${key.kid}, kept in .local-idp/key.json)`);
  console.log(`  token: curl -s '${issuer}/token?sub=repo:acme/app:ref:refs/heads/main&aud=https://sts.example.com'`);
});
