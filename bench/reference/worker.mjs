// The reference: the same exchange as edge-sts, written the way a Workers user would, in
// JavaScript with jose (createRemoteJWKSet, jwtVerify, SignJWT). Same account records and KV
// layout, the same checks of SPEC.md, the same ES256 minting — so `npm run bench` can put the
// two side by side. Only the RFC 7523 form is wired up: the bench uses that one. Not deployed.
import { createRemoteJWKSet, decodeJwt, importJWK, jwtVerify, SignJWT, errors } from "jose";

const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const ACCOUNT_CACHE_MS = 10_000; // as edge-sts: SPEC.md lets an isolate keep an account 10 s
const jwksSets = new Map(); // JWKS URL → jose RemoteJWKSet (it caches keys itself)
const accountCache = new Map(); // KV key → [value, readAt]
let signer; // { key, kid }

const json = (body, status = 200, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const refuse = (reason, description) =>
  json({ error: "invalid_grant", error_description: description, reason }, 400);

async function kvJson(env, key) {
  const cached = accountCache.get(key);
  if (cached && Date.now() - cached[1] < ACCOUNT_CACHE_MS) return cached[0];
  const value = await env.ACCOUNTS.get(key, "json");
  accountCache.set(key, [value, Date.now()]);
  return value;
}

async function sha256url(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function globMatch(pattern, text) {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`, "s").test(text);
}

async function findAccount(env, iss, sub) {
  const index = await kvJson(env, `issuer:${await sha256url(iss)}`);
  const matches = { exact: [], pattern: [] };
  for (const entry of index?.accounts ?? []) {
    const rule = entry.subject !== undefined ? ["exact", entry.subject === sub] : ["pattern", globMatch(entry.subjectPattern, sub)];
    if (!rule[1]) continue;
    const account = await kvJson(env, `account:${entry.id}`);
    if (account && account.issuerURL === iss) matches[rule[0]].push(account);
  }
  const found = matches.exact.length ? matches.exact : matches.pattern;
  return found.length === 1 ? found[0] : found.length ? "ambiguous" : null;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return json({ status: "ok" }, 200, { "cache-control": "no-store" });
    if (url.pathname !== "/oauth2/token" || request.method !== "POST") return json({ error: "not_found" }, 404);
    const form = new URLSearchParams(await request.text());
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer" || !form.get("assertion")) {
      return json({ error: "invalid_request", error_description: "grant_type and assertion are required" }, 400);
    }
    const assertion = form.get("assertion");
    if (assertion.length > 16 * 1024) return refuse("token_too_large", "the token is over 16 KiB");
    let claims;
    try {
      claims = decodeJwt(assertion);
    } catch {
      return refuse("malformed_token", "the token is not a JWT");
    }
    if (typeof claims.iss !== "string" || typeof claims.sub !== "string") return refuse("missing_claim", "iss and sub are required");
    const account = await findAccount(env, claims.iss, claims.sub);
    if (account === null) return refuse("no_matching_account", "no service account matches");
    if (account === "ambiguous") return refuse("ambiguous_account", "several accounts match");

    let jwks = jwksSets.get(account.jwksURI);
    if (!jwks) {
      jwks = createRemoteJWKSet(new URL(account.jwksURI), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 3_600_000 });
      jwksSets.set(account.jwksURI, jwks);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, jwks, {
        algorithms: ALGORITHMS,
        issuer: account.issuerURL,
        audience: account.audience,
        clockTolerance: Number(env.CLOCK_SKEW_SECONDS ?? 60),
        requiredClaims: ["iss", "sub", "aud", "exp", "iat"],
      }));
    } catch (error) {
      const reason = error instanceof errors.JWTExpired ? "token_expired" : error instanceof errors.JWSSignatureVerificationFailed ? "bad_signature" : "invalid_claim";
      return refuse(reason, error.message);
    }
    if (payload.exp - payload.iat > 7200) return refuse("lifetime_too_long", "exp − iat is over 2 hours");
    const subjectOk = account.subject !== undefined ? account.subject === payload.sub : globMatch(account.subjectPattern, payload.sub);
    if (!subjectOk) return refuse("subject_mismatch", "sub does not match");
    for (const [name, pattern] of Object.entries(account.claims ?? {})) {
      const value = payload[name];
      if (!["string", "boolean", "number"].includes(typeof value) || !globMatch(pattern, String(value))) return refuse("claim_mismatch", `claim ${name}`);
    }
    if (!account.enabled) return refuse("account_disabled", "the account is disabled");
    const scope = account.scopes.join(" ");

    if (!signer) {
      const jwk = JSON.parse(env.SIGNING_KEYS).keys[0];
      signer = { key: await importJWK({ ...jwk, alg: "ES256" }, "ES256"), kid: jwk.kid };
    }
    const now = Math.floor(Date.now() / 1000);
    const jti = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16)))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const issuer = env.ISSUER || url.origin;
    const accessToken = await new SignJWT({ scope, client_id: account.id, federated: { iss: payload.iss, sub: payload.sub, jti: payload.jti } })
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: signer.kid })
      .setIssuer(issuer)
      .setSubject(account.id)
      .setAudience(issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 900)
      .setJti(jti)
      .sign(signer.key);
    console.log(JSON.stringify({ event: "token_request", outcome: "issued", account: account.id, iss: payload.iss, sub: payload.sub, jti: payload.jti }));
    return json(
      { access_token: accessToken, token_type: "Bearer", expires_in: 900, issued_token_type: "urn:ietf:params:oauth:token-type:access_token", scope },
      200,
      { "cache-control": "no-store", pragma: "no-cache" },
    );
  },
};
