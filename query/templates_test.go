package query_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/query"
)

// The standard templates against real cdrs rows (package cti's table), with numbers
// computed by hand; agent and queue statistics read them through the rollups.
func TestStandardTemplatesOnCDRs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := f.now.Add(-time.Hour) // today in Shanghai
	type cdr struct {
		id, dir, queue, result string
		agent                  int64
		wait, talk             float64
		rang                   bool
	}
	a1, a2 := f.a1.ID, f.a2.ID
	rows := []cdr{
		{"c1", "inbound", "sales", "answered", a1, 5, 100, true},
		{"c2", "inbound", "sales", "answered", a1, 30, 200, true},
		{"c3", "inbound", "sales", "abandoned", a1, 12, 0, true},
		{"c4", "inbound", "sales", "no_answer", a2, 25, 0, true},
		{"c5", "inbound", "support", "answered", a2, 10, 60, true},
		{"c6", "inbound", "support", "abandoned", 0, 40, 0, false},
		{"c7", "outbound", "", "answered", a1, 0, 30, false},
	}
	err := db.InTenant(ctx, f.pool, f.acme.Scope(), func(tx pgx.Tx) error {
		for i, c := range rows {
			var agent *int64
			if c.agent != 0 {
				agent = &c.agent
			}
			var ringing *time.Time
			if c.rang {
				ringing = &at
			}
			_, err := tx.Exec(ctx, `INSERT INTO cdrs (call_id, offered_at, direction, queue, agent_id, ringing_at, ended_at,
				wait_seconds, talk_seconds, result, seq) VALUES ($1, $2, $3, $4, $5, $6, $2, $7, $8, $9, $10)`,
				c.id, at, c.dir, c.queue, agent, ringing, c.wait, c.talk, c.result, i+1)
			if err != nil {
				return err
			}
		}
		// The CDRs are those of call.ended events 1–7: the statistics rollups follow the event
		// log up to its counter.
		_, err := tx.Exec(ctx, `UPDATE event_counter SET last_seq = $1`, len(rows))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(key string, vals url.Values) *query.Result {
		res, err := f.svc.Run(ctx, f.acme, f.env(f.admin), query.Template(key), query.Request{Values: vals})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return res
	}
	col := func(res *query.Result, row int, key string) any {
		for i, c := range res.Columns {
			if c.Key == key {
				return res.Rows[row][i]
			}
		}
		t.Fatalf("no column %s", key)
		return nil
	}

	if res := run("call_history", nil); res.Total != 7 || res.Totals["talk"] != 390.0 {
		t.Errorf("call history today: total %d talk %v, want 7 and 390", res.Total, res.Totals["talk"])
	}
	if res := run("call_history", url.Values{"period": {"yesterday"}}); res.Total != 0 {
		t.Errorf("call history yesterday: %d rows", res.Total)
	}

	res := run("agent_statistics", nil)
	// Rows ordered by agent id: a1, a2. The call no agent was offered (c6) is not an agent's.
	want := []map[string]any{
		{"agent": a1, "offered": int64(3), "answered": int64(2), "missed": int64(0), "abandoned": int64(1), "outbound": int64(1),
			"talk_total": 330.0, "talk_avg": 110.0, "answer_rate": 2.0 / 3},
		{"agent": a2, "offered": int64(2), "answered": int64(1), "missed": int64(1), "abandoned": int64(0), "outbound": int64(0),
			"talk_total": 60.0, "talk_avg": 60.0, "answer_rate": 0.5},
	}
	for i, w := range want {
		for k, v := range w {
			if got := col(res, i, k); got != v {
				t.Errorf("agent statistics row %d %s = %v, want %v", i, k, got, v)
			}
		}
	}
	if res.Total != 2 || res.Totals["offered"] != int64(5) || res.Totals["answer_rate"] != 0.6 {
		t.Errorf("agent totals = %v", res.Totals)
	}

	res = run("queue_statistics", nil) // inbound by default
	// sales: offered 4, answered 2 (one within 20 s), abandoned 1, waits 5, 30, 12, 25.
	for k, v := range map[string]any{"queue": "sales", "offered": int64(4), "answered": int64(2), "abandoned": int64(1),
		"wait_avg": 18.0, "wait_max": 30.0, "service_level": 0.25, "abandon_rate": 0.25} {
		if got := col(res, 0, k); got != v {
			t.Errorf("queue sales %s = %v, want %v", k, got, v)
		}
	}
	if res.Total != 2 || res.Totals["offered"] != int64(6) || res.Totals["abandon_rate"] != 2.0/6 {
		t.Errorf("queue totals: %d %v", res.Total, res.Totals)
	}
}
