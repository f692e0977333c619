package web_test

import (
	"context"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/query"
	"github.com/ctid/ctid/screenpop"
	"github.com/ctid/ctid/web"
	"github.com/ctid/ctid/web/browsertest"
	"github.com/ctid/ctid/workorder"
)

type woFixture struct {
	*fixture
	tenant  *account.Tenant
	svc     *workorder.Service
	objects *dataobject.Store
	agents  *cti.Agents
	pool    *pgxpool.Pool
	users   map[string]*account.User
	tokens  map[string]string
}

func newWOFixture(t testing.TB) *woFixture {
	t.Helper()
	pool, dburl := dbtest.NewDatabase(t)
	readers, err := db.NewReaders(dburl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(readers.Close)
	f := &woFixture{fixture: &fixture{accounts: account.NewStore(pool, account.DefaultLoginLimits, time.Hour), now: time.Now()},
		users: map[string]*account.User{}, tokens: map[string]string{}, pool: pool}
	reg := prometheus.NewRegistry()
	ctisvc, err := cti.New(cti.Config{}, pool, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	f.events, f.agents = ctisvc.Events(), ctisvc.Agents()
	f.objects = dataobject.New(pool, nil, reg, dataobject.Options{})
	var hub *screenpop.Hub
	f.svc = workorder.New(workorder.Options{Pool: pool, Objects: f.objects, Accounts: f.accounts, Registerer: reg,
		Notify: func(ctx context.Context, tenant string, agentID int64, typ string, data any) {
			hub.Notify(ctx, tenant, agentID, typ, data)
		}})
	hub = screenpop.NewHub(screenpop.Options{Events: f.events, Accounts: f.accounts, Pool: pool, Registerer: reg,
		Objects: f.objects, WorkOrders: f.svc.PopSource})
	runCtx, stop := context.WithCancel(context.Background())
	go f.events.Run(runCtx)
	hubDone := make(chan struct{})
	go func() { hub.Run(runCtx); close(hubDone) }()
	s, err := web.New(web.Options{Accounts: f.accounts, Pool: pool, Registerer: reg, Gatherer: reg, Pops: hub})
	if err != nil {
		t.Fatal(err)
	}
	s.MountCTI(ctisvc)
	s.EnableObjects(f.objects)
	s.EnableQueries(query.New(pool, readers, nil, reg))
	s.EnableWorkOrders(f.svc, f.objects, f.agents)
	f.srv = httptest.NewServer(s)
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		stop()
		<-hubDone
		f.events.Wait()
	})
	ctx := context.Background()
	if f.tenant, err = f.accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme", Region: "CN", TimeZone: "Asia/Shanghai"}, account.CLI); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, role, team, ext string }{
		{"admin", "admin", "", ""}, {"lead", "team_lead", "north", ""}, {"a1", "agent", "north", "1001"},
		{"a2", "agent", "north", "1002"}, {"s1", "agent", "south", "1003"}, {"qa", "qa", "", ""}, {"cfg", "config_admin", "", ""},
	} {
		nu, err := f.accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: u.name, Password: "password-" + u.name,
			Roles: []string{u.role}, Team: u.team, Extension: u.ext}, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
		if f.users[u.name], err = f.accounts.UserByID(ctx, nu.ID); err != nil {
			t.Fatal(err)
		}
		if f.tokens[u.name], _, err = f.accounts.CreateToken(ctx, nu.ID, "test", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestWorkOrderAPISaveEditAndScope(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	cust, err := f.objects.Create(ctx, f.tenant, "customer", map[string]any{"name": "Wang Fang", "phones": []any{"13900003333"}}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	save := fmt.Sprintf(`{"call_id": "c-1", "customer_id": %d, "values": {"subject": "No dial tone", "type": "repair"}}`, cust.ID)
	code, body := apiCall(t, f.fixture, "POST", "/api/v1/workorders", f.tokens["a1"], save)
	if code != 201 {
		t.Fatalf("save: %d %v", code, body)
	}
	wo := body["work_order"].(map[string]any)
	id := int64(wo["id"].(float64))
	if v := wo["values"].(map[string]any); v["call_id"] != "c-1" || v["customer_id"] != float64(cust.ID) || v["status"] != "open" {
		t.Fatalf("saved values = %v", v)
	}
	code, body = apiCall(t, f.fixture, "POST", "/api/v1/workorders", f.tokens["a1"], save)
	if code != 409 || !strings.Contains(fmt.Sprint(body["error"]), fmt.Sprintf("#%d", id)) {
		t.Fatalf("second save of the call: %d %v", code, body)
	}
	code, body = apiCall(t, f.fixture, "POST", "/api/v1/workorders", f.tokens["a1"], `{"values": {"subject": 5}}`)
	if code != 400 || !strings.Contains(fmt.Sprint(body["error"]), "subject") {
		t.Fatalf("bad value: %d %v", code, body)
	}
	// Who sees it: a1 (owner) and the north lead and the admin; not s1 of the south team, nor a2.
	path := fmt.Sprintf("/api/v1/workorders/%d", id)
	for user, want := range map[string]int{"a1": 200, "lead": 200, "admin": 200, "s1": 404, "a2": 404} {
		if code, body := apiCall(t, f.fixture, "GET", path, f.tokens[user], ""); code != want {
			t.Errorf("%s GET: %d %v, want %d", user, code, body, want)
		}
		_, list := apiCall(t, f.fixture, "GET", "/api/v1/workorders", f.tokens[user], "")
		if n := list["total"].(float64); (n == 1) != (want == 200) {
			t.Errorf("%s lists %v work orders", user, n)
		}
	}
	// The lead edits; a1's edit from the old version is a conflict naming the lead.
	version := wo["updated_at"].(string)
	code, body = apiCall(t, f.fixture, "PUT", path, f.tokens["lead"], fmt.Sprintf(`{"values": {"status": "pending"}, "version": %q}`, version))
	if code != 200 {
		t.Fatalf("lead's edit: %d %v", code, body)
	}
	code, body = apiCall(t, f.fixture, "PUT", path, f.tokens["a1"], fmt.Sprintf(`{"values": {"status": "closed"}, "version": %q}`, version))
	if code != 409 || !strings.Contains(fmt.Sprint(body["error"]), "lead") {
		t.Fatalf("stale edit: %d %v", code, body)
	}
	_, body = apiCall(t, f.fixture, "GET", path, f.tokens["a1"], "")
	if v := body["work_order"].(map[string]any)["values"].(map[string]any); v["status"] != "pending" {
		t.Fatalf("status after stale edit = %v", v["status"])
	}
	if h := body["history"].([]any); len(h) != 2 {
		t.Fatalf("history = %v", h)
	}
	if l := body["operation_log"].([]any); len(l) != 2 {
		t.Fatalf("operation log = %v", l)
	}
	// The generic record pages and API would bypass role scope, locking and the operation log.
	for _, p := range []string{fmt.Sprintf("/api/v1/records/workorder/%d", id), "/api/v1/records/workorder", "/api/v1/records/workorder_log"} {
		if code, body := apiCall(t, f.fixture, "GET", p, f.tokens["s1"], ""); code != 403 {
			t.Errorf("GET %s: %d %v", p, code, body)
		}
	}
	if code, _ := apiCall(t, f.fixture, "GET", "/api/v1/records/customer", f.tokens["s1"], ""); code != 200 {
		t.Errorf("customers through the generic API: %d", code)
	}
	// The work-order page shows the history to a1 and is not found for s1.
	b := f.browser(t)
	b.mustLogin("acme", "a1", "password-a1")
	if code, _, page := b.do("GET", fmt.Sprintf("/workorders/%d", id), nil, nil); code != 200 || !strings.Contains(page, "Open → Pending") || !strings.Contains(page, `value="north" disabled`) {
		t.Fatalf("work-order page: %d\n%s", code, page)
	}
	if code, _, page := b.do("GET", fmt.Sprintf("/records/customer/%d", cust.ID), nil, nil); code != 200 ||
		!strings.Contains(page, fmt.Sprintf(`href="/workorders?customer=%d"`, cust.ID)) {
		t.Fatalf("customer page without its work orders link: %d", code)
	}
	if code, _, page := b.do("GET", fmt.Sprintf("/workorders?customer=%d", cust.ID), nil, nil); code != 200 || !strings.Contains(page, "No dial tone") {
		t.Fatalf("work orders of the customer: %d", code)
	}
	s := f.browser(t)
	s.mustLogin("acme", "s1", "password-s1")
	if code, _, _ := s.do("GET", fmt.Sprintf("/workorders/%d", id), nil, nil); code != 404 {
		t.Fatalf("s1 opens a1's work order page: %d", code)
	}
	if code, _, page := s.do("GET", "/workorders", nil, nil); code != 200 || strings.Contains(page, "No dial tone") {
		t.Fatalf("s1's list shows a1's work order: %d", code)
	}
}

// An agent in after-call work saves the pop's pre-filled work order from the console; it is
// linked to the call and the customer, and the agent is Ready again (auto ready).
func TestConsoleSavesWorkOrderFromPopInBrowser(t *testing.T) {
	f := newWOFixture(t)
	ctx := context.Background()
	a1 := f.users["a1"]
	cust, err := f.objects.Create(ctx, f.tenant, "customer", map[string]any{"name": "Zhou Jie", "phones": []any{"13900004444"}}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	bctx := browsertest.New(t)
	err = chromedp.Do(bctx,
		chromedp.Navigate(f.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#username"), "a1"),
		chromedp.SendKeys(chromedp.CSS("#password"), "password-a1"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
		chromedp.Navigate(f.srv.URL+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#wo-f-subject")),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-live="1"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []cti.Change{{To: cti.Ready, Who: cti.ByAgent}, {To: cti.OnCall, Who: cti.BySystem, CallID: "call-77"}, {To: cti.WrapUp, Who: cti.BySystem}} {
		if _, err := f.agents.Set(ctx, "acme", a1.ID, step); err != nil {
			t.Fatalf("agent to %s: %v", step.To, err)
		}
	}
	for _, ev := range []cti.Event{
		{Tenant: "acme", Type: cti.CallOffered, CallID: "call-77", Queue: "sales", Data: map[string]string{"caller": "13900004444", "did": "4001", "direction": "inbound"}},
		{Tenant: "acme", Type: cti.CallRinging, CallID: "call-77", AgentID: a1.ID, Queue: "sales", Data: map[string]string{"extension": "1001"}},
	} {
		if _, err := f.events.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	err = chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.CSS(`#pop[data-call="call-77"]`)),
		chromedp.WaitReady(chromedp.CSS(`#wo-f-customer_name`)),
		chromedp.SendKeys(chromedp.CSS("#wo-f-subject"), "Wants a refund"),
		chromedp.SetValue(chromedp.CSS("#wo-f-type"), "complaint"),
		chromedp.Click(chromedp.CSS("#wo-save")),
		chromedp.WaitVisible(chromedp.CSS("#wo-notice[data-id]")),
	)
	if err != nil {
		t.Fatal(err)
	}
	notice, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#wo-notice")))
	if err != nil || !strings.HasPrefix(notice, "Work order saved: #") {
		t.Fatalf("notice %q %v", notice, err)
	}
	p, err := f.svc.List(ctx, f.tenant, a1, workorder.Filter{CallID: "call-77"})
	if err != nil || p.Total != 1 {
		t.Fatalf("work orders of the call: %+v %v", p, err)
	}
	v := p.Items[0].Values
	if v["subject"] != "Wants a refund" || v["type"] != "complaint" || v["customer_id"] != cust.ID || v["customer_name"] != "Zhou Jie" ||
		v["caller_number"] != "+8613900004444" || v["queue"] != "sales" {
		t.Fatalf("saved work order = %v", v)
	}
	st, err := f.agents.Status(ctx, "acme", a1.ID)
	if err != nil || st.State != cti.Ready {
		t.Fatalf("agent after save: %+v %v", st, err)
	}
	state, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#state")))
	if state != "Ready" {
		t.Fatalf("console state badge = %q", state)
	}
	// The team lead assigns a2's work order to a1: a1's console says so at once.
	w2, err := f.svc.Save(ctx, f.tenant, f.users["a2"], workorder.Input{Values: map[string]any{"subject": "Handed over"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Assign(ctx, f.tenant, f.users["lead"], "", w2.ID, workorder.Assignment{AgentID: a1.ID}, w2.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("A work order was assigned to you: #%d Handed over", w2.ID)
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#wo-notice[data-assigned="%d"]`, w2.ID)))); err != nil {
		t.Fatal(err)
	}
	if got, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#wo-notice"))); got != want {
		t.Fatalf("notice %q, want %q", got, want)
	}
}
