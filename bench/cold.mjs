// Cold isolates only, quickly: `npm run bench:cold [-- build-dir …]`. For each build given
// (default build/) and the jose reference, a new workerd per measurement, its first request
// timed: a first `/healthz`, and a first exchange with account and key set already in KV; and a
// plain JavaScript worker making only each one's KV reads. Median of COLD_RUNS (default 7), with the
// middle half of the runs; each build's ratio to jose (and to the first build given) of the
// medians and per run.
// `npm run bench` prints the same beside everything else.
import http from "node:http";
import { coldRatio, median, quartiles, send, setUp } from "./setup.mjs";

const RUNS = Number(process.env.COLD_RUNS ?? 7);
const builds = process.argv.slice(2).length ? process.argv.slice(2) : ["build"];
const bench = await setUp();

/** A new workerd running `name`, its first request timed (a POST when there is a `body`). */
async function first(name, build, path, body) {
  const worker = await bench.start(name, { build });
  worker.agent = new http.Agent({ keepAlive: true });
  const started = performance.now();
  const response = await send(worker, body === undefined ? "GET" : "POST", path, body);
  const ms = performance.now() - started;
  worker.agent.destroy();
  await worker.dispose();
  if (response.status !== 200) throw new Error(`${name} ${path}: ${response.status}`);
  return { ms, timing: response.timing };
}
const exchange = () => bench.exchangeBody("ES256");
const targets = [...builds.map((build) => [build, "counting", build]), ["jose reference", "reference"], ["floor", "floor"]];
const results = Object.fromEntries(targets.map(([label]) => [label, { health: [], exchange: [] }]));
// The KV reads alone: a plain JavaScript worker's first request making only each worker's
// cold reads, and one making none (what the local KV costs, apart from the rest of a first
// exchange).
const reads = Object.fromEntries(Object.keys(bench.readPlans).map((name) => [name, []]));
for (let run = 0; run < RUNS; run++) {
  // Every other run in the opposite order, so that no worker is always the first started.
  for (const [label, name, build] of run % 2 ? [...targets].reverse() : targets) {
    results[label].health.push(await first(name, build, "/healthz"));
    results[label].exchange.push(await first(name, build, "/oauth2/token", exchange()));
  }
  for (const [name, plan] of Object.entries(bench.readPlans)) {
    const read = await first("kv-reads", undefined, `/?plan=${encodeURIComponent(JSON.stringify(plan))}`);
    bench.checkFound(name, read.timing);
    reads[name].push(read);
  }
  process.stderr.write(".");
}
process.stderr.write("\n");
// Medians, and in brackets the middle half of the runs (first to third quartile).
const ms = (list) => {
  const [low, mid, high] = quartiles(list.map((result) => result.ms));
  return `${mid.toFixed(1).padStart(5)} (${low.toFixed(1)}–${high.toFixed(1)})`;
};
const jose = results["jose reference"];
for (const [label, { health, exchange: exchanges }] of Object.entries(results)) {
  const timing = exchanges[0].timing ? `   ${exchanges[0].timing}` : "";
  console.log(`${label.padEnd(16)} first /healthz ${ms(health)} ms   first exchange ${ms(exchanges)} ms${timing}`);
}
// Each build's ratio to jose, of the medians and per run (each run starts every worker once).
for (const build of builds) {
  const ratios = ["health", "exchange"].map((kind) => {
    const ratio = coldRatio(...[results[build], jose].map((worker) => worker[kind].map((result) => result.ms)));
    const { low, mid, high } = ratio.perRun;
    return `${kind === "health" ? "first /healthz" : "first exchange"} ${ratio.ofMedians.toFixed(2)}, per run ${mid.toFixed(2)} (${low.toFixed(2)}–${high.toFixed(2)})`;
  });
  console.log(`${build} / jose: ${ratios.join("; ")}`);
}
// An A/B of builds: each later build's first exchange per run over the first build's.
for (const build of builds.slice(1)) {
  const ratio = coldRatio(...[build, builds[0]].map((label) => results[label].exchange.map((result) => result.ms)));
  const { low, mid, high } = ratio.perRun;
  console.log(`${build} / ${builds[0]}: first exchange ${ratio.ofMedians.toFixed(3)}, per run ${mid.toFixed(3)} (${low.toFixed(3)}–${high.toFixed(3)})`);
}
const readMs = (name) => median(reads[name].map((result) => result.ms));
const [none, ours, theirs] = ["none", "edge-sts", "reference"].map(readMs);
console.log(
  `KV reads alone   (a JavaScript worker's first request) none ${none.toFixed(1)} ms; ` +
    `edge-sts's ${ours.toFixed(1)} ms (+${(ours - none).toFixed(1)}: ${bench.describePlan("edge-sts")}); ` +
    `the reference's ${theirs.toFixed(1)} ms (+${(theirs - none).toFixed(1)}: ${bench.describePlan("reference")})`,
);
for (const build of builds) {
  const stalePlan = bench.readPlanDiffers(results[build].exchange[0].timing);
  if (stalePlan) console.log(`${build}: ${stalePlan}`);
}
await bench.close();
