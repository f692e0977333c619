package cti

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/fault"
)

// A queue still routed to (by a number, or as another queue's overflow) is refused with
// the references named, and nothing changes; once they are gone it is deleted with its
// members and rules, and the audit entry is written in the same transaction.
func TestDeleteQueueRefusedWhileReferenced(t *testing.T) {
	pool := sipTenantFixture(t)
	ctx := ctxT(t)
	u := mustAgent(t, pool, "acme", "alice", "1001", "alice-pass")
	for _, q := range []Queue{{Name: "sales", CallerPriorities: []CallerPriority{{Caller: "+86138*", Priority: 3}}},
		{Name: "support", Overflow: "queue:sales"}, {Name: "vip", Overflow: "queue:sales"}} {
		if err := SaveQueue(ctx, pool, "acme", q); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetQueueMember(ctx, pool, "acme", "sales", u.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := SaveDID(ctx, pool, "acme", DID{Number: "+862150001234", Queue: "sales"}); err != nil {
		t.Fatal(err)
	}
	audited := 0
	audit := AuditFunc(func(context.Context, pgx.Tx) error { audited++; return nil })
	err := DeleteQueue(ctx, pool, "acme", "sales", audit)
	if fault.CodeOf(err) != fault.Conflict {
		t.Fatalf("delete a queue in use: %v, want conflict", err)
	}
	for _, want := range []string{"+862150001234", "support", "vip"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %s", err, want)
		}
	}
	if refs, err := QueueReferences(ctx, pool, "acme", "sales"); err != nil || len(refs.Numbers) != 1 || len(refs.OverflowOf) != 2 {
		t.Fatalf("references = %+v, %v", refs, err)
	}
	if _, members, err := loadQueue(ctx, pool, "acme", "sales"); err != nil || len(members) != 1 || audited != 0 {
		t.Fatalf("after the refusal: members %v, %v, %d audit entries; want the queue unchanged and no entry", members, err, audited)
	}
	// An audit that fails undoes the delete.
	if err := DeleteDID(ctx, pool, "acme", "+862150001234", func(context.Context, pgx.Tx) error { return fault.Errorf(fault.Invalid, "no") }); err == nil {
		t.Fatal("delete with a failing audit succeeded")
	}
	if _, err := didByNumber(ctx, pool, "acme", "+862150001234"); err != nil {
		t.Fatalf("number after a failed audit: %v", err)
	}
	if err := DeleteDID(ctx, pool, "acme", "+862150001234", audit); err != nil {
		t.Fatal(err)
	}
	if err := DeleteDID(ctx, pool, "acme", "+862150001234", audit); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("delete a gone number: %v, want not found", err)
	}
	for _, q := range []string{"support", "vip"} {
		if err := SaveQueue(ctx, pool, "acme", Queue{Name: q}); err != nil {
			t.Fatal(err)
		}
	}
	if err := DeleteQueue(ctx, pool, "acme", "sales", audit); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadQueue(ctx, pool, "acme", "sales"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("deleted queue loads: %v", err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM t_acme.queue_members WHERE queue = 'sales') +
		(SELECT count(*) FROM t_acme.queue_caller_priorities WHERE queue = 'sales')`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("members and rules left: %d, %v", left, err)
	}
	if err := DeleteQueue(ctx, pool, "acme", "sales", audit); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("delete a gone queue: %v", err)
	}
	if audited != 2 {
		t.Fatalf("%d audit entries, want 2 (number, queue)", audited)
	}
}

// Deleting a number or a trunk through the running Service takes effect on the next call
// (no cache keeps it): the number gets 404, the trunk's source 403.
func TestDeletedNumberAndTrunkTakeEffectAtOnce(t *testing.T) {
	f := newCallFixture(t, Queue{}, false)
	if _, err := f.s.didByNumber(f.ctx, "acme", testDID); err != nil { // cached now
		t.Fatal(err)
	}
	if _, err := f.s.trunkBySource(f.ctx, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteDID(f.ctx, "acme", testDID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.didByNumber(f.ctx, "acme", testDID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("deleted number: %v, want not found at once", err)
	}
	if err := f.s.DeleteTrunk(f.ctx, "acme", "carrier", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.trunkBySource(f.ctx, netip.MustParseAddr("127.0.0.1")); fault.CodeOf(err) != fault.Forbidden {
		t.Fatalf("deleted trunk: %v, want forbidden at once", err)
	}
	if err := f.s.DeleteTrunk(f.ctx, "acme", "carrier", nil); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("delete a gone trunk: %v", err)
	}
}

// A new SIP domain is the realm at once; the change reports the credentials made for the
// old one, which no longer authenticate.
func TestChangeSIPDomain(t *testing.T) {
	pool := sipTenantFixture(t)
	mustAgent(t, pool, "acme", "dave", "1004", "first-password")
	s := startService(t, pool, Config{})
	c := newClient(t)
	if res := register(t, c, registerReq(t, s, "1004", "", "<sip:1004@127.0.0.1:5980>"), "1004", "first-password"); res.StatusCode != 200 {
		t.Fatalf("register = %d", res.StatusCode)
	}
	for _, bad := range []string{"not a host", "-x.test", "a..b", ""} {
		if _, err := s.ChangeSIPDomain(ctxT(t), "acme", bad, nil); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("domain %q: %v, want invalid", bad, err)
		}
	}
	ch, err := s.ChangeSIPDomain(ctxT(t), "acme", " SIP.Acme.Example ", nil)
	if err != nil || ch.Old != testDomain || ch.New != "sip.acme.example" || ch.Agents != 1 || ch.Trunks != 0 {
		t.Fatalf("change = %+v, %v", ch, err)
	}
	if d, err := s.SIPDomain(ctxT(t), "acme"); err != nil || d != "sip.acme.example" {
		t.Fatalf("domain = %q, %v", d, err)
	}
	// The old domain is nobody's at once: REGISTER there gets 404.
	if res := register(t, c, registerReq(t, s, "1004", "", "<sip:1004@127.0.0.1:5980>"), "1004", "first-password"); res.StatusCode != 404 {
		t.Fatalf("register at the old domain = %d, want 404", res.StatusCode)
	}
	// The binding made before stays: calls still reach the phone until it expires.
	if bs := s.reg.contacts("acme", "1004"); len(bs) != 1 {
		t.Fatalf("bindings after the change = %v, want the phone's one", bs)
	}
}
