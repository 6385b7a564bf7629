// The floor: what an exchange cannot cost less than. Only the two Web Crypto calls every
// exchange makes — verify the workload's token with the issuer's key, sign an access token —
// with both keys imported once per isolate, and the least HTTP around them: no account, no
// checks of the claims, no cache. `npm run bench` measures its CPU per exchange beside
// edge-sts's and jose's; "net" CPU (exchange minus /healthz) of edge-sts over the floor's is
// the overhead of everything edge-sts does besides the cryptography. Not deployed.
//
// FLOOR_KEYS (a binding): {"verify": {"<alg>": <public JWK>, …}, "sign": <P-256 private JWK>}.

const VERIFY = {
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
};
const SIGN = { name: "ECDSA", hash: "SHA-256" };
let keys; // { verify: { alg: CryptoKey }, sign: CryptoKey }

async function importKeys(env) {
  const { verify, sign } = JSON.parse(env.FLOOR_KEYS);
  const imported = { verify: {}, sign: null };
  for (const [alg, jwk] of Object.entries(verify)) {
    imported.verify[alg] = await crypto.subtle.importKey("jwk", jwk, VERIFY[alg][0], false, ["verify"]);
  }
  imported.sign = await crypto.subtle.importKey("jwk", sign, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  return imported;
}

const decode = (part) => Uint8Array.from(atob(part.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const encode = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store" } });

export default {
  async fetch(request, env) {
    keys ??= await importKeys(env);
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return json({ status: "ok" });
    const assertion = new URLSearchParams(await request.text()).get("assertion") ?? "";
    const [header, payload, signature] = assertion.split(".");
    const { alg } = JSON.parse(atob(header.replace(/-/g, "+").replace(/_/g, "/")));
    const input = new TextEncoder().encode(`${header}.${payload}`);
    if (!(await crypto.subtle.verify(VERIFY[alg][1], keys.verify[alg], decode(signature), input))) {
      return json({ error: "invalid_grant" }, 400);
    }
    // An access token of the same size and shape as edge-sts's.
    const now = Math.floor(Date.now() / 1000);
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    const head = encode(new TextEncoder().encode(JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: "floor" })));
    const body = encode(new TextEncoder().encode(JSON.stringify({
      iss: url.origin, sub: "floor", aud: url.origin, client_id: "floor", scope: "certificate-issuance",
      iat: now, exp: now + 900, jti: encode(crypto.getRandomValues(new Uint8Array(16))),
      federated: { iss: claims.iss, sub: claims.sub, jti: claims.jti },
    })));
    const signed = await crypto.subtle.sign(SIGN, keys.sign, new TextEncoder().encode(`${head}.${body}`));
    return json({ access_token: `${head}.${body}.${encode(signed)}`, token_type: "Bearer", expires_in: 900, scope: "certificate-issuance" });
  },
};
