// The contract, enforced: every response the end-to-end suite receives through the harness is
// checked against docs/openapi.json — that its status is documented for the operation, its
// content type is one the operation declares, and its body fits the declared schema (JSON
// Schema 2020-12, by ajv). A response that does not fit fails the test that received it.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SPEC_PATH = path.join(ROOT, "docs/openapi.json");
export const spec = JSON.parse(readFileSync(SPEC_PATH, "utf8"));

const SCHEMAS_ID = "https://edge-sts.invalid/openapi";
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// The components' schemas as one schema document, `#/components/schemas/X` → `#/$defs/X`.
const toDefs = (value) => JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', `"${SCHEMAS_ID}#/$defs/`));
ajv.addSchema({ $id: SCHEMAS_ID, $defs: toDefs(spec.components.schemas) });
const compiled = new Map();
function validator(schema) {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) compiled.set(key, ajv.compile(toDefs(schema)));
  return compiled.get(key);
}

/** The spec's path template for a request path, preferring literal segments; null if none. */
function operationPath(requestPath) {
  const segments = requestPath.split("/");
  let best = null;
  let bestScore = -1;
  for (const template of Object.keys(spec.paths)) {
    const parts = template.split("/");
    if (parts.length !== segments.length) continue;
    let score = 0;
    const fits = parts.every((part, index) => {
      if (/^\{[^}]+\}$/.test(part)) return segments[index] !== "";
      if (part === segments[index]) {
        score++;
        return true;
      }
      return false;
    });
    if (fits && score > bestScore) {
      best = template;
      bestScore = score;
    }
  }
  return best;
}

function resolve(response) {
  const ref = response?.$ref;
  return ref ? spec.components.responses[ref.split("/").pop()] : response;
}

/** Problems of one response (empty: it fits). `response` is consumed. */
export async function violations(method, pathAndQuery, response) {
  const requestPath = new URL(pathAndQuery, "http://x").pathname;
  const problems = [];
  const text = await response.text();
  const mediaType = (response.headers.get("content-type") ?? "").split(";")[0].trim();
  const template = operationPath(requestPath);
  const operation = template && spec.paths[template][method.toLowerCase()];
  const where = `${method} ${requestPath} → ${response.status}`;
  let declared;
  if (!operation) {
    // No such operation: the answer must still be a documented error (404 / 405).
    if (![404, 405].includes(response.status)) problems.push(`${where}: no operation in the description`);
    declared = resolve(spec.components.responses[response.status === 405 ? "MethodNotAllowed" : "NotFound"]);
  } else {
    declared = resolve(operation.responses[String(response.status)] ?? operation.responses.default);
    if (!declared) {
      problems.push(`${where}: status not documented (documented: ${Object.keys(operation.responses).join(", ")})`);
      return problems;
    }
  }
  if (!declared.content) {
    if (text !== "") problems.push(`${where}: documented without a body, answered ${text.slice(0, 100)}`);
    return problems;
  }
  const content = declared.content[mediaType];
  if (!content) {
    problems.push(`${where}: content type ${mediaType || "(none)"} not documented (${Object.keys(declared.content).join(", ")})`);
    return problems;
  }
  if (mediaType !== "application/json") return problems;
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    problems.push(`${where}: not JSON: ${text.slice(0, 100)}`);
    return problems;
  }
  const validate = validator(content.schema);
  if (!validate(body)) {
    problems.push(`${where}: the body does not fit ${JSON.stringify(content.schema)}: ${ajv.errorsText(validate.errors)}; body ${JSON.stringify(body).slice(0, 300)}`);
  }
  return problems;
}

/** Throws when the response breaks the contract. */
export async function enforce(method, pathAndQuery, response) {
  if (new URL(pathAndQuery, "http://x").pathname.startsWith("/__selftest/")) return;
  const problems = await violations(method, pathAndQuery, response);
  if (problems.length > 0) throw new Error(`the response breaks docs/openapi.json:\n  ${problems.join("\n  ")}`);
}
