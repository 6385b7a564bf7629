// The reference: the same exchange as edge-sts, written the way a Workers user would, in
// JavaScript with jose (createRemoteJWKSet, jwtVerify, SignJWT). Same account records and KV
// layout, the same checks of the contract, the same ES256 minting — so `npm run bench` can put the
// two side by side. Only the RFC 7523 form is wired up: the bench uses that one. Not deployed.
//
// jose does not make every check the contract asks for, so `parseToken` and `checkClaims` make the
// rest the way a user would have to: canonical base64url, no duplicate JSON members, nesting at
// most 32 deep, no crit / b64: false / cty: JWT, typed and bounded numeric dates, iat not in
// the future. The bench checks that both workers refuse the same bad tokens for the same reason.
import { createRemoteJWKSet, importJWK, jwtVerify, SignJWT, errors } from "jose";

const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const ACCOUNT_CACHE_MS = 10_000; // as edge-sts: the contract lets an isolate keep an account 10 s
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

const MAX_JSON_DEPTH = 32;
const MAX_NUMERIC_DATE = 2 ** 53;
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const fail = (reason, description) => Object.assign(new Error(description), { reason });

/** Canonical unpadded base64url (unused trailing bits zero), decoded. */
function base64url(part, which) {
  const rest = part.length % 4;
  const last = BASE64URL.indexOf(part[part.length - 1]);
  if (!/^[A-Za-z0-9_-]+$/.test(part) || rest === 1 || (rest === 2 && last & 0x0f) || (rest === 3 && last & 0x03)) {
    throw fail("malformed_token", `the ${which} is not canonical unpadded base64url`);
  }
  const binary = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** JSON.parse, refusing duplicate member names and nesting deeper than MAX_JSON_DEPTH. */
function strictJson(text, which) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw fail("malformed_token", `the ${which} is not JSON`);
  }
  // JSON.parse keeps the last of duplicate members silently: walk the (valid) text once more.
  const stack = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") {
      stack.push(c === "{" ? { keys: new Set(), expectKey: true } : null);
      if (stack.length > MAX_JSON_DEPTH) throw fail("malformed_token", `the ${which} nests deeper than ${MAX_JSON_DEPTH}`);
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === "," && stack.at(-1)) {
      stack.at(-1).expectKey = true;
    } else if (c === '"') {
      let end = i + 1;
      let escaped = false;
      while (text[end] !== '"') {
        if (text[end] === "\\") {
          escaped = true;
          end++;
        }
        end++;
      }
      const top = stack.at(-1);
      if (top?.expectKey) {
        // Two spellings of one name ("a" and "\u0061") are the same member.
        const key = escaped ? JSON.parse(text.slice(i, end + 1)) : text.slice(i + 1, end);
        if (top.keys.has(key)) throw fail("malformed_token", `the ${which} has the member ${key} twice`);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end;
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw fail("malformed_token", `the ${which} is not a JSON object`);
  return value;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The header and claims of a compact JWS, with the contract's checks of its form and header. */
function parseToken(token) {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[0] || !parts[1]) throw fail("malformed_token", "not a compact JWS of three parts");
  const decode = (part, which) => {
    try {
      return strictJson(utf8.decode(base64url(part, which)), which);
    } catch (error) {
      throw error.reason ? error : fail("malformed_token", `the ${which} is not UTF-8`);
    }
  };
  const header = decode(parts[0], "header");
  if (!ALGORITHMS.includes(header.alg)) throw fail("unsupported_algorithm", `alg ${header.alg} is not accepted`);
  if ("crit" in header || header.b64 === false || (typeof header.cty === "string" && header.cty.toUpperCase() === "JWT")) {
    throw fail("malformed_token", "crit, b64: false and cty: JWT are not supported");
  }
  base64url(parts[2], "signature");
  return decode(parts[1], "payload");
}

/** the contract's claim rules that jwtVerify leaves out, at `now` with `leeway` seconds. */
function checkClaims(claims, now, leeway) {
  for (const name of ["iss", "sub"]) {
    if (typeof claims[name] !== "string" || claims[name] === "") throw fail("invalid_claim", `${name} is not a non-empty string`);
  }
  for (const name of ["exp", "iat", "nbf"]) {
    const value = claims[name];
    if (value === undefined && name === "nbf") continue;
    if (typeof value !== "number" || !Number.isFinite(value) || Math.abs(value) > MAX_NUMERIC_DATE) throw fail("invalid_claim", `${name} is not a NumericDate`);
  }
  if (claims.exp <= claims.iat) throw fail("invalid_claim", "exp is not after iat");
  if (claims.iat > now + leeway) throw fail("issued_in_future", "iat is in the future");
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
      claims = parseToken(assertion);
    } catch (error) {
      return refuse(error.reason, error.message);
    }
    for (const name of ["iss", "sub", "aud", "exp", "iat"]) {
      if (!(name in claims)) return refuse("missing_claim", `the token has no ${name} claim`);
    }
    if (typeof claims.iss !== "string" || typeof claims.sub !== "string") return refuse("invalid_claim", "iss and sub must be strings");
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
      const claimFailed = error instanceof errors.JWTClaimValidationFailed;
      const reason =
        error instanceof errors.JWTExpired ? "token_expired"
        : error instanceof errors.JWSSignatureVerificationFailed ? "bad_signature"
        : error instanceof errors.JWKSNoMatchingKey ? "unknown_key"
        : claimFailed && error.claim === "nbf" ? "token_not_yet_valid"
        : claimFailed && error.claim === "iss" ? "issuer_mismatch"
        : claimFailed && error.claim === "aud" ? "audience_mismatch"
        : "invalid_claim";
      return refuse(reason, error.message);
    }
    const clockSkew = Number(env.CLOCK_SKEW_SECONDS ?? 60);
    try {
      checkClaims(payload, Math.floor(Date.now() / 1000), clockSkew);
    } catch (error) {
      return refuse(error.reason, error.message);
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
