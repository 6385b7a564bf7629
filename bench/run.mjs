// `npm run bench`: edge-sts against a reference worker written in JavaScript with jose and a
// "floor" worker that only verifies and signs (bench/setup.mjs has all three), in the same local
// workerd (Miniflare) on 127.0.0.1, taking turns in 1 s rounds per case, in one run. Prints
// exchanges per second, p50/p99 latency and non-200 counts per case, the ratio
// edge-sts / reference, workerd's CPU time per request and each exchange's net CPU beside the
// floor's, cold isolates' first /healthz and first exchange (beside what a cold exchange's KV
// reads alone cost the local KV), warm and cold I/O counters (Server-Timing) and the wasm size.
//
//   BENCH_SECONDS=10 npm run bench       (seconds per case and worker; the default)
//   BENCH_AA=1 npm run bench             (edge-sts against itself: how far apart two identical
//                                         workers measure on this machine, the bench's resolution)
//   BENCH_AA=1 BENCH_AA_BUILD=dir npm run bench
//                                        (the second edge-sts runs the build in dir: an A/B of two
//                                         builds, the "jose" columns being dir's)
//   COLD_RUNS=7 npm run bench            (new workerds per cold measurement; the median is shown,
//                                         with the middle half of the runs, and the ratio per run)
import { execFileSync } from "node:child_process";
import http from "node:http";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { cpus } from "node:os";
import path from "node:path";
import { now, sign } from "../tests/e2e/idp.mjs";
import { AUDIENCE, JWT_BEARER, ROOT, SUBJECT, coldRatio, median, quartiles, send, setUp } from "./setup.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const AA = process.env.BENCH_AA === "1";
const COLD_RUNS = Number(process.env.COLD_RUNS ?? 7);
const AA_BUILD = AA ? process.env.BENCH_AA_BUILD : undefined;
/** Seconds of warm exchanges per algorithm on the counting worker. Over 10 s in all, so the
 * accounts' 10 s in isolate memory runs out at least once and their re-reads show. */
const COUNT_SECONDS = 6;

const bench = await setUp();
const { idp, keys, claims } = bench;
const names = { "edge-sts": "edge-sts", reference: AA ? "edge-sts" : "reference", floor: "floor", counting: "counting", "kv-reads": "kv-reads" };

// workerd's own CPU time (user + system), from /proc on Linux: what each worker costs the
// machine per request, apart from the load generator sharing its cores. Null elsewhere.
const TICKS_PER_SECOND = 100;
const workerdPids = () => {
  try {
    return new Set(execFileSync("pgrep", ["-x", "workerd"]).toString().split("\n").filter(Boolean).map(Number));
  } catch {
    return new Set();
  }
};
function cpuSeconds(pids) {
  try {
    return pids.reduce((total, pid) => {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      return total + (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    }, 0);
  } catch {
    return null;
  }
}

/** A new workerd running `name`; `counting`: an edge-sts one with its Server-Timing counts on. */
async function start(name, { counting = false } = {}) {
  const before = workerdPids();
  const worker = await bench.start(counting && names[name] === "edge-sts" ? "counting" : names[name], name === "reference" && AA_BUILD ? { build: AA_BUILD } : {});
  worker.pids = [...workerdPids()].filter((pid) => !before.has(pid));
  worker.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  return worker;
}

const exchangeBodies = { ES256: bench.exchangeBody("ES256"), RS256: bench.exchangeBody("RS256") };
const exchangeRequest = (worker, alg) => send(worker, "POST", "/oauth2/token", exchangeBodies[alg]);

/** Closed-loop load: `concurrency` clients for `seconds`; latencies, non-200s, I/O counters. */
async function measure(worker, request, concurrency, seconds) {
  const latencies = [];
  let non200 = 0;
  const io = { "kv-read": 0, "kv-write": 0, "kv-waits": 0, subrequest: 0 };
  const cpuBefore = worker.pids.length > 0 ? cpuSeconds(worker.pids) : null;
  const deadline = performance.now() + seconds * 1000;
  const client = async () => {
    while (performance.now() < deadline) {
      const started = performance.now();
      const response = await request(worker);
      latencies.push(performance.now() - started);
      if (response.status !== 200) non200++;
      for (const metric of (response.timing ?? "").split(",")) {
        const [name, desc] = metric.trim().split(";desc=");
        if (name in io) io[name] += Number(desc);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = cpuBefore === null ? null : cpuSeconds(worker.pids);
  return { latencies, elapsed, non200, io, cpu: cpuAfter === null ? null : cpuAfter - cpuBefore };
}

const rate = (round) => round.latencies.length / round.elapsed;

/** Rounds of one worker's measurements as one result: rate over all rounds, percentiles. */
function combine(rounds) {
  const latencies = rounds.flatMap((round) => round.latencies).sort((a, b) => a - b);
  const elapsed = rounds.reduce((total, round) => total + round.elapsed, 0);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const io = { "kv-read": 0, "kv-write": 0, "kv-waits": 0, subrequest: 0 };
  for (const round of rounds) for (const name in io) io[name] += round.io[name];
  const non200 = rounds.reduce((total, round) => total + round.non200, 0);
  const cpu = rounds.some((round) => round.cpu === null) ? null : rounds.reduce((total, round) => total + round.cpu, 0);
  const cpuPerRequest = cpu === null ? null : (cpu * 1e6) / latencies.length;
  return { rate: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), non200, io, count: latencies.length, cpuPerRequest };
}

const cases = [
  ["GET /healthz (floor)", (worker) => send(worker, "GET", "/healthz")],
  ["exchange, ES256 token, warm", (worker) => exchangeRequest(worker, "ES256")],
  ["exchange, RS256 token, warm", (worker) => exchangeRequest(worker, "RS256")],
];

const workers = { "edge-sts": await start("edge-sts"), reference: await start("reference"), floor: await start("floor") };
// Warm both: key sets fetched, keys imported, accounts read.
for (const worker of Object.values(workers)) {
  for (const alg of ["ES256", "RS256"]) {
    for (let i = 0; i < 50; i++) await exchangeRequest(worker, alg);
  }
}

// The same checks: both workers refuse each of these tokens with the same reason. (A reference
// that skipped the contract's checks would be measuring less work.)
const fakeSignature = "A".repeat(86);
const part = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const esHeader = { alg: "ES256", kid: keys.ES256.kid, typ: "JWT" };
const nested = (depth) => "[".repeat(depth) + "]".repeat(depth);
const badTokens = [
  ["malformed_token", `${part(esHeader)}.${part(`{"iss":"${idp.url}","sub":"${SUBJECT}","sub":"x","aud":"${AUDIENCE}","iat":${now()},"exp":${now() + 60}}`)}.${fakeSignature}`],
  ["malformed_token", `${part(esHeader)}.${part(`{"iss":"${idp.url}","sub":"${SUBJECT}","x":${nested(32)}}`)}.${fakeSignature}`],
  ["malformed_token", `${part({ ...esHeader, cty: "JWT" })}.${part(claims())}.${fakeSignature}`],
  ["malformed_token", `${part(esHeader)}.${part(claims())}=.${fakeSignature}`],
  ["issued_in_future", await sign(keys.ES256, { ...claims(), iat: now() + 3600, exp: now() + 3700 })],
  ["token_not_yet_valid", await sign(keys.ES256, { ...claims(), nbf: now() + 3600 })],
  ["invalid_claim", await sign(keys.ES256, { ...claims(), exp: String(now() + 600) })],
  ["lifetime_too_long", await sign(keys.ES256, { ...claims(), exp: now() + 7300 })],
];
for (const [expected, token] of badTokens) {
  for (const name of ["edge-sts", "reference"]) {
    const worker = workers[name];
    const response = await fetch(`${worker.url}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: token }).toString(),
    });
    const { reason } = await response.json();
    if (reason !== expected) throw new Error(`${name} refused a token with ${reason}, expected ${expected}: ${token}`);
  }
}

// Each case in rounds of at most 1 s, the two workers taking turns, so that drift on this shared
// machine (other processes, CPU frequency) falls on both alike.
const ROUNDS = Math.max(1, Math.round(SECONDS));
const rows = [];
const orders = [["edge-sts", "reference", "floor"], ["reference", "floor", "edge-sts"], ["floor", "edge-sts", "reference"]];
for (const [name, request] of cases) {
  for (const concurrency of [1, 8]) {
    const rounds = { "edge-sts": [], reference: [], floor: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const worker of orders[round % orders.length]) rounds[worker].push(await measure(workers[worker], request, concurrency, SECONDS / ROUNDS));
    }
    // Each round's measurements were taken back to back: their ratio is one sample of it.
    const roundRatios = rounds["edge-sts"].map((round, i) => rate(round) / rate(rounds.reference[i]));
    rows.push({ name, concurrency, "edge-sts": combine(rounds["edge-sts"]), reference: combine(rounds.reference), floor: combine(rounds.floor), roundRatios });
    process.stderr.write(".");
  }
}
process.stderr.write("\n");

// A hostile form (issue 12): 64 KiB of ~16,000 distinct parameters, refused 400 before any is
// decoded. Its CPU per request beside /healthz shows the refusal costs about as much as reading
// the body; a quadratic duplicate check cost ~480 ms here.
const hostileBody = `grant_type=${JWT_BEARER}&assertion=x&${Array.from({ length: 16_000 }, (_, i) => `p${i}=`).join("&")}`.slice(0, 64 * 1024);
const hostile = {};
for (const name of ["edge-sts", "reference"]) {
  const worker = workers[name];
  hostile[name] = combine([await measure(worker, (w) => send(w, "POST", "/oauth2/token", hostileBody), 1, Math.min(SECONDS, 3))]);
}

// The warm path's I/O, counted on a second edge-sts with SERVER_TIMING=true. The header costs
// a few percent of a warm exchange (measured A/B), which the reference does not pay, so the timed
// rounds above run without it.
const counting = await start("counting");
for (const alg of ["ES256", "RS256"]) {
  for (let i = 0; i < 50; i++) await exchangeRequest(counting, alg);
}
const counted = [];
for (const alg of ["ES256", "RS256"]) {
  counted.push(await measure(counting, (worker) => exchangeRequest(worker, alg), 8, COUNT_SECONDS));
}
counting.agent.destroy();
await counting.dispose();

// Cold: a new workerd, a new isolate, nothing in memory, the account and its key set in KV (a
// location that has served the account before): the first request's latency, a first /healthz
// and a first exchange each in their own workerd. edge-sts with its Server-Timing counts, to
// show the cold path's I/O.
const cold = {};
for (const name of ["edge-sts", "reference", "floor"]) cold[name] = { health: [], exchange: [] };
const kvReads = Object.fromEntries(Object.keys(bench.readPlans).map((plan) => [plan, []]));
for (let run = 0; run < COLD_RUNS; run++) {
  // Every other run in the opposite order, so that no worker is always the first started.
  for (const name of run % 2 ? Object.keys(cold).reverse() : Object.keys(cold)) {
    for (const [kind, request] of [["health", (worker) => send(worker, "GET", "/healthz")], ["exchange", (worker) => exchangeRequest(worker, "ES256")]]) {
      // Both edge-sts workers of an A/B count, so that the header's cost falls on both.
      const worker = await start(name, { counting: true });
      const started = performance.now();
      const response = await request(worker);
      cold[name][kind].push({ ms: performance.now() - started, status: response.status, timing: response.timing });
      worker.agent.destroy();
      await worker.dispose();
    }
  }
  // The KV reads alone: a plain JavaScript worker's first request making only each worker's
  // cold reads, or none (what the local KV costs, apart from the rest of a first exchange).
  for (const [plan, reads] of Object.entries(bench.readPlans)) {
    const worker = await start("kv-reads");
    const started = performance.now();
    const response = await send(worker, "GET", `/?plan=${encodeURIComponent(JSON.stringify(reads))}`);
    kvReads[plan].push({ ms: performance.now() - started, status: response.status });
    bench.checkFound(plan, response.timing);
    worker.agent.destroy();
    await worker.dispose();
  }
}
for (const worker of Object.values(workers)) {
  worker.agent.destroy();
  await worker.dispose();
}
await bench.close();

const wasm = readFileSync(path.join(ROOT, "build/index_bg.wasm"));
const f = (n, d = 2) => n.toFixed(d);
const pad = (text, width) => String(text).padStart(width);
console.log(`\nedge-sts benchmark — ${new Date().toISOString()} — ${cpus().length} × ${cpus()[0].model}`);
if (AA && AA_BUILD) console.log(`BENCH_AA=1 BENCH_AA_BUILD=${AA_BUILD}: the "jose" columns are edge-sts built in ${AA_BUILD}`);
else if (AA) console.log("BENCH_AA=1: the \"jose\" columns are a second edge-sts worker; every ratio should be 1.00");
console.log(`workerd via Miniflare on 127.0.0.1, closed-loop clients, ${SECONDS} s per case and worker, in ${ROUNDS} rounds taking turns\n`);
const cpuText = (result) => (result.cpuPerRequest === null ? "–" : f(result.cpuPerRequest, 0));
console.log(`${"case".padEnd(30)}${pad("conc", 5)} │ ${pad("edge-sts/s", 10)}${pad("p50 ms", 8)}${pad("p99 ms", 8)}${pad("!200", 6)}${pad("cpu µs", 8)} │ ${pad("jose/s", 8)}${pad("p50 ms", 8)}${pad("p99 ms", 8)}${pad("!200", 6)}${pad("cpu µs", 8)} │ ${pad("ratio", 6)}${pad("rounds: median (range)", 25)} │ ${pad("floor/s", 8)}${pad("cpu µs", 8)}`);
for (const row of rows) {
  const [e, r, fl] = [row["edge-sts"], row.reference, row.floor];
  console.log(`${row.name.padEnd(30)}${pad(row.concurrency, 5)} │ ${pad(f(e.rate, 0), 10)}${pad(f(e.p50), 8)}${pad(f(e.p99), 8)}${pad(e.non200, 6)}${pad(cpuText(e), 8)} │ ${pad(f(r.rate, 0), 8)}${pad(f(r.p50), 8)}${pad(f(r.p99), 8)}${pad(r.non200, 6)}${pad(cpuText(r), 8)} │ ${pad(f(e.rate / r.rate), 6)}${pad(`${f(median(row.roundRatios))} (${f(Math.min(...row.roundRatios))}–${f(Math.max(...row.roundRatios))})`, 25)} │ ${pad(f(fl.rate, 0), 8)}${pad(cpuText(fl), 8)}`);
}

// Net CPU: an exchange's CPU minus /healthz's at the same concurrency, per worker: what the
// exchange itself costs, apart from receiving and answering a request.
console.log("\nnet CPU per exchange (exchange minus /healthz, µs), and edge-sts's ratio to the floor and to jose:");
for (const concurrency of [1, 8]) {
  const health = rows.find((row) => row.name.startsWith("GET") && row.concurrency === concurrency);
  for (const row of rows.filter((row) => row.name.startsWith("exchange") && row.concurrency === concurrency)) {
    const net = (worker) =>
      row[worker].cpuPerRequest === null || health[worker].cpuPerRequest === null ? null : row[worker].cpuPerRequest - health[worker].cpuPerRequest;
    const [e, r, fl] = ["edge-sts", "reference", "floor"].map(net);
    // A worker whose CPU could not be read (a workerd of its gone from /proc) shows "–".
    const us = (value) => (value === null ? "–" : f(value, 0));
    const ratio = (other) => (e === null || other === null ? "–" : f(e / other));
    console.log(`  ${row.name.slice(10, 21)} conc ${concurrency}: edge-sts ${pad(us(e), 4)}, jose ${pad(us(r), 4)}, floor ${pad(us(fl), 4)}   edge-sts/floor ${ratio(fl)}, edge-sts/jose ${ratio(r)}`);
  }
}

console.log(`\nhostile form (${hostileBody.length} bytes, ~16,000 parameters), refused 400: edge-sts ${cpuText(hostile["edge-sts"])} µs CPU per request (p50 ${f(hostile["edge-sts"].p50)} ms), reference ${cpuText(hostile.reference)} µs (p50 ${f(hostile.reference.p50)} ms)`);

const coldList = (name, kind) => cold[name][kind].map((c) => c.ms);
// A median, and in brackets the middle half of the runs (first to third quartile).
const spread = (list) => {
  const [low, mid, high] = quartiles(list);
  return `${pad(f(mid, 1), 5)} (${f(low, 1)}–${f(high, 1)})`;
};
console.log(`\ncold isolate (a new workerd per request; account and key set in KV), median of ${COLD_RUNS} (the middle half of the runs):`);
for (const kind of ["health", "exchange"]) {
  const [e, r, fl] = ["edge-sts", "reference", "floor"].map((name) => coldList(name, kind));
  const ratio = coldRatio(e, r);
  console.log(
    `  first ${kind === "health" ? "/healthz " : "exchange"}  edge-sts ${spread(e)} ms   jose ${spread(r)} ms   floor ${spread(fl)} ms   ` +
      `edge-sts/jose ${f(ratio.ofMedians)}, per run ${f(ratio.perRun.mid)} (${f(ratio.perRun.low)}–${f(ratio.perRun.high)})`,
  );
}
const [noReads, ourReads, theirReads] = ["none", "edge-sts", "reference"].map((plan) => median(kvReads[plan].map((c) => c.ms)));
console.log(
  `  the KV reads alone (a JavaScript worker's first request): none ${f(noReads, 1)} ms; edge-sts's ${f(ourReads, 1)} ms ` +
    `(+${f(ourReads - noReads, 1)}: ${bench.describePlan("edge-sts")}); jose's ${f(theirReads, 1)} ms (+${f(theirReads - noReads, 1)}: ${bench.describePlan("reference")})`,
);
const stalePlan = bench.readPlanDiffers(cold["edge-sts"].exchange[0].timing);
if (stalePlan) console.log(`  ${stalePlan}`);
const coldNon200 = [...Object.values(cold).flatMap((kinds) => [...kinds.health, ...kinds.exchange]), ...Object.values(kvReads).flat()].filter((c) => c.status !== 200).length;
console.log(`  edge-sts's first exchange, Server-Timing: ${cold["edge-sts"].exchange[0].timing} (kv-waits: sequential waits on KV); non-200: ${coldNon200}`);
const floor = rows.find((row) => row.name.startsWith("GET") && row.concurrency === 1)["edge-sts"].p50;
for (const row of rows.filter((row) => row.name.startsWith("exchange") && row.concurrency === 1)) {
  console.log(`${row.name}: p50 ${f(row["edge-sts"].p50 - floor)} ms above the /healthz floor (${f(floor)} ms)`);
}
const sum = (key) => counted.reduce((total, round) => total + round.io[key], 0);
const countedExchanges = counted.reduce((total, round) => total + round.latencies.length, 0);
console.log(`warm exchanges counted (a second edge-sts with SERVER_TIMING=true, ${COUNT_SECONDS} s per algorithm): ${countedExchanges}, with ${sum("kv-read")} KV reads, ${sum("kv-write")} KV writes, ${sum("kv-waits")} KV waits, ${sum("subrequest")} subrequests; non-200: ${counted.reduce((total, round) => total + round.non200, 0)}`);
console.log("cpu µs: workerd's own CPU time per request (user + system, from /proc), the load generator not included");
console.log(`rounds: the edge-sts/jose ratio in each of the ${ROUNDS} rounds (back-to-back measurements): their median, lowest and highest`);
console.log("floor: only the Web Crypto verify and sign, keys imported once (bench/reference/floor.mjs)");
console.log(`wasm: ${wasm.length} bytes raw, ${gzipSync(wasm, { level: 9 }).length} bytes gzipped`);
const hostileAccepted = Object.values(hostile).reduce((total, result) => total + (result.count - result.non200), 0);
if (hostileAccepted > 0) console.log(`the hostile form was answered 200 ${hostileAccepted} times`);
const bad = hostileAccepted + coldNon200 + rows.reduce((total, row) => total + row["edge-sts"].non200 + row.reference.non200 + row.floor.non200, 0) + counted.reduce((total, round) => total + round.non200, 0);
process.exit(bad === 0 ? 0 : 1);
