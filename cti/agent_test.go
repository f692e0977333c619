package cti

import (
	"testing"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/fault"
)

func TestTransitionTable(t *testing.T) {
	for _, tc := range []struct {
		from, to AgentState
		who      string
		want     fault.Code // "" allowed
	}{
		{LoggedOut, Ready, ByAgent, ""},
		{LoggedOut, Reserved, BySystem, fault.Conflict},
		{Ready, NotReady, ByAgent, ""},
		{NotReady, Ready, ByAgent, ""},
		{Ready, Reserved, BySystem, ""},
		{Ready, Reserved, ByAgent, fault.Forbidden},
		{Reserved, Ringing, BySystem, ""},
		{Ringing, OnCall, BySystem, ""},
		{Ringing, OnCall, ByAgent, fault.Forbidden},
		{Ringing, NotReady, BySystem, ""}, // missed-call rule
		{OnCall, WrapUp, BySystem, ""},
		{OnCall, NotReady, ByAgent, fault.Conflict}, // finish the call first
		{OnCall, LoggedOut, BySupervisor, fault.Conflict},
		{WrapUp, Ready, ByAgent, ""},
		{WrapUp, Ready, BySystem, ""}, // wrap-up time over
		{NotReady, NotReady, ByAgent, ""},
		{Ready, LoggedOut, BySupervisor, ""},
	} {
		err := CheckTransition(tc.from, tc.to, tc.who)
		if got := fault.Code(""); err != nil {
			got = fault.CodeOf(err)
			if got != tc.want {
				t.Errorf("%s → %s by %s: %v, want %q", tc.from, tc.to, tc.who, err, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%s → %s by %s allowed, want %s", tc.from, tc.to, tc.who, tc.want)
		}
	}
}

func TestAgentStatesAreLoggedAndSurviveRestart(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	l, m := runningLog(t, pool)
	ctx := ctxT(t)
	agents := NewAgents(pool, l, m)
	const id = 42
	steps := []Change{
		{To: Ready, Who: ByAgent},
		{To: NotReady, Who: ByAgent, Reason: "lunch"},
		{To: Ready, Who: ByAgent},
		{To: Reserved, Who: BySystem, CallID: "call-1", From: Ready},
		{To: Ringing, Who: BySystem, CallID: "call-1"},
		{To: OnCall, Who: BySystem, CallID: "call-1"},
		{To: WrapUp, Who: BySystem, CallID: "call-1"},
		{To: Ready, Who: BySupervisor, Actor: "user:7"},
	}
	for _, c := range steps {
		if _, err := agents.Set(ctx, "acme", id, c); err != nil {
			t.Fatalf("set %s: %v", c.To, err)
		}
	}
	// Refused changes leave the state alone and log nothing.
	for _, tc := range []struct {
		c    Change
		want fault.Code
	}{
		{Change{To: NotReady, Who: ByAgent}, fault.Invalid},                   // no reason
		{Change{To: NotReady, Who: ByAgent, Reason: "nap"}, fault.Invalid},    // unknown reason
		{Change{To: NotReady, Who: ByAgent, Reason: "missed"}, fault.Invalid}, // system reason
		{Change{To: OnCall, Who: ByAgent}, fault.Forbidden},                   // only signalling does that
		{Change{To: Reserved, Who: BySystem, From: NotReady}, fault.Conflict}, // stale view of the ACD
		{Change{To: WrapUp, Who: BySystem}, fault.Conflict},                   // not from Ready
	} {
		if _, err := agents.Set(ctx, "acme", id, tc.c); fault.CodeOf(err) != tc.want {
			t.Errorf("%+v: %v, want %s", tc.c, err, tc.want)
		}
	}
	log, err := StateLog(ctx, pool, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != len(steps) {
		t.Fatalf("state log has %d rows, want %d: %+v", len(log), len(steps), log)
	}
	if log[1].From != Ready || log[1].To != NotReady || log[1].Reason != "lunch" || log[1].Actor != ByAgent {
		t.Errorf("logged not-ready = %+v", log[1])
	}
	if log[4].CallID != "call-1" || log[7].Actor != "user:7" {
		t.Errorf("log lost call id or actor: %+v %+v", log[4], log[7])
	}
	for i := 1; i < len(log); i++ {
		if log[i].From != log[i-1].To || log[i].Seq <= log[i-1].Seq || log[i].At.Before(log[i-1].At) {
			t.Fatalf("log rows %d,%d do not chain: %+v %+v", i-1, i, log[i-1], log[i])
		}
	}
	// A new process reads the state back.
	again := NewAgents(pool, l, m)
	st, err := again.Status(ctx, "acme", id)
	if err != nil || st.State != Ready {
		t.Fatalf("status after restart = %+v, %v", st, err)
	}
	other, err := again.Status(ctx, "acme", 43)
	if err != nil || other.State != LoggedOut {
		t.Fatalf("unknown agent = %+v, %v; want logged out", other, err)
	}
}

func TestAgentsLeftInCallsAreFreedAtStart(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	store := account.NewStore(pool, account.LoginLimits{}, 0)
	mustTenant(t, store, "acme")
	l, m := runningLog(t, pool)
	ctx := ctxT(t)
	agents := NewAgents(pool, l, m)
	for _, c := range []Change{{To: Ready, Who: ByAgent}, {To: Reserved, Who: BySystem}, {To: Ringing, Who: BySystem}, {To: OnCall, Who: BySystem}} {
		if _, err := agents.Set(ctx, "acme", 7, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := agents.Set(ctx, "acme", 8, Change{To: NotReady, Who: ByAgent, Reason: "lunch"}); err != nil {
		t.Fatal(err)
	}
	// A new process (the old one crashed mid-call).
	again := NewAgents(pool, l, m)
	if err := again.recover(ctx, "acme", true, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if st, _ := again.Status(ctx, "acme", 7); st.State != Ready || st.Reason != "restart" {
		t.Errorf("agent left on a call = %+v, want ready (restart)", st)
	}
	if st, _ := again.Status(ctx, "acme", 8); st.State != NotReady || st.Reason != "lunch" {
		t.Errorf("agent not ready = %+v, want untouched", st)
	}
}
