// edge-sts admin console: a thin client of the admin API (/v1/serviceaccounts), the dry-run
// verify endpoint and the audit trail (/v1/audit). No framework, no request to any other
// origin. The admin token lives in sessionStorage (this tab only); behind Cloudflare Access
// there is none, and the edge's Access assertion authenticates each call.
"use strict";

/** Scope id → display name, from GET /v1/serviceaccounts/scopes (Venafi's readableName). */
const READABLE_SCOPES = {};
const STEPS = ["details", "method", "scope", "credentials", "review"];
const FIELD_STEP = { name: "details", authenticationType: "method", scopes: "scope", issuerURL: "credentials", jwksURI: "credentials", jwks: "credentials", subject: "credentials", subjectPattern: "credentials", audience: "credentials", claims: "credentials" };
/** the contract's rule for a subjectPattern: this many literal characters, with ':' or '/', first. */
const MIN_PATTERN_PREFIX = 8;
const TOKEN_KEY = "edge-sts-admin-token";

const $ = (selector) => document.querySelector(selector);
const $$ = (selector) => [...document.querySelectorAll(selector)];
let scopes = [];
let step = 0;
let cursor = null;
let accounts = [];
let editing = null;
let editingEtag = null;
let activityNext = null;
/** Marks a session that signed in through Cloudflare Access (no token). */
const ACCESS = "access";

/** A form's control by name (`form.name` would be the form's own name). */
function field(form, name) {
  return form.elements.namedItem(name);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function status(text) {
  $("#status").textContent = text;
}

/** Calls the API; a 401 signs out with a message. Returns { status, body, headers }. */
async function api(path, { method = "GET", body, contentType = "application/json", ifMatch } = {}) {
  const headers = body === undefined ? {} : { "content-type": contentType };
  if (token() && token() !== ACCESS) headers.authorization = `Bearer ${token()}`;
  if (ifMatch) headers["if-match"] = ifMatch;
  // A PATCH answers 204 unless asked for the account (Venafi's shape; RFC 7240).
  if (method === "PATCH") headers.prefer = "return=representation";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (response.status === 401) {
    signOut(json?.error_description === "admin API disabled"
      ? "The admin API is disabled: the ADMIN_TOKEN secret is not set on this deployment."
      : json?.error_description?.includes("Access")
        ? `Cloudflare Access did not vouch for this session: ${json.error_description}`
        : "The admin token was not accepted. Check it and sign in again.");
    throw new Error("unauthorized");
  }
  return { status: response.status, body: json, headers: response.headers };
}

function show(view) {
  status("");
  for (const section of $$("main > section")) section.hidden = section.id !== `view-${view}`;
  const signedIn = view !== "signin";
  for (const button of $$("header nav button")) button.hidden = !signedIn;
  const heading = $(`#view-${view} h2`);
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
  if (view === "list") loadAccounts(true);
  if (view === "create") startWizard();
  if (view === "test") fillAccountChoices();
  if (view === "activity") loadActivity(true);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  show("signin");
  $("#admin-token-error").textContent = message ?? "";
  status("");
}

async function signIn(event) {
  event.preventDefault();
  // Empty: a deployment behind Cloudflare Access authenticates the browser's own session.
  const value = $("#admin-token").value.trim() || ACCESS;
  sessionStorage.setItem(TOKEN_KEY, value);
  try {
    await loadScopes();
    $("#admin-token").value = "";
    $("#admin-token-error").textContent = "";
    show("list");
  } catch {
    // api() has signed out with the reason.
  }
}

/** The scope catalogue with display names; also proves the admin token (a 401 signs out). */
async function loadScopes() {
  const { body } = await api("/v1/serviceaccounts/scopes");
  scopes = body.map((scope) => scope.id);
  for (const scope of body) READABLE_SCOPES[scope.id] = scope.readableName;
  for (const [container, prefix] of [["#scope-choices", "f"], ["#edit-scope-choices", "e"]]) {
    $(container).replaceChildren(...scopes.map((scope) => {
      const label = document.createElement("label");
      label.className = "choice";
      const box = document.createElement("input");
      Object.assign(box, { type: "checkbox", name: "scopes", value: scope, id: `${prefix}-scope-${scope}` });
      label.append(box, ` ${READABLE_SCOPES[scope] ?? scope}`);
      return label;
    }));
  }
}

// ---- list -------------------------------------------------------------------------------

async function loadAccounts(fresh) {
  if (fresh) {
    accounts = [];
    cursor = null;
  }
  const query = `?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
  const { body, headers } = await api(`/v1/serviceaccounts${query}`);
  accounts.push(...body);
  // The next page is named by the RFC 8288 Link header.
  const next = /<([^>]+)>;\s*rel="next"/.exec(headers.get("link") ?? "");
  cursor = next ? new URL(next[1], location.href).searchParams.get("cursor") : null;
  renderAccounts();
}

function cell(label, content) {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.append(content);
  return td;
}

function button(text, onClick, className) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = text;
  if (className) element.className = className;
  element.addEventListener("click", onClick);
  return element;
}

function renderAccounts() {
  $("#accounts").replaceChildren(...accounts.map((account) => {
    const row = document.createElement("tr");
    const actions = document.createElement("div");
    actions.className = "row-actions";
    actions.append(
      button("Edit", () => startEdit(account)),
      button("History", () => startEdit(account, "#history-title")),
      button(account.enabled ? "Disable" : "Enable", () => setEnabled(account, !account.enabled)),
      button("Test a token", () => { show("test"); $("#t-account").value = account.id; }),
      button("Delete", () => remove(account), "danger"),
    );
    for (const element of actions.children) element.setAttribute("aria-label", `${element.textContent} ${account.name}`);
    row.append(
      cell("Name", account.name),
      cell("Scope", account.scopes.map((scope) => READABLE_SCOPES[scope] ?? scope).join(", ")),
      cell("Issuer", account.issuerURL),
      cell("Subject", account.subject ?? `${account.subjectPattern} (pattern)`),
      cell("Enabled", account.enabled ? "Yes" : "No"),
      cell("Actions", actions),
    );
    return row;
  }));
  $("#empty").hidden = accounts.length > 0;
  $("#more").hidden = !cursor;
}

async function setEnabled(account, enabled) {
  const { status: code, body } = await api(`/v1/serviceaccounts/${account.id}`, { method: "PATCH", body: { enabled } });
  // The list first, then the message, so the two never disagree.
  await loadAccounts(true);
  status(code === 200 ? `${account.name} is now ${enabled ? "enabled" : "disabled"}.` : body.error_description);
}

async function remove(account) {
  if (!confirm(`Delete the service account “${account.name}”? Its workloads will no longer get tokens.`)) return;
  const { status: code, body } = await api(`/v1/serviceaccounts/${account.id}`, { method: "DELETE" });
  await loadAccounts(true);
  status(code === 204 ? `${account.name} was deleted.` : body?.error_description);
}

// ---- create wizard ----------------------------------------------------------------------

function clearErrors(prefix) {
  for (const element of $$(`[id^="${prefix}-"][id$="-error"]`)) element.textContent = "";
  for (const input of $$(`[id^="${prefix}-"][aria-invalid]`)) input.removeAttribute("aria-invalid");
}

function startWizard() {
  $("#wizard").reset();
  previewSubject("f");
  $("#pattern-warning").hidden = true;
  clearErrors("f");
  goTo(0);
}

function goTo(index) {
  step = index;
  for (const fieldset of $$("#wizard fieldset[data-step]")) fieldset.hidden = fieldset.dataset.step !== STEPS[step];
  for (const item of $$(".steps li")) {
    if (item.dataset.step === STEPS[step]) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
  $("#back").hidden = step === 0;
  $("#next").textContent = step === STEPS.length - 1 ? "Finish" : "Continue";
  if (STEPS[step] === "review") renderReview();
  const first = $(`#wizard fieldset[data-step="${STEPS[step]}"] input, #wizard fieldset[data-step="${STEPS[step]}"] dl`);
  first?.focus();
}

// ---- subject patterns, claim rules, inline key sets -------------------------------------

/** What a subject pattern would match, in words, and whether it passes the contract's rule. */
function describePattern(pattern) {
  const prefix = pattern.split(/[*?]/)[0];
  const broad = prefix.length < MIN_PATTERN_PREFIX || !/[:/]/.test(prefix);
  const example = pattern.replace(/\*/g, "anything").replace(/\?/g, "x");
  const text = pattern === ""
    ? ""
    : broad
      ? `Too broad: a pattern must begin with at least ${MIN_PATTERN_PREFIX} literal characters including ':' or '/' before its first * or ?. “${pattern}” would trust far more workloads than one owner's.`
      : `Trusts every subject that begins with “${prefix}” and fits the pattern (* is any run of characters, ? one), e.g. “${example}”.`;
  return { broad, text };
}

/** Shows the pattern preview under the subject input of the form with `prefix` ("f" or "e"). */
function previewSubject(prefix) {
  const form = prefix === "f" ? $("#wizard") : $("#edit-form");
  const pattern = field(form, "subjectKind").value === "pattern";
  $(`#${prefix}-subject-preview`).textContent = pattern ? describePattern(field(form, "subject").value).text : "";
}

/** `claim = pattern` lines as the claims object; throws a message naming the bad line. */
function parseClaims(text) {
  const claims = {};
  for (const [index, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`Line ${index + 1} is not “claim = pattern”.`);
    claims[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return claims;
}

function claimsText(claims) {
  return Object.entries(claims ?? {}).map(([name, pattern]) => `${name} = ${pattern}`).join("\n");
}

/** The inline JWK Set textarea as JSON (undefined when empty); throws on text that is not JSON. */
function parseJwks(text) {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error("This is not JSON: paste the whole JWK Set, {\"keys\": [...]}.");
  }
}

/**
 * The credentials of the form with `prefix` as account members. Problems the page can see
 * itself (a claim line, JSON) are shown at their field, and the result is null.
 */
function credentials(prefix, form) {
  const out = { audience: field(form, "audience").value };
  const kind = field(form, "subjectKind").value;
  out[kind === "pattern" ? "subjectPattern" : "subject"] = field(form, "subject").value;
  try {
    out.claims = parseClaims(field(form, "claims").value);
  } catch (error) {
    showFieldError(prefix, "claims", error.message);
    return null;
  }
  try {
    out.jwks = parseJwks(field(form, "jwks").value);
  } catch (error) {
    showFieldError(prefix, "jwks", error.message);
    return null;
  }
  return out;
}

function wizardBody() {
  const form = $("#wizard");
  const creds = credentials("f", form);
  if (!creds) return null;
  const body = {
    name: field(form, "name").value,
    authenticationType: field(form, "authenticationType").value,
    scopes: $$("#scope-choices input:checked").map((box) => box.value),
    issuerURL: field(form, "issuerURL").value,
    ...creds,
  };
  if (field(form, "jwksURI").value !== "") body.jwksURI = field(form, "jwksURI").value;
  if (Object.keys(body.claims).length === 0) delete body.claims;
  if (body.jwks === undefined) delete body.jwks;
  return body;
}

function renderReview() {
  const body = wizardBody();
  if (!body) return;
  const rows = [
    ["Name", body.name],
    ["Authentication method", "Workload Identity Federation"],
    ["Scope", body.scopes.map((scope) => READABLE_SCOPES[scope] ?? scope).join(", ") || "(none)"],
    ["Issuer URL", body.issuerURL],
    ["Keys", body.jwks ? `inline: ${body.jwks.keys?.length ?? 0} key(s)` : body.jwksURI ?? "(discovered from the issuer)"],
    ["Subject Identifier", body.subject ?? `${body.subjectPattern} (pattern)`],
    ["Audience", body.audience],
    ["Claim rules", body.claims ? claimsText(body.claims) : "(none)"],
  ];
  // A pattern is said in words before it is saved, and must be acknowledged.
  const pattern = body.subjectPattern !== undefined;
  $("#pattern-warning").hidden = !pattern;
  $("#f-pattern-ack").checked = false;
  if (pattern) {
    $("#pattern-warning-text").textContent = `${describePattern(body.subjectPattern).text} Issuer: ${body.issuerURL}.`;
  }
  $("#review").replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    return [dt, dd];
  }));
  $("#review").tabIndex = -1;
}

/** Shows a server 400 next to its input (in the form with `prefix`), and goes to its step. */
function showFieldError(prefix, field, message) {
  const target = field === "subjectPattern" ? "subject" : field;
  const error = $(`#${prefix}-${target}-error`);
  if (!error) {
    $(`#${prefix}-form-error`).textContent = message;
    return;
  }
  error.textContent = message;
  const input = $(`#${prefix}-${target}`);
  if (prefix === "f" && FIELD_STEP[target]) goTo(STEPS.indexOf(FIELD_STEP[target]));
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

async function wizardNext(event) {
  event.preventDefault();
  if (step < STEPS.length - 1) {
    goTo(step + 1);
    return;
  }
  clearErrors("f");
  const account = wizardBody();
  if (!account) return;
  if (account.subjectPattern !== undefined && !$("#f-pattern-ack").checked) {
    $("#f-form-error").textContent = "Confirm that every workload whose subject fits the pattern may get tokens.";
    $("#f-pattern-ack").focus();
    return;
  }
  const { status: code, body } = await api("/v1/serviceaccounts", { method: "POST", body: account });
  if (code === 201) {
    show("list");
    status(`Created ${body.name}.`);
  } else if (code === 400) {
    showFieldError("f", body.field, body.error_description);
  } else {
    $("#f-form-error").textContent = body?.error_description ?? `The server answered ${code}.`;
  }
}

// ---- edit -------------------------------------------------------------------------------

/** Opens an account's page: the account as it is now (and its ETag, so a save made over
 *  someone else's change is refused), the edit form, and its history. */
async function startEdit(listed, focus) {
  $("#history").replaceChildren();
  const { status: code, body, headers } = await api(`/v1/serviceaccounts/${listed.id}`);
  if (code !== 200) {
    status(body?.error_description ?? `The server answered ${code}.`);
    return;
  }
  const account = body;
  editing = account;
  editingEtag = headers.get("etag");
  show("edit");
  clearErrors("e");
  const form = $("#edit-form");
  field(form, "name").value = account.name;
  field(form, "issuerURL").value = account.issuerURL;
  field(form, "jwksURI").value = account.jwksURI ?? "";
  field(form, "jwks").value = account.jwks ? JSON.stringify(account.jwks, null, 2) : "";
  field(form, "subject").value = account.subject ?? account.subjectPattern;
  for (const radio of $$("#edit-form input[name=subjectKind]")) {
    radio.checked = radio.value === (account.subjectPattern !== undefined ? "pattern" : "exact");
  }
  previewSubject("e");
  field(form, "audience").value = account.audience;
  field(form, "claims").value = claimsText(account.claims);
  for (const box of $$("#edit-scope-choices input")) box.checked = account.scopes.includes(box.value);
  $("#edit-title").textContent = `Edit ${account.name}`;
  const history = await api(`/v1/audit?account=${account.id}&limit=100`);
  $("#history").replaceChildren(...(history.status === 200 ? history.body : []).map((event) => eventRow(event, false)));
  if (focus) {
    $(focus).tabIndex = -1;
    $(focus).focus();
  }
}

async function saveEdit(event) {
  event.preventDefault();
  clearErrors("e");
  const form = $("#edit-form");
  const creds = credentials("e", form);
  if (!creds) return;
  // A JSON merge patch: members given replace, null removes. A claim rule no longer listed is
  // removed by name; one subject rule (or key source) set replaces the other.
  const claims = { ...Object.fromEntries(Object.keys(editing.claims ?? {}).map((name) => [name, null])), ...creds.claims };
  const patch = {
    name: field(form, "name").value,
    scopes: $$("#edit-scope-choices input:checked").map((box) => box.value),
    issuerURL: field(form, "issuerURL").value,
    jwksURI: field(form, "jwksURI").value === "" ? null : field(form, "jwksURI").value,
    jwks: creds.jwks ?? null,
    audience: creds.audience,
    claims: Object.keys(claims).length === 0 ? null : claims,
  };
  if (creds.subjectPattern !== undefined) patch.subjectPattern = creds.subjectPattern;
  else patch.subject = creds.subject;
  if (patch.jwks !== null) delete patch.jwksURI;
  const { status: code, body } = await api(`/v1/serviceaccounts/${editing.id}`, { method: "PATCH", body: patch, ifMatch: editingEtag });
  if (code === 200) {
    show("list");
    status(`Saved ${body.name}.`);
  } else if (code === 400) {
    showFieldError("e", body.field, body.error_description);
  } else if (code === 412) {
    $("#e-form-error").textContent = "Someone changed this account after you opened it, so nothing was saved. Open it again to see their change, then make yours.";
  } else {
    $("#e-form-error").textContent = body?.error_description ?? `The server answered ${code}.`;
  }
}

// ---- activity (the audit trail) ---------------------------------------------------------

const ACTIONS = { create: "Created", update: "Changed", enable: "Enabled", disable: "Disabled", delete: "Deleted" };

/** A field's value, short, for the changes column. */
function shown(value) {
  if (value === null || value === undefined) return "—";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function eventRow(event, withAccount) {
  const row = document.createElement("tr");
  const changes = document.createElement("ul");
  changes.className = "changes";
  for (const [name, { old, new: now }] of Object.entries(event.changes)) {
    const item = document.createElement("li");
    item.textContent = event.action === "create" ? `${name}: ${shown(now)}`
      : event.action === "delete" ? `${name} was ${shown(old)}`
      : `${name}: ${shown(old)} → ${shown(now)}`;
    changes.append(item);
  }
  const when = document.createElement("time");
  when.dateTime = event.at;
  when.textContent = new Date(event.at).toLocaleString();
  when.title = `${event.at} (request ${event.requestId})`;
  row.append(cell("When", when), cell("Who", event.actor), cell("What", ACTIONS[event.action] ?? event.action));
  if (withAccount) {
    const known = accounts.find((account) => account.id === event.account);
    row.append(cell("Account", known ? `${known.name} (${event.account})` : event.account));
  }
  row.append(cell("Changes", changes));
  return row;
}

async function loadActivity(fresh) {
  let path = activityNext;
  if (fresh || !path) {
    const query = new URLSearchParams({ limit: "50" });
    const actor = $("#a-actor").value.trim();
    if (actor) query.set("actor", actor);
    const since = $("#a-since").value;
    if (since) query.set("since", new Date(since).toISOString());
    path = `/v1/audit?${query}`;
    $("#activity").replaceChildren();
  }
  if (accounts.length === 0) await loadAccounts(true);
  const { status: code, body, headers } = await api(path);
  $("#a-error").textContent = code === 200 ? "" : body?.error_description ?? `The server answered ${code}.`;
  if (code !== 200) return;
  $("#activity").append(...body.map((event) => eventRow(event, true)));
  const next = /<([^>]+)>;\s*rel="next"/.exec(headers.get("link") ?? "");
  activityNext = next ? next[1] : null;
  $("#activity-more").hidden = !activityNext;
  $("#activity-empty").hidden = $("#activity").children.length > 0;
  $("#activity-empty").textContent = path.includes("actor=") || path.includes("since=")
    ? "No activity matches these filters."
    : "No activity yet.";
}

// ---- test a token -----------------------------------------------------------------------

async function fillAccountChoices() {
  if (accounts.length === 0) await loadAccounts(true);
  const selected = $("#t-account").value;
  $("#t-account").replaceChildren(...accounts.map((account) => new Option(`${account.name} (${account.issuerURL})`, account.id)));
  if (selected) $("#t-account").value = selected;
}

function decodePart(part) {
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.stringify(JSON.parse(new TextDecoder().decode(bytes)), null, 2);
}

async function testToken(event) {
  event.preventDefault();
  const jwt = $("#t-token").value.trim();
  const parts = jwt.split(".");
  try {
    $("#t-header").textContent = decodePart(parts[0]);
    $("#t-claims").textContent = decodePart(parts[1]);
    $("#decoded").hidden = false;
  } catch {
    $("#decoded").hidden = true;
  }
  const { status: code, body } = await api(`/v1/serviceaccounts/${$("#t-account").value}/verify`, { method: "POST", body: { token: jwt } });
  $("#verdict").hidden = false;
  if (code !== 200) {
    $("#verdict-title").textContent = body?.error_description ?? `The server answered ${code}.`;
    $("#checks").replaceChildren();
    return;
  }
  $("#verdict-title").textContent = body.ok
    ? "This token would be accepted for this account."
    : "This token would be refused for this account.";
  $("#checks").replaceChildren(...body.checks.map((check) => {
    const item = document.createElement("li");
    const mark = document.createElement("span");
    mark.className = check.ok ? "ok" : "fail";
    mark.textContent = check.ok ? "✓ passed" : "✗ failed";
    item.append(mark, ` ${check.check}: ${check.detail}${check.reason ? ` (${check.reason})` : ""}`);
    return item;
  }));
  $("#verdict-title").tabIndex = -1;
  $("#verdict-title").focus();
}

// ---- wiring -----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  $("#signin-form").addEventListener("submit", signIn);
  $("#wizard").addEventListener("submit", wizardNext);
  $("#back").addEventListener("click", () => goTo(Math.max(0, step - 1)));
  $("#edit-form").addEventListener("submit", saveEdit);
  $("#test-form").addEventListener("submit", testToken);
  $("#more").addEventListener("click", () => loadAccounts(false));
  $("#activity-more").addEventListener("click", () => loadActivity(false));
  $("#activity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadActivity(true);
  });
  for (const prefix of ["f", "e"]) {
    const form = prefix === "f" ? $("#wizard") : $("#edit-form");
    field(form, "subject").addEventListener("input", () => previewSubject(prefix));
    for (const radio of form.querySelectorAll("input[name=subjectKind]")) radio.addEventListener("change", () => previewSubject(prefix));
  }
  $("#sign-out").addEventListener("click", () => signOut("Signed out."));
  for (const element of $$("[data-view]")) element.addEventListener("click", () => show(element.dataset.view));
  if (token()) {
    try {
      await loadScopes();
      show("list");
    } catch {
      // signed out with the reason
    }
  } else {
    show("signin");
  }
});
