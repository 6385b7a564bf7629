// `npm run --silent secrets`: both secrets of a new deployment as one JSON object, the input
// `wrangler secret bulk` takes:
//
//   npm run --silent secrets > secrets.json && npx wrangler secret bulk secrets.json && rm secrets.json
//
// stdout carries only the JSON; the admin token is repeated on stderr, once, for the operator to
// keep (edge-sts stores nothing it could show again).
import { newAdminToken, newPrivateJwk } from "./keygen.mjs";

const adminToken = newAdminToken();
const secrets = {
  SIGNING_KEYS: JSON.stringify({ keys: [await newPrivateJwk()] }),
  ADMIN_TOKEN: adminToken,
};
process.stdout.write(JSON.stringify(secrets, null, 2) + "\n");
process.stderr.write(`ADMIN_TOKEN=${adminToken}\n(shown once: keep it in your password manager; it is the admin API's bearer token)\n`);
