// Click-to-dial on every page of an agent: a phone number link (a.dial with data-number; its
// href is a tel: link) asks ctid to call the agent's phone, then the number
// (POST /api/v1/calls/dial). The box #dial-status shows "calling…" and how it goes, from the
// dial's status (GET /api/v1/calls/dial/{call}, texts in the user's language). When ctid
// cannot use the agent's phone (409 no_phone: not registered, no extension) the tel: link is
// followed instead: the operating system hands it to the agent's softphone.

const box = document.getElementById("dial-status");
const pollEvery = 1000; // ms between status reads while a dial goes on
const keepShown = 8000; // ms the result stays shown after the dial ended

let current = null; // the call id of the dial going on
let hideTimer = 0;

function show(text, state, callID) {
  clearTimeout(hideTimer);
  box.hidden = false;
  box.dataset.state = state;
  const parts = [document.createTextNode(text)];
  if (callID && state !== "ended" && state !== "error") {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.id = "dial-hangup";
    b.textContent = box.dataset.hangup;
    b.addEventListener("click", () => request("DELETE", `/api/v1/calls/dial/${encodeURIComponent(callID)}`).then(follow, fail));
    parts.push(" ", b);
  }
  box.replaceChildren(...parts);
  if (state === "ended" || state === "error" || state === "fallback") {
    hideTimer = setTimeout(() => { box.hidden = true; }, keepShown);
  }
}

async function request(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.error?.message || res.statusText);
    err.fallback = data.fallback;
    err.fallbackMessage = data.fallback_message;
    throw err;
  }
  return data;
}

function fail(e) {
  current = null;
  show(e.message, "error");
}

function follow(st) {
  show(st.message, st.state, st.call_id);
  box.dataset.call = st.call_id;
  if (st.state === "ended") {
    current = null;
    return;
  }
  current = st.call_id;
  setTimeout(() => {
    if (current !== st.call_id) return;
    request("GET", `/api/v1/calls/dial/${encodeURIComponent(st.call_id)}`).then(follow, fail);
  }, pollEvery);
}

export async function dial(number, href) {
  show(`${box.dataset.calling} ${number}`, "calling");
  try {
    follow(await request("POST", "/api/v1/calls/dial", { number }));
  } catch (e) {
    current = null;
    if (!e.fallback) {
      show(e.message, "error");
      return;
    }
    show(`${e.message} ${e.fallbackMessage || ""}`, "fallback");
    box.dataset.fallback = e.fallback;
    // The link outside the page's own links: this handler does not catch it again.
    const a = document.createElement("a");
    a.href = href && href.startsWith("tel:") ? href : e.fallback;
    a.click();
  }
}

if (box) {
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("a.dial[data-number]");
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    dial(a.dataset.number, a.getAttribute("href"));
  });
}
