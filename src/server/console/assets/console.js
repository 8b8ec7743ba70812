// The redraft console: a page of plain DOM code, no framework, no CDN.
// InertOutput: every key, value and message goes into the page with textContent (el() below),
// never as HTML. Every change is a POST with the login's CSRF token (CsrfOnEveryChange).
"use strict";

let csrf = null;
let events = null; // the EventSource of the page shown, if any
let poll = null;   // the overview's refresh timer
let shown = 0;     // counts the pages shown: a late callback of an earlier page does nothing

// An element with attributes, children (nodes or text) and event handlers ("on" + name).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function showError(msg) {
  const box = document.getElementById("error");
  box.textContent = msg;
  box.hidden = !msg;
}

async function api(path, body) {
  const opts = body === undefined
    ? { credentials: "same-origin" }
    : {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf || "" },
        body: JSON.stringify(body),
      };
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { data = { error: "HTTP " + r.status }; }
  if (r.status === 401 && path !== "/api/login") { csrf = null; route(); }
  if (!r.ok) throw new Error((data && data.error) || ("HTTP " + r.status));
  return data;
}

// A value object of the API ({text, binary, size, truncated}) as text.
function valueText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object" && "text" in v) return v.text;
  return JSON.stringify(v);
}

// The value's format and its rendering: JSON pretty-printed; TOML and YAML recognised.
function render(text) {
  try {
    const parsed = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") return ["JSON", JSON.stringify(parsed, null, 2)];
  } catch (_) { /* not JSON */ }
  const lines = text.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
  if (lines.length && lines.every((l) => /^\s*(\[[^\]]+\]|[A-Za-z0-9_.\-"]+\s*=\s*.+)$/.test(l))) return ["TOML", text];
  if (lines.length && lines.every((l) => /^\s*(- .*|[^:]+:(\s.*)?)$/.test(l))) return ["YAML", text];
  return ["text", text];
}

function confirmAction(message) {
  return new Promise((resolve) => {
    const box = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = message;
    box.hidden = false;
    const done = (v) => { box.hidden = true; yes.onclick = no.onclick = null; resolve(v); };
    const yes = document.getElementById("confirm-yes");
    const no = document.getElementById("confirm-no");
    yes.onclick = () => done(true);
    no.onclick = () => done(false);
  });
}

function stopLive() {
  if (events) { events.close(); events = null; }
  if (poll) { clearInterval(poll); poll = null; }
}

// Follows the watch stream of `prefix`; `onChange` gets each change.
function live(prefix, onChange) {
  const page = shown;
  events = new EventSource("/api/events?prefix=" + encodeURIComponent(prefix));
  events.addEventListener("change", (m) => { if (page === shown) onChange(JSON.parse(m.data)); });
  events.addEventListener("error", (m) => { if (m.data) showError(JSON.parse(m.data).error); });
}

function setMain(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
}

function navActive(name) {
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.id === "nav-" + name);
}

// ---- login ----

async function loginPage() {
  const user = el("input", { type: "text", id: "login-user", placeholder: "user (default)", autocomplete: "username" });
  const pw = el("input", { type: "password", id: "login-password", placeholder: "password", autocomplete: "current-password" });
  const form = el("form", {
    class: "card login",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await api("/api/login", { username: user.value, password: pw.value });
        csrf = r.csrf;
        showError("");
        route();
      } catch (err) { showError(err.message); }
    },
  }, el("h1", { text: "Log in" }),
     el("p", { class: "meta", text: "An ACL user, or the node's password (requirepass) for the default user." }),
     el("div", { class: "row" }, user),
     el("div", { class: "row" }, pw),
     el("div", { class: "row" }, el("button", { type: "submit", id: "login-submit", class: "primary", text: "Log in" })));
  setMain(form);
  pw.focus();
}

// ---- overview ----

function stat(label, value) {
  return el("div", { class: "stat" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value === null || value === undefined ? "-" : String(value) }));
}

async function overviewPage() {
  navActive("overview");
  const draw = async () => {
    const o = await api("/api/overview");
    document.getElementById("where").textContent = `cluster ${o.cluster} · node ${o.node_id} (${o.role})`;
    const rows = o.members.map((m) => el("tr", { "data-member": m.id },
      el("td", {}, String(m.id), m.leader ? el("span", { class: "tag leader", text: "leader" }) : null, m.voter ? null : el("span", { class: "tag", text: "learner" })),
      el("td", { text: m.redis_addr }), el("td", { text: m.raft_addr }),
      el("td", { class: "num", text: m.matched_index ?? "-" }), el("td", { class: "num", text: m.lag ?? "-" }),
      el("td", { class: "num", text: m.heartbeat_ms ?? "-" })));
    setMain(
      el("h1", { text: "Cluster overview" }),
      el("div", { class: "stats", id: "stats" },
        stat("role", o.role), stat("term", o.term), stat("leader", o.leader), stat("revision", o.revision),
        stat("compact revision", o.compact_revision), stat("committed index", o.committed_index),
        stat("applied index", o.applied_index), stat("last log index", o.last_log_index), stat("snapshot index", o.snapshot_index)),
      el("h2", { text: "Members" }),
      el("table", { id: "members" },
        el("tr", {}, ...["id", "Redis address", "peer address", "matched index", "lag (entries)", "last heartbeat ack (ms)"].map((h) => el("th", { text: h }))),
        rows),
      el("p", { class: "meta", text: o.role === "leader" ? "Replication figures as this node (the leader) sees them." : "Replication figures are known on the leader only." }));
  };
  await draw();
  poll = setInterval(() => draw().catch((e) => showError(e.message)), 2000);
}

// ---- namespaces ----

function keyLink(k) { return el("a", { href: "#/key/" + encodeURIComponent(k), class: "key", text: k }); }

async function keysPage(prefix) {
  navActive("keys");
  const draw = async () => {
    const r = await api("/api/keys?prefix=" + encodeURIComponent(prefix));
    const crumbs = el("div", { class: "crumbs" }, el("a", { href: "#/keys/", text: "(all)" }));
    let acc = "";
    for (const part of prefix.match(/[^/:]*[/:]/g) || []) {
      acc += part;
      crumbs.append(" ", el("a", { href: "#/keys/" + encodeURIComponent(acc), text: part }));
    }
    const newKey = el("input", { type: "text", id: "new-key", placeholder: "new key name", value: prefix });
    setMain(
      el("h1", { text: "Keys" }), crumbs,
      el("div", { class: "row" }, newKey, el("button", { id: "new-key-go", type: "button", onclick: () => { if (newKey.value) location.hash = "#/key/" + encodeURIComponent(newKey.value) + "?new"; }, text: "Create or open" })),
      el("table", { id: "listing" },
        el("tr", {}, el("th", { text: "name" }), el("th", { text: "keys" })),
        r.namespaces.map((n) => el("tr", {}, el("td", {}, el("a", { class: "ns", href: "#/keys/" + encodeURIComponent(n.name), text: n.name })), el("td", { class: "num", text: n.keys }))),
        r.keys.map((k) => el("tr", {}, el("td", {}, keyLink(k)), el("td", {})))),
      r.truncated ? el("p", { class: "note", text: "Only the first 10,000 keys are listed; narrow the prefix." }) : null);
  };
  await draw();
  let pending = null;
  const page = shown;
  live(prefix, () => {
    if (!pending) pending = setTimeout(() => { pending = null; if (page === shown) draw().catch((e) => showError(e.message)); }, 200);
  });
}

// ---- a key ----

// Line diff by longest common subsequence: [op, line] with op " ", "+" or "-".
function diffLines(a, b) {
  const x = a.split("\n"), y = b.split("\n");
  if (x.length * y.length > 4e6) return null;
  const n = x.length, m = y.length;
  const t = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    t[i][j] = x[i] === y[j] ? t[i + 1][j + 1] + 1 : Math.max(t[i + 1][j], t[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
    else if (t[i + 1][j] >= t[i][j + 1]) out.push(["-", x[i++]]);
    else out.push(["+", y[j++]]);
  }
  while (i < n) out.push(["-", x[i++]]);
  while (j < m) out.push(["+", y[j++]]);
  return out;
}

function showValue(v) {
  if (Array.isArray(v)) { // a hash: [field, value] pairs
    return el("table", { id: "value" }, el("tr", {}, el("th", { text: "field" }), el("th", { text: "value" })),
      v.map(([f, x]) => el("tr", {}, el("td", { text: valueText(f) }), el("td", { text: valueText(x) }))));
  }
  const text = valueText(v);
  const [format, shown] = render(text);
  return el("div", {},
    el("div", { class: "meta" }, "format: ", el("span", { id: "format", text: format }),
      v && v.binary ? el("span", { class: "tag", text: "binary" }) : null,
      v && v.truncated ? el("span", { class: "tag", text: `first ${shown.length} of ${v.size} bytes` }) : null),
    el("pre", { id: "value", text: shown }));
}

async function keyPage(key, isNew) {
  navActive("keys");
  let k = null;
  try { k = await api("/api/key?key=" + encodeURIComponent(key)); }
  catch (e) { if (!isNew && e.message !== "no such key") throw e; }
  const hist = await api("/api/history?key=" + encodeURIComponent(key)).catch(() => ({ entries: [] }));
  const liveNote = el("div", { id: "live-note", class: "note", hidden: true });
  const parts = [el("h1", {}, "Key ", el("code", { id: "key-name", text: key }))];
  const ns = key.match(/^(.*[/:])/);
  parts.push(el("div", { class: "crumbs" }, el("a", { href: "#/keys/" + encodeURIComponent(ns ? ns[1] : ""), text: "\u2190 " + (ns ? ns[1] : "(all)") })));
  parts.push(liveNote);
  if (k) {
    parts.push(el("div", { class: "stats", id: "meta" },
      stat("type", k.type), stat("create_revision", k.create_revision), stat("mod_revision", k.mod_revision),
      stat("version", k.version), stat("ttl (s)", k.ttl)));
    parts.push(showValue(k.value));
  } else {
    parts.push(el("p", { class: "meta", text: "This key does not exist yet." }));
  }
  if (!k || k.type === "string") {
    const ta = el("textarea", { id: "edit-value", spellcheck: "false" });
    ta.value = k ? valueText(k.value) : "";
    parts.push(el("h2", { text: k ? "Edit" : "Create" }), ta,
      el("div", { class: "row" },
        el("button", { id: "save", class: "primary", type: "button", text: "Save", onclick: async () => {
          try { await api("/api/set", { key, value: ta.value }); showError(""); location.hash = "#/key/" + encodeURIComponent(key); route(); }
          catch (e) { showError(e.message); }
        } }),
        k ? el("button", { id: "delete", class: "danger", type: "button", text: "Delete", onclick: async () => {
          if (!(await confirmAction(`Delete ${key}? It stays in the history.`))) return;
          try { await api("/api/del", { key }); showError(""); route(); } catch (e) { showError(e.message); }
        } }) : null));
  }
  // History with A/B choice for the diff, and rollback.
  const entries = hist.entries.slice().reverse();
  parts.push(el("h2", { text: "History" }));
  if (hist.truncated) parts.push(el("p", { class: "meta", text: "The newest 200 versions." }));
  const diffBox = el("div", { id: "diff", class: "diff card", hidden: true });
  const table = el("table", { id: "history" },
    el("tr", {}, ...["A", "B", "revision", "event", "author", "value", ""].map((h) => el("th", { text: h }))),
    entries.map((e, i) => el("tr", { "data-revision": e.revision },
      el("td", {}, el("input", { type: "radio", name: "a", value: e.revision, class: "pick-a", checked: i === 1 || (entries.length === 1 && i === 0) })),
      el("td", {}, el("input", { type: "radio", name: "b", value: e.revision, class: "pick-b", checked: i === 0 })),
      el("td", { class: "num", text: e.revision }), el("td", { text: e.event }),
      el("td", { class: "author", text: e.author ?? "" }),
      el("td", {}, el("code", { text: valueText(e.value).slice(0, 120) })),
      el("td", {}, el("button", { type: "button", class: "rollback", "data-revision": e.revision, text: "Roll back to this", onclick: async () => {
        if (!(await confirmAction(`Roll ${key} back to its value at revision ${e.revision}? This writes a new revision.`))) return;
        try { await api("/api/rollback", { key, revision: e.revision }); showError(""); route(); } catch (err) { showError(err.message); }
      } })))));
  parts.push(table, el("div", { class: "row" }, el("button", { id: "diff-btn", type: "button", text: "Diff A \u2192 B", onclick: async () => {
    const a = document.querySelector(".pick-a:checked"), b = document.querySelector(".pick-b:checked");
    if (!a || !b) return;
    const [va, vb] = await Promise.all([a.value, b.value].map((r) => api(`/api/at?key=${encodeURIComponent(key)}&revision=${r}`)));
    // JSON is compared pretty-printed, so a changed field is a changed line.
    const d = diffLines(render(valueText(va.value))[1], render(valueText(vb.value))[1]);
    diffBox.hidden = false;
    diffBox.replaceChildren(el("div", { class: "meta", text: `revision ${a.value} \u2192 ${b.value}` }),
      ...(d === null ? [el("div", { text: "too large to diff" })]
        : d.map(([op, line]) => el("div", { class: op === "+" ? "add" : op === "-" ? "del" : "" }, op + " " + line))));
  } })), diffBox);
  setMain(...parts);
  live(key, (ev) => {
    if (ev.key && valueText(ev.key) !== key) return;
    liveNote.hidden = false;
    liveNote.textContent = `Changed at ${ev.id} (${valueText(ev.type)}): reloading.`;
    const page = shown;
    setTimeout(() => page === shown && keyPage(key, false).then(() => {
      const n = document.getElementById("live-note");
      n.hidden = false;
      n.textContent = `Updated live: ${valueText(ev.type)} at ${ev.id}.`;
    }).catch((e) => showError(e.message)), 150);
  });
}

// ---- schemas and gray releases ----

async function schemasPage() {
  navActive("schemas");
  const r = await api("/api/schemas");
  const prefix = el("input", { type: "text", id: "schema-prefix", placeholder: "key prefix, e.g. app/payments/" });
  const body = el("textarea", { id: "schema-body", placeholder: '{"type": "object"}' });
  setMain(el("h1", { text: "Schemas" }),
    el("p", { class: "meta", text: "Every write of a key under a prefix is checked against its JSON Schema at apply, on every node." }),
    el("table", { id: "schemas" }, el("tr", {}, el("th", { text: "prefix" }), el("th", { text: "schema" }), el("th", {})),
      r.schemas.map((s) => el("tr", {}, el("td", { text: s.prefix }), el("td", {}, el("pre", { text: render(s.schema)[1] })),
        el("td", {}, el("button", { type: "button", class: "danger", text: "Remove", onclick: async () => {
          if (!(await confirmAction(`Remove the schema of ${s.prefix}?`))) return;
          try { await api("/api/schema/del", { prefix: s.prefix }); route(); } catch (e) { showError(e.message); }
        } }))))),
    el("h2", { text: "Set a schema" }), el("div", { class: "row" }, prefix), body,
    el("div", { class: "row" }, el("button", { id: "schema-save", class: "primary", type: "button", text: "Set schema", onclick: async () => {
      try { await api("/api/schema/set", { prefix: prefix.value, schema: body.value }); showError(""); route(); } catch (e) { showError(e.message); }
    } })));
}

async function grayPage() {
  navActive("gray");
  const r = await api("/api/gray");
  const label = el("input", { type: "text", id: "gray-label", placeholder: "label (clients named gray:<label>)" });
  const key = el("input", { type: "text", id: "gray-key", placeholder: "key" });
  const value = el("textarea", { id: "gray-value" });
  const act = (path, s, what) => async () => {
    if (!(await confirmAction(`${what} the candidate of ${s.key} for ${s.label}?`))) return;
    try { await api(path, { label: s.label, key: s.key }); showError(""); route(); } catch (e) { showError(e.message); }
  };
  setMain(el("h1", { text: "Gray releases" }),
    el("p", { class: "meta", text: "A staged candidate is read only by clients named gray:<label> (CLIENT SETNAME) until it is promoted or aborted." }),
    el("table", { id: "gray" }, el("tr", {}, ...["label", "key", "candidate", ""].map((h) => el("th", { text: h }))),
      r.staged.map((s) => el("tr", {}, el("td", { text: s.label }), el("td", {}, keyLink(s.key)), el("td", {}, el("code", { text: valueText(s.value).slice(0, 200) })),
        el("td", {}, el("button", { type: "button", class: "primary promote", text: "Promote", onclick: act("/api/gray/promote", s, "Promote") }), " ",
          el("button", { type: "button", class: "abort", text: "Abort", onclick: act("/api/gray/abort", s, "Abort") }))))),
    el("h2", { text: "Stage a candidate" }), el("div", { class: "row" }, label, key), value,
    el("div", { class: "row" }, el("button", { id: "gray-stage", class: "primary", type: "button", text: "Stage", onclick: async () => {
      try { await api("/api/gray/stage", { label: label.value, key: key.value, value: value.value }); showError(""); route(); } catch (e) { showError(e.message); }
    } })));
}

// ---- routing ----

async function route() {
  stopLive();
  shown += 1;
  try {
    if (!csrf) {
      const s = await api("/api/session");
      document.getElementById("where").textContent = `cluster ${s.cluster} · node ${s.node_id}` + (s.user ? ` · ${s.user}` : "");
      if (!s.logged_in && !s.password_required) {
        // A node without a password needs none here either (as a Redis client needs none).
        csrf = (await api("/api/login", { password: "" })).csrf;
      } else if (!s.logged_in) {
        document.getElementById("nav").hidden = true;
        return loginPage();
      } else {
        csrf = s.csrf;
      }
    }
    document.getElementById("nav").hidden = false;
    const h = location.hash || "#/overview";
    const [path, query] = h.slice(1).split("?");
    if (path.startsWith("/keys/")) return await keysPage(decodeURIComponent(path.slice(6)));
    if (path.startsWith("/key/")) return await keyPage(decodeURIComponent(path.slice(5)), query === "new");
    if (path === "/schemas") return await schemasPage();
    if (path === "/gray") return await grayPage();
    return await overviewPage();
  } catch (e) { showError(e.message); }
}

window.addEventListener("hashchange", () => { showError(""); route(); });
document.getElementById("logout").addEventListener("click", async () => {
  try { await api("/api/logout", {}); } catch (_) { /* logged out anyway */ }
  csrf = null;
  route();
});
route();
