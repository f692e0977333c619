package cti

import (
	"testing"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
)

func TestCDRWrittenWithCallEndedIntoMonthPartition(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	l, _ := runningLog(t, pool)
	ctx := ctxT(t)
	now := time.Now().UTC()
	if err := EnsurePartitions(ctx, pool, "acme", now); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePartitions(ctx, pool, "acme", now); err != nil { // idempotent
		t.Fatalf("second EnsurePartitions: %v", err)
	}
	offered := now.Add(-time.Minute).Truncate(time.Millisecond)
	cdr := &CDR{CallID: "call-1", OfferedAt: offered, Direction: Inbound, CallerRaw: "013800138000",
		CallerE164: "+8613800138000", DID: "+862155550000", Queue: "sales", AgentID: 42, AgentExtension: "1001",
		QueuedAt: offered, RingingAt: offered.Add(5 * time.Second), AnsweredAt: offered.Add(10 * time.Second),
		EndedAt: offered.Add(40 * time.Second), Result: Answered, HangupBy: HangupCaller, SIPCause: 200,
		SIPCallIDs: []string{"a@trunk", "b@ctid"}}
	ev, err := l.Append(ctx, Event{Tenant: "acme", Type: CallEnded, CallID: "call-1", CDR: cdr})
	if err != nil {
		t.Fatal(err)
	}
	got, err := CDRByCallID(ctx, pool, "acme", "call-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.AgentID != 42 || got.Result != Answered || !got.AnsweredAt.Equal(cdr.AnsweredAt) || len(got.SIPCallIDs) != 2 {
		t.Fatalf("CDR read back = %+v", got)
	}
	var part string
	var wait, talk float64
	var seq int64
	if err := pool.QueryRow(ctx, `SELECT tableoid::regclass::text, wait_seconds, talk_seconds, seq FROM t_acme.cdrs WHERE call_id = 'call-1'`).
		Scan(&part, &wait, &talk, &seq); err != nil {
		t.Fatal(err)
	}
	if want := "t_acme.cdrs_" + offered.Format("200601"); part != want {
		t.Errorf("CDR in partition %s, want %s", part, want)
	}
	if wait != 10 || talk != 30 || seq != ev.Seq {
		t.Errorf("wait %v talk %v seq %d, want 10, 30, %d", wait, talk, seq, ev.Seq)
	}
	// Months ahead exist; a CDR of a month without its partition still lands (default partition).
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 't_acme.cdrs'::regclass`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1+partitionsAhead+1 {
		t.Errorf("cdrs has %d partitions, want default + %d months", n, partitionsAhead+1)
	}
	old := *cdr
	old.CallID, old.OfferedAt, old.QueuedAt, old.RingingAt, old.AnsweredAt, old.EndedAt = "call-old",
		offered.AddDate(-2, 0, 0), time.Time{}, time.Time{}, time.Time{}, offered.AddDate(-2, 0, 0).Add(time.Second)
	old.Result = Abandoned
	if _, err := l.Append(ctx, Event{Tenant: "acme", Type: CallEnded, CallID: "call-old", CDR: &old}); err != nil {
		t.Fatalf("CDR of a month without partition: %v", err)
	}
	if _, err := CDRByCallID(ctx, pool, "acme", "nosuch"); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("missing CDR: %v", err)
	}
}
