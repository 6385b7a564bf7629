// What every bench script shares: the issuer (a local IdP with an ES256 and an RS256 key), one
// account created through edge-sts's own admin API, the KV state a location would have once
// it has seen an exchange (ACCOUNTS and JWKS_CACHE), and the workers to compare:
//
//   edge-sts    build/ (or another build directory)
//   counting    the same, answering each request's I/O counts in Server-Timing
//   reference   the same exchange in JavaScript with jose (bench/reference/worker.mjs)
//   floor       only the two Web Crypto calls (bench/reference/floor.mjs)
//   kv-reads    only a cold exchange's KV reads, in a plan given per request
//               (bench/reference/kv-reads.mjs)
import { execFileSync } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { DEFAULT_VARS, createAccount, newSigningKey, startWorker } from "../tests/e2e/harness.mjs";
import { newKey, now, sign, startIdp } from "../tests/e2e/idp.mjs";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const AUDIENCE = "https://sts.example.com";
export const SUBJECT = "repo:acme/app:ref:refs/heads/main";
export const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
export const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** The reference worker, bundled with jose for workerd. */
const REFERENCE = path.join(ROOT, "build-bench", "reference.mjs");
const FLOOR = path.join(ROOT, "bench", "reference", "floor.mjs");
const KV_READS = path.join(ROOT, "bench", "reference", "kv-reads.mjs");

export async function setUp() {
  execFileSync(path.join(ROOT, "node_modules/.bin/esbuild"), [
    "bench/reference/worker.mjs", "--bundle", "--format=esm", "--platform=browser", "--log-level=warning", `--outfile=${REFERENCE}`,
  ], { cwd: ROOT, stdio: "inherit" });
  const idp = await startIdp();
  idp.maxAge = 3600;
  const keys = { ES256: await newKey("ES256", "bench-es256"), RS256: await newKey("RS256", "bench-rs256") };
  idp.keys = Object.values(keys);
  const signingKey = await newSigningKey();
  const bindings = { ...DEFAULT_VARS, ALLOW_HTTP_LOOPBACK: "true", SIGNING_KEYS: JSON.stringify({ keys: [signingKey] }), ADMIN_TOKEN };
  const claims = () => ({ iss: idp.url, sub: SUBJECT, aud: AUDIENCE, iat: now() - 5, exp: now() + 7000, jti: "bench" });
  const tokens = { ES256: await sign(keys.ES256, claims()), RS256: await sign(keys.RS256, claims()) };
  const exchangeBody = (alg) => new URLSearchParams({ grant_type: JWT_BEARER, assertion: tokens[alg] }).toString();

  // One account, created through edge-sts's admin API, and one exchange, so that both
  // namespaces hold what a location that has served this account holds.
  const seed = await startWorker(bindings, { logs: [] });
  await createAccount(seed, ADMIN_TOKEN, { name: "bench", scopes: ["certificate-issuance"], issuerURL: idp.url, jwksURI: `${idp.url}/jwks`, subject: SUBJECT, audience: AUDIENCE });
  const first = await seed.fetch("/oauth2/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: exchangeBody("ES256") });
  if (first.status !== 200) throw new Error(`the seed exchange answered ${first.status}: ${await first.text()}`);
  const state = {};
  for (const name of ["ACCOUNTS", "JWKS_CACHE"]) {
    const kv = await seed.kv(name);
    // The key-set cache is written in the background, after the answer.
    for (let tries = 0; name === "JWKS_CACHE" && (await kv.list()).keys.length === 0; tries++) {
      if (tries > 50) throw new Error("the seed exchange left JWKS_CACHE empty");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    state[name] = [];
    for (const { name: key } of (await kv.list()).keys) state[name].push([key, await kv.get(key)]);
  }
  await seed.dispose();

  const floorKeys = JSON.stringify({ verify: { ES256: keys.ES256.publicJwk, RS256: keys.RS256.publicJwk }, sign: signingKey });
  const workers = {
    "edge-sts": (build = "build", options = {}) => startWorker(bindings, { logs: [], build, ...options }),
    counting: (build = "build", options = {}) => startWorker({ ...bindings, SERVER_TIMING: "true" }, { logs: [], build, ...options }),
    reference: () => startWorker(bindings, { logs: [], modules: [{ type: "ESModule", path: REFERENCE }] }),
    floor: () => startWorker({ FLOOR_KEYS: floorKeys }, { logs: [], modules: [{ type: "ESModule", path: FLOOR }] }),
    "kv-reads": () => startWorker({}, { logs: [], modules: [{ type: "ESModule", path: KV_READS }] }),
  };

  /**
   * A new workerd running `name`, with the KV state above: `cache` false leaves JWKS_CACHE
   * empty (a location that never fetched this issuer's keys).
   */
  async function start(name, { build, cache = true, ...options } = {}) {
    const worker = await workers[name](build, options);
    for (const namespace of cache ? ["ACCOUNTS", "JWKS_CACHE"] : ["ACCOUNTS"]) {
      const kv = await worker.kv(namespace);
      for (const [key, value] of state[namespace]) await kv.put(key, value);
    }
    return worker;
  }

  // A cold exchange's KV reads, as each worker makes them (for the kv-reads worker). edge-sts:
  // the issuer's index, then the candidate record (one key: a plain read) with the key set's
  // JWKS_CACHE entry. The reference: the index, then the record (it fetches the key set from
  // the issuer).
  const stored = (namespace, prefix) => state[namespace].map(([key]) => key).filter((key) => key.startsWith(prefix));
  const [index] = stored("ACCOUNTS", "issuer:");
  const records = stored("ACCOUNTS", "account:");
  const [keySet] = stored("JWKS_CACHE", "jwks:");
  if (!index || records.length !== 1 || !keySet) throw new Error("the seeded KV lacks the issuer index, the one account or the key set");
  const readPlans = {
    none: [],
    "edge-sts": [[["ACCOUNTS", index]], [["ACCOUNTS", records[0]], ["JWKS_CACHE", keySet]]],
    reference: [[["ACCOUNTS", index]], [["ACCOUNTS", records[0]]]],
  };
  // The values each plan finds: all it reads.
  const readPlanFinds = { none: 0, "edge-sts": 3, reference: 2 };
  /** A plan's shape, for the printout: "4 reads, 2 namespaces, 2 waits". */
  const describePlan = (name) => {
    const reads = readPlans[name].flat();
    const namespaces = new Set(reads.map(([namespace]) => namespace)).size;
    return `${reads.length} reads, ${namespaces} namespace${namespaces === 1 ? "" : "s"}, ${readPlans[name].length} waits`;
  };

  /**
   * Whether edge-sts's plan above still makes the reads a cold exchange of edge-sts made (its
   * Server-Timing: kv-read, kv-waits); a line to print when it does not.
   */
  function readPlanDiffers(timing) {
    const counted = Object.fromEntries((timing ?? "").split(",").filter(Boolean).map((metric) => metric.trim().split(";desc=")));
    const plan = readPlans["edge-sts"];
    const reads = plan.flat().length;
    if (Number(counted["kv-read"]) === reads && Number(counted["kv-waits"]) === plan.length) return null;
    return `note: edge-sts's cold exchange made ${counted["kv-read"]} KV reads in ${counted["kv-waits"]} waits; the kv-reads plan (bench/setup.mjs) makes ${reads} in ${plan.length}: update it`;
  }

  /** Checks a kv-reads answer's Server-Timing (`found;desc=n`) against what `name`'s plan finds. */
  function checkFound(name, timing) {
    const found = Number(/found;desc=(\d+)/.exec(timing ?? "")?.[1]);
    if (found !== readPlanFinds[name]) throw new Error(`the kv-reads plan "${name}" found ${found} values, not ${readPlanFinds[name]}`);
  }

  return { idp, keys, tokens, claims, bindings, state, exchangeBody, readPlans, describePlan, checkFound, readPlanDiffers, start, close: () => idp.close() };
}

/**
 * One request through `node:http` (over `worker.agent`'s keep-alive connections, if it has
 * one); resolves to its status and Server-Timing header once the body is read. `npm run bench`
 * and `bench:cold` time their requests through it rather than Node's `fetch`: on these two
 * shared cores, `fetch`'s own CPU time per request was larger than a warm exchange's in
 * workerd, and both tools' figures should be comparable (docs/performance.md).
 */
export function send(worker, method, pathname, body) {
  const { hostname, port } = new URL(worker.url);
  const headers = body === undefined ? {} : { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const request = http.request({ host: hostname, port, path: pathname, method, headers, agent: worker.agent }, (response) => {
      response.on("data", () => {});
      response.on("end", () => resolve({ status: response.statusCode, timing: response.headers["server-timing"] }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

export const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

/** The first quartile, the median and the third quartile of `list`. */
export function quartiles(list) {
  const sorted = [...list].sort((a, b) => a - b);
  return [0.25, 0.5, 0.75].map((q) => sorted[Math.floor((sorted.length - 1) * q + 0.5)]);
}

/**
 * The cold first request's ratio, edge-sts's over jose's, judged two ways: the ratio of the two
 * medians, and the median of each run's own ratio with the middle half of them. Each run starts
 * both workers within a second of each other, so a run's ratio sees the machine in one state;
 * on this shared two-core machine the medians of the same build have moved by 1.4× between runs
 * of the bench a few hours apart (docs/performance.md), and the ratio of two medians with them.
 */
export function coldRatio(ours, theirs) {
  const perRun = ours.map((ms, run) => ms / theirs[run]);
  const [low, mid, high] = quartiles(perRun);
  return { ofMedians: median(ours) / median(theirs), perRun: { low, mid, high } };
}
