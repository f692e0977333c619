package web_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An export job left running by a ctid process that died (no process holds its runner lock):
// the progress endpoint the page polls says it ended with an error (the page shows it), its
// file is removed, and there is no download.
func TestQueryExportJobOfDeadProcess(t *testing.T) {
	f, _, users := newQueryFixture(t)
	ctx := context.Background()
	tn, err := f.accounts.TenantByCode(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ctid-export-dead.csv")
	if err := os.WriteFile(path, []byte("ID\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = f.pool.Exec(ctx, `INSERT INTO platform.export_jobs (id, tenant_id, user_id, query_key, format, file_name, status, rows,
		file_path, host, runner) VALUES ('deadjob', $1, $2, 'tickets', 'csv', 'tickets.csv', 'running', 20000, $3, $4, 7)`,
		tn.ID, users["admin"].ID, path, host)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.accounts.CreateToken(ctx, users["admin"].ID, "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	code, out := apiCall(t, f, "GET", "/api/v1/exports/deadjob", tok, "")
	if code != http.StatusOK || out["done"] != true || out["status"] != "failed" || out["rows"] != float64(20000) ||
		!strings.Contains(out["error"].(string), "stopped before it finished") || out["download_url"] != nil {
		t.Fatalf("progress of the dead job: %d %v", code, out)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dead job's file is still there: %v", err)
	}
	if code, _, body := getRaw(t, f, "/api/v1/exports/deadjob/file", tok); code != http.StatusBadRequest || !strings.Contains(body, "failed") {
		t.Fatalf("download of the dead job: %d %s", code, body)
	}
	// The user may export again at once.
	if code, out := apiCall(t, f, "POST", "/api/v1/queries/tickets/exports?format=csv&period=last_7_days", tok, ""); code != http.StatusAccepted {
		t.Fatalf("a new export: %d %v", code, out)
	}
}
