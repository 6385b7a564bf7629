// Mints a named admin credential for ADMIN_TOKENS.
//
//   npm run --silent admin-token -- --name ci-terraform --role admin
//   npm run --silent admin-token -- --name dashboards --role reader --add "$CURRENT_ADMIN_TOKENS"
//
// Prints two lines on stdout: the token (give it to the caller, once; it is not kept anywhere)
// and the ADMIN_TOKENS entry for it, `{"name", "role", "sha256"}`. With --add, the second line
// is instead the whole new ADMIN_TOKENS value: the given list with the entry appended.
// Roles (the contract): admin (everything), reader (GET calls, the dry run, the audit trail),
// introspector (/oauth2/introspect only). Set the list with
//   wrangler secret put ADMIN_TOKENS
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

const ROLES = ["admin", "reader", "introspector"];
const RESERVED = ["admin", "import"];

function fail(message) {
  process.stderr.write(`admin-token: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    name: { type: "string" },
    role: { type: "string", default: "reader" },
    add: { type: "string" },
  },
});
const { name, role } = values;
if (!name || !/^[A-Za-z0-9._@+-]{1,64}$/.test(name)) {
  fail("--name is required: 1-64 letters, digits or . _ @ + - (it names the caller in the audit trail)");
}
if (RESERVED.includes(name)) fail(`the name ${JSON.stringify(name)} is reserved`);
if (!ROLES.includes(role)) fail(`--role must be one of ${ROLES.join(", ")}`);

const token = randomBytes(32).toString("base64url");
const entry = { name, role, sha256: createHash("sha256").update(token).digest("hex") };
let second = JSON.stringify(entry);
if (values.add !== undefined) {
  let list;
  try {
    list = values.add.trim() === "" ? [] : JSON.parse(values.add);
  } catch {
    fail("--add must be the current ADMIN_TOKENS value (a JSON list)");
  }
  if (!Array.isArray(list)) fail("--add must be the current ADMIN_TOKENS value (a JSON list)");
  if (list.some((other) => other?.name === name)) fail(`ADMIN_TOKENS already has ${JSON.stringify(name)}`);
  second = JSON.stringify([...list, entry]);
}
process.stdout.write(`${token}\n${second}\n`);
