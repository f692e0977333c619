// Runs a query's CSV/XLSX export as a background job instead of a streamed download: the
// page shows the rows written so far, then the download. Without this script the export
// links stream the file directly.
const status = document.getElementById("export-status");
if (status) {
  const text = document.getElementById("export-text");
  const download = document.getElementById("export-download");
  const fill = (template, value) => template.replace("%s", value);
  const show = (msg) => {
    status.hidden = false;
    text.textContent = msg;
  };
  let running = false;

  async function poll(url, every) {
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const p = await resp.json();
      if (!resp.ok) {
        show(fill(status.dataset.failed, (p.error && p.error.message) || resp.status));
        running = false;
        return;
      }
      if (p.done) {
        running = false;
        if (p.error) {
          show(fill(status.dataset.failed, p.error));
          return;
        }
        show(fill(status.dataset.done, p.rows.toLocaleString()));
        download.href = p.download_url;
        download.hidden = false;
        download.click();
        return;
      }
      show(fill(status.dataset.running, p.rows.toLocaleString()));
    } catch (e) {
      // the network blinked: ask again at the next tick
    }
    setTimeout(() => poll(url, every), every);
  }

  for (const link of document.querySelectorAll("a.export[data-job]")) {
    link.addEventListener("click", async (ev) => {
      ev.preventDefault();
      if (running) return;
      running = true;
      download.hidden = true;
      show(fill(status.dataset.running, "0"));
      try {
        const resp = await fetch(link.dataset.job, {
          method: "POST",
          headers: { Accept: "application/json", "X-CSRF-Token": status.dataset.csrf },
          credentials: "same-origin",
        });
        const p = await resp.json();
        if (!resp.ok) {
          show(fill(status.dataset.failed, (p.error && p.error.message) || resp.status));
          running = false;
          return;
        }
        poll(p.progress_url, p.poll_ms || 500);
      } catch (e) {
        running = false;
        location.href = link.href; // fall back to the streamed download
      }
    });
  }
}
