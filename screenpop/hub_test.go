package screenpop_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/screenpop"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// waitFor bounds how long a test waits for a message that must come.
const waitFor = 10 * time.Second

type fixture struct {
	pool     *pgxpool.Pool
	accounts *account.Store
	objects  *dataobject.Store
	events   *cti.EventLog
	hub      *screenpop.Hub
	srv      *httptest.Server
	tenants  map[string]*account.Tenant
	users    map[string]*account.User // "tenant/username"
}

func newFixture(t *testing.T, hubOptions ...func(*screenpop.Options)) *fixture {
	return newFixtureTB(t, hubOptions...)
}

func newFixtureTB(t testing.TB, hubOptions ...func(*screenpop.Options)) *fixture {
	t.Helper()
	pool, _ := dbtest.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	f := &fixture{pool: pool, accounts: account.NewStore(pool, account.LoginLimits{}, 0),
		objects: dataobject.New(pool, nil, reg, dataobject.Options{}),
		tenants: map[string]*account.Tenant{}, users: map[string]*account.User{}}
	svc, err := cti.New(cti.Config{}, pool, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	f.events = svc.Events()
	go f.events.Run(ctx)
	hubOpts := screenpop.Options{Events: f.events, Accounts: f.accounts, Objects: f.objects, Pool: pool, Registerer: reg}
	for _, o := range hubOptions {
		o(&hubOpts)
	}
	f.hub = screenpop.NewHub(hubOpts)
	hubDone := make(chan struct{})
	go func() { f.hub.Run(ctx); close(hubDone) }()
	// The test handler trusts ?user=<id>; the web package's /ws adds sessions, tokens and Origin.
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
		u, err := f.accounts.UserByID(r.Context(), id)
		if err != nil {
			http.Error(w, err.Error(), 403)
			return
		}
		f.hub.ServeWS(w, r, u, func(*http.Request) bool { return true })
	}))
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		cancel()
		<-hubDone
		f.events.Wait()
	})
	for _, code := range []string{"acme", "beta"} {
		tn, err := f.accounts.CreateTenant(ctx, account.NewTenant{Code: code, Name: code}, account.CLI)
		if err != nil {
			t.Fatal(err)
		}
		f.tenants[code] = tn
		for _, nu := range []account.NewUser{
			{Username: "a1", Roles: []string{"agent"}, Team: "red", Extension: "1001"},
			{Username: "a2", Roles: []string{"agent"}, Team: "red", Extension: "1002"},
			{Username: "a3", Roles: []string{"agent"}, Team: "blue", Extension: "1003"},
			{Username: "lead", Roles: []string{"team_lead"}, Team: "red"},
			{Username: "sup", Roles: []string{"supervisor"}},
		} {
			nu.TenantCode, nu.Password = code, "password-1"
			u, err := f.accounts.AddUser(ctx, nu, account.CLI)
			if err != nil {
				t.Fatal(err)
			}
			f.users[code+"/"+nu.Username] = u
		}
	}
	return f
}

func (f *fixture) customer(t *testing.T, tenant, name string, phones ...string) int64 {
	t.Helper()
	ps := make([]any, len(phones))
	for i, p := range phones {
		ps[i] = p
	}
	r, err := f.objects.Create(context.Background(), f.tenants[tenant], "customer", map[string]any{"name": name, "phones": ps}, account.CLI)
	if err != nil {
		t.Fatalf("create customer: %v", err)
	}
	return r.ID
}

func (f *fixture) append(t *testing.T, ev cti.Event) cti.Event {
	t.Helper()
	ev, err := f.events.Append(context.Background(), ev)
	if err != nil {
		t.Fatalf("append %s: %v", ev.Type, err)
	}
	return ev
}

// ring appends the events of a call offered to tenant and ringing agent.
func (f *fixture) ring(t *testing.T, tenant, callID, caller string, agent *account.User) cti.Event {
	t.Helper()
	f.append(t, cti.Event{Tenant: tenant, Type: cti.CallOffered, CallID: callID, Queue: "sales",
		Data: map[string]string{"caller": caller, "did": "4001", "direction": "inbound", "source": "sip"}})
	return f.append(t, cti.Event{Tenant: tenant, Type: cti.CallRinging, CallID: callID, AgentID: agent.ID, Queue: "sales",
		Data: map[string]string{"extension": agent.Extension}})
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
	c  chan screenpop.Message
}

// connect opens a console for user and resumes after lastSeq.
func (f *fixture) connect(t *testing.T, u *account.User, lastSeq int64) *client {
	t.Helper()
	url := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/?user=" + strconv.FormatInt(u.ID, 10)
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &client{t: t, ws: ws, c: make(chan screenpop.Message, 1000)}
	t.Cleanup(func() { ws.Close() })
	var hello screenpop.Message
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != screenpop.TypeHello {
		t.Fatalf("hello: %+v %v", hello, err)
	}
	if err := ws.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientResume, LastSeq: lastSeq}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.c)
		for {
			var m screenpop.Message
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			c.c <- m
		}
	}()
	return c
}

// next returns the next message, failing the test when none comes in time.
func (c *client) next() screenpop.Message {
	c.t.Helper()
	select {
	case m, ok := <-c.c:
		if !ok {
			c.t.Fatal("connection closed while waiting for a message")
		}
		return m
	case <-time.After(waitFor):
		c.t.Fatal("no message in time")
	}
	return screenpop.Message{}
}

// nextOf skips messages until one of type typ arrives.
func (c *client) nextOf(typ string) screenpop.Message {
	c.t.Helper()
	for {
		if m := c.next(); m.Type == typ {
			return m
		}
	}
}

// firstIs asserts that the next message is the pop.offer of callID: nothing meant for other
// agents came before it (the hub delivers in event order).
func (c *client) firstIs(callID string) {
	c.t.Helper()
	if m := c.next(); m.Type != screenpop.TypePopOffer || data(m)["call_id"] != callID {
		c.t.Fatalf("got %s %v before the pop of %s", m.Type, m.Data, callID)
	}
}

func data(m screenpop.Message) map[string]any { return m.Data.(map[string]any) }

func popOf(t *testing.T, m screenpop.Message) map[string]any {
	t.Helper()
	p, ok := data(m)["pop"].(map[string]any)
	if !ok {
		t.Fatalf("pop.offer without payload: %v", m.Data)
	}
	return p
}

func TestPopGoesOnlyToTheRingingAgent(t *testing.T) {
	f := newFixture(t)
	a1, a2 := f.users["acme/a1"], f.users["acme/a2"]
	b1 := f.users["beta/a1"]
	f.customer(t, "acme", "Li Lei", "13812345678")
	c1 := f.connect(t, a1, 0)
	c2 := f.connect(t, a2, 0)
	other := f.connect(t, b1, 0)

	ring := f.ring(t, "acme", "call-1", "+8613812345678", a1)
	m := c1.nextOf(screenpop.TypePopOffer)
	if m.Seq != ring.Seq || data(m)["call_id"] != "call-1" {
		t.Fatalf("offer %+v", m)
	}
	p := popOf(t, m)
	if p["rule"] != screenpop.RuleOne || p["match_reason"] != dataobject.ReasonExact {
		t.Fatalf("pop rule %v reason %v", p["rule"], p["match_reason"])
	}
	matches := p["matches"].([]any)
	if rec := matches[0].(map[string]any)["record"].(map[string]any); rec["name"] != "Li Lei" {
		t.Fatalf("matched record %v", rec)
	}
	if d := p["draft"].(map[string]any); d["customer_name"] != "Li Lei" || d["call_id"] != "call-1" {
		t.Fatalf("draft %v", d)
	}
	// Neither the other agent of the tenant nor the agent of another tenant with the same
	// username and extension gets anything.
	f.ring(t, "acme", "call-2", "+8613800000000", a2)
	c2.firstIs("call-2")
	f.ring(t, "beta", "call-3", "+8613800000001", b1)
	other.firstIs("call-3")
}

func TestPopRules(t *testing.T) {
	f := newFixture(t)
	a1 := f.users["acme/a1"]
	f.customer(t, "acme", "Han Meimei", "13900001111")
	f.customer(t, "acme", "Han Meimei's brother", "13900001111")
	c := f.connect(t, a1, 0)
	cases := []struct {
		call, caller, rule string
	}{
		{"shared", "13900001111", screenpop.RulePicker},
		{"unknown", "13700009999", screenpop.RuleNew},
		{"withheld", "anonymous", screenpop.RuleWithheld},
	}
	for _, tc := range cases {
		f.ring(t, "acme", tc.call, tc.caller, a1)
		p := popOf(t, c.nextOf(screenpop.TypePopOffer))
		if p["rule"] != tc.rule {
			t.Errorf("%s: rule %v, want %s", tc.call, p["rule"], tc.rule)
		}
		switch tc.rule {
		case screenpop.RulePicker:
			if len(p["matches"].([]any)) != 2 || p["chosen"] != nil {
				t.Errorf("picker: %v", p)
			}
		case screenpop.RuleNew:
			if nc := p["new_customer"].(map[string]any); nc["phone"] != "+8613700009999" {
				t.Errorf("new-customer form: %v", nc)
			}
		case screenpop.RuleWithheld:
			if nc := p["new_customer"].(map[string]any); len(nc) != 0 {
				t.Errorf("withheld caller's form has a number: %v", nc)
			}
		}
	}
	// The agent picks one; the next call of that number opens it.
	shared, err := f.hub.Builder().Get(context.Background(), f.tenants["acme"], "shared")
	if err != nil {
		t.Fatal(err)
	}
	pick := screenpop.RecordRef{Object: shared.Matches[1].Object, RecordID: shared.Matches[1].RecordID}
	if err := f.hub.Builder().Choose(context.Background(), f.tenants["acme"], a1.ID, "shared", pick); err != nil {
		t.Fatal(err)
	}
	if err := f.hub.Builder().Choose(context.Background(), f.tenants["acme"], a1.ID, "shared", screenpop.RecordRef{Object: "customer", RecordID: 999999}); err == nil {
		t.Fatal("a record that did not match was accepted as the pick")
	}
	f.ring(t, "acme", "shared-again", "13900001111", a1)
	p := popOf(t, c.nextOf(screenpop.TypePopOffer))
	chosen, ok := p["chosen"].(map[string]any)
	if !ok {
		t.Fatalf("no chosen record in %v", p)
	}
	if int64(chosen["record_id"].(float64)) != pick.RecordID {
		t.Fatalf("remembered pick not chosen: %v", chosen)
	}
}

// An agent's outbound call pops the customer it dialled, not the agent's own extension.
func TestOutboundCallPopsTheDialledCustomer(t *testing.T) {
	f := newFixture(t)
	a1 := f.users["acme/a1"]
	f.customer(t, "acme", "Li Lei", "13900002222")
	c := f.connect(t, a1, 0)
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallOffered, CallID: "out1", AgentID: a1.ID,
		Data: map[string]string{"caller": a1.Extension, "callee": "13900002222", "direction": "outbound", "source": "sip",
			"origin": "click_to_dial"}})
	p := popOf(t, c.nextOf(screenpop.TypePopOffer))
	call := p["call"].(map[string]any)
	if p["rule"] != screenpop.RuleOne || call["callee"] != "13900002222" {
		t.Fatalf("outbound pop: rule %v, call %v", p["rule"], call)
	}
	m := p["matches"].([]any)[0].(map[string]any)
	if m["record"].(map[string]any)["name"] != "Li Lei" {
		t.Fatalf("outbound pop matched %v", m)
	}
}

func TestCallLifecycleMessages(t *testing.T) {
	f := newFixture(t)
	a1, a2 := f.users["acme/a1"], f.users["acme/a2"]
	c1, c2 := f.connect(t, a1, 0), f.connect(t, a2, 0)
	// Ring a1, who does not answer: retract; then a2 answers; the call ends.
	f.ring(t, "acme", "c1", "13800000001", a1)
	c1.nextOf(screenpop.TypePopOffer)
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallMissed, CallID: "c1", AgentID: a1.ID, Data: map[string]string{"why": "timeout"}})
	if m := c1.next(); m.Type != screenpop.TypePopRetract || data(m)["reason"] != "rang_out" {
		t.Fatalf("a1 after ring-out: %s %v", m.Type, m.Data)
	}
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallRinging, CallID: "c1", AgentID: a2.ID})
	c2.nextOf(screenpop.TypePopOffer)
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallAnswered, CallID: "c1", AgentID: a2.ID})
	if m := c2.next(); m.Type != screenpop.TypePopUpdate || data(m)["status"] != "answered" {
		t.Fatalf("answered: %s %v", m.Type, m.Data)
	}
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallEnded, CallID: "c1", AgentID: a2.ID, Data: map[string]string{"result": "answered", "hangup_by": "caller"}})
	if m := c2.next(); m.Type != screenpop.TypePopUpdate || data(m)["status"] != "ended" {
		t.Fatalf("ended: %s %v", m.Type, m.Data)
	}
	// Caller hangs up while a1 rings: a1's pop is retracted.
	f.ring(t, "acme", "c2", "13800000002", a1)
	c1.nextOf(screenpop.TypePopOffer)
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallAbandoned, CallID: "c2", Data: map[string]string{"waited": "3"}})
	if m := c1.next(); m.Type != screenpop.TypePopRetract || data(m)["reason"] != "caller_hung_up" {
		t.Fatalf("abandoned: %s %v", m.Type, m.Data)
	}
}

func TestResumeAfterDisconnectHasNoGapAndNoDuplicate(t *testing.T) {
	f := newFixture(t)
	a1 := f.users["acme/a1"]
	c := f.connect(t, a1, 0)
	first := f.ring(t, "acme", "r1", "13800000011", a1)
	m := c.nextOf(screenpop.TypePopOffer)
	last := m.Seq
	c.ws.Close()
	// While the console is away: the call is answered and ends, and another call rings.
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallAnswered, CallID: "r1", AgentID: a1.ID})
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallEnded, CallID: "r1", AgentID: a1.ID, Data: map[string]string{"result": "answered"}})
	f.ring(t, "acme", "r2", "13800000012", a1)

	c = f.connect(t, a1, last)
	var got []string
	var seqs []int64
	for len(got) < 3 {
		m := c.next()
		got = append(got, m.Type+":"+data(m)["call_id"].(string))
		seqs = append(seqs, m.Seq)
	}
	want := []string{"pop.update:r1", "pop.update:r1", "pop.offer:r2"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("replay %v, want %v", got, want)
	}
	for i, s := range seqs {
		if s <= first.Seq || (i > 0 && s <= seqs[i-1]) {
			t.Fatalf("replay out of order or repeated: %v (first %d)", seqs, first.Seq)
		}
	}
	// Then live, with nothing repeated.
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallAnswered, CallID: "r2", AgentID: a1.ID})
	if m := c.next(); m.Type != screenpop.TypePopUpdate || data(m)["call_id"] != "r2" {
		t.Fatalf("live after replay: %s %v", m.Type, m.Data)
	}
}

func TestFreshConsoleMidCallGetsThePop(t *testing.T) {
	f := newFixture(t)
	a1 := f.users["acme/a1"]
	f.customer(t, "acme", "Wang", "13811112222")
	f.ring(t, "acme", "mid", "13811112222", a1)
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallAnswered, CallID: "mid", AgentID: a1.ID})
	// A page reload without a stored seq (last_seq 0) during the call still shows the pop.
	c := f.connect(t, a1, 0)
	m := c.next()
	if m.Type != screenpop.TypePopOffer || popOf(t, m)["rule"] != screenpop.RuleOne {
		t.Fatalf("fresh console: %s %v", m.Type, m.Data)
	}
	if m := c.next(); m.Type != screenpop.TypePopUpdate || data(m)["status"] != "answered" {
		t.Fatalf("then: %s", m.Type)
	}
}

func TestFollowers(t *testing.T) {
	f := newFixture(t)
	lead, sup := f.users["acme/lead"], f.users["acme/sup"]
	a1, a3 := f.users["acme/a1"], f.users["acme/a3"] // a1 in lead's team red, a3 in blue
	cl, cs := f.connect(t, lead, 0), f.connect(t, sup, 0)
	f.ring(t, "acme", "blue-call", "13800000021", a3)
	if m := cs.nextOf(screenpop.TypePopOffer); data(m)["call_id"] != "blue-call" {
		t.Fatalf("supervisor: %v", m.Data)
	}
	f.ring(t, "acme", "red-call", "13800000022", a1)
	// The lead's first message is the red team's call: the blue one never came.
	cl.firstIs("red-call")
}

func TestSlowConsoleIsDisconnectedWithoutStallingOthers(t *testing.T) {
	f := newFixture(t)
	a1, a2 := f.users["acme/a1"], f.users["acme/a2"]
	url := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/?user=" + strconv.FormatInt(a1.ID, 10)
	// A tiny receive buffer: the kernel cannot hide a console that does not read.
	dialer := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(16 << 10)
		}
		return c, err
	}}
	slow, _, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var hello screenpop.Message
	slow.ReadJSON(&hello)
	slow.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientResume, LastSeq: hello.Seq})
	// The slow console never reads again. Flood a1 with state events: its queue fills and it
	// is dropped, while a2's console keeps getting its own events promptly.
	fast := f.connect(t, a2, 0)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400; i++ {
				id := "flood-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if _, err := f.events.Append(ctx, cti.Event{Tenant: "acme", Type: cti.CallAnswered, CallID: id, AgentID: a1.ID}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	f.ring(t, "acme", "for-a2", "13800000031", a2)
	if m := fast.nextOf(screenpop.TypePopOffer); data(m)["call_id"] != "for-a2" {
		t.Fatalf("fast console: %v", m.Data)
	}
	// The slow one was closed by the server: reading drains what was buffered, then fails.
	slow.SetReadDeadline(time.Now().Add(waitFor))
	for n := 0; ; n++ {
		if _, _, err := slow.ReadMessage(); err != nil {
			t.Logf("slow console read %d messages, then %v", n, err)
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("slow console was not disconnected")
			}
			break
		}
	}
}

func TestAckIsRecorded(t *testing.T) {
	f := newFixture(t)
	a1 := f.users["acme/a1"]
	c := f.connect(t, a1, 0)
	f.ring(t, "acme", "ack-1", "13800000041", a1)
	m := c.nextOf(screenpop.TypePopOffer)
	if err := c.ws.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientAck, Seq: m.Seq}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	for {
		var acked bool
		err := f.pool.QueryRow(context.Background(), `SELECT acked_at IS NOT NULL FROM t_acme.pop_deliveries WHERE agent_id = $1 AND seq = $2`, a1.ID, m.Seq).Scan(&acked)
		if err == nil && acked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery/ack not recorded: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Calls that an external PBX reports through the call-event API pop for the agent they name:
// at newCall when it names the ringing agent, else when the agent answers.
func TestPopsForCallsReportedByAPBX(t *testing.T) {
	f := newFixture(t)
	a1, a2 := f.users["acme/a1"], f.users["acme/a2"]
	f.customer(t, "acme", "Zhou", "13811113333")
	c1, c2 := f.connect(t, a1, 0), f.connect(t, a2, 0)
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallOffered, CallID: "pbx-1", AgentID: a1.ID,
		Data: map[string]string{"caller": "13811113333", "direction": "inbound", "source": "api"}})
	if p := popOf(t, c1.nextOf(screenpop.TypePopOffer)); p["rule"] != screenpop.RuleOne {
		t.Fatalf("pop of the named agent: %v", p)
	}
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallAnswered, CallID: "pbx-1", AgentID: a1.ID})
	if m := c1.next(); m.Type != screenpop.TypePopUpdate || data(m)["status"] != "answered" {
		t.Fatalf("then: %s %v", m.Type, m.Data)
	}
	// newCall without an agent, answered by a2: a2 gets the pop, then the answer.
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallOffered, CallID: "pbx-2",
		Data: map[string]string{"caller": "13811113333", "direction": "inbound", "source": "api"}})
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallAnswered, CallID: "pbx-2", AgentID: a2.ID, Data: map[string]string{"source": "api"}})
	c2.firstIs("pbx-2")
	if m := c2.next(); m.Type != screenpop.TypePopUpdate || data(m)["call_id"] != "pbx-2" {
		t.Fatalf("a2 then: %s %v", m.Type, m.Data)
	}
}

// The ACD reserving an agent pops at once, before the phone rings; the ring adds no second
// pop; a reservation that goes back to Ready (the call went elsewhere) retracts it.
func TestPopAtReservation(t *testing.T) {
	f := newFixture(t)
	a1 := f.users["acme/a1"]
	c := f.connect(t, a1, 0)
	state := func(callID string, from, to cti.AgentState) {
		f.append(t, cti.Event{Tenant: "acme", Type: cti.AgentStateSet, AgentID: a1.ID, CallID: callID,
			Data: map[string]string{"from": string(from), "to": string(to)}, State: &cti.StateChange{From: from, To: to, Actor: "system"}})
	}
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallOffered, CallID: "res-1", Data: map[string]string{"caller": "13800000051"}})
	state("", cti.LoggedOut, cti.Ready)
	state("res-1", cti.Ready, cti.Reserved)
	c.nextOf(screenpop.TypeAgentState) // ready
	if m := c.next(); m.Type != screenpop.TypePopOffer || data(m)["call_id"] != "res-1" {
		t.Fatalf("at reservation: %s %v", m.Type, m.Data)
	}
	if m := c.next(); m.Type != screenpop.TypeAgentState || data(m)["to"] != "reserved" {
		t.Fatalf("then: %s %v", m.Type, m.Data)
	}
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallRinging, CallID: "res-1", AgentID: a1.ID})
	state("res-1", cti.Reserved, cti.Ringing)
	if m := c.next(); m.Type != screenpop.TypeAgentState || data(m)["to"] != "ringing" {
		t.Fatalf("the ring made another pop: %s %v", m.Type, m.Data)
	}
	// Another call reserves the agent, then goes elsewhere: retracted.
	state("res-1", cti.Ringing, cti.OnCall)
	state("res-1", cti.OnCall, cti.Ready)
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallOffered, CallID: "res-2", Data: map[string]string{"caller": "13800000052"}})
	state("res-2", cti.Ready, cti.Reserved)
	for _, want := range []string{"agent.state:on_call", "agent.state:ready", "pop.offer:res-2", "agent.state:reserved"} {
		m := c.next()
		got := m.Type + ":" + fmt.Sprint(data(m)["to"])
		if m.Type == screenpop.TypePopOffer {
			got = m.Type + ":" + fmt.Sprint(data(m)["call_id"])
		}
		if got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	state("res-2", cti.Reserved, cti.Ready)
	if m := c.nextOf(screenpop.TypePopRetract); data(m)["call_id"] != "res-2" || data(m)["reason"] != "rang_out" {
		t.Fatalf("retract: %v", m.Data)
	}
}
