package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/url"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/ctid/ctid/query"
)

func TestExportRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 25, "acme")
	ctx := context.Background()
	d := ticketsDef()
	d.Columns[2].Label.Zh = "主题"
	req := query.Request{Values: url.Values{"period": {"last_7_days"}, "status": {"closed"}}}

	var buf bytes.Buffer
	var progress []int64
	n, err := f.svc.Export(ctx, f.acme, f.env(f.admin), d, req, query.ExportCSV, "zh-CN", &buf, func(rows int64) { progress = append(progress, rows) })
	if err != nil {
		t.Fatal(err)
	}
	// closed: ids 1, 4, ..., 25 → 9 rows, newest first.
	if n != 9 || len(progress) == 0 || progress[len(progress)-1] != 9 {
		t.Fatalf("csv rows = %d, progress %v", n, progress)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 10 || recs[0][0] != "\ufeffID" || recs[0][2] != "主题" {
		t.Fatalf("csv header = %q (%d records)", recs[0], len(recs))
	}
	// id 4: created 3 h before 10:00 Shanghai, talk 3.5 s, owner lead.
	if got := strings.Join(recs[2], "|"); got != "4|2024-03-01 07:00:00|acme 003|0:04|lead" {
		t.Errorf("csv row = %s", got)
	}

	buf.Reset()
	n, err = f.svc.Export(ctx, f.acme, f.env(f.a1), d, req, query.ExportXLSX, "en", &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatalf("read xlsx: %v", err)
	}
	defer x.Close()
	rows, err := x.GetRows("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	// Scoped like a run: agent a1 owns ids 1, 5, 9, ...; closed among them: 1, 13, 25.
	if n != 3 || len(rows) != 4 || rows[0][2] != "Subject" || rows[1][0] != "1" || rows[3][0] != "25" {
		t.Fatalf("xlsx (n=%d) = %q", n, rows)
	}
	if _, err := f.svc.Export(ctx, f.acme, f.env(f.admin), d, req, "pdf", "en", &buf, nil); err == nil {
		t.Errorf("unknown format accepted")
	}
}
