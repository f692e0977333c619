package web_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/query"
	"github.com/ctid/ctid/web"
	"github.com/ctid/ctid/web/browsertest"
)

// newQueryFixture is the web fixture plus the query engine, a "tickets" table in acme (a
// data-object-like table) with one row per hour over the last 48 hours, and users of every
// row scope: admin, cfg (config admin), lead (team north), a1, a2 (north), s1 (south).
func newQueryFixture(t *testing.T) (*fixture, *query.Service, map[string]*account.User) {
	t.Helper()
	pool, dburl := dbtest.NewDatabase(t)
	f := &fixture{accounts: account.NewStore(pool, account.DefaultLoginLimits, time.Hour), now: time.Now(), pool: pool}
	readers, err := db.NewReaders(dburl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(readers.Close)
	reg := prometheus.NewRegistry()
	svc := query.New(pool, readers, nil, reg)
	s, err := web.New(web.Options{Accounts: f.accounts, Pool: pool, Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	s.EnableQueries(svc)
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	ctx := context.Background()
	tn, err := f.accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme", TimeZone: "Asia/Shanghai"}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*account.User{}
	for _, u := range []struct{ name, role, team string }{
		{"admin", "admin", ""}, {"cfg", "config_admin", ""}, {"lead", "team_lead", "north"},
		{"a1", "agent", "north"}, {"a2", "agent", "north"}, {"s1", "agent", "south"},
	} {
		users[u.name], err = f.accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: u.name,
			Password: "password-" + u.name, Roles: []string{u.role}, Team: u.team}, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
	}
	owners := []int64{users["a1"].ID, users["a2"].ID, users["s1"].ID}
	now := time.Now()
	err = db.InTenant(ctx, pool, tn.Scope(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE tickets (id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
			subject text NOT NULL, talk_seconds int NOT NULL, agent_id bigint)`); err != nil {
			return err
		}
		for i := range 48 {
			if _, err := tx.Exec(ctx, `INSERT INTO tickets VALUES ($1, $2, $3, $4, $5)`, i+1,
				now.Add(-time.Duration(i)*time.Hour-time.Minute), fmt.Sprintf("ticket %02d", i+1), 60+i, owners[i%3]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AllowTable(ctx, tn, "tickets", query.Label{En: "Tickets"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	d := &query.Definition{Key: "tickets", Title: query.Label{En: "Tickets", Zh: "工单"}, Source: query.Source{Table: "tickets"},
		OwnerField: "agent_id", PageSize: 10, Batch: []string{query.BatchCSV, query.BatchXLSX},
		Columns: []query.Column{
			{Key: "id", Label: query.Label{En: "ID"}, Field: "id", Sortable: true},
			{Key: "subject", Label: query.Label{En: "Subject"}, Field: "subject"},
			{Key: "talk", Label: query.Label{En: "Talk"}, Field: "talk_seconds", Format: query.FormatDuration, Total: true},
			{Key: "agent", Label: query.Label{En: "Agent"}, Field: "agent_id", Format: query.FormatUser},
		},
		Conditions: []query.Condition{
			{Key: "period", Label: query.Label{En: "Period"}, Field: "created_at", Type: query.CondDateRange, Default: "last_7_days"},
			{Key: "agent", Label: query.Label{En: "Agent"}, Field: "agent_id", Type: query.CondAgent, Multi: true},
		},
		OrderBy: []query.Order{{Column: "id"}},
	}
	if err := svc.Save(ctx, tn, d, "test"); err != nil {
		t.Fatal(err)
	}
	return f, svc, users
}

func TestQueryPagesAndAPIScopeRows(t *testing.T) {
	f, _, users := newQueryFixture(t)
	for _, tc := range []struct {
		user  string
		total int
	}{{"admin", 48}, {"lead", 32}, {"a1", 16}, {"s1", 16}} {
		b := f.browser(t)
		b.mustLogin("acme", tc.user, "password-"+tc.user)
		code, _, page := b.do("GET", "/queries/tickets", nil, nil)
		if code != http.StatusOK || !strings.Contains(page, fmt.Sprintf(`<span id="total">%d rows</span>`, tc.total)) {
			t.Errorf("%s: page %d does not show %d rows", tc.user, code, tc.total)
		}
		if tc.user == "a1" && (strings.Contains(page, ">a2<") || strings.Contains(page, ">s1<")) {
			t.Errorf("agent a1 sees other agents' rows or picks them")
		}
		// The API gives the same scoped numbers to a bearer token.
		token, _, err := f.accounts.CreateToken(context.Background(), users[tc.user].ID, "t", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		code, out := apiCall(t, f, "GET", "/api/v1/queries/tickets/run?size=5", token, "")
		if code != http.StatusOK || out["total"] != float64(tc.total) || len(out["rows"].([]any)) != 5 || out["next"] == "" {
			t.Errorf("%s: api %d %v", tc.user, code, out)
		}
	}
	// A team lead cannot pick an agent of another team; an agent cannot save queries.
	b := f.browser(t)
	b.mustLogin("acme", "lead", "password-lead")
	code, _, page := b.do("GET", fmt.Sprintf("/queries/tickets?agent=%d", users["s1"].ID), nil, nil)
	if code != http.StatusForbidden || !strings.Contains(page, "not one you may see") {
		t.Errorf("lead picking s1: %d", code)
	}
	// Injection through the sort parameter is refused with a clear message.
	code, _, page = b.do("GET", "/queries/tickets?sort="+url.QueryEscape(`id"; DROP TABLE tickets; --`), nil, nil)
	if code != http.StatusBadRequest || !strings.Contains(page, "has no column") {
		t.Errorf("bad sort: %d", code)
	}
	token, _, _ := f.accounts.CreateToken(context.Background(), users["a1"].ID, "t", time.Hour)
	if code, _ := apiCall(t, f, "PUT", "/api/v1/queries/x", token, `{}`); code != http.StatusForbidden {
		t.Errorf("agent PUT query: %d", code)
	}
}

func TestQueryExportCSV(t *testing.T) {
	f, _, _ := newQueryFixture(t)
	b := f.browser(t)
	b.mustLogin("acme", "lead", "password-lead")
	code, h, body := b.do("GET", "/queries/tickets/export?format=csv&period=last_7_days", nil, nil)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", code, h.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 33 || recs[1][0] != "1" || recs[1][3] != "a1" {
		t.Fatalf("csv: %d records, first %q", len(recs), recs[1])
	}
	code, _, _ = b.do("GET", "/queries/tickets/export?format=pdf", nil, nil)
	if code != http.StatusBadRequest {
		t.Errorf("pdf export: %d", code)
	}
}

func TestQueryBuilderWithoutSQL(t *testing.T) {
	f, _, _ := newQueryFixture(t)
	b := f.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	_, _, page := b.do("GET", "/admin/queries?table=tickets", nil, nil)
	if !strings.Contains(page, `name="column" value="subject"`) {
		t.Fatalf("builder shows no fields of tickets:\n%s", page)
	}
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "table": {"tickets"}, "key": {"my_tickets"}, "title_en": {"My tickets"},
		"owner_field": {"agent_id"}, "column": {"created_at", "subject", "talk_seconds", "agent_id"},
		"condition": {"created_at", "subject", "agent_id"}, "default_preset": {"today"}, "total_talk_seconds": {"1"},
		"label_subject": {"Subject"}}
	code, h, body := b.do("POST", "/admin/queries", form, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/admin/queries?saved=my_tickets" {
		t.Fatalf("save: %d %s\n%s", code, h.Get("Location"), body)
	}
	code, _, page = b.do("GET", "/queries/my_tickets?created_at=yesterday&subject=ticket", nil, nil)
	if code != http.StatusOK || !strings.Contains(page, `id="results"`) || !strings.Contains(page, `id="totals"`) {
		t.Fatalf("run built query: %d\n%s", code, page)
	}
	// A bad builder form is refused with the reason, and nothing is saved.
	form.Set("key", "Bad Key")
	code, _, body = b.do("POST", "/admin/queries", form, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "is not valid") {
		t.Errorf("bad key: %d", code)
	}
}

func TestQueryPageInBrowserWithPreset(t *testing.T) {
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
		chromedp.Navigate(f.srv.URL+"/queries/tickets"),
		chromedp.WaitVisible(chromedp.CSS("#results")),
		chromedp.SetValue(chromedp.CSS(`select[name="period"]`), "today"),
		chromedp.Click(chromedp.CSS("#run")),
		chromedp.WaitReady(chromedp.CSS(`#search select[name="period"] option[value="today"][selected]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	total, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#total")))
	if err != nil {
		t.Fatal(err)
	}
	title, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#query-title")))
	// Rows were created one per hour back from now (Shanghai): today holds the hours since
	// local midnight.
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now().In(loc)
	want := 0
	for i := range 48 {
		at := time.Now().Add(-time.Duration(i)*time.Hour - time.Minute).In(loc)
		if at.YearDay() == now.YearDay() && at.Year() == now.Year() {
			want++
		}
	}
	if title != "Tickets" || total != fmt.Sprintf("%d rows", want) {
		t.Fatalf("title %q total %q, want %d rows", title, total, want)
	}
}
