package wallboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/query"
	"github.com/ctid/ctid/screenpop"
	"github.com/ctid/ctid/wallboard"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	t        *testing.T
	ctx      context.Context
	url      string
	pool     *pgxpool.Pool
	cti      *cti.Service
	accounts *account.Store
	boards   *wallboard.Service
	acme     *account.Tenant
	users    map[string]*account.User
	base     time.Time // calls happen from here: today in the tenant's zone
	n        int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool, url := dbtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	reg := prometheus.NewRegistry()
	svc, err := cti.New(cti.Config{}, pool, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, url: url, pool: pool, cti: svc, accounts: account.NewStore(pool, account.LoginLimits{}, 0), users: map[string]*account.User{}}
	runCtx, stop := context.WithCancel(context.Background())
	go svc.Events().Run(runCtx)
	f.boards = startBoards(t, f, runCtx)
	t.Cleanup(func() { stop(); svc.Events().Wait(); cancel() })
	f.acme, err = f.accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme", TimeZone: "Asia/Shanghai"}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	for _, nu := range []account.NewUser{
		{Username: "a1", Roles: []string{"agent"}, Team: "red", Extension: "1001"},
		{Username: "a2", Roles: []string{"agent"}, Team: "red", Extension: "1002"},
		{Username: "a3", Roles: []string{"agent"}, Team: "blue", Extension: "1003"},
		{Username: "lead", Roles: []string{"team_lead"}, Team: "red"},
		{Username: "sup", Roles: []string{"supervisor"}},
	} {
		nu.TenantCode, nu.Password = "acme", "password-1"
		u, err := f.accounts.AddUser(ctx, nu, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
		f.users[nu.Username] = u
	}
	for _, q := range []string{"sales", "support"} {
		if err := cti.SaveQueue(ctx, pool, "acme", cti.Queue{Name: q}); err != nil {
			t.Fatal(err)
		}
	}
	for q, agents := range map[string][]string{"sales": {"a1", "a2"}, "support": {"a2", "a3"}} {
		for _, a := range agents {
			if err := cti.SetQueueMember(ctx, pool, "acme", q, f.users[a].ID, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	loc := f.acme.Location()
	f.base = time.Now().Add(-10 * time.Minute)
	if y, m, d := time.Now().In(loc).Date(); f.base.Before(time.Date(y, m, d, 0, 0, 0, 0, loc)) {
		f.base = time.Date(y, m, d, 0, 0, 1, 0, loc) // just after midnight: keep every call today
	}
	return f
}

func startBoards(t *testing.T, f *fixture, ctx context.Context) *wallboard.Service {
	pool, err := db.Open(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := wallboard.New(wallboard.Options{Pool: pool, Events: f.cti.Events(), Accounts: account.NewStore(pool, account.LoginLimits{}, 0),
		Registerer: prometheus.NewRegistry()})
	go s.Run(ctx)
	return s
}

func (f *fixture) append(ev cti.Event) cti.Event {
	f.t.Helper()
	ev.Tenant = "acme"
	out, err := f.cti.Events().Append(f.ctx, ev)
	if err != nil {
		f.t.Fatalf("append %s: %v", ev.Type, err)
	}
	return out
}

func (f *fixture) setState(agent string, to cti.AgentState, who, reason, callID string) {
	f.t.Helper()
	if _, err := f.cti.Agents().Set(f.ctx, "acme", f.users[agent].ID, cti.Change{To: to, Who: who, Reason: reason, CallID: callID}); err != nil {
		f.t.Fatalf("%s → %s: %v", agent, to, err)
	}
}

// call plays one inbound call of queue: waiting wait seconds, then answered by agent and
// talking talk seconds (or abandoned when agent is ""), after which the agent is in Wrap-up.
// Call times start at f.base + n × 17 s; agents' transitions happen now.
func (f *fixture) call(queue, agent string, wait, talk float64) {
	f.t.Helper()
	f.n++
	id := fmt.Sprintf("call-%d", f.n)
	off := f.base.Add(time.Duration(f.n) * 17 * time.Second)
	sec := func(s float64) time.Time { return off.Add(time.Duration(s * float64(time.Second))) }
	f.append(cti.Event{At: off, Type: cti.CallOffered, CallID: id, Queue: queue, Data: map[string]string{"caller": "+86139" + strconv.Itoa(10000000+f.n)}})
	f.append(cti.Event{At: off, Type: cti.CallQueued, CallID: id, Queue: queue})
	c := &cti.CDR{CallID: id, OfferedAt: off, Direction: cti.Inbound, Queue: queue, QueuedAt: off}
	if agent == "" {
		f.append(cti.Event{At: sec(wait), Type: cti.CallAbandoned, CallID: id, Queue: queue})
		c.Result, c.EndedAt, c.HangupBy = cti.Abandoned, sec(wait), cti.HangupCaller
	} else {
		aid := f.users[agent].ID
		f.setState(agent, cti.Reserved, cti.BySystem, "", id)
		f.setState(agent, cti.Ringing, cti.BySystem, "", id)
		f.append(cti.Event{At: sec(wait - 0.5), Type: cti.CallRinging, CallID: id, Queue: queue, AgentID: aid})
		f.append(cti.Event{At: sec(wait), Type: cti.CallAnswered, CallID: id, Queue: queue, AgentID: aid})
		f.setState(agent, cti.OnCall, cti.BySystem, "", id)
		c.Result, c.AgentID, c.RingingAt, c.AnsweredAt, c.EndedAt, c.HangupBy = cti.Answered, aid, sec(wait-0.5), sec(wait), sec(wait+talk), cti.HangupAgent
	}
	f.append(cti.Event{At: c.EndedAt, Type: cti.CallEnded, CallID: id, Queue: queue, AgentID: c.AgentID, CDR: c})
	if agent != "" {
		f.setState(agent, cti.WrapUp, cti.BySystem, "", id)
	}
}

// boardAt waits until the board has applied the event log up to the last event.
func (f *fixture) boardAt(s *wallboard.Service, v wallboard.Viewer) wallboard.Snapshot {
	f.t.Helper()
	evs, err := f.cti.Events().Since(f.ctx, "acme", 0, 100000)
	if err != nil {
		f.t.Fatal(err)
	}
	want := int64(0)
	if len(evs) > 0 {
		want = evs[len(evs)-1].Seq
	}
	for {
		snap, err := s.Snapshot(f.ctx, f.acme, v)
		if err != nil {
			f.t.Fatal(err)
		}
		if snap.Seq >= want {
			return snap
		}
		select {
		case <-f.ctx.Done():
			f.t.Fatalf("the board stayed at seq %d, want %d", snap.Seq, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (f *fixture) traffic() {
	for _, a := range []string{"a1", "a2", "a3"} {
		f.setState(a, cti.Ready, cti.ByAgent, "", "")
	}
	// Wrap-ups end now, a few milliseconds after they began: the board's and the database's
	// wrap-up times agree to the millisecond.
	f.call("sales", "a1", 5.25, 61.5)
	f.setState("a1", cti.Ready, cti.BySystem, "wrap_up_over", "")
	f.call("sales", "a2", 20, 30) // exactly at the threshold: within
	f.setState("a2", cti.Ready, cti.ByAgent, "", "")
	f.call("sales", "a1", 20.001, 12) // just over
	f.setState("a1", cti.Ready, cti.BySystem, "wrap_up_over", "")
	f.call("sales", "", 8.125, 0)
	f.call("support", "a3", 3, 100.75) // a3 stays in wrap-up: its time counts once it is over
	f.call("support", "", 40, 0)
	f.call("support", "a2", 1.5, 9)
	f.setState("a2", cti.NotReady, cti.ByAgent, "break", "") // leaving wrap-up for a break ends it
}

// The board's today figures are the query engine's for the same calls: the same template
// columns over the same CDRs.
func TestLiveFiguresEqualQueryEngine(t *testing.T) {
	f := newFixture(t)
	// Start the board before the traffic: the figures come from the live stream.
	if _, err := f.boards.Snapshot(f.ctx, f.acme, wallboard.Viewer{AllAgents: true}); err != nil {
		t.Fatal(err)
	}
	f.traffic()
	snap := f.boardAt(f.boards, wallboard.Viewer{AllAgents: true})

	readers, err := db.NewReaders(f.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(readers.Close)
	qs := query.New(f.pool, readers, nil, prometheus.NewRegistry())
	env := &query.Env{Now: time.Now(), Loc: f.acme.Location(), Viewer: query.ViewerOf(f.users["sup"])}
	run := func(key string) []map[string]any {
		res, err := qs.Run(f.ctx, f.acme, env, query.Template(key), query.Request{})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		var out []map[string]any
		for _, row := range res.Rows {
			m := map[string]any{}
			for i, c := range res.Columns {
				m[c.Key] = row[i]
			}
			out = append(out, m)
		}
		return out
	}
	queues := map[string]wallboard.QueueView{}
	for _, q := range snap.Queues {
		queues[q.Name] = q
	}
	rows := run("queue_statistics")
	if len(rows) != 2 {
		t.Fatalf("query engine: %d queue rows, want 2", len(rows))
	}
	for _, row := range rows {
		q := queues[row["queue"].(string)]
		for k, got := range map[string]any{"offered": q.Offered, "answered": q.Answered, "abandoned": q.Abandoned,
			"answered_in_sl": q.AnsweredInSL, "wait_avg": deref(q.WaitAvg), "service_level": deref(q.ServiceLevel),
			"handle_avg": deref(q.HandleAvg)} {
			if fmt.Sprint(got) != fmt.Sprint(row[k]) {
				t.Errorf("queue %s %s: board %v, query engine %v", q.Name, k, got, row[k])
			}
		}
	}
	if q := queues["sales"]; q.Offered != 4 || q.Answered != 3 || q.AnsweredInSL != 2 || q.Abandoned != 1 {
		t.Errorf("sales = %+v, want offered 4, answered 3 (2 within 20 s), abandoned 1", q)
	}
	agents := map[int64]wallboard.AgentView{}
	for _, a := range snap.Agents {
		agents[a.ID] = a
	}
	for _, row := range run("agent_statistics") {
		id, _ := row["agent"].(int64)
		a, ok := agents[id]
		if !ok {
			continue // the unassigned abandoned calls
		}
		if fmt.Sprint(a.Handled) != fmt.Sprint(row["answered"]) || fmt.Sprint(deref(a.TalkAvg)) != fmt.Sprint(row["talk_avg"]) ||
			fmt.Sprint(deref(a.HandleAvg)) != fmt.Sprint(row["handle_avg"]) {
			t.Errorf("agent %d: board handled %d talk %v handle %v, query engine %v %v %v", id, a.Handled, deref(a.TalkAvg), deref(a.HandleAvg),
				row["answered"], row["talk_avg"], row["handle_avg"])
		}
	}
	// Handle time is talk + wrap-up: a1's two calls' wrap-ups are over, a3's is not.
	if a := agents[f.users["a1"].ID]; a.HandleAvg == nil || *a.HandleAvg <= *a.TalkAvg {
		t.Errorf("a1 handle %v, talk %v: want talk + wrap-up", deref(a.HandleAvg), deref(a.TalkAvg))
	}
	// a3 is still in wrap-up: that wrap-up counts once it is over, so handle time is talk so far.
	if a := agents[f.users["a3"].ID]; a.State != "wrap_up" || a.HandleAvg == nil || *a.HandleAvg != *a.TalkAvg {
		t.Errorf("a3 = %+v, want in wrap-up with handle time = talk until the wrap-up is over", a)
	}
	if a := agents[f.users["a2"].ID]; a.State != "not_ready" || a.Reason != "break" || a.Handled != 2 {
		t.Errorf("a2 = %+v, want not ready (break) with 2 calls handled", a)
	}
}

func customerOf(s wallboard.Snapshot, agent int64) string {
	for _, a := range s.Agents {
		if a.ID == agent {
			return a.Customer
		}
	}
	return ""
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// A second ctid (or a restarted one) derives the same board from the database, including a
// caller still waiting and an agent still on a call.
func TestRebuildAfterRestart(t *testing.T) {
	f := newFixture(t)
	all := wallboard.Viewer{AllAgents: true}
	if _, err := f.boards.Snapshot(f.ctx, f.acme, all); err != nil {
		t.Fatal(err)
	}
	f.traffic()
	// One caller waits in sales; a1 is on a call of support.
	f.append(cti.Event{Type: cti.CallOffered, CallID: "open-1", Queue: "sales", Data: map[string]string{"caller": "+8613911112222"}})
	f.append(cti.Event{Type: cti.CallQueued, CallID: "open-1", Queue: "sales"})
	f.append(cti.Event{Type: cti.CallOffered, CallID: "open-2", Queue: "support", Data: map[string]string{"caller": "+8613933334444"}})
	// The pop of open-2 (package screenpop stores it when the call is offered) names the customer.
	err := db.InTenant(f.ctx, f.pool, f.acme.Scope(), func(tx pgx.Tx) error {
		_, err := tx.Exec(f.ctx, `INSERT INTO pops (call_id, payload) VALUES ('open-2', '{"draft": {"customer_name": "Zhou Min"}}')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.setState("a1", cti.Reserved, cti.BySystem, "", "open-2")
	f.setState("a1", cti.Ringing, cti.BySystem, "", "open-2")
	f.append(cti.Event{Type: cti.CallAnswered, CallID: "open-2", Queue: "support", AgentID: f.users["a1"].ID})
	f.setState("a1", cti.OnCall, cti.BySystem, "", "open-2")
	live := f.boardAt(f.boards, all)
	for customerOf(live, f.users["a1"].ID) != "Zhou Min" { // looked up from the pop after the answer
		select {
		case <-f.ctx.Done():
			t.Fatalf("a1's row never named the customer: %+v", live.Agents)
		case <-time.After(10 * time.Millisecond):
		}
		live = f.boardAt(f.boards, all)
	}

	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	restarted := f.boardAt(startBoards(t, f, runCtx), all)
	a, _ := json.Marshal(live)
	b, _ := json.Marshal(restarted)
	if string(a) != string(b) {
		t.Errorf("rebuilt board differs from the live one:\nlive    %s\nrebuilt %s", a, b)
	}
	for _, q := range restarted.Queues {
		if q.Name == "sales" && (q.Waiting != 1 || q.OldestSince.IsZero()) {
			t.Errorf("sales after restart: %d waiting since %v, want the open caller", q.Waiting, q.OldestSince)
		}
	}
	for _, ag := range restarted.Agents {
		if ag.ID == f.users["a1"].ID && (ag.State != "on_call" || ag.Caller != "+8613933334444" || ag.Customer != "Zhou Min" || ag.TalkSince.IsZero()) {
			t.Errorf("a1 after restart = %+v, want on the call of +8613933334444", ag)
		}
	}
}

// hubServer serves /ws of a real screenpop hub whose feeds are the boards: ?user=<name> is the
// user the request authenticated, ?tv=1 a TV link's read-only token.
func (f *fixture) hubServer() *httptest.Server {
	hub := screenpop.NewHub(screenpop.Options{Events: f.cti.Events(), Accounts: f.accounts, Pool: f.pool, Feeds: f.boards.Feed})
	any := func(*http.Request) bool { return true }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("tv") != "" {
			hub.ServeFeedWS(w, r, f.acme, any, func(context.Context) error { return nil })
			return
		}
		hub.ServeWS(w, r, f.users[r.URL.Query().Get("user")], any)
	}))
	f.t.Cleanup(srv.Close)
	return srv
}

// dialBoard opens /ws with query, reads hello and subscribes to the board feed.
func dialBoard(tb testing.TB, ctx context.Context, srv *httptest.Server, query string) *websocket.Conn {
	tb.Helper()
	c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws"+query, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", query, err)
	}
	tb.Cleanup(func() { c.Close() })
	var hello screenpop.Message
	if err := c.ReadJSON(&hello); err != nil || hello.Type != screenpop.TypeHello {
		tb.Fatalf("hello of %s: %+v, %v", query, hello, err)
	}
	if err := c.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientSubscribe, Feed: wallboard.FeedName}); err != nil {
		tb.Fatal(err)
	}
	return c
}

// readFrame reads one board frame (an error frame of /ws comes back with Type "error").
func readFrame(t *testing.T, c *websocket.Conn) wallboard.Frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var fr wallboard.Frame
	if err := c.ReadJSON(&fr); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return fr
}

// A team lead's board on /ws shows their team's agents only — in the snapshot and in every
// update; an agent gets no board; a TV token gets queues only and no console.
func TestTeamLeadSeesOwnTeamOverWS(t *testing.T) {
	f := newFixture(t)
	srv := f.hubServer()
	read := func(c *websocket.Conn) wallboard.Frame { return readFrame(t, c) }
	ids := func(fr wallboard.Frame) map[int64]string {
		out := map[int64]string{}
		for _, a := range fr.Data.Agents {
			out[a.ID] = a.State
		}
		return out
	}
	lead, sup := dialBoard(t, f.ctx, srv, "?user=lead"), dialBoard(t, f.ctx, srv, "?user=sup")
	tv := dialBoard(t, f.ctx, srv, "?tv=1")
	a1, a2, a3 := f.users["a1"].ID, f.users["a2"].ID, f.users["a3"].ID
	if fr := read(lead); fr.Type != wallboard.TypeSnapshot || len(ids(fr)) != 2 || ids(fr)[a1] == "" || ids(fr)[a2] == "" {
		t.Errorf("lead's snapshot: %s with agents %v, want red's a1 and a2 only", fr.Type, ids(fr))
	}
	if fr := read(sup); len(ids(fr)) != 3 {
		t.Errorf("supervisor's snapshot has agents %v, want all three", ids(fr))
	}
	if fr := read(tv); fr.Type != wallboard.TypeSnapshot || len(fr.Data.Agents) != 0 || len(fr.Data.Queues) == 0 {
		t.Errorf("TV snapshot: %s with %d agents and %d queues, want queues only", fr.Type, len(fr.Data.Agents), len(fr.Data.Queues))
	}
	// a3 (blue) logs in, then a1 (red): the lead's first update with an agent is a1's.
	f.setState("a3", cti.Ready, cti.ByAgent, "", "")
	f.setState("a1", cti.Ready, cti.ByAgent, "", "")
	for {
		fr := read(lead)
		if _, ok := ids(fr)[a3]; ok {
			t.Fatalf("the lead got blue agent a3 in an update: %+v", fr.Data.Agents)
		}
		if ids(fr)[a1] == "ready" {
			break
		}
	}
	for seen := false; !seen; {
		seen = ids(read(sup))[a3] == "ready"
	}
	ready := map[string]int{}
	for ready["sales"] != 1 || ready["support"] != 1 {
		fr := read(tv)
		if len(fr.Data.Agents) != 0 {
			t.Fatalf("the TV got agents: %+v", fr.Data.Agents)
		}
		for _, q := range fr.Data.Queues {
			ready[q.Name] = q.Ready
		}
	}
	// A user who may not watch the floor gets an error frame and no board.
	if fr := read(dialBoard(t, f.ctx, srv, "?user=a1")); fr.Type != screenpop.TypeError {
		t.Errorf("an agent subscribed to the board: got %s", fr.Type)
	}
	// A TV token opens no console.
	c, _, err := websocket.DefaultDialer.DialContext(f.ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?tv=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var m screenpop.Message
	if err := c.ReadJSON(&m); err != nil || m.Type != screenpop.TypeHello {
		t.Fatalf("TV hello: %+v %v", m, err)
	}
	if err := c.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientResume}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadJSON(&m); err != nil || m.Type != screenpop.TypeError {
		t.Errorf("a TV token resumed a console: %+v %v", m, err)
	}
}
