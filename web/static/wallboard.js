// The wallboard's live part: a client of the console WebSocket /ws (a TV link's: /ws with its
// read-only token) that subscribes to the board feed and gets a snapshot, then update frames
// (docs/wallboard.md). Time in state, talk time and the
// longest wait tick here from the server's timestamps. Everything shown is set with
// textContent, never as HTML.

const root = document.getElementById("board");
const tv = root.dataset.tv === "1";
const csrf = root.dataset.csrf;
const msg = JSON.parse(document.getElementById("board-messages").textContent);
const $ = (id) => document.getElementById(id);

const agents = new Map(); // id → row of the board
const queues = new Map(); // name → row
let skew = 0; // local clock − server clock, ms
let lastFrame = 0; // local time of the last frame
let live = false;
let sortKey = "name";
let sortDir = 1;

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

function dur(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

const serverNow = () => Date.now() - skew;
const since = (t) => (t ? serverNow() - Date.parse(t) : null);
const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%");
const secs = (v) => (v === null || v === undefined ? "–" : dur(v * 1000));

// --- connection --------------------------------------------------------------------------

let retry = 1000;
function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.dataset.ws);
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data);
    if (f.type === "hello") {
      ws.send(JSON.stringify({ type: "subscribe", feed: "board" }));
      return;
    }
    if (f.type === "error") {
      if (!tv) note("board-error", f.data?.message);
      return;
    }
    if (f.type !== "board.snapshot" && f.type !== "board.update") return;
    skew = Date.now() - Date.parse(f.time);
    lastFrame = Date.now();
    if (f.type === "board.snapshot") {
      agents.clear();
      queues.clear();
      live = true;
      retry = 1000;
    }
    for (const a of f.data.agents || []) agents.set(a.id, a);
    for (const q of f.data.queues || []) queues.set(q.name, q);
    render();
  };
  ws.onclose = () => {
    live = false;
    showConn();
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

function showConn() {
  const c = $("conn");
  c.dataset.live = live ? "1" : "0";
  if (live) {
    c.textContent = msg.live;
  } else {
    const age = lastFrame ? " · " + msg.age.replace("%s", dur(Date.now() - lastFrame)) : "";
    c.textContent = msg.reconnecting + age;
  }
}

// --- rendering ---------------------------------------------------------------------------

function renderQueues() {
  const body = $("queues").tBodies[0];
  const rows = [...queues.values()].sort((a, b) => a.name.localeCompare(b.name));
  body.replaceChildren(
    ...rows.map((q) => {
      const longest = q.waiting > 0 ? since(q.oldest_since) : null;
      return el(
        "tr",
        { id: "queue-" + q.name },
        el("td", { class: "name" }, q.name),
        el("td", { class: "num waiting" + (q.waiting > 0 ? " warn" : "") }, q.waiting),
        el("td", { class: "num longest" }, longest === null ? "–" : dur(longest)),
        el("td", { class: "num ready" }, q.ready),
        el("td", { class: "num on_call" }, q.on_call),
        el("td", { class: "num not_ready" }, q.not_ready),
        el("td", { class: "num offered" }, q.offered),
        el("td", { class: "num answered" }, q.answered),
        el("td", { class: "num abandoned" }, q.abandoned),
        el("td", { class: "num service_level", title: `≤ ${q.sl_seconds} s` }, pct(q.service_level)),
        el("td", { class: "num wait_avg" }, secs(q.wait_avg)),
        el("td", { class: "num handle_avg" }, secs(q.handle_avg)),
      );
    }),
  );
}

function thresholds() {
  const f = $("thresholds");
  const v = (n) => Number(f.elements[n].value || 0) * 60000;
  return { not_ready: v("not_ready"), wrap_up: v("wrap_up"), talk: v("talk") };
}

function reasonLabel(code) {
  const o = $("reason").querySelector(`option[value="${CSS.escape(code)}"]`);
  return o ? o.textContent : code;
}

const sortValue = {
  name: (a) => (a.name || "").toLowerCase(),
  state: (a) => a.state,
  since: (a) => -(Date.parse(a.since) || 0),
  talk: (a) => -(Date.parse(a.talk_since) || Infinity),
  handled: (a) => a.handled,
};

function renderAgents() {
  const body = $("agents").tBodies[0];
  const th = thresholds();
  const key = sortValue[sortKey];
  const rows = [...agents.values()].sort((a, b) => {
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : a.id - b.id) * sortDir;
  });
  if (rows.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "muted" }, msg.no_agents)));
    return;
  }
  body.replaceChildren(
    ...rows.map((a) => {
      const inState = since(a.since);
      const talk = a.talk_since ? since(a.talk_since) : null;
      const long =
        (a.state === "not_ready" && inState > th.not_ready) ||
        (a.state === "wrap_up" && inState > th.wrap_up) ||
        (talk !== null && talk > th.talk);
      const canNotReady = ["ready", "not_ready", "wrap_up", "logged_out"].includes(a.state);
      const canLogOut = ["ready", "not_ready", "wrap_up"].includes(a.state);
      return el(
        "tr",
        { id: "agent-" + a.id, class: long ? "long" : "" },
        el("td", { class: "name" }, (a.name || "#" + a.id) + (a.extension ? " · " + a.extension : "")),
        el(
          "td",
          {},
          el("span", { class: "badge state", "data-state": a.state }, msg["state." + a.state] || a.state),
          a.state === "not_ready" && a.reason ? " " + reasonLabel(a.reason) : "",
          a.state === "logged_out" && a.reason ? " " + a.reason : "",
        ),
        el("td", { class: "since" }, a.since && a.state !== "logged_out" ? dur(inState) : "–"),
        el("td", { class: "caller" }, a.call_id ? el("button", { type: "button", class: "link", "data-pop": a.id, title: msg.show_pop }, (a.caller || a.call_id) + (a.customer ? " · " + a.customer : "")) : ""),
        el("td", { class: "talk" }, talk === null ? "" : dur(talk)),
        el("td", { class: "num handled" }, a.handled),
        el(
          "td",
          { class: "actions" },
          el("button", { type: "button", class: "secondary", "data-act": "not_ready", "data-id": a.id, ...(canNotReady ? {} : { disabled: "" }) }, msg.not_ready),
          " ",
          el("button", { type: "button", class: "secondary", "data-act": "logged_out", "data-id": a.id, ...(canLogOut ? {} : { disabled: "" }) }, msg.log_out),
        ),
      );
    }),
  );
}

function render() {
  renderQueues();
  if (!tv) renderAgents();
  showConn();
  $("clock").textContent = new Date(serverNow()).toLocaleTimeString(root.dataset.lang);
}

// --- supervisor actions ------------------------------------------------------------------

function note(id, text) {
  const e = $(id);
  e.textContent = text || "";
  e.hidden = !text;
}

async function force(id, state) {
  note("board-error", "");
  note("board-notice", "");
  const body = { state };
  if (state === "not_ready") body.reason = $("reason").value;
  if (state === "logged_out") {
    // The reason of a forced logout is a note, kept in the state log and shown on the board.
    const note = prompt(msg.confirm_logout, "");
    if (note === null) return;
    body.reason = note.trim();
  }
  try {
    const res = await fetch(`/api/v1/agents/${id}/state`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error?.message || res.statusText);
    note("board-notice", msg.forced);
  } catch (err) {
    note("board-error", err.message);
  }
}

// showPop shows, read-only, the pop of the call an agent is on.
async function showPop(id) {
  note("board-error", "");
  try {
    const res = await fetch(`/api/v1/wallboard/agents/${id}/pop`, { credentials: "same-origin" });
    const p = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(p.error?.message || res.statusText);
    const a = agents.get(id) || {};
    const name = p.draft?.customer_name || p.matches?.[0]?.record?.name || "";
    const facts = [
      [msg.pop_agent, a.name || "#" + id],
      [msg.pop_caller, p.call?.caller || msg.pop_withheld],
      [msg.pop_customer, name || (p.rule === "picker" ? msg.pop_picker.replace("%d", p.total) : msg.pop_new)],
      [msg.pop_queue, p.call?.queue || ""],
      [msg.pop_recent, String((p.recent_calls || []).length)],
    ];
    const dl = el("dl", { class: "facts" });
    for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v));
    const box = $("pop-view");
    box.replaceChildren(el("h2", {}, msg.pop_title), dl, el("button", { type: "button", class: "secondary", onclick: () => (box.hidden = true) }, msg.close));
    box.hidden = false;
  } catch (err) {
    note("board-error", err.message);
  }
}

if (!tv) {
  $("agents").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.dataset.sort) {
      sortDir = sortKey === b.dataset.sort ? -sortDir : 1;
      sortKey = b.dataset.sort;
      render();
    } else if (b.dataset.act) {
      force(Number(b.dataset.id), b.dataset.act);
    } else if (b.dataset.pop) {
      showPop(Number(b.dataset.pop));
    }
  });
  const f = $("thresholds");
  for (const n of ["not_ready", "wrap_up", "talk"]) {
    const saved = localStorage.getItem("wallboard.threshold." + n);
    if (saved) f.elements[n].value = saved;
  }
  f.addEventListener("change", (e) => {
    localStorage.setItem("wallboard.threshold." + e.target.name, e.target.value);
    render();
  });
}

setInterval(render, 1000);
connect();
