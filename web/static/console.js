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

function customerCard(rec, reason) {
  const dl = el("dl", { class: "facts", id: "customer" });
  fact(dl, msg.name, rec.name);
  fact(dl, msg.phone, rec.phones);
  fact(dl, msg.company, rec.company);
  fact(dl, msg.level, rec.level);
  fact(dl, msg.match_reason, reason);
  return el("div", { class: "customer" }, el("h3", { id: "customer-name" }, rec.name || "—"), dl);
}

function showPop(p, status) {
  currentCall = p.call.id;
  $("pop").dataset.call = p.call.id;
  $("pop").dataset.rule = p.rule;
  $("pop-title").textContent = status === "answered" ? msg.answered : msg.ringing;
  $("pop").classList.add("ringing");
  const call = el("dl", { class: "facts" });
  fact(call, msg.caller, p.call.caller || msg.withheld);
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
    const dl = el("dl", { class: "facts", id: "new-customer" });
    fact(dl, msg.phone, p.new_customer?.phone || msg.withheld);
    body.push(el("h3", {}, msg.new_customer), dl);
  }
  $("pop-body").replaceChildren(...body);

  const recent = $("recent");
  recent.replaceChildren();
  for (const c of p.recent_calls || []) {
    recent.append(el("li", {}, `${new Date(c.offered_at).toLocaleString()} · ${c.queue || ""} · ${c.agent_extension || ""} · ${c.result}`));
  }
  if (!recent.children.length) recent.append(el("li", { class: "muted" }, msg.no_recent));
  const draft = $("draft");
  draft.replaceChildren();
  for (const [k, v] of Object.entries(p.draft || {})) fact(draft, k, v);
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
    case "error":
      showError(d.message);
      break;
  }
}

connect();
