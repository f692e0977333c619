package cti

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
)

func TestEventLogSequencesPerTenantAndGroupCommit(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	mustTenant(t, store, "globex")
	l, m := runningLog(t, pool)
	ctx := ctxT(t)
	subAll := l.Subscribe("", 1000)
	subAcme := l.Subscribe("acme", 1000)

	const perTenant = 150
	var wg sync.WaitGroup
	errs := make(chan error, 2*perTenant)
	for i := 0; i < perTenant; i++ {
		for _, tenant := range []string{"acme", "globex"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev, err := l.Append(ctx, Event{Tenant: tenant, Type: CallOffered, CallID: fmt.Sprintf("c%d", i),
					Data: map[string]string{"caller": "+8613800138000"}})
				if err == nil && ev.Seq == 0 {
					err = errors.New("append returned no sequence number")
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each tenant's numbers are 1..n without gaps, in the order subscribers saw them.
	for _, tenant := range []string{"acme", "globex"} {
		evs, err := l.Since(ctx, tenant, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != perTenant {
			t.Fatalf("%s has %d events, want %d", tenant, len(evs), perTenant)
		}
		for i, ev := range evs {
			if ev.Seq != int64(i+1) || ev.Type != CallOffered || ev.Data["caller"] != "+8613800138000" {
				t.Fatalf("%s event %d = %+v", tenant, i, ev)
			}
		}
	}
	last := map[string]int64{}
	for i := 0; i < 2*perTenant; i++ {
		ev := <-subAll.C
		if ev.Seq != last[ev.Tenant]+1 {
			t.Fatalf("subscriber saw %s seq %d after %d", ev.Tenant, ev.Seq, last[ev.Tenant])
		}
		last[ev.Tenant] = ev.Seq
	}
	for i := 0; i < perTenant; i++ {
		if ev := <-subAcme.C; ev.Tenant != "acme" {
			t.Fatalf("acme subscriber got an event of %s", ev.Tenant)
		}
	}
	// Concurrent appenders shared transactions.
	batches := histogramCount(t, m)
	if batches >= 2*perTenant {
		t.Errorf("%d events took %d transactions: no group commit", 2*perTenant, batches)
	}
	t.Logf("%d events in %d transactions", 2*perTenant, batches)
}

func TestEventLogRefusesBadEventsAndIsAppendOnly(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	l, _ := runningLog(t, pool)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		ev   Event
		want string
	}{
		{"unknown type", Event{Tenant: "acme", Type: "call.exploded"}, "not known"},
		{"bad tenant", Event{Tenant: "Acme;drop", Type: CallOffered}, "tenant code"},
		{"bad call id", Event{Tenant: "acme", Type: CallOffered, CallID: "a b"}, "call id"},
		{"state without change", Event{Tenant: "acme", Type: AgentStateSet, AgentID: 1}, "state change"},
		{"CDR on wrong type", Event{Tenant: "acme", Type: CallOffered, CallID: "c1", CDR: &CDR{CallID: "c1"}}, "only call.ended"},
		{"CDR bad result", Event{Tenant: "acme", Type: CallEnded, CallID: "c1", CDR: &CDR{CallID: "c1", Direction: Inbound,
			Result: "great", OfferedAt: time.Now(), EndedAt: time.Now()}}, "result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Append(ctx, tc.ev)
			if fault.CodeOf(err) != fault.Invalid || !contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want Invalid naming %q", err, tc.want)
			}
		})
	}
	if evs, _ := l.Since(ctx, "acme", 0, 10); len(evs) != 0 {
		t.Fatalf("refused events were written: %v", evs)
	}
	if _, err := l.Append(ctx, Event{Tenant: "acme", Type: CallOffered, CallID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE t_acme.events SET type = 'call.ended'`); err == nil || !contains(err.Error(), "append-only") {
		t.Fatalf("update of the event log: %v, want refused as append-only", err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM t_acme.events`); err == nil {
		t.Fatal("delete from the event log succeeded")
	}
}

func TestEventLogUnknownTenantFailsOnlyItsEvent(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	l, _ := runningLog(t, pool)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var goodErr, badErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, goodErr = l.Append(ctx, Event{Tenant: "acme", Type: CallOffered, CallID: "c1"})
	}()
	go func() {
		defer wg.Done()
		_, badErr = l.Append(ctx, Event{Tenant: "nosuch", Type: CallOffered, CallID: "c2"})
	}()
	wg.Wait()
	if goodErr != nil {
		t.Fatalf("good event failed beside a bad one: %v", goodErr)
	}
	if badErr == nil {
		t.Fatal("event of a tenant without a schema was accepted")
	}
}

func TestEventLogDropsSlowSubscriber(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	l, _ := runningLog(t, pool)
	ctx := ctxT(t)
	slow := l.Subscribe("acme", 2)
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, Event{Tenant: "acme", Type: CallOffered, CallID: fmt.Sprintf("c%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if !slow.Dropped() {
		t.Fatal("a subscriber with a full buffer was not dropped")
	}
	var seqs []int64
	for ev := range slow.C { // closed after the buffered events
		seqs = append(seqs, ev.Seq)
	}
	if fmt.Sprint(seqs) != "[1 2]" {
		t.Fatalf("slow subscriber got %v, want [1 2] then a closed channel", seqs)
	}
	// It replays what it missed from the log.
	rest, err := l.Since(ctx, "acme", 2, 10)
	if err != nil || len(rest) != 1 || rest[0].Seq != 3 {
		t.Fatalf("replay after 2 = %v, %v", rest, err)
	}
}

func histogramCount(t *testing.T, m *metrics) int {
	t.Helper()
	var d dto.Metric
	if err := m.eventBatch.Write(&d); err != nil {
		t.Fatal(err)
	}
	return int(d.GetHistogram().GetSampleCount())
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// Posted events are held and written together; every row of a batch (event, state log,
// current state, CDR) carries the sequence number its event was published with.
func TestEventLogBatchRowsCarryTheirEventsNumbers(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	mustTenant(t, store, "globex")
	ctx := ctxT(t)
	for _, tenant := range []string{"acme", "globex"} {
		if err := EnsurePartitions(ctx, pool, tenant, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := runningLog(t, pool)
	sub := l.Subscribe("", 100)
	// Two agents each change state twice in each tenant, with call events and a CDR between.
	var posted int
	post := func(ev Event) {
		t.Helper()
		if err := l.Post(ev); err != nil {
			t.Fatal(err)
		}
		posted++
	}
	for _, tenant := range []string{"acme", "globex"} {
		for agent := int64(1); agent <= 2; agent++ {
			post(Event{Tenant: tenant, Type: AgentStateSet, AgentID: agent, Data: map[string]string{"to": "ready"},
				State: &StateChange{From: LoggedOut, To: Ready, Actor: "system"}})
			post(Event{Tenant: tenant, Type: CallOffered, CallID: fmt.Sprintf("call-%d", agent)})
			post(Event{Tenant: tenant, Type: AgentStateSet, AgentID: agent, Data: map[string]string{"to": "on_call"},
				State: &StateChange{From: Ready, To: OnCall, Actor: "system"}})
		}
		now := time.Now()
		post(Event{Tenant: tenant, Type: CallEnded, CallID: "call-2", CDR: &CDR{CallID: "call-2", OfferedAt: now.Add(-time.Minute),
			Direction: Inbound, EndedAt: now, Result: Abandoned, HangupBy: HangupCaller, SIPCallIDs: []string{"x@trunk"}}})
	}
	seqOf := map[string]int64{} // tenant/type/agent/call/to → published number
	for i := 0; i < posted; i++ {
		select {
		case ev := <-sub.C:
			seqOf[fmt.Sprintf("%s/%s/%d/%s/%s", ev.Tenant, ev.Type, ev.AgentID, ev.CallID, ev.Data["to"])] = ev.Seq
		case <-ctx.Done():
			t.Fatalf("%d of %d events published", i, posted)
		}
	}
	for _, tenant := range []string{"acme", "globex"} {
		schema := "t_" + tenant
		var evSeqs []int64
		rows, err := pool.Query(ctx, `SELECT seq FROM `+schema+`.events ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s int64
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			evSeqs = append(evSeqs, s)
		}
		if fmt.Sprint(evSeqs) != "[1 2 3 4 5 6 7]" {
			t.Errorf("%s event numbers %v, want 1…7", tenant, evSeqs)
		}
		for agent := int64(1); agent <= 2; agent++ {
			var logged []int64
			rows, err := pool.Query(ctx, `SELECT seq FROM `+schema+`.agent_state_log WHERE agent_id = $1 ORDER BY seq`, agent)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s int64
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				logged = append(logged, s)
			}
			want := []int64{seqOf[fmt.Sprintf("%s/agent.state/%d//ready", tenant, agent)], seqOf[fmt.Sprintf("%s/agent.state/%d//on_call", tenant, agent)]}
			if fmt.Sprint(logged) != fmt.Sprint(want) {
				t.Errorf("%s agent %d state log numbers %v, want %v", tenant, agent, logged, want)
			}
			var state string
			var cur int64
			if err := pool.QueryRow(ctx, `SELECT state, seq FROM `+schema+`.agent_states WHERE agent_id = $1`, agent).Scan(&state, &cur); err != nil {
				t.Fatal(err)
			}
			if state != string(OnCall) || cur != want[1] {
				t.Errorf("%s agent %d current state %s #%d, want on_call #%d", tenant, agent, state, cur, want[1])
			}
		}
		var cdrSeq int64
		if err := pool.QueryRow(ctx, `SELECT seq FROM `+schema+`.cdrs WHERE call_id = 'call-2'`).Scan(&cdrSeq); err != nil {
			t.Fatal(err)
		}
		if want := seqOf[tenant+"/call.ended/0/call-2/"]; cdrSeq != want || want == 0 {
			t.Errorf("%s CDR number %d, want its call.ended's %d", tenant, cdrSeq, want)
		}
	}
}
