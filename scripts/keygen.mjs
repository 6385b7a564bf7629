// Makes ES256 signing keys for SIGNING_KEYS, with Node's Web Crypto.
//
//   node scripts/keygen.mjs              prints a new JWK Set with one private key
//   node scripts/keygen.mjs --append     reads a SIGNING_KEYS value on stdin, prints it with a
//                                        new key added last (published, not yet signing)
//   node scripts/keygen.mjs --promote    reads a SIGNING_KEYS value on stdin, prints it with
//                                        its last key moved first (now signing)
//   node scripts/keygen.mjs --dev-vars URL
//                                        prints a whole .dev.vars: keys, admin token, ISSUER=URL
//                                        (where `npm start` serves), a TENANT_ID, loopback issuers
//
// The kid is the key's RFC 7638 thumbprint, as edge-sts would compute for a key without one.
import { webcrypto, createHash, randomBytes, randomUUID } from "node:crypto";

export async function newPrivateJwk() {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const { kty, crv, x, y, d } = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
  // RFC 7638: the required members in lexicographic order, no whitespace, SHA-256, base64url.
  const kid = createHash("sha256").update(JSON.stringify({ crv, kty, x, y })).digest("base64url");
  return { kty, crv, x, y, d, kid, alg: "ES256", use: "sig" };
}

/** 256 random bits, base64url: the admin API's bearer token. */
export function newAdminToken() {
  return randomBytes(32).toString("base64url");
}

async function readKeySet() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  let set;
  try {
    set = JSON.parse(text);
  } catch {
    throw new Error("stdin is not JSON; pipe the current SIGNING_KEYS value in");
  }
  if (!Array.isArray(set?.keys) || set.keys.length === 0) {
    throw new Error('stdin is not a JWK Set {"keys": [...]} with at least one key');
  }
  return set;
}

async function main() {
  if (process.argv.includes("--append") || process.argv.includes("--promote")) {
    const set = await readKeySet();
    if (process.argv.includes("--append")) set.keys.push(await newPrivateJwk());
    else set.keys.unshift(set.keys.pop());
    process.stdout.write(JSON.stringify(set) + "\n");
    return;
  }
  const keys = JSON.stringify({ keys: [await newPrivateJwk()] });
  if (process.argv.includes("--dev-vars")) {
    const issuer = process.argv[process.argv.indexOf("--dev-vars") + 1];
    if (!issuer?.startsWith("http")) throw new Error("--dev-vars needs the URL npm start serves at");
    process.stdout.write(
      [
        `# Local development settings, made by \`npm start\` on ${new Date().toISOString()}.`,
        "# Secrets: never commit this file (it is gitignored). Delete it to get new ones.",
        `SIGNING_KEYS='${keys}'`,
        `ADMIN_TOKEN=${newAdminToken()}`,
        "# iss and aud of minted tokens: where npm start serves. Production sets its own URL.",
        `ISSUER=${issuer}`,
        "# The tenant id of the Venafi- and Entra-compatible paths (/v1/oauth2/v2.0/{TENANT_ID}/token,",
        "# /{TENANT_ID}/oauth2/v2.0/token) and every account's companyId.",
        `TENANT_ID=${randomUUID()}`,
        "# Lets accounts use a local identity provider at http://127.0.0.1:… while developing.",
        "ALLOW_HTTP_LOOPBACK=true",
        "",
      ].join("\n"),
    );
  } else {
    process.stdout.write(keys + "\n");
    process.stderr.write(
      "A new SIGNING_KEYS value is above. Store it with: npx wrangler secret put SIGNING_KEYS\n",
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await main();
  } catch (error) {
    process.stderr.write(`keygen: ${error.message}\n`);
    process.exit(1);
  }
}
