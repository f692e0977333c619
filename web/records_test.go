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
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/query"
	"github.com/ctid/ctid/web"
)

// newRecordsFixture serves the shell with the records pages and API, a tenant acme with an
// agent a1 (and an API token for it), a QA checker qa1 and a config admin cfg. Saved
// queries are what tell a field's users (query.FieldUsers), as in ctid.
func newRecordsFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	pool, _ := dbtest.NewDatabase(t)
	f := &fixture{accounts: account.NewStore(pool, account.DefaultLoginLimits, time.Hour), now: time.Now()}
	reg := prometheus.NewRegistry()
	s, err := web.New(web.Options{Accounts: f.accounts, Pool: pool, Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	f.pool = pool
	s.EnableObjects(dataobject.New(pool, nil, reg, dataobject.Options{FieldUsage: query.FieldUsers}))
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	ctx := context.Background()
	if _, err := f.accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme"}, account.CLI); err != nil {
		t.Fatal(err)
	}
	var agentID int64
	for _, u := range []account.NewUser{
		{TenantCode: "acme", Username: "a1", Password: "password-a1", Roles: []string{"agent"}, Extension: "1001"},
		{TenantCode: "acme", Username: "qa1", Password: "password-qa1", Roles: []string{"qa"}},
		{TenantCode: "acme", Username: "cfg", Password: "password-cfg", Roles: []string{"config_admin"}},
	} {
		user, err := f.accounts.AddUser(ctx, u, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
		if u.Username == "a1" {
			agentID = user.ID
		}
	}
	token, _, err := f.accounts.CreateToken(ctx, agentID, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f, token
}

func TestRecordsAPI(t *testing.T) {
	f, token := newRecordsFixture(t)
	code, body := apiCall(t, f, "POST", "/api/v1/records/customer", token, `{"name": "王五", "phones": ["138 1234 5678"], "level": "gold"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	id := int64(body["id"].(float64))
	code, body = apiCall(t, f, "POST", "/api/v1/records/customer", token, `{"name": "", "email": "x"}`)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error"]), "name: is required") {
		t.Fatalf("bad create: %d %v", code, body)
	}
	code, body = apiCall(t, f, "PATCH", fmt.Sprintf("/api/v1/records/customer/%d", id), token, `{"company": "Acme 上海"}`)
	if code != http.StatusOK {
		t.Fatalf("update: %d %v", code, body)
	}
	code, body = apiCall(t, f, "GET", fmt.Sprintf("/api/v1/records/customer/%d/history", id), token, "")
	if code != http.StatusOK || body["total"].(float64) != 2 || !strings.Contains(fmt.Sprint(body["items"]), "Acme 上海") {
		t.Fatalf("history: %d %v", code, body)
	}
	code, body = apiCall(t, f, "GET", "/api/v1/records/customer?q="+url.QueryEscape("上海"), token, "")
	if code != http.StatusOK || body["total"].(float64) != 1 {
		t.Fatalf("list: %d %v", code, body)
	}
	code, body = apiCall(t, f, "GET", "/api/v1/lookup?number="+url.QueryEscape("+86 138-1234-5678"), token, "")
	if code != http.StatusOK || body["match_reason"] != "exact_e164" || body["total"].(float64) != 1 {
		t.Fatalf("lookup: %d %v", code, body)
	}
	// an agent may not delete, nor define objects
	if code, _ := apiCall(t, f, "DELETE", fmt.Sprintf("/api/v1/records/customer/%d", id), token, ""); code != http.StatusForbidden {
		t.Fatalf("agent delete: %d", code)
	}
	if code, _ := apiCall(t, f, "POST", "/api/v1/objects", token, `{"Key": "x1", "Kind": "base_data", "NameEN": "X"}`); code != http.StatusForbidden {
		t.Fatalf("agent defines object: %d", code)
	}
	// import through the API
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/records/customer/import", strings.NewReader("name,phones\nZhao,13900000000\n"))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("import: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	code, body = apiCall(t, f, "GET", "/api/v1/records/customer", token, "")
	if body["total"].(float64) != 2 {
		t.Fatalf("after import: %v", body)
	}
}

func TestRecordsPages(t *testing.T) {
	f, _ := newRecordsFixture(t)
	b := f.browser(t)
	b.mustLogin("acme", "a1", "password-a1")
	code, _, page := b.do("GET", "/records/customer/new", nil, nil)
	if code != http.StatusOK || !strings.Contains(page, `name="phones"`) {
		t.Fatalf("new form: %d\n%s", code, page)
	}
	form := url.Values{"csrf_token": {csrfOf(t, page)}, "name": {"Li Lei"}, "phones": {"13812345678; 010-65529988"}, "level": {"vip"}, "email": {"bad"}}
	code, _, page = b.do("POST", "/records/customer/new", form, nil)
	if code != http.StatusBadRequest || !strings.Contains(page, "is not an e-mail address") || !strings.Contains(page, `value="Li Lei"`) {
		t.Fatalf("bad form: %d\n%s", code, page)
	}
	form.Set("email", "li@example.com")
	code, h, _ := b.do("POST", "/records/customer/new", form, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("create: %d", code)
	}
	loc := h.Get("Location")
	form.Set("name", "Li Lei Jr")
	if code, _, _ := b.do("POST", strings.TrimSuffix(loc, "?saved=1"), form, nil); code != http.StatusSeeOther {
		t.Fatalf("update: %d", code)
	}
	_, _, page = b.do("GET", loc, nil, nil)
	if !strings.Contains(page, "Li Lei Jr") || !strings.Contains(page, "Li Lei → Li Lei Jr") || !strings.Contains(page, `class="grid cols-2"`) {
		t.Fatalf("record page lacks the edit or its history:\n%s", page)
	}
	_, _, page = b.do("GET", "/records/customer?q=65529988", nil, nil)
	if !strings.Contains(page, "Li Lei Jr") || !strings.Contains(page, "13812345678; 010-65529988") {
		t.Fatalf("list search:\n%s", page)
	}
	code, h, csv := b.do("GET", "/records/customer/export?format=csv", nil, nil)
	if code != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "text/csv") || !strings.Contains(csv, "Li Lei Jr") {
		t.Fatalf("export: %d %s", code, csv)
	}
	// QA reads but cannot change; the catalogue page is for config admins
	qa := f.browser(t)
	qa.mustLogin("acme", "qa1", "password-qa1")
	if code, _, _ := qa.do("GET", loc, nil, nil); code != http.StatusOK {
		t.Fatalf("qa view: %d", code)
	}
	if code, _, _ := qa.do("GET", "/admin/objects", nil, nil); code != http.StatusForbidden {
		t.Fatalf("qa catalogue: %d", code)
	}
}
