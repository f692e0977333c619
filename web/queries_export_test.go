package web_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/web/browsertest"
)

// getRaw is an API GET with a bearer token, returning the status and the body.
func getRaw(t *testing.T, f *fixture, path, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// An export job over a few thousand rows: its progress is polled until done, its file holds
// the same rows as the streamed export, and no other user can see it or download it.
func TestQueryExportJobProgressAndDownload(t *testing.T) {
	f, _, users := newQueryFixture(t)
	ctx := context.Background()
	tn, err := f.accounts.TenantByCode(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	err = db.InTenant(ctx, f.pool, tn.Scope(), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tickets (id, created_at, subject, talk_seconds, agent_id)
			SELECT 1000 + g, now() - g * interval '1 minute', 'bulk ' || g, g % 600, $1 FROM generate_series(1, 3000) AS g`, users["a1"].ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	token := func(user string) string {
		tok, _, err := f.accounts.CreateToken(ctx, users[user].ID, "t", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := token("admin")
	code, out := apiCall(t, f, "POST", "/api/v1/queries/tickets/exports?format=csv&period=last_7_days", admin, "")
	if code != http.StatusAccepted || out["id"] == "" || out["done"] != false {
		t.Fatalf("start: %d %v", code, out)
	}
	progress := out["progress_url"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for out["done"] != true {
		if time.Now().After(deadline) {
			t.Fatalf("export not done in 30 s: %v", out)
		}
		<-time.After(20 * time.Millisecond) // the next poll, as the page does
		if code, out = apiCall(t, f, "GET", progress, admin, ""); code != http.StatusOK {
			t.Fatalf("progress: %d %v", code, out)
		}
	}
	if out["rows"] != float64(3048) || out["error"] != nil || out["download_url"] == nil {
		t.Fatalf("done: %v", out)
	}
	code, h, file := getRaw(t, f, out["download_url"].(string), admin)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), "tickets-") {
		t.Fatalf("download: %d %v", code, h)
	}
	code, _, streamed := getRaw(t, f, "/api/v1/queries/tickets/export?format=csv&period=last_7_days", admin)
	if code != http.StatusOK {
		t.Fatalf("streamed export: %d", code)
	}
	got, err := csv.NewReader(strings.NewReader(file)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want, err := csv.NewReader(strings.NewReader(streamed)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3049 || len(got) != len(want) {
		t.Fatalf("job file has %d records, streamed %d, want 3049 (header + rows)", len(got), len(want))
	}
	for i := range got {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			t.Fatalf("record %d: job %q, streamed %q", i, got[i], want[i])
		}
	}
	// Another user (even an admin) does not find the job.
	other := token("cfg")
	for _, path := range []string{progress, out["download_url"].(string)} {
		if code, _, _ := getRaw(t, f, path, other); code != http.StatusNotFound {
			t.Errorf("another user GET %s: %d", path, code)
		}
	}
	// A format the query does not offer, and a query the user cannot run, are refused.
	if code, out := apiCall(t, f, "POST", "/api/v1/queries/tickets/exports?format=pdf", admin, ""); code != http.StatusBadRequest {
		t.Errorf("pdf: %d %v", code, out)
	}
	if code, out := apiCall(t, f, "GET", "/api/v1/exports/nope", admin, ""); code != http.StatusNotFound {
		t.Errorf("unknown job: %d %v", code, out)
	}
}

// The result page's script runs the export as a job: it shows the rows written, then done
// and the download link.
func TestQueryExportJobInBrowser(t *testing.T) {
	f, _, _ := newQueryFixture(t)
	ctx := browsertest.New(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#username"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), "password-admin"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
		chromedp.Navigate(f.srv.URL+"/queries/tickets?period=last_7_days"),
		chromedp.WaitVisible(chromedp.CSS("#export-csv")),
		chromedp.Click(chromedp.CSS("#export-csv")),
		chromedp.WaitVisible(chromedp.CSS("#export-download")),
	)
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#export-text")))
	if err != nil {
		t.Fatal(err)
	}
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#export-download"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	href, ok := attr.Value, attr.Exists
	if text != "Export done: 48 rows." || !ok || !strings.HasPrefix(href, "/api/v1/exports/") || !strings.HasSuffix(href, "/file") {
		t.Fatalf("status %q, download %q", text, href)
	}
}
