// Exports the audit trail as JSON Lines, oldest event last (newest first, as the API pages).
//
//   STS=https://sts.example.com ADMIN_TOKEN=… npm run --silent audit-export > audit.jsonl
//   npm run --silent audit-export -- --since 2026-11-01T00:00:00Z --account <id> --actor <name>
//
// Any credential with the reader or admin role will do. Progress goes to stderr; each event is
// one line on stdout: {"id", "at", "actor", "action", "account", "changes", "requestId"}.
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { since: { type: "string" }, account: { type: "string" }, actor: { type: "string" } },
});
const sts = process.env.STS?.replace(/\/$/, "");
const token = process.env.ADMIN_TOKEN;
if (!sts || !token) {
  process.stderr.write("audit-export: set STS (the service's URL) and ADMIN_TOKEN (a reader or admin token)\n");
  process.exit(2);
}
const query = new URLSearchParams({ limit: "1000" });
for (const name of ["account", "actor", "since"]) if (values[name]) query.set(name, values[name]);
let next = `/v1/audit?${query}`;
let count = 0;
while (next) {
  const response = await fetch(sts + next, { headers: { authorization: `Bearer ${token}` } });
  const body = await response.json();
  if (response.status !== 200) {
    process.stderr.write(`audit-export: ${response.status} ${body.error_description ?? JSON.stringify(body)}\n`);
    process.exit(1);
  }
  for (const event of body) process.stdout.write(`${JSON.stringify(event)}\n`);
  count += body.length;
  process.stderr.write(`audit-export: ${count} events\n`);
  next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get("link") ?? "")?.[1] ?? null;
}
