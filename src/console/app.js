// edge-sts admin console: a thin client of the admin API (/v1/serviceaccounts) and the dry-run
// verify endpoint. No framework, no request to any other origin. The admin token lives in
// sessionStorage (this tab only).
"use strict";

const READABLE_SCOPES = {
  "certificate-issuance": "cert-manager Enterprise Issuer",
  "api-integration": "Custom API Integration",
};
const STEPS = ["details", "method", "scope", "credentials", "review"];
const FIELD_STEP = { name: "details", authenticationType: "method", scopes: "scope", issuerURL: "credentials", jwksURI: "credentials", subject: "credentials", subjectPattern: "credentials", audience: "credentials" };
const TOKEN_KEY = "edge-sts-admin-token";

const $ = (selector) => document.querySelector(selector);
const $$ = (selector) => [...document.querySelectorAll(selector)];
let scopes = [];
let step = 0;
let cursor = null;
let accounts = [];
let editing = null;

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
async function api(path, { method = "GET", body, contentType = "application/json" } = {}) {
  const headers = { authorization: `Bearer ${token()}`, ...(body === undefined ? {} : { "content-type": contentType }) };
  // A PATCH answers 204 unless asked for the account (Venafi's shape; RFC 7240).
  if (method === "PATCH") headers.prefer = "return=representation";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (response.status === 401) {
    signOut(json?.error_description === "admin API disabled"
      ? "The admin API is disabled: the ADMIN_TOKEN secret is not set on this deployment."
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
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  show("signin");
  $("#admin-token-error").textContent = message ?? "";
  status("");
}

async function signIn(event) {
  event.preventDefault();
  const value = $("#admin-token").value.trim();
  if (!value) {
    $("#admin-token-error").textContent = "Enter the admin token.";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  try {
    await api("/v1/serviceaccounts?limit=1");
    $("#admin-token").value = "";
    $("#admin-token-error").textContent = "";
    show("list");
  } catch {
    // api() has signed out with the reason.
  }
}

async function loadScopes() {
  const response = await fetch("/.well-known/oauth-authorization-server");
  scopes = response.ok ? (await response.json()).scopes_supported : Object.keys(READABLE_SCOPES);
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
  clearErrors("f");
  goTo(0);
}

function goTo(index) {
  step = index;
  for (const fieldset of $$("#wizard fieldset")) fieldset.hidden = fieldset.dataset.step !== STEPS[step];
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

function wizardBody() {
  const form = $("#wizard");
  const body = {
    name: field(form, "name").value,
    authenticationType: field(form, "authenticationType").value,
    scopes: $$("#scope-choices input:checked").map((box) => box.value),
    issuerURL: field(form, "issuerURL").value,
    subject: field(form, "subject").value,
    audience: field(form, "audience").value,
  };
  if (field(form, "jwksURI").value !== "") body.jwksURI = field(form, "jwksURI").value;
  return body;
}

function renderReview() {
  const body = wizardBody();
  const rows = [
    ["Name", body.name],
    ["Authentication method", "Workload Identity Federation"],
    ["Scope", body.scopes.map((scope) => READABLE_SCOPES[scope] ?? scope).join(", ") || "(none)"],
    ["Issuer URL", body.issuerURL],
    ["JWKS URI", body.jwksURI ?? "(discovered from the issuer)"],
    ["Subject Identifier", body.subject],
    ["Audience", body.audience],
  ];
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
  const { status: code, body } = await api("/v1/serviceaccounts", { method: "POST", body: wizardBody() });
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

function startEdit(account) {
  editing = account;
  show("edit");
  clearErrors("e");
  const form = $("#edit-form");
  field(form, "name").value = account.name;
  field(form, "issuerURL").value = account.issuerURL;
  field(form, "jwksURI").value = account.jwksURI ?? "";
  field(form, "subject").value = account.subject ?? account.subjectPattern;
  field(form, "audience").value = account.audience;
  for (const box of $$("#edit-scope-choices input")) box.checked = account.scopes.includes(box.value);
  $("#edit-title").textContent = `Edit ${account.name}`;
}

async function saveEdit(event) {
  event.preventDefault();
  clearErrors("e");
  const form = $("#edit-form");
  const ruleField = editing.subjectPattern !== undefined ? "subjectPattern" : "subject";
  const patch = {
    name: field(form, "name").value,
    scopes: $$("#edit-scope-choices input:checked").map((box) => box.value),
    issuerURL: field(form, "issuerURL").value,
    jwksURI: field(form, "jwksURI").value === "" ? null : field(form, "jwksURI").value,
    [ruleField]: field(form, "subject").value,
    audience: field(form, "audience").value,
  };
  const { status: code, body } = await api(`/v1/serviceaccounts/${editing.id}`, { method: "PATCH", body: patch });
  if (code === 200) {
    show("list");
    status(`Saved ${body.name}.`);
  } else if (code === 400) {
    showFieldError("e", body.field, body.error_description);
  } else {
    $("#e-form-error").textContent = body?.error_description ?? `The server answered ${code}.`;
  }
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
  $("#sign-out").addEventListener("click", () => signOut("Signed out."));
  for (const element of $$("[data-view]")) element.addEventListener("click", () => show(element.dataset.view));
  await loadScopes();
  if (token()) {
    try {
      await api("/v1/serviceaccounts?limit=1");
      show("list");
    } catch {
      // signed out with the reason
    }
  } else {
    show("signin");
  }
});
