// Project Wycheproof's vectors through the Web Crypto verifier in workerd (the `selftest`
// build's /__selftest/verify runs the same core code as the native test, with Web Crypto
// underneath): every `valid` vector verifies, every `invalid` one does not.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { DEFAULT_VARS, startWorker } from "./harness.mjs";

const VECTORS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../vectors/wycheproof");
const FILES = {
  "ecdsa_secp256r1_sha256_p1363_test.json": "ES256",
  "ecdsa_secp384r1_sha384_p1363_test.json": "ES384",
  "ecdsa_secp521r1_sha512_p1363_test.json": "ES512",
  "rsa_signature_2048_sha256_test.json": "RS256",
  "rsa_signature_2048_sha384_test.json": "RS384",
  "rsa_signature_2048_sha512_test.json": "RS512",
  "rsa_pss_2048_sha256_mgf1_32_test.json": "PS256",
  "rsa_pss_2048_sha384_mgf1_48_test.json": "PS384",
  "rsa_pss_4096_sha512_mgf1_64_test.json": "PS512",
  "ed25519_test.json": "EdDSA",
};
const CURVES = { ES256: "P-256", ES384: "P-384", ES512: "P-521" };

/** The group's JWK, or one built from the uncompressed point (edge-case ECDSA keys). */
function groupJwk(group, alg) {
  const jwk = group.publicKeyJwk ?? group.keyJwk;
  if (jwk) return jwk;
  const point = Buffer.from(group.publicKey.uncompressed, "hex");
  const half = (point.length - 1) / 2;
  return {
    kty: "EC",
    crv: CURVES[alg],
    x: point.subarray(1, 1 + half).toString("base64url"),
    y: point.subarray(1 + half).toString("base64url"),
  };
}

let worker;
before(async () => {
  worker = await startWorker({ ...DEFAULT_VARS }, { build: "build-selftest" });
});
after(() => worker?.dispose());

for (const [file, alg] of Object.entries(FILES)) {
  test(`Wycheproof ${file} (${alg}) through Web Crypto`, async () => {
    const { testGroups } = JSON.parse(readFileSync(path.join(VECTORS, file), "utf8"));
    let valid = 0;
    let invalid = 0;
    for (const group of testGroups) {
      // In batches: a request body over 64 KiB is not even read by the worker.
      const results = [];
      for (let start = 0; start < group.tests.length; start += 40) {
        const batch = group.tests.slice(start, start + 40);
        const { status, body } = await worker.json("/__selftest/verify", {
          method: "POST",
          body: JSON.stringify({ alg, jwk: groupJwk(group, alg), cases: batch.map((t) => [t.msg, t.sig]) }),
        });
        assert.equal(status, 200, JSON.stringify(body));
        results.push(...body.results);
      }
      group.tests.forEach((vector, i) => {
        const id = `tcId ${vector.tcId} (${vector.comment})`;
        if (vector.result === "valid") {
          assert.equal(results[i], true, `${id} is valid but was refused`);
          valid++;
        } else if (vector.result === "invalid") {
          assert.equal(results[i], false, `${id} is invalid but verified`);
          invalid++;
        }
      });
    }
    assert.ok(valid > 0 && invalid > 0, `${valid} valid, ${invalid} invalid`);
  });
}
