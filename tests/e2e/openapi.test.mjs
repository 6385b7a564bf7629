// docs/openapi.json is a valid OpenAPI 3.1 description (checked by an OpenAPI validator from
// npm), it is what the worker serves at /openapi.json, and it documents every route the worker
// answers. That every response fits it is checked by the harness, in every test (contract.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";
import { SPEC_PATH, spec, violations } from "./contract.mjs";

test("docs/openapi.json is a valid OpenAPI 3.1 document", async () => {
  const validator = new Validator();
  const result = await validator.validate(SPEC_PATH);
  assert.equal(validator.version, "3.1");
  assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
});

test("the worker serves the same document at /openapi.json", async () => {
  const worker = await startWorker({ ...DEFAULT_VARS, ISSUER: "https://sts.example.com", SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }) });
  try {
    const response = await worker.fetch("/openapi.json");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), JSON.parse(readFileSync(SPEC_PATH, "utf8")));
  } finally {
    await worker.dispose();
  }
});

test("the description documents Venafi's error codes and every reason", () => {
  const reasons = spec.components.schemas.Reason.enum;
  assert.equal(reasons.length, 22);
  const codes = spec.components.schemas.VenafiError.properties.code.enum;
  for (let i = 0; i < reasons.length; i++) assert.ok(codes.includes(1001 + i));
  for (const code of [1100, 1101, 1103, 1104, 1105, 1106, 1107, 1108, 1109, 1110, 1111, 1112, 1113]) assert.ok(codes.includes(code), code);
});

test("the contract check catches a response that drifts", async () => {
  const drifted = new Response(JSON.stringify({ status: "fine" }), { status: 200, headers: { "content-type": "application/json" } });
  const problems = await violations("GET", "/healthz", drifted);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /does not fit/);
  const undocumented = new Response("", { status: 418 });
  assert.match((await violations("GET", "/healthz", undocumented))[0], /not documented/);
  const wrongType = new Response("<html>", { status: 200, headers: { "content-type": "text/html" } });
  assert.match((await violations("GET", "/v1/audit", wrongType))[0], /content type text\/html/);
});
