package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/web/browsertest"
)

// In Chromium: an admin ticks two rows of a search, the confirmation page says how many rows
// will go, confirming deletes them, the result page no longer lists them, and one audit entry
// names the rows.
func TestQueryBatchDeleteInBrowser(t *testing.T) {
	bf := newBatchFixture(t)
	ctx := browsertest.New(t)
	names := func() []string {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll("#results tbody tr")].map(r => r.innerText.trim())`))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	text := func(sel string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	c10, c11 := bf.ids["c 10"], bf.ids["c 11"]
	err := chromedp.Do(ctx,
		chromedp.Navigate(bf.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#username"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), "password-admin"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
		chromedp.Navigate(bf.srv.URL+"/queries/customers?name=c+1"),
		chromedp.WaitVisible(chromedp.CSS("#delete-selected")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(), ","); got != "c 10,c 11,c 12,c 13,c 14,c 15,c 16,c 17,c 18,c 19" {
		t.Fatalf("rows before: %s", got)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name="id"][value="%d"]`, c10))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name="id"][value="%d"]`, c11))),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Clicks that load a page wait for it (RunResponse).
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#delete-selected"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#will-delete"); !strings.HasPrefix(got, "2 rows will be deleted.") {
		t.Fatalf("confirmation: %q", got)
	}
	if got := text("#confirm-delete"); got != "Delete 2 rows" {
		t.Fatalf("confirm button: %q", got)
	}
	if n := bf.remaining(t); n != 30 {
		t.Fatalf("the confirmation page deleted rows: %d remain", n)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#confirm-delete"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#deleted"); got != "2 rows deleted." {
		t.Fatalf("outcome: %q", got)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#back"))); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(), ","); got != "c 12,c 13,c 14,c 15,c 16,c 17,c 18,c 19" {
		t.Fatalf("rows after: %s", got)
	}
	log, err := bf.accounts.AuditLog(context.Background(), bf.tenant.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, e := range log {
		if e.Action != dataobject.AuditBatchDelete {
			continue
		}
		found++
		if e.Actor != "admin" || e.Target != "query:customers" || e.Detail["count"] != float64(2) ||
			fmt.Sprint(e.Detail["ids"]) != fmt.Sprintf("[%d %d]", c10, c11) || fmt.Sprint(e.Detail["filter"]) != "map[name:[c 1]]" {
			t.Errorf("audit entry: %+v", e)
		}
	}
	if found != 1 {
		t.Errorf("%d batch-delete audit entries, want 1", found)
	}
}
