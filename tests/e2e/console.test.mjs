// The admin console (/admin) in a real browser: Debian's Chromium driven by playwright-core,
// against the built worker in workerd. Walks the seed's flow — sign in, create an account
// through every wizard step, fix an Issuer URL the server rejected, see it listed, test a good
// and a bad token, disable, delete — and writes a screenshot of each step to
// test-results/console/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { chromium } from "playwright-core";
import { DEFAULT_VARS, newSigningKey, startWorker } from "./harness.mjs";
import { newKey, sign, startIdp } from "./idp.mjs";

const ADMIN_TOKEN = "e2e-console-admin-token-0123456789";
const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test-results/console");
const SUBJECT = "repo:acme/app:ref:refs/heads/main";
const AUDIENCE = "https://sts.example.com";

let worker;
let idp;
let browser;
let page;
let shot = 0;
const foreignRequests = [];
const screenshot = async (name) => {
  shot++;
  await page.screenshot({ path: path.join(SHOTS, `${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
};

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  idp = await startIdp();
  idp.keys = [await newKey("ES256", "console")];
  worker = await startWorker({
    ...DEFAULT_VARS,
    ALLOW_HTTP_LOOPBACK: "true",
    SIGNING_KEYS: JSON.stringify({ keys: [await newSigningKey()] }),
    ADMIN_TOKEN,
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  // Every request the page makes must go to the worker itself (asserted at the end).
  page.on("request", (request) => {
    if (!request.url().startsWith(worker.url)) foreignRequests.push(request.url());
  });
});
after(async () => {
  await browser?.close();
  await worker?.dispose();
  await idp?.close();
});

test("the seed's flow, end to end, in the browser", { timeout: 120_000 }, async () => {
  try {
    await flow();
  } catch (error) {
    // Keep what the page looked like when it failed.
    await page.screenshot({ path: path.join(SHOTS, "failure.png"), fullPage: true }).catch(() => {});
    throw error;
  }
  assert.deepEqual(foreignRequests, [], "requests to another origin");
});

async function flow() {
  await page.goto(`${worker.url}/admin`);
  await screenshot("sign-in");

  // A wrong token: a clear message, still signed out.
  await page.getByLabel("Admin token").fill("wrong-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await assert.doesNotReject(page.getByText("The admin token was not accepted").waitFor());
  await screenshot("sign-in-refused");

  // Keyboard only: select what is there, type the token and press Enter.
  await page.getByLabel("Admin token").focus();
  await page.keyboard.press("Control+A");
  await page.keyboard.type(ADMIN_TOKEN);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Service accounts" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("edge-sts-admin-token")), ADMIN_TOKEN);
  await screenshot("empty-list");

  // The wizard: Details → Authentication → Scope → Credentials → Review → Finish.
  await page.getByRole("button", { name: "Create account" }).first().click();
  const wizard = page.locator("#wizard");
  await wizard.getByLabel("Name", { exact: true }).fill("deploy from main");
  await screenshot("wizard-details");
  await wizard.getByLabel("Name", { exact: true }).press("Enter"); // Continue, from the keyboard
  const method = wizard.getByLabel("Workload Identity Federation");
  await method.waitFor();
  assert.ok(await method.isChecked());
  await screenshot("wizard-method");
  await wizard.getByRole("button", { name: "Continue" }).click();
  await wizard.getByLabel("cert-manager Enterprise Issuer").check();
  await wizard.getByLabel("Custom API Integration").waitFor();
  await screenshot("wizard-scope");
  await wizard.getByRole("button", { name: "Continue" }).click();
  for (const label of ["Issuer URL", "JWKS URI", "Subject Identifier", "Audience"]) {
    await wizard.getByLabel(label, { exact: true }).waitFor(); // each input has exactly that label
  }
  await wizard.getByLabel("Issuer URL", { exact: true }).fill("http://issuer.example.com"); // refused by the server
  await wizard.getByLabel("JWKS URI", { exact: true }).fill(`${idp.url}/jwks`);
  await wizard.getByLabel("Subject Identifier", { exact: true }).fill(SUBJECT);
  await wizard.getByLabel("Audience", { exact: true }).fill(AUDIENCE);
  await screenshot("wizard-credentials");
  await wizard.getByRole("button", { name: "Continue" }).click();
  await wizard.locator("#review").getByText("http://issuer.example.com").waitFor();
  await screenshot("wizard-review");
  await wizard.getByRole("button", { name: "Finish" }).click();

  // The server's 400 names issuerURL: the wizard goes back and shows it next to the input.
  const issuer = wizard.getByLabel("Issuer URL", { exact: true });
  await page.locator("#f-issuerURL-error").getByText("http:// is allowed only").waitFor();
  assert.equal(await issuer.getAttribute("aria-invalid"), "true");
  assert.ok(await issuer.evaluate((input) => input === document.activeElement), "focus on the field at fault");
  await screenshot("wizard-issuer-refused");
  await issuer.fill(idp.url);
  await wizard.getByRole("button", { name: "Continue" }).click();
  await wizard.getByRole("button", { name: "Finish" }).click();

  await page.getByRole("heading", { name: "Service accounts" }).waitFor();
  const row = page.getByRole("row", { name: /deploy from main/ });
  await row.waitFor();
  const text = await row.innerText();
  for (const expected of ["cert-manager Enterprise Issuer", idp.url, SUBJECT, "Yes"]) assert.ok(text.includes(expected), `${expected} in ${text}`);
  await screenshot("listed");

  // Edit: the stored values are shown; a change is saved and listed.
  await page.getByRole("button", { name: "Edit deploy from main" }).click();
  await page.getByRole("heading", { name: "Edit deploy from main" }).waitFor();
  const edit = page.locator("#edit-form");
  assert.equal(await edit.getByLabel("Subject Identifier", { exact: true }).inputValue(), SUBJECT);
  await edit.getByLabel("Name", { exact: true }).fill("deploy from main (edited)");
  await screenshot("edit");
  await edit.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved deploy from main (edited).").waitFor();
  await page.getByRole("row", { name: /deploy from main \(edited\)/ }).waitFor();
  await page.getByRole("button", { name: "Edit deploy from main (edited)" }).click();
  await page.getByRole("heading", { name: "Edit deploy from main (edited)" }).waitFor();
  await edit.getByLabel("Name", { exact: true }).fill("deploy from main");
  await edit.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved deploy from main.").waitFor();

  // The account's page shows its history: who changed what, from what to what.
  await page.getByRole("button", { name: "History deploy from main" }).click();
  const history = page.locator("#history");
  await history.getByText("name: deploy from main (edited) → deploy from main").waitFor();
  await history.getByText("name: deploy from main → deploy from main (edited)").waitFor();
  assert.equal(await history.getByRole("row").count(), 3, "created, renamed, renamed back");
  assert.match(await history.getByRole("row").last().innerText(), /admin\s+Created/);
  await screenshot("history");
  // Someone else changes the account while it is open here: saving does not write over it.
  const { body: listed } = await worker.json("/v1/serviceaccounts", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const behind = await worker.fetch(`/v1/serviceaccounts/${listed[0].id}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ owner: "someone else" }),
  });
  assert.equal(behind.status, 204);
  await edit.getByLabel("Name", { exact: true }).fill("my rename");
  await edit.getByRole("button", { name: "Save" }).click();
  await page.getByText("Someone changed this account after you opened it").waitFor();
  await screenshot("edit-refused-412");
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.getByRole("heading", { name: "Service accounts" }).waitFor();

  // Test a good and a bad token: decoded header and claims, and the verdict check by check.
  await page.getByRole("button", { name: "Test a token deploy from main" }).click();
  await page.getByLabel("Token (JWT)").fill(await sign(idp.keys[0], idp.claims()));
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByText("This token would be accepted for this account.").waitFor();
  assert.equal(await page.locator("#status").innerText(), "", "no stale message from another view");
  assert.ok((await page.locator("#t-claims").innerText()).includes(SUBJECT));
  assert.equal(await page.locator("#checks .fail").count(), 0);
  assert.ok((await page.locator("#checks .ok").count()) >= 8);
  await screenshot("test-good-token");
  await page.getByLabel("Token (JWT)").fill(await sign(idp.keys[0], idp.claims({ aud: "someone-else" })));
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByText("This token would be refused for this account.").waitFor();
  const failed = await page.locator("#checks li", { has: page.locator(".fail") }).allInnerTexts();
  assert.equal(failed.length, 1);
  assert.match(failed[0], /audience: .*someone-else.*audience_mismatch/);
  await screenshot("test-bad-token");

  // Disable, then delete with confirmation.
  await page.getByRole("button", { name: "Accounts" }).click();
  await page.getByRole("button", { name: "Disable deploy from main" }).click();
  await page.getByText("deploy from main is now disabled.").waitFor();
  // The message comes after the list is reloaded, so the row already says so.
  assert.match(await page.getByRole("row", { name: /deploy from main/ }).innerText(), /\bNo\b/);
  await screenshot("disabled");

  // The Activity view: every change, newest first, filterable by who made it.
  await page.getByRole("button", { name: "Activity", exact: true }).click();
  await page.getByRole("heading", { name: "Activity" }).waitFor();
  const activity = page.locator("#activity");
  await activity.getByRole("row").first().waitFor();
  const rows = await activity.getByRole("row").allInnerTexts();
  assert.match(rows[0], /admin\s+Disabled\s+deploy from main/);
  assert.match(rows[0], /enabled: true → false/);
  assert.ok(rows.some((row) => /Changed[\s\S]*owner: — → someone else/.test(row)), rows.join("\n"));
  await screenshot("activity");
  await page.getByLabel("Who (credential name or email)").fill("nobody");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByText("No activity matches these filters.").waitFor();
  await page.getByRole("button", { name: "Accounts" }).click();
  await page.getByRole("heading", { name: "Service accounts" }).waitFor();

  // Readable at 360 px: no sideways scrolling.
  await page.setViewportSize({ width: 360, height: 740 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), "fits 360 px");
  await screenshot("narrow-360px");
  await page.setViewportSize({ width: 1100, height: 800 });

  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: "Delete deploy from main" }).click();
  await page.getByText("deploy from main was deleted.").waitFor();
  assert.equal(await page.getByRole("row", { name: /deploy from main/ }).count(), 0);
  await screenshot("deleted");

  await patternFlow();
}

/** A subject pattern (warned about, shown in words), claim rules and an inline key set. */
async function patternFlow() {
  await page.getByRole("button", { name: "Create account" }).first().click();
  const wizard = page.locator("#wizard");
  await wizard.getByLabel("Name", { exact: true }).fill("every acme repository");
  await wizard.getByRole("button", { name: "Continue" }).click();
  await wizard.getByRole("button", { name: "Continue" }).click();
  await wizard.getByLabel("cert-manager Enterprise Issuer").check();
  await wizard.getByRole("button", { name: "Continue" }).click();
  await wizard.getByLabel("Issuer URL", { exact: true }).fill(idp.url);
  // The issuer's keys pasted inline, as for a private cluster: nothing is fetched.
  await wizard.getByLabel("Inline JWK Set (optional)").fill(JSON.stringify({ keys: [idp.keys[0].publicJwk] }));
  await wizard.getByLabel("as a pattern", { exact: false }).check();
  const subject = wizard.getByLabel("Subject Identifier", { exact: true });
  await subject.fill("*:*");
  await page.locator("#f-subject-preview").getByText("Too broad").waitFor();
  await screenshot("pattern-too-broad");
  await subject.fill("repo:acme/*");
  await page.locator("#f-subject-preview").getByText("Trusts every subject that begins with “repo:acme/”").waitFor();
  await wizard.getByLabel("Audience", { exact: true }).fill(AUDIENCE);
  await wizard.getByLabel("Claim rules (optional)").fill("repository_owner = acme\nkubernetes.io.namespace = ci-*");
  await screenshot("pattern-credentials");
  await wizard.getByRole("button", { name: "Continue" }).click();
  const warning = page.locator("#pattern-warning");
  await warning.getByText("Trusts every subject that begins with “repo:acme/”").waitFor();
  await screenshot("pattern-review-warning");
  await wizard.getByRole("button", { name: "Finish" }).click();
  await page.locator("#f-form-error").getByText("Confirm that every workload").waitFor();
  await warning.getByLabel(/I understand/).check();
  await wizard.getByRole("button", { name: "Finish" }).click();
  await page.getByText("Created every acme repository.").waitFor();
  const row = page.getByRole("row", { name: /every acme repository/ });
  assert.match(await row.innerText(), /repo:acme\/\* \(pattern\)/);

  // The dry run shows which claim matched, and that the inline key verified the token.
  await page.getByRole("button", { name: "Test a token every acme repository" }).click();
  const token = await sign(idp.keys[0], idp.claims({ sub: "repo:acme/tools", repository_owner: "acme", "kubernetes.io": { namespace: "ci-main" } }));
  await page.getByLabel("Token (JWT)").fill(token);
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByText("This token would be accepted for this account.").waitFor();
  assert.match(await page.locator("#checks").innerText(), /kubernetes\.io\.namespace 'ci-main' matches 'ci-\*'|kubernetes\.io\.namespace "ci-main" matches "ci-\*"/);
  await screenshot("pattern-test-token");

  // Edit shows the pattern, the claim rules and the key set as they are stored.
  await page.getByRole("button", { name: "Accounts" }).click();
  await page.getByRole("button", { name: "Edit every acme repository" }).click();
  // The page reads the account afresh (and its ETag); its title comes once the form is filled.
  await page.getByRole("heading", { name: "Edit every acme repository" }).waitFor();
  const edit = page.locator("#edit-form");
  assert.ok(await edit.getByLabel("as a pattern").isChecked());
  assert.equal(await edit.getByLabel("Claim rules").inputValue(), "kubernetes.io.namespace = ci-*\nrepository_owner = acme");
  await edit.getByLabel("Claim rules").fill("repository_owner = acme");
  await edit.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved every acme repository.").waitFor();
  const listed = await page.evaluate(async () => {
    const response = await fetch("/v1/serviceaccounts", { headers: { authorization: `Bearer ${sessionStorage.getItem("edge-sts-admin-token")}` } });
    return response.json();
  });
  assert.deepEqual(listed.find((account) => account.name === "every acme repository").claims, { repository_owner: "acme" });
}
