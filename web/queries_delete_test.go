package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
	"github.com/ctid/ctid/web"
)

// batchFixture: acme with 30 customers ("c 00".."c 29", owned by a1 and s1 in turn), a query
// over them that offers batch delete, and one over work orders that declares it too (work
// orders do not allow it).
type batchFixture struct {
	*fixture
	tenant  *account.Tenant
	objects *dataobject.Store
	svc     *query.Service
	users   map[string]*account.User
	ids     map[string]int64 // customer name → record id
}

func newBatchFixture(t *testing.T) *batchFixture {
	t.Helper()
	pool, dburl := dbtest.NewDatabase(t)
	f := &fixture{accounts: account.NewStore(pool, account.DefaultLoginLimits, time.Hour), now: time.Now()}
	readers, err := db.NewReaders(dburl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(readers.Close)
	reg := prometheus.NewRegistry()
	bf := &batchFixture{fixture: f, svc: query.New(pool, readers, nil, reg), objects: dataobject.New(pool, nil, reg, dataobject.Options{}),
		users: map[string]*account.User{}, ids: map[string]int64{}}
	s, err := web.New(web.Options{Accounts: f.accounts, Pool: pool, Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	s.EnableQueries(bf.svc)
	s.EnableQueryBatchDelete(bf.objects)
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	ctx := context.Background()
	bf.tenant, err = f.accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme", TimeZone: "Asia/Shanghai"}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, role, team string }{
		{"admin", "admin", ""}, {"cfg", "config_admin", ""}, {"lead", "team_lead", "north"}, {"qa", "qa", ""},
		{"a1", "agent", "north"}, {"s1", "agent", "south"},
	} {
		bf.users[u.name], err = f.accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: u.name,
			Password: "password-" + u.name, Roles: []string{u.role}, Team: u.team}, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		owner := bf.users["a1"].ID
		if i%2 == 1 {
			owner = bf.users["s1"].ID
		}
		name := fmt.Sprintf("c %02d", i)
		rec, err := bf.objects.Create(ctx, bf.tenant, "customer", map[string]any{"name": name, "owner_id": owner}, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
		bf.ids[name] = rec.ID
	}
	for _, table := range []string{"obj_customer", "obj_workorder"} {
		if err := bf.svc.AllowTable(ctx, bf.tenant, table, query.Label{En: table}, true, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*query.Definition{
		{Key: "customers", Title: query.Label{En: "Customers"}, Source: query.Source{Table: "obj_customer"}, OwnerField: "owner_id",
			Batch: []string{query.BatchCSV, query.BatchDelete}, PageSize: 50,
			Columns: []query.Column{
				{Key: "id", Label: query.Label{En: "ID"}, Field: "id", Hidden: true},
				{Key: "name", Label: query.Label{En: "Name"}, Field: "name"},
			},
			Conditions: []query.Condition{{Key: "name", Label: query.Label{En: "Name"}, Field: "name", Type: query.CondText, Match: query.MatchPrefix}},
			OrderBy:    []query.Order{{Column: "name"}}},
		{Key: "orders", Title: query.Label{En: "Orders"}, Source: query.Source{Table: "obj_workorder"}, OwnerField: "owner_id",
			Batch:   []string{query.BatchDelete},
			Columns: []query.Column{{Key: "id", Label: query.Label{En: "ID"}, Field: "id"}}},
	} {
		if err := bf.svc.Save(ctx, bf.tenant, d, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return bf
}

func (bf *batchFixture) token(t *testing.T, user string) string {
	t.Helper()
	tok, _, err := bf.accounts.CreateToken(context.Background(), bf.users[user].ID, "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// remaining is how many customers the admin's run of the query still shows.
func (bf *batchFixture) remaining(t *testing.T) int {
	t.Helper()
	code, out := apiCall(t, bf.fixture, "GET", "/api/v1/queries/customers/run", bf.token(t, "admin"), "")
	if code != http.StatusOK {
		t.Fatalf("run: %d %v", code, out)
	}
	return int(out["total"].(float64))
}

func TestQueryBatchDeleteRefusals(t *testing.T) {
	bf := newBatchFixture(t)
	body := fmt.Sprintf(`{"ids": [%d], "confirm": true}`, bf.ids["c 00"])
	// Roles that may not delete records: agents, QA, team leads.
	for _, user := range []string{"a1", "qa", "lead"} {
		code, out := apiCall(t, bf.fixture, "POST", "/api/v1/queries/customers/delete", bf.token(t, user), body)
		if code != http.StatusForbidden {
			t.Errorf("%s: batch delete %d %v", user, code, out)
		}
		b := bf.browser(t)
		b.mustLogin("acme", user, "password-"+user)
		_, _, page := b.do("GET", "/queries/customers", nil, nil)
		if strings.Contains(page, `id="batch-delete"`) || strings.Contains(page, `name="id"`) {
			t.Errorf("%s is offered batch delete", user)
		}
	}
	// A source whose object does not allow batch delete (work orders), even for an admin.
	code, out := apiCall(t, bf.fixture, "POST", "/api/v1/queries/orders/delete", bf.token(t, "admin"), `{"all": true, "confirm": true}`)
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out), "work_order") {
		t.Errorf("work orders batch delete: %d %v", code, out)
	}
	// A query that does not declare it, a table that is no data object's, and an empty selection.
	if err := bf.svc.Save(context.Background(), bf.tenant, &query.Definition{Key: "plain", Title: query.Label{En: "P"},
		Source: query.Source{Table: "obj_customer"}, Columns: []query.Column{{Key: "id", Label: query.Label{En: "ID"}, Field: "id"}}}, "t"); err != nil {
		t.Fatal(err)
	}
	if code, out := apiCall(t, bf.fixture, "POST", "/api/v1/queries/plain/delete", bf.token(t, "admin"), `{"all": true}`); code != http.StatusForbidden {
		t.Errorf("query without batch delete: %d %v", code, out)
	}
	if code, out := apiCall(t, bf.fixture, "POST", "/api/v1/queries/customers/delete", bf.token(t, "admin"), `{}`); code != http.StatusBadRequest {
		t.Errorf("empty selection: %d %v", code, out)
	}
	if n := bf.remaining(t); n != 30 {
		t.Errorf("after refusals %d customers remain, want 30", n)
	}
	log, err := bf.accounts.AuditLog(context.Background(), bf.tenant.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		if e.Action == dataobject.AuditBatchDelete {
			t.Errorf("a refused batch delete was audited: %+v", e)
		}
	}
}

func TestQueryBatchDeletePageConfirmAndAudit(t *testing.T) {
	bf := newBatchFixture(t)
	ctx := context.Background()
	b := bf.browser(t)
	b.mustLogin("acme", "admin", "password-admin")
	_, _, page := b.do("GET", "/queries/customers?name=c+1", nil, nil)
	if !strings.Contains(page, `id="batch-delete"`) || !strings.Contains(page, fmt.Sprintf(`name="id" value="%d"`, bf.ids["c 10"])) ||
		!strings.Contains(page, "Delete all 10 matching") {
		t.Fatalf("the result page offers no batch delete:\n%s", page)
	}
	action := "/queries/customers/delete?name=c+1"
	// Selected rows: the first POST only asks for confirmation.
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "id": {fmt.Sprint(bf.ids["c 10"]), fmt.Sprint(bf.ids["c 11"])}}
	code, _, confirm := b.do("POST", action, form, nil)
	if code != http.StatusOK || !strings.Contains(confirm, "2 rows will be deleted") || !strings.Contains(confirm, `name="confirm" value="1"`) {
		t.Fatalf("confirmation: %d\n%s", code, confirm)
	}
	if n := bf.remaining(t); n != 30 {
		t.Fatalf("the confirmation step deleted rows: %d remain", n)
	}
	form.Set("confirm", "1")
	code, _, done := b.do("POST", action, form, nil)
	if code != http.StatusOK || !strings.Contains(done, "2 rows deleted") {
		t.Fatalf("delete: %d\n%s", code, done)
	}
	if n := bf.remaining(t); n != 28 {
		t.Errorf("after deleting 2, %d remain", n)
	}
	// Soft delete, as for one record: the record is gone from reads, its row stays.
	if _, err := bf.objects.Get(ctx, bf.tenant, "customer", bf.ids["c 10"]); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("a deleted record is still read: %v", err)
	}
	// All rows matching the search ("c 1…": 8 left).
	code, _, confirm = b.do("POST", action, url.Values{"csrf_token": {csrfOf(t, page)}, "all": {"1"}}, nil)
	if code != http.StatusOK || !strings.Contains(confirm, "8 rows will be deleted") {
		t.Fatalf("confirm all: %d\n%s", code, confirm)
	}
	code, _, done = b.do("POST", action, url.Values{"csrf_token": {csrfOf(t, page)}, "all": {"1"}, "confirm": {"1"}}, nil)
	if code != http.StatusOK || !strings.Contains(done, "8 rows deleted") {
		t.Fatalf("delete all: %d\n%s", code, done)
	}
	if n := bf.remaining(t); n != 20 {
		t.Errorf("after deleting the c 1… rows, %d remain, want 20", n)
	}
	// The audit log: who, which query, the filter, the count and the ids.
	log, err := bf.accounts.AuditLog(ctx, bf.tenant.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var entries []account.AuditEntry
	for _, e := range log {
		if e.Action == dataobject.AuditBatchDelete {
			entries = append(entries, e)
		}
	}
	if len(entries) != 2 {
		t.Fatalf("audit entries: %+v", log)
	}
	first := entries[1] // newest first
	ids := fmt.Sprint(first.Detail["ids"])
	if first.Actor != "admin" || first.Target != "query:customers" || first.Detail["count"] != float64(2) || first.Detail["query"] != "customers" ||
		first.Detail["object"] != "customer" || ids != fmt.Sprintf("[%d %d]", bf.ids["c 10"], bf.ids["c 11"]) ||
		fmt.Sprint(first.Detail["filter"]) != "map[name:[c 1]]" {
		t.Errorf("audit entry: %+v", first)
	}
	if entries[0].Detail["count"] != float64(8) || entries[0].Detail["all_matching"] != true {
		t.Errorf("audit entry of all matching: %+v", entries[0])
	}
}

// Ids outside the search, already deleted or unknown are never deleted, whatever the request names.
func TestQueryBatchDeleteOnlyMatchingRows(t *testing.T) {
	bf := newBatchFixture(t)
	tok := bf.token(t, "cfg")
	body := fmt.Sprintf(`{"values": {"name": ["c 2"]}, "ids": [%d, %d, %d, 999999], "confirm": false}`, bf.ids["c 00"], bf.ids["c 20"], bf.ids["c 21"])
	code, out := apiCall(t, bf.fixture, "POST", "/api/v1/queries/customers/delete", tok, body)
	if code != http.StatusOK || out["count"] != float64(2) || out["deleted"] != false {
		t.Fatalf("dry run: %d %v", code, out)
	}
	code, out = apiCall(t, bf.fixture, "POST", "/api/v1/queries/customers/delete", tok, strings.Replace(body, `"confirm": false`, `"confirm": true`, 1))
	if code != http.StatusOK || out["count"] != float64(2) || out["deleted"] != true ||
		fmt.Sprint(out["ids"]) != fmt.Sprintf("[%d %d]", bf.ids["c 20"], bf.ids["c 21"]) {
		t.Fatalf("delete: %d %v", code, out)
	}
	if n := bf.remaining(t); n != 28 {
		t.Errorf("%d remain, want 28", n)
	}
	// A second time: they are deleted already, so nothing matches.
	code, out = apiCall(t, bf.fixture, "POST", "/api/v1/queries/customers/delete", tok, strings.Replace(body, `"confirm": false`, `"confirm": true`, 1))
	if code != http.StatusOK || out["count"] != float64(0) {
		t.Errorf("again: %d %v", code, out)
	}
}

// The builder page can declare batch delete; without the id column the save is refused with
// the reason.
func TestQueryBuilderDeclaresBatchDelete(t *testing.T) {
	bf := newBatchFixture(t)
	b := bf.browser(t)
	b.mustLogin("acme", "cfg", "password-cfg")
	_, _, page := b.do("GET", "/admin/queries?table=obj_customer", nil, nil)
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "table": {"obj_customer"}, "key": {"built"}, "title_en": {"Built"},
		"owner_field": {"owner_id"}, "column": {"name"}, "batch_delete": {"1"}}
	code, _, body := b.do("POST", "/admin/queries", form, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "batch delete needs a column of field") {
		t.Fatalf("without id: %d", code)
	}
	form["column"] = []string{"id", "name"}
	if code, _, body = b.do("POST", "/admin/queries", form, nil); code != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", code, body)
	}
	d, err := bf.svc.Get(context.Background(), bf.tenant, "built")
	if err != nil || !d.Offers(query.BatchDelete) {
		t.Fatalf("saved: %v %+v", err, d)
	}
	_, _, page = b.do("GET", "/queries/built", nil, nil)
	if !strings.Contains(page, "Delete all 30 matching") {
		t.Errorf("the built query offers no batch delete")
	}
}
