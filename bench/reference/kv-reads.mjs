// The KV reads of a cold exchange alone, made by a plain JavaScript worker (bench/cold.mjs):
// what the local KV (Miniflare's, on the same machine) costs each read pattern, apart from
// everything else a first exchange does. `?plan=` is a JSON list of waits, each a list of
// reads made together: [namespace, key] for one key, [namespace, [keys]] for a bulk read.
export default {
  async fetch(request, env) {
    const plan = JSON.parse(new URL(request.url).searchParams.get("plan") ?? "[]");
    for (const wait of plan) await Promise.all(wait.map(([namespace, key]) => env[namespace].get(key)));
    return new Response("read", { headers: { "cache-control": "no-store" } });
  },
};
