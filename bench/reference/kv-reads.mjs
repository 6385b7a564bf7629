// The KV reads of a cold exchange alone, made by a plain JavaScript worker (bench/cold.mjs,
// bench/run.mjs): what the local KV (Miniflare's, on the same machine) costs each read pattern,
// apart from everything else a first exchange does. `?plan=` is a JSON list of waits, each a
// list of reads made together: [namespace, key] for one key, [namespace, [keys]] for a bulk
// read. Answers how many values it found in Server-Timing (`found;desc=3`), so the bench can
// tell a plan that reads what it means to from one reading absent keys.
export default {
  async fetch(request, env) {
    const plan = JSON.parse(new URL(request.url).searchParams.get("plan") ?? "[]");
    let found = 0;
    for (const wait of plan) {
      const values = await Promise.all(wait.map(([namespace, key]) => env[namespace].get(key)));
      for (const value of values) {
        found += value instanceof Map ? [...value.values()].filter((one) => one !== null).length : value === null ? 0 : 1;
      }
    }
    return new Response("read", { headers: { "cache-control": "no-store", "server-timing": `found;desc=${found}` } });
  },
};
