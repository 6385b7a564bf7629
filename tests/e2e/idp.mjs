// A local identity provider on 127.0.0.1 for the end-to-end tests: OIDC discovery, a JWKS,
// and workload tokens signed with Node's own Web Crypto — an implementation independent of
// the worker's — for every algorithm edge-sts accepts.
import http from "node:http";
import { webcrypto } from "node:crypto";

const { subtle } = webcrypto;

/** Web Crypto parameters of each JWS algorithm: [generate/import params, sign params]. */
const ALGORITHMS = {
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  RS384: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" }, { name: "RSASSA-PKCS1-v1_5" }],
  RS512: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }, { name: "RSASSA-PKCS1-v1_5" }],
  PS256: [{ name: "RSA-PSS", hash: "SHA-256" }, { name: "RSA-PSS", saltLength: 32 }],
  PS384: [{ name: "RSA-PSS", hash: "SHA-384" }, { name: "RSA-PSS", saltLength: 48 }],
  PS512: [{ name: "RSA-PSS", hash: "SHA-512" }, { name: "RSA-PSS", saltLength: 64 }],
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  ES384: [{ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }],
  ES512: [{ name: "ECDSA", namedCurve: "P-521" }, { name: "ECDSA", hash: "SHA-512" }],
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
};
export const ALGS = Object.keys(ALGORITHMS);

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
const json64 = (value) => b64url(Buffer.from(JSON.stringify(value)));
export const now = () => Math.floor(Date.now() / 1000);

/** A key pair for `alg`, with `kid`. RSA keys are 2048-bit. */
export async function newKey(alg, kid = `${alg}-${Math.random().toString(36).slice(2, 8)}`) {
  const [params] = ALGORITHMS[alg];
  const generate = params.name.startsWith("RSA")
    ? { ...params, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }
    : params;
  const pair = await subtle.generateKey(generate, true, ["sign", "verify"]);
  const { kty, crv, n, e, x, y } = await subtle.exportKey("jwk", pair.publicKey);
  const publicJwk = Object.fromEntries(Object.entries({ kty, crv, n, e, x, y, kid }).filter(([, v]) => v));
  return { alg, kid, privateKey: pair.privateKey, publicJwk };
}

/** A compact JWS of `claims` with `key`; `header` members override or (null) remove. */
export async function sign(key, claims, header = {}) {
  const protectedHeader = Object.fromEntries(
    Object.entries({ alg: key.alg, kid: key.kid, typ: "JWT", ...header }).filter(([, v]) => v !== null),
  );
  const input = `${json64(protectedHeader)}.${json64(claims)}`;
  const signature = await subtle.sign(ALGORITHMS[key.alg][1], key.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

/**
 * Starts the provider. `idp.keys` is the published key list (change it to rotate);
 * `idp.down = true` makes every request fail with a dropped connection; `idp.requests` counts
 * what was served, by path.
 */
export async function startIdp() {
  const idp = {
    keys: [],
    down: false,
    maxAge: 600,
    requests: {},
  };
  const server = http.createServer((request, response) => {
    idp.requests[request.url] = (idp.requests[request.url] ?? 0) + 1;
    if (idp.down) {
      request.socket.destroy();
      return;
    }
    response.setHeader("content-type", "application/json");
    response.setHeader("cache-control", `max-age=${idp.maxAge}`);
    if (request.url === "/.well-known/openid-configuration") {
      response.end(JSON.stringify({ issuer: idp.url, jwks_uri: `${idp.url}/jwks` }));
    } else if (request.url === "/jwks") {
      response.end(JSON.stringify({ keys: idp.keys.map((key) => key.publicJwk) }));
    } else {
      response.statusCode = 404;
      response.end("{}");
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  idp.url = `http://127.0.0.1:${server.address().port}`;
  idp.close = () => new Promise((resolve) => server.close(resolve));
  /** Claims of a valid token for `sub`, issued now for 10 minutes. */
  idp.claims = (overrides = {}) => ({
    iss: idp.url,
    sub: "repo:acme/app:ref:refs/heads/main",
    aud: "https://sts.example.com",
    iat: now() - 5,
    exp: now() + 600,
    jti: `jti-${Math.random().toString(36).slice(2)}`,
    ...overrides,
  });
  return idp;
}
