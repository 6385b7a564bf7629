// Starts the built worker (build/index.js + build/index_bg.wasm) in workerd through Miniflare,
// listening on 127.0.0.1, with local KV namespaces. Tests talk real HTTP to it.
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { webcrypto } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";
import net from "node:net";
import { enforce } from "./contract.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The vars of wrangler.toml, as a deployment without overrides has them. */
export const DEFAULT_VARS = {
  ISSUER: "",
  TENANT_ID: "",
  SCOPES: "certificate-issuance,api-integration,kubernetes-discovery-federated",
  CLOCK_SKEW_SECONDS: "60",
  ALLOW_HTTP_LOOPBACK: "false",
};

/** A fresh ES256 private JWK, as `npm run keygen` makes (kid = RFC 7638 thumbprint). */
export async function newSigningKey() {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const { kty, crv, x, y, d } = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
  return { kty, crv, x, y, d };
}

/**
 * Starts the worker. `bindings` are vars and secrets (strings); unset ones are absent.
 * With `logs` (an array), every line the worker logs is pushed onto it instead of printed.
 * `build` names the build folder: `build` (the release build) or `build-selftest`;
 * `modules` replaces the worker altogether (the benchmark's reference worker).
 * `outbound` (request => Response) answers every fetch the worker makes, so a test can play
 * an https issuer on any host; `ratelimits` binds Workers Rate Limiting namespaces
 * ({ NAME: { limit, period } }).
 * `tls` ({ key, cert } in PEM, from tls.mjs) serves https instead of http (Microsoft's clients
 * refuse http authorities); `port` picks the port (0: any free one); `inspectorPort` opens V8's
 * inspector (bench/profile.mjs); `compatibilityFlags` adds workerd compatibility flags.
 * Every response received through `fetch` and `json` is checked against docs/openapi.json
 * (contract.mjs): one that does not fit throws.
 * Returns { url, fetch(path, init), json(path, init), kv(name), dispose() }.
 */
export async function startWorker(bindings = {}, { logs, build = "build", modules, outbound, ratelimits, tls, port = 0, inspectorPort, compatibilityFlags } = {}) {
  const BUILD = path.resolve(ROOT, build);
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modulesRoot: modules ? path.dirname(modules[0].path) : BUILD,
      modules: modules ?? [
        { type: "ESModule", path: path.join(BUILD, "index.js") },
        { type: "CompiledWasm", path: path.join(BUILD, "index_bg.wasm") },
      ],
      compatibilityDate: "2026-11-01",
      ...(compatibilityFlags ? { compatibilityFlags } : {}),
      bindings: Object.fromEntries(Object.entries(bindings).filter(([, value]) => value !== undefined)),
      kvNamespaces: ["ACCOUNTS", "JWKS_CACHE"],
      // The account registry, SQLite-backed as wrangler.toml declares it (not for a replaced
      // worker, which exports no such class).
      ...(modules ? {} : { durableObjects: { REGISTRY: { className: "AccountRegistry", useSQLite: true } } }),
      cf: false,
      ...(logs ? { handleStructuredLogs: (log) => logs.push(log.message) } : {}),
      ...(outbound ? { outboundService: outbound } : {}),
      ...(ratelimits
        ? {
            ratelimits: Object.fromEntries(
              Object.entries(ratelimits).map(([name, simple], index) => [name, { namespace_id: String(1001 + index), simple }]),
            ),
          }
        : {}),
      host: "127.0.0.1",
      port,
      ...(inspectorPort ? { inspectorPort } : {}),
      ...(tls ? { https: true, httpsKey: tls.key, httpsCert: tls.cert } : {}),
    }),
  );
  const url = (await mf.ready).toString().replace(/\/$/, "");
  // Every answer of edge-sts is held to docs/openapi.json (not a replaced worker's).
  const call = async (p, init) => {
    const response = await fetch(url + p, { redirect: "manual", ...init });
    if (!modules) await enforce(init?.method ?? "GET", p, response.clone());
    return response;
  };
  return {
    url,
    fetch: call,
    /** Fetches and parses the JSON body; returns { status, headers, body }. */
    async json(p, init) {
      const response = await call(p, init);
      const text = await response.text();
      let body = null;
      try {
        if (text !== "") body = JSON.parse(text);
      } catch {
        throw new Error(`${init?.method ?? "GET"} ${p} answered ${response.status} with a non-JSON body: ${text}`);
      }
      return { status: response.status, headers: response.headers, body };
    },
    kv: (name) => mf.getKVNamespace(name),
    dispose: () => mf.dispose(),
  };
}

/**
 * Creates a service account through the admin API with the bearer `token`; returns the created
 * account, or throws with the worker's answer when it is not 201.
 */
export async function createAccount(worker, token, fields) {
  const created = await worker.json("/v1/serviceaccounts", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(fields),
  });
  if (created.status !== 201) throw new Error(`creating ${JSON.stringify(fields.name)} answered ${created.status}: ${JSON.stringify(created.body)}`);
  return created.body;
}

/** A free TCP port on 127.0.0.1 (for a worker whose ISSUER must name its own port). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}
