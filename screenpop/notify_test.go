package screenpop_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/screenpop"
)

func TestNotifyReachesTheAgentAndFollowersOnly(t *testing.T) {
	f := newFixture(t)
	a1, a3, lead := f.users["acme/a1"], f.users["acme/a3"], f.users["acme/lead"]
	c1, c3, cl := f.connect(t, a1, 0), f.connect(t, a3, 0), f.connect(t, lead, 0)
	other := f.connect(t, f.users["beta/a1"], 0)
	waitConns(t, f, 4)
	f.hub.Notify(context.Background(), "acme", a1.ID, screenpop.TypeWorkAssigned, map[string]any{"id": 7})
	for _, c := range []*client{c1, cl} {
		m := c.nextOf(screenpop.TypeWorkAssigned)
		if data(m)["id"] != float64(7) || m.Seq != 0 {
			t.Fatalf("notice = %+v", m)
		}
	}
	// a3 (another team) and the other tenant's a1 get nothing: a later notice of their own
	// is the first thing they see.
	f.hub.Notify(context.Background(), "acme", a3.ID, screenpop.TypeWorkAssigned, map[string]any{"id": 8})
	f.hub.Notify(context.Background(), "beta", f.users["beta/a1"].ID, screenpop.TypeWorkAssigned, map[string]any{"id": 9})
	if m := c3.nextOf(screenpop.TypeWorkAssigned); data(m)["id"] != float64(8) {
		t.Fatalf("a3 got %v", m.Data)
	}
	if m := other.nextOf(screenpop.TypeWorkAssigned); data(m)["id"] != float64(9) {
		t.Fatalf("beta/a1 got %v", m.Data)
	}
}

// waitConns waits until the hub has n consoles registered (they register after resume).
func waitConns(t *testing.T, f *fixture, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if f.hub.Consoles() >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d consoles connected, want %d", f.hub.Consoles(), n)
}

func TestPopCarriesOpenWorkOrdersAndMappedDraft(t *testing.T) {
	var mu sync.Mutex
	var asked []int64
	// The fixture's running hub is the one that builds the pop when the call is offered.
	f := newFixture(t, func(o *screenpop.Options) {
		o.WorkOrders = func(_ context.Context, _ *account.Tenant, object string, recordID int64, record map[string]any) ([]any, map[string]any, error) {
			mu.Lock()
			asked = append(asked, recordID)
			mu.Unlock()
			return []any{map[string]any{"id": 1, "subject": "open one"}},
				map[string]any{"customer_name": "not this", "subject": "About " + record["name"].(string), "call_id": "not this"}, nil
		}
	})
	id := f.customer(t, "acme", "Li Lei", "13900002222")
	hub := f.hub
	f.append(t, cti.Event{Tenant: "acme", Type: cti.CallOffered, CallID: "wo-call", Queue: "sales",
		Data: map[string]string{"caller": "13900002222", "did": "4001", "direction": "inbound"}})
	p, err := hub.Builder().Get(context.Background(), f.tenants["acme"], "wo-call")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Built once, whether the hub (on the offer) or Get came first.
	if len(asked) != 1 || asked[0] != id || len(p.OpenWorkOrders) != 1 {
		t.Fatalf("asked %v, open work orders %v", asked, p.OpenWorkOrders)
	}
	if p.Draft["subject"] != "About Li Lei" || p.Draft["customer_name"] != "Li Lei" || p.Draft["call_id"] != "wo-call" {
		t.Fatalf("draft = %v", p.Draft)
	}
}
