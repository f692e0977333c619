// Polls the import's progress endpoint and shows rows done, rows/s and the ETA; when the
// import is done the page reloads, and the server shows the report.
const box = document.getElementById("import-progress");
if (box) {
  const every = Number(box.dataset.poll) || 500;
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  async function poll() {
    try {
      const resp = await fetch(box.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (resp.ok) {
        const p = await resp.json();
        if (p.done) {
          location.reload();
          return;
        }
        set("import-rows", p.rows);
        set("import-total", p.total || "?");
        set("import-rate", Math.round(p.rows_per_second));
        set("import-eta", Math.round(p.eta_seconds));
        document.getElementById("import-bar").value = p.percent;
      }
    } catch (e) {
      // the server is restarting or the network blinked: try again at the next tick
    }
    setTimeout(poll, every);
  }
  setTimeout(poll, every);
}
