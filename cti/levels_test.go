package cti

import (
	"context"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

func TestLevelPriorityRules(t *testing.T) {
	q := Queue{LevelPriorities: []LevelPriority{{Level: "vip", Priority: 7}, {Level: "gold", Priority: 3}}}
	for _, tc := range []struct {
		levels []string
		want   int
	}{
		{[]string{"vip"}, 7},
		{[]string{"gold"}, 3},
		{[]string{"gold", "vip"}, 7}, // two matched customers: the higher
		{[]string{"normal"}, 0},
		{nil, 0},
	} {
		if got := q.levelPriority(tc.levels); got != tc.want {
			t.Errorf("priority of levels %v = %d, want %d", tc.levels, got, tc.want)
		}
	}
}

func TestSaveQueueLevelPriorities(t *testing.T) {
	pool := sipTenantFixture(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		rules []LevelPriority
		want  fault.Code
	}{
		{[]LevelPriority{{Level: "vip", Priority: 5}, {Level: "gold", Priority: 2}}, ""},
		{[]LevelPriority{{Level: "diamond", Priority: 5}}, fault.Invalid}, // no such code
		{[]LevelPriority{{Level: "vip vip", Priority: 5}}, fault.Invalid},
		{[]LevelPriority{{Level: "vip", Priority: 0}}, fault.Invalid},
		{[]LevelPriority{{Level: "vip", Priority: 10}}, fault.Invalid},
		{[]LevelPriority{{Level: "vip", Priority: 1}, {Level: "vip", Priority: 2}}, fault.Invalid},
	} {
		err := SaveQueue(ctx, pool, "acme", Queue{Name: "sales", LevelPriorities: tc.rules})
		if (tc.want == "" && err != nil) || (tc.want != "" && fault.CodeOf(err) != tc.want) {
			t.Errorf("rules %v: %v, want %q", tc.rules, err, tc.want)
		}
	}
	q, _, err := loadQueue(ctx, pool, "acme", "sales")
	if err != nil || len(q.LevelPriorities) != 2 || q.LevelPriorities[0] != (LevelPriority{"vip", 5}) || q.LevelPriorities[1] != (LevelPriority{"gold", 2}) {
		t.Fatalf("loaded level rules = %+v, %v (refused saves must change nothing)", q.LevelPriorities, err)
	}
}

// Two callers wait while no agent is free; the caller whose customer record is VIP, queued
// later, is answered first. The level comes from the customer data, as the pop finds it.
func TestVIPCustomerQueuedLaterIsAnsweredFirst(t *testing.T) {
	f := newCallFixture(t, Queue{LevelPriorities: []LevelPriority{{Level: "vip", Priority: 6}}}, false)
	accounts := account.NewStore(f.pool, account.LoginLimits{}, 0)
	objects := dataobject.New(f.pool, nil, prometheus.NewRegistry(), dataobject.Options{})
	tenant, err := accounts.TenantByCode(f.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, phone, level string }{
		{"Ordinary", "13900139000", "normal"},
		{"Big Boss", "138 0013 8000", "vip"},
	} {
		if _, err := objects.Create(f.ctx, tenant, "customer", map[string]any{"name": c.name, "phones": []string{c.phone}, "level": c.level}, account.CLI); err != nil {
			t.Fatal(err)
		}
	}
	f.s.SetCustomerLevels(func(ctx context.Context, code, caller string) ([]string, error) {
		t, err := accounts.TenantByCode(ctx, code)
		if err != nil {
			return nil, err
		}
		return objects.CustomerLevels(ctx, t, caller)
	})
	f.setState(t, f.aID, Change{To: NotReady, Who: ByAgent, Reason: "break"})
	dial := func(caller string) {
		from := &sip.FromHeader{Address: sip.Uri{User: caller, Host: "127.0.0.1"}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(8))
		host, port := f.s.hostPort("udp")
		sess, err := f.trunk.dcc.Invite(f.ctx, sip.Uri{User: testDID, Host: host, Port: port}, []byte("v=0\r\n"),
			sip.NewHeader("Content-Type", "application/sdp"), from)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(f.ctx)
		answered := make(chan error, 1)
		go func() { answered <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{}) }()
		t.Cleanup(func() { cancel(); <-answered })
	}
	dial("13900139000") // an ordinary customer first
	first := f.waitEvent(t, "ordinary caller queued", typeIs(CallQueued))
	dial("13800138000") // the VIP customer
	second := f.waitEvent(t, "VIP caller queued", typeIs(CallQueued))
	if first.Data["priority"] != "" || second.Data["priority"] != "6" || second.Data["position"] != "1" {
		t.Fatalf("queued events: %v then %v; want the VIP caller at position 1 with priority 6", first.Data, second.Data)
	}
	f.a.setAnswer(ringForever)
	f.setState(t, f.aID, Change{To: Ready, Who: ByAgent})
	d := recv(t, f.a.invites, "INVITE at a once Ready")
	if got := d.InviteRequest.From().Address.User; got != "13800138000" {
		t.Fatalf("agent a was offered the call of %s first, want the VIP caller 13800138000", got)
	}
	if ev := f.waitEvent(t, "ringing", typeIs(CallRinging)); ev.CallID != second.CallID {
		t.Fatalf("ringing call %s, want the VIP caller's %s", ev.CallID, second.CallID)
	}
}
