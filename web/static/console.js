// The agent console's live part: agent state buttons and the WebSocket client of /ws that
// shows screen pops. Protocol: docs/screenpop.md. Text comes from the page (en or zh-CN);
// everything shown is set with textContent, never as HTML.

const root = document.getElementById("console");
const csrf = root.dataset.csrf;
const me = Number(root.dataset.user);
const msg = JSON.parse(document.getElementById("console-messages").textContent);
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

function showError(text) {
  const e = $("console-error");
  e.textContent = text || "";
  e.hidden = !text;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error?.message || res.statusText);
  return data;
}

// --- agent state -------------------------------------------------------------------------

let stateSince = Date.now();

function showState(st) {
  const badge = $("state");
  badge.dataset.state = st.state;
  badge.textContent = msg["state." + st.state] || st.state;
  const reason = $("reason").querySelector(`option[value="${CSS.escape(st.reason || "")}"]`);
  $("state-reason").textContent = st.state === "not_ready" ? (reason ? reason.textContent : st.reason || "") : "";
  stateSince = st.since ? Date.parse(st.since) : Date.now();
  tick();
}

function tick() {
  const s = Math.max(0, Math.floor((Date.now() - stateSince) / 1000));
  const mm = String(Math.floor(s / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  $("state-timer").textContent = `${mm}:${ss}`;
}
setInterval(tick, 1000);

async function setState(state, reason) {
  try {
    showError("");
    showState(await api("PUT", "/api/v1/agents/me/state", { state, reason }));
  } catch (e) {
    showError(e.message);
  }
}

$("btn-ready").addEventListener("click", () => setState("ready"));
$("btn-not-ready").addEventListener("click", () => setState("not_ready", $("reason").value));
$("btn-logout").addEventListener("click", () => setState("logged_out"));
api("GET", "/api/v1/agents/me/state").then(showState).catch((e) => showError(e.message));

// --- the pop -------------------------------------------------------------------------------

let currentCall = null;

function fact(dl, label, value) {
  if (value === undefined || value === null || value === "") return;
  dl.append(el("dt", {}, label), el("dd", {}, Array.isArray(value) ? value.join(", ") : value));
}

// dialLinks makes phone numbers dial links: /static/dial.js asks ctid to call the agent's
// phone, then the number (click-to-dial); the tel: href is the fallback when ctid cannot use
// the agent's phone (the operating system hands it to the agent's softphone).
function dialLinks(numbers) {
  const span = el("span", {});
  (Array.isArray(numbers) ? numbers : [numbers]).filter(Boolean).forEach((n, i) => {
    if (i) span.append(", ");
    span.append(el("a", { href: "tel:" + String(n).replace(/[^0-9+]/g, ""), class: "dial", "data-number": n }, n));
  });
  return span;
}

function customerCard(rec, reason) {
  const dl = el("dl", { class: "facts", id: "customer" });
  fact(dl, msg.name, rec.name);
  if (rec.phones) dl.append(el("dt", {}, msg.phone), el("dd", {}, dialLinks(rec.phones)));
  fact(dl, msg.company, rec.company);
  fact(dl, msg.level, rec.level);
  fact(dl, msg.match_reason, reason);
  return el("div", { class: "customer" }, el("h3", { id: "customer-name" }, rec.name || "—"), dl);
}

// newCustomerForm creates the caller's customer record (pre-filled with the number); the pop
// then shows the new customer and the work order is linked to it.
function newCustomerForm(p, status) {
  const input = (name, label, value, attrs = {}) =>
    el("label", {}, label, el("input", { name, id: "nc-" + name, value: value || "", ...attrs }));
  const form = el("form", { class: "grid", id: "new-customer" },
    input("name", msg.name, "", { required: "" }),
    input("phone", msg.phone, p.new_customer?.phone || ""),
    input("company", msg.company, ""),
    el("button", { type: "submit", id: "nc-save" }, msg.save_customer));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = { name: $("nc-name").value, company: $("nc-company").value };
    const phone = $("nc-phone").value.trim();
    if (phone) values.phones = [phone];
    try {
      showError("");
      const rec = await api("POST", "/api/v1/records/customer", values);
      const match = { object: "customer", record_id: rec.id, record: rec.values, match_reason: "new", number: phone };
      const next = { ...p, rule: "one", matches: [match], total: 1, chosen: { object: "customer", record_id: rec.id },
        draft: { ...(p.draft || {}), customer_id: rec.id, customer_name: rec.values.name } };
      showPop(next, status);
    } catch (err) {
      showError(err.message);
    }
  });
  return form;
}

function showPop(p, status) {
  currentCall = p.call.id;
  $("pop").dataset.call = p.call.id;
  $("pop").dataset.rule = p.rule;
  $("pop-title").textContent = status === "answered" ? msg.answered : msg.ringing;
  $("pop").classList.add("ringing");
  const call = el("dl", { class: "facts" });
  // The other party: the caller, or the number an outbound call dialled.
  const party = p.call.callee || p.call.caller;
  if (party) call.append(el("dt", {}, msg.caller), el("dd", {}, dialLinks(party)));
  else fact(call, msg.caller, msg.withheld);
  fact(call, msg.did, p.call.did);
  fact(call, msg.queue, p.call.queue);
  fact(call, msg.call_id, p.call.id);
  $("pop-call").replaceChildren(call);

  const body = [];
  if (p.degraded) body.push(el("p", { class: "error" }, msg.degraded));
  const chosen = p.chosen && p.matches.find((m) => m.object === p.chosen.object && m.record_id === p.chosen.record_id);
  if (p.rule === "one" || chosen) {
    const m = chosen || p.matches[0];
    body.push(customerCard(m.record, m.match_reason));
  }
  if (p.rule === "picker") {
    const list = el("ul", { class: "picker", id: "picker" });
    for (const m of p.matches) {
      const pick = el("button", { type: "button", class: "link", "data-record": m.record_id }, m.record.name || "#" + m.record_id);
      pick.addEventListener("click", async () => {
        try {
          await api("POST", `/api/v1/pops/${encodeURIComponent(p.call.id)}/choose`, { object: m.object, record_id: m.record_id });
          showPop({ ...p, chosen: { object: m.object, record_id: m.record_id } }, status);
        } catch (e) {
          showError(e.message);
        }
      });
      list.append(el("li", {}, pick, " ", el("span", { class: "muted" }, m.number)));
    }
    body.push(el("h3", {}, msg.pick), list);
    if (p.total > p.matches.length) body.push(el("p", { class: "muted" }, `+${p.total - p.matches.length} ${msg.more_matches}`));
  }
  if (p.rule === "new" || p.rule === "withheld") {
    body.push(el("h3", {}, msg.new_customer), newCustomerForm(p, status));
  }
  $("pop-body").replaceChildren(...body);

  const recent = $("recent");
  recent.replaceChildren();
  for (const c of p.recent_calls || []) {
    recent.append(el("li", {}, `${new Date(c.offered_at).toLocaleString()} · ${c.queue || ""} · ${c.agent_extension || ""} · ${c.result} `,
      party ? dialLinks(party) : ""));
  }
  if (!recent.children.length) recent.append(el("li", { class: "muted" }, msg.no_recent));
  const draft = $("draft");
  draft.replaceChildren();
  for (const [k, v] of Object.entries(p.draft || {})) fact(draft, k, v);
  fillWorkOrder(p);
}

function endPop(text) {
  $("pop").classList.remove("ringing");
  $("pop-title").textContent = text;
}

// --- the WebSocket ---------------------------------------------------------------------------

let backoff = 1000;
// The last seq this page saw. A reconnect resumes after it; a fresh page (0) gets the open
// call's pop again from the server, since the page's own state is gone.
let lastSeq = 0;

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "hello") {
      $("conn").textContent = msg.connected;
      $("conn").dataset.live = "1";
      backoff = 1000;
      ws.send(JSON.stringify({ type: "resume", last_seq: lastSeq }));
      return;
    }
    if (m.seq > lastSeq) lastSeq = m.seq;
    handle(m, ws);
  });
  ws.addEventListener("close", () => {
    $("conn").textContent = msg.reconnecting;
    $("conn").dataset.live = "";
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  });
}

function handle(m, ws) {
  const d = m.data || {};
  const mine = d.agent_id === undefined || d.agent_id === me;
  switch (m.type) {
    case "pop.offer":
      if (!mine) return;
      if (d.pop) showPop(d.pop);
      ws.send(JSON.stringify({ type: "ack", seq: m.seq }));
      break;
    case "pop.update":
      if (!mine || d.call_id !== currentCall) return;
      if (d.status === "answered") $("pop-title").textContent = msg.answered;
      if (d.status === "ended") endPop(msg.ended);
      break;
    case "pop.retract":
      if (!mine || d.call_id !== currentCall) return;
      endPop(msg.retracted);
      break;
    case "agent.state":
      if (d.agent_id === me) showState({ state: d.to, reason: d.reason, since: m.time });
      break;
    case "workorder.assigned":
      showNotice(`${msg.assigned}: #${d.id} ${d.subject || ""}`);
      $("wo-notice").dataset.assigned = d.id;
      loadCallbacks();
      break;
    case "error":
      showError(d.message);
      break;
  }
}

// --- the work order ------------------------------------------------------------------------
// The form is generated from the default work-order object (GET /api/v1/workorders/form): its
// visible fields in order, the object's fields per row; a pop pre-fills it from its draft and
// Save writes the work order linked to the call and the customer.

let woForm = null; // the form description
let woLink = {}; // call_id and customer_id of the current pop
let lastPop = null; // a pop that came before the form description

function showNotice(text) {
  const n = $("wo-notice");
  n.textContent = text || "";
  n.hidden = !text;
}

function woInput(f) {
  const id = "wo-f-" + f.key;
  let input;
  if (f.type === "code") {
    input = el("select", { id, name: f.key });
    if (!f.required) input.append(el("option", { value: "" }, ""));
    for (const c of f.codes || []) input.append(el("option", { value: c.code }, c.label));
    if (f.default) input.value = f.default;
  } else if (f.type === "long_text") {
    input = el("textarea", { id, name: f.key, rows: "3" });
  } else {
    const type = { datetime: "datetime-local", date: "date", integer: "number", decimal: "number", email: "email" }[f.type] || "text";
    input = el("input", { id, name: f.key, type });
    if (f.max_length) input.maxLength = f.max_length;
    if (f.type === "decimal") input.step = "any";
  }
  if (f.required) input.required = true;
  return el("label", {}, f.label, input);
}

async function loadWorkOrderForm() {
  try {
    woForm = await api("GET", "/api/v1/workorders/form");
  } catch (e) {
    showError(e.message);
    return;
  }
  $("wo-title").textContent = woForm.name;
  $("wo-form").classList.add("cols-" + woForm.edit_columns);
  const fields = woForm.fields.filter((f) => !woForm.linked.includes(f.key));
  $("wo-fields").replaceChildren(...fields.map(woInput));
  if (lastPop) fillWorkOrder(lastPop);
}

function fillWorkOrder(p) {
  lastPop = p;
  if (!woForm) return;
  $("wo-form").reset();
  showNotice("");
  const d = p.draft || {};
  woLink = { call_id: p.call.id, customer_id: d.customer_id || 0 };
  if (!woLink.customer_id && p.chosen && p.chosen.object === "customer") woLink.customer_id = p.chosen.record_id;
  for (const f of woForm.fields) {
    const input = $("wo-f-" + f.key);
    if (input && d[f.key] !== undefined && d[f.key] !== null) input.value = d[f.key];
  }
  const open = $("wo-open");
  open.replaceChildren();
  for (const w of p.open_work_orders || []) {
    open.append(el("li", {}, el("a", { href: `/workorders/${w.id}`, target: "_blank" }, `#${w.id} ${w.values?.subject || ""}`),
      " ", el("span", { class: "muted" }, w.values?.status || ""), " ", w.values?.caller_number ? dialLinks(w.values.caller_number) : ""));
  }
  if (!open.children.length) open.append(el("li", { class: "muted" }, msg.wo_none));
}

$("wo-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("");
  const values = {};
  for (const f of woForm.fields) {
    const input = $("wo-f-" + f.key);
    if (input && input.value !== "") values[f.key] = input.value;
  }
  const body = { values };
  if (woLink.call_id) body.call_id = woLink.call_id;
  if (woLink.customer_id) body.customer_id = woLink.customer_id;
  try {
    const res = await api("POST", "/api/v1/workorders", body);
    showNotice(`${msg.wo_saved}: #${res.work_order.id}`);
    $("wo-notice").dataset.id = res.work_order.id;
    if (res.agent_state) showState(res.agent_state);
    loadCallbacks();
  } catch (e) {
    showError(e.message);
  }
});

async function loadCallbacks() {
  let res;
  try {
    res = await api("GET", "/api/v1/workorders/callbacks");
  } catch (e) {
    return; // the list stays as it was; the next round tries again
  }
  const list = $("callbacks");
  list.replaceChildren();
  for (const w of res.items) {
    const number = w.values?.caller_number || "";
    const due = w.values?.callback_at ? new Date(w.values.callback_at).toLocaleString() : "";
    list.append(el("li", {}, el("a", { href: `/workorders/${w.id}` }, `#${w.id} ${w.values?.subject || ""}`), " ",
      el("span", { class: "muted" }, due), " ", number ? dialLinks(number) : ""));
  }
  if (!list.children.length) list.append(el("li", { class: "muted" }, msg.no_callbacks));
}

loadWorkOrderForm();
loadCallbacks();
setInterval(loadCallbacks, 60000);
connect();
