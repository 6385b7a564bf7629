// `npm run load`: concurrent token exchanges, valid and invalid mixed, against the built
// worker in workerd on 127.0.0.1, for a bounded time. Reports throughput, latency, wrong
// answers and 5xx (both must be 0; the exit code says so). Not part of `npm test`.
//
//   LOAD_SECONDS=20 LOAD_CONCURRENCY=16 npm run load
import { DEFAULT_VARS, newSigningKey, startWorker } from "../tests/e2e/harness.mjs";
import { newKey, now, sign, startIdp } from "../tests/e2e/idp.mjs";

const SECONDS = Number(process.env.LOAD_SECONDS ?? 20);
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 16);
const ADMIN_TOKEN = "load-admin-token-0123456789abcdef";
const AUDIENCE = "https://sts.example.com";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

const idp = await startIdp();
const key = await newKey("ES256", "load");
const rsa = await newKey("RS256", "load-rsa");
idp.keys = [key, rsa];
const logs = [];
const worker = await startWorker(
  { ...DEFAULT_VARS, ALLOW_HTTP_LOOPBACK: "true", SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }), ADMIN_TOKEN },
  { logs },
);
const created = await worker.json("/v1/serviceaccounts", {
  method: "POST",
  headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
  body: JSON.stringify({ name: "load", scopes: ["certificate-issuance"], issuerURL: idp.url, jwksURI: `${idp.url}/jwks`, subject: "repo:acme/app:ref:refs/heads/main", audience: AUDIENCE }),
});
if (created.status !== 201) throw new Error(`seeding the account failed: ${JSON.stringify(created.body)}`);

// Each kind of request with the answer it must get. Tokens live 2 h, longer than any run.
const claims = (extra = {}) => idp.claims({ iat: now() - 5, exp: now() + 7000, ...extra });
const good = await sign(key, claims());
const goodRsa = await sign(rsa, claims());
const kinds = [
  { name: "valid ES256", assertion: good, status: 200 },
  { name: "valid RS256", assertion: goodRsa, status: 200 },
  { name: "bad signature", assertion: good.slice(0, -8) + (good.endsWith("AAAAAAAA") ? "BBBBBBBB" : "AAAAAAAA"), status: 400, reason: "bad_signature" },
  { name: "expired", assertion: await sign(key, claims({ iat: now() - 4000, exp: now() - 3000 })), status: 400, reason: "token_expired" },
  { name: "unknown kid", assertion: await sign(key, claims(), { kid: "nope" }), status: 400, reason: "unknown_key" },
  { name: "alg none", assertion: `${Buffer.from('{"alg":"none"}').toString("base64url")}.${good.split(".")[1]}.`, status: 400, reason: "unsupported_algorithm" },
  { name: "garbage", assertion: "garbage", status: 400, reason: "malformed_token" },
];

const latencies = [];
let wrong = 0;
let serverErrors = 0;
const firstWrong = [];
const deadline = Date.now() + SECONDS * 1000;
let next = 0;

async function client() {
  while (Date.now() < deadline) {
    const kind = kinds[next++ % kinds.length];
    const started = performance.now();
    const response = await fetch(`${worker.url}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: kind.assertion }).toString(),
    });
    const body = await response.json();
    latencies.push(performance.now() - started);
    if (response.status >= 500) serverErrors++;
    const right = response.status === kind.status && (kind.reason === undefined || body.reason === kind.reason);
    if (!right) {
      wrong++;
      if (firstWrong.length < 5) firstWrong.push(`${kind.name}: ${response.status} ${JSON.stringify(body)}`);
    }
  }
}

console.log(`load: ${CONCURRENCY} concurrent clients for ${SECONDS} s against ${worker.url} (${kinds.length} kinds of request, mixed)`);
const started = Date.now();
await Promise.all(Array.from({ length: CONCURRENCY }, client));
const elapsed = (Date.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(2);
console.log(`requests:    ${latencies.length} in ${elapsed.toFixed(1)} s = ${(latencies.length / elapsed).toFixed(0)} /s`);
console.log(`latency:     p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${latencies.at(-1).toFixed(2)} ms`);
console.log(`wrong answers: ${wrong}`);
console.log(`5xx:           ${serverErrors}`);
console.log(`log lines:     ${logs.filter((line) => line.includes('"token_request"')).length}`);
for (const line of firstWrong) console.log(`  e.g. ${line}`);
await worker.dispose();
await idp.close();
process.exit(wrong === 0 && serverErrors === 0 ? 0 : 1);
