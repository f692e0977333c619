package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/query"
)

// statsFixture is the query fixture with a running event log of package cti: the rollups
// follow what it writes.
type statsFixture struct {
	*fixture
	log *cti.EventLog
	n   int
}

func newStatsFixture(t *testing.T) *statsFixture {
	t.Helper()
	f := newFixture(t)
	svc, err := cti.New(cti.Config{}, f.pool, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	go svc.Events().Run(ctx)
	t.Cleanup(func() { stop(); svc.Events().Wait() })
	for _, q := range []cti.Queue{{Name: "sales", ServiceLevel: 20 * time.Second}, {Name: "support", ServiceLevel: 10 * time.Second}} {
		if err := cti.SaveQueue(context.Background(), f.pool, "acme", q); err != nil {
			t.Fatal(err)
		}
	}
	return &statsFixture{fixture: f, log: svc.Events()}
}

func (f *statsFixture) append(t *testing.T, ev cti.Event) {
	t.Helper()
	ev.Tenant = "acme"
	if _, err := f.log.Append(context.Background(), ev); err != nil {
		t.Fatalf("append %s: %v", ev.Type, err)
	}
}

// state logs agent's move to state at.
func (f *statsFixture) state(t *testing.T, agent *account.User, at time.Time, from, to cti.AgentState, reason string) {
	t.Helper()
	f.stateOfCall(t, agent, at, from, to, reason, "")
}

// stateOfCall is state with the call the move belongs to (Wrap-up after a call).
func (f *statsFixture) stateOfCall(t *testing.T, agent *account.User, at time.Time, from, to cti.AgentState, reason, callID string) {
	t.Helper()
	f.append(t, cti.Event{At: at, Type: cti.AgentStateSet, AgentID: agent.ID, CallID: callID,
		State: &cti.StateChange{From: from, To: to, Reason: reason, Actor: "agent"}})
}

// call logs a finished call offered at off: wait then talk seconds (talk 0: not answered).
func (f *statsFixture) call(t *testing.T, off time.Time, dir cti.Direction, queue string, agent *account.User, result cti.Result, rang bool, wait, talk float64) {
	t.Helper()
	f.n++
	id := fmt.Sprintf("call-%d", f.n)
	sec := func(s float64) time.Time { return off.Add(time.Duration(s * float64(time.Second))) }
	c := &cti.CDR{CallID: id, OfferedAt: off, Direction: dir, Queue: queue, Result: result, EndedAt: sec(wait + talk)}
	if agent != nil {
		c.AgentID = agent.ID
	}
	if rang {
		c.RingingAt = sec(wait / 2)
	}
	if result == cti.Answered {
		c.AnsweredAt = sec(wait)
	}
	f.append(t, cti.Event{At: c.EndedAt, Type: cti.CallEnded, CallID: id, Queue: queue, AgentID: c.AgentID, CDR: c})
}

func (f *statsFixture) run(t *testing.T, key string, now time.Time, vals url.Values) *query.Result {
	t.Helper()
	env := f.env(f.admin)
	env.Now = now
	res, err := f.svc.Run(context.Background(), f.acme, env, query.Template(key), query.Request{Values: vals})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return res
}

// row finds the result row whose first column is first, as column key → value.
func row(t *testing.T, res *query.Result, first any) map[string]any {
	t.Helper()
	for _, r := range res.Rows {
		if r[0] == first {
			m := map[string]any{}
			for i, c := range res.Columns {
				m[c.Key] = r[i]
			}
			return m
		}
	}
	t.Fatalf("no row %v in %v", first, res.Rows)
	return nil
}

func expect(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s %s = %v, want %v", what, k, g, w)
		}
	}
}

// day is one morning of agent a1 and the calls of both agents, with timings known to the
// second (2024-03-01 in Asia/Shanghai; docs/metrics.md explains each number).
func (f *statsFixture) day(t *testing.T, base time.Time) {
	at := func(hms string) time.Time {
		d, err := time.ParseDuration(hms)
		if err != nil {
			t.Fatal(err)
		}
		return base.Add(d)
	}
	a1, a2 := f.a1, f.a2
	f.state(t, a1, at("0s"), cti.LoggedOut, cti.Ready, "")
	f.call(t, at("9m57s"), cti.Inbound, "sales", a1, cti.Answered, true, 8, 120)
	f.state(t, a1, at("10m"), cti.Ready, cti.Ringing, "")
	f.state(t, a1, at("10m5s"), cti.Ringing, cti.OnCall, "")
	f.stateOfCall(t, a1, at("12m5s"), cti.OnCall, cti.WrapUp, "", "call-1")
	f.state(t, a1, at("12m35s"), cti.WrapUp, cti.Ready, "")
	f.state(t, a1, at("20m"), cti.Ready, cti.NotReady, "break")
	f.state(t, a1, at("35m"), cti.NotReady, cti.Ready, "") // across the 09:30 quarter
	f.call(t, at("39m45s"), cti.Inbound, "sales", a1, cti.Answered, true, 25, 60)
	f.state(t, a1, at("40m"), cti.Ready, cti.Ringing, "")
	f.state(t, a1, at("40m10s"), cti.Ringing, cti.OnCall, "")
	f.stateOfCall(t, a1, at("41m10s"), cti.OnCall, cti.WrapUp, "", "call-2")
	f.state(t, a1, at("41m20s"), cti.WrapUp, cti.Ready, "")
	f.call(t, at("45m"), cti.Outbound, "", a1, cti.Answered, false, 0, 30)
	f.call(t, at("46m"), cti.Inbound, "sales", a1, cti.Abandoned, true, 12, 0)    // abandoned while a1 rang
	f.call(t, at("47m"), cti.Inbound, "sales", nil, cti.Abandoned, false, 3, 0)   // a short abandon
	f.call(t, at("48m"), cti.Inbound, "support", a2, cti.Answered, true, 15, 100) // over support's 10 s
	f.call(t, at("49m"), cti.Inbound, "sales", a2, cti.NoAnswer, true, 30, 0)     // missed by a2
	f.state(t, a1, at("50m"), cti.Ready, cti.NotReady, "lunch")
	f.state(t, a1, at("55m"), cti.NotReady, cti.LoggedOut, "")
}

// The metrics of the agent and queue statistics templates, computed by hand from known
// timings (the figures below are the arithmetic of the comments in day()).
func TestStatisticsByHand(t *testing.T) {
	f := newStatsFixture(t)
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, f.acme.Location())
	f.day(t, base)
	now := base.Add(time.Hour)

	res := f.run(t, "agent_statistics", now, nil)
	// a1: ready 600+445+300+520 = 1865 s; not ready 900 (break) + 300 (lunch); busy: ringing
	// 5+10, on call 120+60, wrap-up 30+10 = 235; login 09:00–09:55 = 3300.
	expect(t, "a1", row(t, res, f.a1.ID), map[string]any{
		"offered": 3, "answered": 2, "missed": 0, "abandoned": 1, "outbound": 1,
		"talk_total": 210.0, "talk_avg": 70.0, "wrap_avg": 20.0, "handle_total": 250.0, "handle_avg": 250.0 / 3,
		"login": 3300.0, "ready": 1865.0, "not_ready": 1200.0, "nr_break": 900.0, "nr_lunch": 300.0, "nr_other": 0.0,
		"occupancy": 235.0 / 2100, "answer_rate": 2.0 / 3,
	})
	// a2: no state changes logged; one call answered, one missed.
	expect(t, "a2", row(t, res, f.a2.ID), map[string]any{
		"offered": 2, "answered": 1, "missed": 1, "talk_avg": 100.0, "handle_avg": 100.0, "wrap_avg": nil,
		"login": 0.0, "occupancy": nil, "answer_rate": 0.5,
	})
	expect(t, "agent totals", res.Totals, map[string]any{"offered": 5, "answered": 3, "handle_total": 350.0, "handle_avg": 350.0 / 4})

	res = f.run(t, "queue_statistics", now, nil)
	// sales: c1 (8 s, answered), c2 (25 s, answered), c4 (12 s, abandoned), c5 (3 s, short
	// abandon), c7 (30 s, no answer): SL 20 s → 1 of 5; abandon rate (2−1) ÷ (5−1). Handle:
	// talk 120+60 + a1's wrap-ups after c1 and c2, 30+10, ÷ 2 answered.
	expect(t, "sales", row(t, res, "sales"), map[string]any{
		"offered": 5, "answered": 2, "abandoned": 2, "short_abandoned": 1, "answered_in_sl": 1,
		"wait_avg": 15.6, "wait_max": 30.0, "talk_avg": 90.0, "service_level": 0.2, "abandon_rate": 0.25,
		"handle_avg": 110.0,
	})
	// support: its own threshold is 10 s, the one call waited 15 s.
	expect(t, "support", row(t, res, "support"), map[string]any{
		"offered": 1, "answered": 1, "answered_in_sl": 0, "service_level": 0.0, "abandon_rate": 0.0, "wait_avg": 15.0,
		"handle_avg": 100.0, // a2 logged no wrap-up
	})
	if res.Total != 2 {
		t.Errorf("queue rows = %d, want 2 (the outbound call has no queue)", res.Total)
	}
	expect(t, "queue totals", res.Totals, map[string]any{"offered": 6, "service_level": 1.0 / 6, "abandon_rate": 0.2})

	// Yesterday has nothing; the agent picker narrows to a1.
	if res := f.run(t, "agent_statistics", now, url.Values{"period": {"yesterday"}}); res.Total != 0 {
		t.Errorf("yesterday: %d rows", res.Total)
	}
	if res := f.run(t, "agent_statistics", now, url.Values{"agent": {fmt.Sprint(f.a1.ID)}}); res.Total != 1 {
		t.Errorf("agent a1: %d rows", res.Total)
	}
}

// dump is every rollup row of the tenant, as text, in a fixed order.
func (f *statsFixture) dump(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := db.InTenant(context.Background(), f.pool, f.acme.Scope(), func(tx pgx.Tx) error {
		for _, table := range []string{"agent_rollup_15m", "agent_rollup_day", "queue_rollup_15m", "queue_rollup_day", "rollup_agents", "rollup_cursor"} {
			rows, err := tx.Query(context.Background(), "SELECT r::text FROM "+table+" r ORDER BY 1")
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s:\n%s\n", table, strings.Join(lines, "\n"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Applying the log a little at a time (the worker following it) gives the rollups a rebuild
// from the whole log gives.
func TestRollupIncrementalEqualsRebuild(t *testing.T) {
	f := newStatsFixture(t)
	ctx := context.Background()
	r := f.svc.Rollups()
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, f.acme.Location())
	// Catch up after every few events: the batches split the day's transitions anywhere.
	f.state(t, f.a1, base, cti.LoggedOut, cti.Ready, "")
	if _, err := r.CatchUp(ctx, f.acme, 0); err != nil {
		t.Fatal(err)
	}
	f.day(t, base.Add(time.Minute)) // a1 logs in again: from ready to ready
	if _, err := r.CatchUp(ctx, f.acme, 1); err != nil {
		t.Fatal(err)
	}
	f.state(t, f.a2, base.Add(2*time.Hour), cti.LoggedOut, cti.NotReady, "meeting")
	f.call(t, base.Add(3*time.Hour), cti.Inbound, "support", f.a2, cti.Answered, true, 2, 7.5)
	if _, err := r.CatchUp(ctx, f.acme, 0); err != nil {
		t.Fatal(err)
	}
	incremental := f.dump(t)
	if err := r.Rebuild(ctx, f.acme); err != nil {
		t.Fatal(err)
	}
	rebuilt := f.dump(t)
	// rebuilt_at differs: the cursor rows are compared without it.
	strip := func(s string) string { return s[:strings.Index(s, "rollup_cursor:")] }
	if strip(incremental) != strip(rebuilt) {
		t.Errorf("incremental rollups differ from a rebuild:\n%s\nrebuilt:\n%s", incremental, rebuilt)
	}
	if !strings.Contains(incremental, "agent_rollup_day:\n(") || !strings.Contains(incremental, "rollup_agents:\n(") {
		t.Errorf("the rollups are empty:\n%s", incremental)
	}
}

// A worker that dies in the middle of a batch (its transaction rolls back) and restarts
// counts every event once.
func TestRollupCrashDoesNotDoubleCount(t *testing.T) {
	f := newStatsFixture(t)
	ctx := context.Background()
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, f.acme.Location())
	f.day(t, base)
	r := f.svc.Rollups()
	crash := errors.New("power cut")
	query.SetBeforeCommit(r, func(context.Context) error { return crash })
	if _, err := r.CatchUp(ctx, f.acme, 0); !errors.Is(err, crash) {
		t.Fatalf("catch-up with a crash before commit: %v", err)
	}
	if d := f.dump(t); !strings.Contains(d, "agent_rollup_day:\n\n") {
		t.Fatalf("a rolled-back batch left rows:\n%s", d)
	}
	// A new worker (the restarted process) takes over from the cursor.
	query.SetBeforeCommit(r, nil)
	restarted := query.NewRollups(f.pool, nil, nil)
	if n, err := restarted.CatchUp(ctx, f.acme, 0); err != nil || n == 0 {
		t.Fatalf("restarted catch-up: %d events, %v", n, err)
	}
	if n, err := restarted.CatchUp(ctx, f.acme, 0); err != nil || n != 0 {
		t.Fatalf("second catch-up: %d events, %v; want nothing left", n, err)
	}
	res := f.run(t, "agent_statistics", base.Add(time.Hour), nil)
	expect(t, "a1 after the restart", row(t, res, f.a1.ID), map[string]any{"offered": 3, "login": 3300.0, "wrap_avg": 20.0})
}

// Periods across a month boundary: calls and a ready interval that spans midnight of
// 29 February 2024 (Asia/Shanghai), the CDRs in two monthly partitions.
func TestStatisticsAcrossMonthBoundary(t *testing.T) {
	f := newStatsFixture(t)
	ctx := context.Background()
	loc := f.acme.Location()
	if err := cti.EnsurePartitions(ctx, f.pool, "acme", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	midnight := time.Date(2024, 3, 1, 0, 0, 0, 0, loc)
	f.state(t, f.a1, midnight.Add(-time.Hour), cti.LoggedOut, cti.Ready, "")
	f.call(t, midnight.Add(-10*time.Minute), cti.Inbound, "sales", f.a1, cti.Answered, true, 4, 100)
	f.call(t, midnight.Add(10*time.Minute), cti.Inbound, "sales", f.a1, cti.Answered, true, 30, 50)
	f.state(t, f.a1, midnight.Add(90*time.Minute), cti.Ready, cti.LoggedOut, "")

	mid := time.Date(2024, 3, 15, 12, 0, 0, 0, loc)
	for _, tt := range []struct {
		name         string
		vals         url.Values
		offered      int
		login, talk  float64
		serviceLevel any
	}{
		{"last month", url.Values{"period": {"last_month"}}, 1, 3600, 100, 1.0},
		{"this month", url.Values{"period": {"this_month"}}, 1, 5400, 50, 0.0},
		{"custom across", url.Values{"period": {"custom"}, "period_from": {"2024-02-29"}, "period_to": {"2024-03-01"}}, 2, 9000, 150, 0.5},
	} {
		res := f.run(t, "agent_statistics", mid, tt.vals)
		expect(t, tt.name, row(t, res, f.a1.ID), map[string]any{"offered": tt.offered, "login": tt.login, "talk_total": tt.talk})
		res = f.run(t, "queue_statistics", mid, tt.vals)
		expect(t, tt.name, row(t, res, "sales"), map[string]any{"offered": tt.offered, "service_level": tt.serviceLevel})
	}
}

// The still-open interval counts up to now: an agent ready for ten minutes with no change
// since has ten minutes of ready time (and login time) in today's statistics.
func TestStatisticsIncludeOpenInterval(t *testing.T) {
	f := newStatsFixture(t)
	since := time.Now().Add(-10 * time.Minute)
	f.state(t, f.a1, since, cti.LoggedOut, cti.Ready, "")
	f.state(t, f.a2, since, cti.LoggedOut, cti.NotReady, "training")
	before := time.Now()
	res := f.run(t, "agent_statistics", time.Now(), url.Values{"period": {"last_2_days"}})
	elapsed := time.Since(before).Seconds()
	for _, c := range []struct {
		agent *account.User
		key   string
	}{{f.a1, "ready"}, {f.a2, "nr_training"}} {
		r := row(t, res, c.agent.ID)
		v, _ := r[c.key].(float64)
		login, _ := r["login"].(float64)
		if v < 600 || v > 600+elapsed+1 || login != v {
			t.Errorf("agent %d: %s %v login %v, want about 600 s (the open interval up to now)", c.agent.ID, c.key, v, login)
		}
	}
}

// An export of a statistics template catches the rollups up first, as a page run does: the
// events just logged are in the file without a run or the worker before it.
func TestStatisticsExportCatchesUp(t *testing.T) {
	f := newStatsFixture(t)
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, f.acme.Location())
	f.day(t, base)
	env := f.env(f.admin)
	env.Now = base.Add(time.Hour)
	var buf bytes.Buffer
	if _, err := f.svc.Export(context.Background(), f.acme, env, query.Template("queue_statistics"), query.Request{}, query.ExportCSV, "en", &buf, nil); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	offered := slices.Index(recs[0], "Offered")
	var got []string
	for _, r := range recs[1:] {
		got = append(got, r[0]+"="+r[offered])
	}
	if want := []string{"sales=5", "support=1"}; !slices.Equal(got[:min(len(got), 2)], want) {
		t.Errorf("exported offered %v, want %v first (rows %v)", got, want, recs)
	}
}

// A period of whole past months and partial months at its edges reads month rows for the
// former and day rows for the latter: each day counted once (three days of day(): Feb 29,
// which starts a partial February, Mar 1 in a whole March, Apr 30 ending a partial April).
func TestStatisticsAcrossMonthsReadEachDayOnce(t *testing.T) {
	f := newStatsFixture(t)
	loc := f.acme.Location()
	for _, d := range []time.Time{
		time.Date(2024, 2, 29, 9, 0, 0, 0, loc), time.Date(2024, 3, 1, 9, 0, 0, 0, loc), time.Date(2024, 4, 30, 9, 0, 0, 0, loc),
	} {
		f.day(t, d)
	}
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, loc)
	for _, tt := range []struct {
		from, to string
		days     int
	}{
		{"2024-02-29", "2024-04-30", 3}, // Feb 29 by day, March by month, April by day
		{"2024-02-01", "2024-04-30", 3}, // February and March by month
		{"2024-03-01", "2024-03-31", 1}, // March by month
		{"2024-03-02", "2024-04-29", 0},
		{"2024-02-29", "2024-03-01", 2}, // two partial months
	} {
		vals := url.Values{"period_from": {tt.from}, "period_to": {tt.to}}
		res := f.run(t, "agent_statistics", now, vals)
		n := float64(tt.days)
		what := fmt.Sprintf("a1 %s–%s", tt.from, tt.to)
		if tt.days == 0 {
			if len(res.Rows) != 0 {
				t.Errorf("%s: rows %v, want none", what, res.Rows)
			}
			continue
		}
		expect(t, what, row(t, res, f.a1.ID), map[string]any{
			"offered": 3 * tt.days, "answered": 2 * tt.days, "talk_total": 210 * n, "handle_total": 250 * n,
			"wrap_avg": 20.0, "login": 3300 * n, "nr_break": 900 * n,
		})
		res = f.run(t, "queue_statistics", now, vals)
		expect(t, "sales "+what, row(t, res, "sales"), map[string]any{"offered": 5 * tt.days, "wait_max": 30.0, "handle_avg": 110.0})
	}
	var months int
	err := db.InTenant(context.Background(), f.pool, f.acme.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT count(DISTINCT bucket) FROM agent_rollup_month`).Scan(&months)
	})
	if err != nil || months != 3 {
		t.Errorf("month buckets %d (%v), want 3", months, err)
	}
}
