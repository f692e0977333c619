package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/web"
)

// ctiFixture serves the web API with the SIP service mounted, for tenants acme and beta.
type ctiFixture struct {
	t      *testing.T
	srv    *httptest.Server
	tokens map[string]string // "tenant/username" → bearer token
	ids    map[string]int64
	svc    *cti.Service
	pool   *pgxpool.Pool
}

func newCTIFixture(t *testing.T) *ctiFixture {
	t.Helper()
	pool, _ := dbtest.NewDatabase(t)
	ctx := context.Background()
	accounts := account.NewStore(pool, account.DefaultLoginLimits, time.Hour)
	reg := prometheus.NewRegistry()
	svc, err := cti.New(cti.Config{UDPAddr: "127.0.0.1:0"}, pool, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cti Run: %v", err)
		}
	})
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("cti Run: %v", err)
	}
	s, err := web.New(web.Options{Accounts: accounts, Pool: pool, Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	s.MountCTI(svc)
	f := &ctiFixture{t: t, srv: httptest.NewServer(s), tokens: map[string]string{}, ids: map[string]int64{}, svc: svc, pool: pool}
	t.Cleanup(f.srv.Close)
	for _, code := range []string{"acme", "beta"} {
		if _, err := accounts.CreateTenant(ctx, account.NewTenant{Code: code, Name: code}, account.CLI); err != nil {
			t.Fatal(err)
		}
		for _, nu := range []account.NewUser{
			{Username: "a1", Roles: []string{"agent"}, Extension: "1001"},
			{Username: "cfg", Roles: []string{"config_admin"}},
			{Username: "sup", Roles: []string{"supervisor"}},
		} {
			nu.TenantCode, nu.Password = code, "password-"+nu.Username
			u, err := accounts.AddUser(ctx, nu, account.CLI)
			if err != nil {
				t.Fatal(err)
			}
			token, _, err := accounts.CreateToken(ctx, u.ID, "test", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			f.tokens[code+"/"+nu.Username] = token
			f.ids[code+"/"+nu.Username] = u.ID
		}
	}
	return f
}

func (f *ctiFixture) call(who, method, path, body string) (int, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.tokens[who])
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func TestAgentStateAPI(t *testing.T) {
	f := newCTIFixture(t)
	for _, tc := range []struct {
		who, method, path, body string
		status                  int
		state                   string
	}{
		{"acme/a1", "GET", "/api/v1/agents/me/state", "", 200, "logged_out"},
		{"acme/a1", "PUT", "/api/v1/agents/me/state", `{"state":"ready"}`, 200, "ready"},
		{"acme/a1", "PUT", "/api/v1/agents/me/state", `{"state":"not_ready"}`, 400, ""}, // no reason
		{"acme/a1", "PUT", "/api/v1/agents/me/state", `{"state":"on_call"}`, 403, ""},   // only SIP does that
		{"acme/a1", "PUT", "/api/v1/agents/me/state", `{"state":"not_ready","reason":"lunch"}`, 200, "not_ready"},
		{"acme/cfg", "PUT", "/api/v1/agents/me/state", `{"state":"ready"}`, 403, ""}, // not an agent
		{"beta/sup", "PUT", "/api/v1/agents/" + strconv.FormatInt(f.ids["acme/a1"], 10) + "/state", `{"state":"logged_out"}`, 404, ""},
		{"acme/sup", "PUT", "/api/v1/agents/" + strconv.FormatInt(f.ids["acme/a1"], 10) + "/state", `{"state":"logged_out"}`, 200, "logged_out"},
		{"acme/a1", "GET", "/api/v1/agents/me/state", "", 200, "logged_out"},
	} {
		status, out := f.call(tc.who, tc.method, tc.path, tc.body)
		if status != tc.status || (tc.state != "" && out["state"] != tc.state) {
			t.Fatalf("%s %s %s %s = %d %v, want %d %s", tc.who, tc.method, tc.path, tc.body, status, out, tc.status, tc.state)
		}
	}
}

// A supervisor forcing an agent Not ready or Logged out gives a reason: the answer, the
// agent-state log and the agent.state event all keep it, with the supervisor as actor.
func TestForcedStateKeepsItsReason(t *testing.T) {
	f := newCTIFixture(t)
	sub := f.svc.Events().Subscribe("acme", 100)
	defer sub.Close()
	agent := f.ids["acme/a1"]
	path := "/api/v1/agents/" + strconv.FormatInt(agent, 10) + "/state"
	for _, tc := range []struct {
		who, method, path, body string
		status                  int
		state, reason           string
	}{
		{"acme/a1", "PUT", "/api/v1/agents/me/state", `{"state":"ready"}`, 200, "ready", ""},
		{"acme/sup", "PUT", path, `{"state":"not_ready","reason":"meeting"}`, 200, "not_ready", "meeting"},
		{"acme/sup", "PUT", path, `{"state":"not_ready","reason":"missed"}`, 400, "", ""}, // a reason only ctid sets
		{"acme/sup", "PUT", path, `{"state":"logged_out","reason":"left without logging out"}`, 200, "logged_out", "left without logging out"},
		{"acme/a1", "GET", "/api/v1/agents/me/state", "", 200, "logged_out", "left without logging out"},
		{"acme/sup", "PUT", path, `{"state":"ready"}`, 200, "ready", ""},
		{"acme/sup", "PUT", path, `{"state":"logged_out","reason":"` + strings.Repeat("x", 121) + `"}`, 400, "", ""},
		{"acme/a1", "PUT", "/api/v1/agents/me/state", `{"state":"logged_out","reason":"end of shift"}`, 200, "logged_out", "end of shift"},
	} {
		status, out := f.call(tc.who, tc.method, tc.path, tc.body)
		if status != tc.status || (tc.state != "" && (out["state"] != tc.state || (out["reason"] != nil && out["reason"] != tc.reason) ||
			(out["reason"] == nil && tc.reason != ""))) {
			t.Fatalf("%s %s %s %s = %d %v, want %d %s %q", tc.who, tc.method, tc.path, tc.body, status, out, tc.status, tc.state, tc.reason)
		}
	}
	log, err := cti.StateLog(context.Background(), f.pool, "acme", agent)
	if err != nil {
		t.Fatal(err)
	}
	sup := "user:" + strconv.FormatInt(f.ids["acme/sup"], 10)
	type row struct{ to, reason, actor string }
	var got []row
	for _, e := range log {
		got = append(got, row{string(e.To), e.Reason, e.Actor})
	}
	want := []row{{"ready", "", "agent"}, {"not_ready", "meeting", sup}, {"logged_out", "left without logging out", sup},
		{"ready", "", sup}, {"logged_out", "end of shift", "agent"}}
	if len(got) != len(want) {
		t.Fatalf("state log = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("state log row %d = %v, want %v (log %v)", i, got[i], want[i], got)
		}
	}
	// The agent.state events carry the same reasons (the wallboard and console read those).
	for i := range want {
		select {
		case ev := <-sub.C:
			if ev.Type != cti.AgentStateSet || string(ev.State.To) != want[i].to || ev.State.Reason != want[i].reason ||
				ev.Data["reason"] != want[i].reason || ev.State.Actor != want[i].actor {
				t.Fatalf("event %d = %+v %+v, want %v", i, ev, ev.State, want[i])
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("agent.state event %d not delivered", i)
		}
	}
}

func TestCallEventAPI(t *testing.T) {
	f := newCTIFixture(t)
	post := func(who, body string) (int, map[string]any) {
		return f.call(who, "POST", "/api/v1/cti/events", body)
	}
	if status, _ := post("acme/a1", `{"event":"newCall","call_id":"c1"}`); status != 403 {
		t.Fatalf("agent token posting call events = %d, want 403", status)
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"event":"newCall","call_id":"1700000000.1","from":"13800138000","to":"02155550000","direction":"inbound"}`, 201},
		{`{"event":"newCall","call_id":"1700000000.1","from":"13800138000","to":"02155550000","direction":"inbound"}`, 200},
		{`{"event":"answer","call_id":"1700000000.1","agent":"1001"}`, 201},
		{`{"event":"hangup","call_id":"1700000000.1","cause":"caller"}`, 201},
		{`{"event":"hangup","call_id":"1700000000.1","cause":"caller"}`, 200},
		{`{"event":"transfer","call_id":"1700000000.1"}`, 400},
		{`{"event":"answer","call_id":"nosuch","agent":"1001"}`, 404},
		{`{"event":"newCall","call_id":"x","colour":"red"}`, 400},
	} {
		status, out := post("acme/cfg", tc.body)
		if status != tc.status {
			t.Fatalf("POST %s = %d %v, want %d", tc.body, status, out, tc.status)
		}
		if status == 200 && out["duplicate"] != true {
			t.Fatalf("repeat of %s not marked duplicate: %v", tc.body, out)
		}
	}
	// The other tenant knows nothing of acme's call.
	if status, _ := post("beta/cfg", `{"event":"answer","call_id":"1700000000.1","agent":"1001"}`); status != 404 {
		t.Fatalf("beta answering acme's call = %d, want 404", status)
	}
}

func TestQueueConfigAPI(t *testing.T) {
	f := newCTIFixture(t)
	vip := `{"strategy":"round_robin","ring_timeout_s":20,"max_wait_s":120,"caller_priorities":[{"caller":"+8613800138000","priority":5},{"caller":"+86139*","priority":2}]}`
	for _, tc := range []struct {
		who, method, path, body string
		status                  int
		check                   func(map[string]any) bool
	}{
		{"acme/a1", "PUT", "/api/v1/cti/queues/sales", vip, 403, nil}, // agents do not configure
		{"acme/cfg", "PUT", "/api/v1/cti/queues/sales", vip, 200, func(out map[string]any) bool {
			ps, _ := out["caller_priorities"].([]any)
			return out["strategy"] == "round_robin" && out["ring_timeout_s"] == 20.0 && len(ps) == 2 &&
				ps[0].(map[string]any)["caller"] == "+8613800138000" && ps[0].(map[string]any)["priority"] == 5.0
		}},
		{"acme/cfg", "PUT", "/api/v1/cti/queues/sales", `{"caller_priorities":[{"caller":"vip","priority":5}]}`, 400, nil},
		{"acme/cfg", "PUT", "/api/v1/cti/queues/sales", `{"caller_priorities":[{"caller":"+86138*","priority":12}]}`, 400, nil},
		{"acme/cfg", "PUT", "/api/v1/cti/queues/sales", `{"ring_timeout_s":-1}`, 400, nil},
		{"acme/cfg", "PUT", "/api/v1/cti/queues/sales", `{"colour":"red"}`, 400, nil},
		{"acme/cfg", "GET", "/api/v1/cti/queues/sales", "", 200, func(out map[string]any) bool { // refused PUTs changed nothing
			ps, _ := out["caller_priorities"].([]any)
			return out["max_wait_s"] == 120.0 && len(ps) == 2
		}},
		{"acme/cfg", "GET", "/api/v1/cti/queues", "", 200, func(out map[string]any) bool {
			qs, _ := out["queues"].([]any)
			return len(qs) == 1
		}},
		{"beta/cfg", "GET", "/api/v1/cti/queues/sales", "", 404, nil}, // another tenant's queue
		{"acme/cfg", "PUT", "/api/v1/cti/numbers/+862155550000", `{"queue":"sales","priority":3}`, 200, func(out map[string]any) bool {
			return out["number"] == "+862155550000" && out["priority"] == 3.0
		}},
		{"acme/cfg", "PUT", "/api/v1/cti/numbers/+862155550000", `{"queue":"nosuch"}`, 400, nil},
		{"acme/cfg", "PUT", "/api/v1/cti/numbers/+862155550000", `{"queue":"sales","priority":10}`, 400, nil},
		{"beta/cfg", "PUT", "/api/v1/cti/numbers/+862155550001", `{"queue":"sales"}`, 400, nil}, // beta has no queue sales
	} {
		status, out := f.call(tc.who, tc.method, tc.path, tc.body)
		if status != tc.status || (tc.check != nil && !tc.check(out)) {
			t.Fatalf("%s %s %s %s = %d %v, want %d", tc.who, tc.method, tc.path, tc.body, status, out, tc.status)
		}
	}
}
