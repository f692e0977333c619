package query_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/query"
)

// Bench sizes; CTIDTEST_QUERY_CDRS sets the number of CDRs (default 10,000,000) to iterate
// at a smaller size.
const (
	benchAgents     = 200
	benchQueues     = 10
	benchRuns       = 30
	benchExportRows = 1_000_000
	benchLoadChunk  = 1_000_000
	benchAgentBase  = 1001
	benchTeamSize   = 20
	benchQuietTeam  = 99   // a team with no calls
	benchQuietBase  = 9001 // its agents' ids
)

// BenchmarkQueryStatistics (make bench-query): 12 months of CDRs of 200 agents, generated in
// the database and loaded month-partitioned, with the daily rollups they give; then agent
// statistics for one month and for 12 months (p95, from the rollups), the call-history first
// page with a date range and an agent filter (p95), and a CSV export of 1,000,000 rows.
func BenchmarkQueryStatistics(b *testing.B) {
	n := 10_000_000
	if s := os.Getenv("CTIDTEST_QUERY_CDRS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 10_000 {
			b.Fatalf("CTIDTEST_QUERY_CDRS=%q: want a number ≥ 10000", s)
		}
		n = v
	}
	ctx := context.Background()
	pool, dbURL := dbtest.NewDatabase(b)
	readers, err := db.NewReaders(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(readers.Close)
	accounts := account.NewStore(pool, account.LoginLimits{}, 0)
	tn, err := accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme", TimeZone: "Asia/Shanghai"}, account.CLI)
	if err != nil {
		b.Fatal(err)
	}
	admin, err := accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: "admin", Password: "correct horse 1",
		Roles: []string{"admin"}}, account.CLI)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	from := now.AddDate(-1, 0, 0)
	start := time.Now()
	loadCDRs(b, pool, tn, from, now, n)
	load := time.Since(start)
	start = time.Now()
	loadRollups(b, pool, tn, n)
	rollups := time.Since(start)
	// Vacuum and analyze what was just loaded, as autovacuum would before real use: otherwise
	// its run lands among the measured queries (and the visibility map is empty, so no
	// index-only scans).
	start = time.Now()
	schema := pgx.Identifier{tn.Scope().Schema}.Sanitize()
	var tables []string
	for _, t := range []string{"cdrs", "agent_rollup_day", "queue_rollup_day", "agent_rollup_month", "queue_rollup_month"} {
		tables = append(tables, schema+"."+pgx.Identifier{t}.Sanitize())
	}
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(tables, ", ")); err != nil {
		b.Fatalf("vacuum: %v", err)
	}
	fmt.Printf("bench-query load: %d CDRs in %s, daily rollups in %s, VACUUM (ANALYZE) in %s\n", n, load.Round(time.Second),
		rollups.Round(time.Second), time.Since(start).Round(time.Second))

	svc := query.New(pool, readers, nil, prometheus.NewRegistry())
	people := []query.Person{{ID: admin.ID, Name: "admin"}}
	for i := range benchAgents {
		people = append(people, query.Person{ID: int64(benchAgentBase + i), Name: fmt.Sprintf("agent %d", i), Agent: true, TeamID: int64(1 + i/benchTeamSize)})
	}
	// A new team whose agents took no calls yet: the worst case of reading a page by time.
	for i := range benchTeamSize {
		people = append(people, query.Person{ID: int64(benchQuietBase + i), Name: fmt.Sprintf("new agent %d", i), Agent: true, TeamID: benchQuietTeam})
	}
	env := func() *query.Env {
		return &query.Env{Now: now, Loc: tn.Location(), Viewer: query.ViewerOf(admin), People: people}
	}
	p95 := func(name string, def *query.Definition, vals url.Values, wantRows int) time.Duration {
		var ds []time.Duration
		for range benchRuns {
			t0 := time.Now()
			res, err := svc.Run(ctx, tn, env(), def, query.Request{Values: vals})
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			ds = append(ds, time.Since(t0))
			if len(res.Rows) < wantRows {
				b.Fatalf("%s: %d rows, want at least %d", name, len(res.Rows), wantRows)
			}
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[(len(ds)*95+99)/100-1]
	}
	cond := fmt.Sprintf("%d CDRs over 12 months, %d agents, %d runs", n, benchAgents, benchRuns)
	agents := query.Template("agent_statistics")
	d := p95("agent statistics one month", agents, url.Values{"period": {"last_month"}}, benchAgents)
	fmt.Printf("agent statistics 1 month p95: %.1f ms (%s, monthly + daily rollups)\n", ms(d), cond)
	d = p95("agent statistics 12 months", agents, url.Values{"period": {"last_365_days"}}, benchAgents)
	fmt.Printf("agent statistics 12 months p95: %.1f ms (%s, monthly + daily rollups)\n", ms(d), cond)
	d = p95("queue statistics 12 months", query.Template("queue_statistics"), url.Values{"period": {"last_365_days"}}, benchQueues)
	fmt.Printf("queue statistics 12 months p95: %.1f ms (%s, monthly + daily rollups)\n", ms(d), cond)
	history := query.Template("call_history")
	if os.Getenv("CTIDTEST_QUERY_EXPLAIN") != "" {
		out, err := svc.Explain(ctx, tn, env(), history, query.Request{Values: url.Values{"period": {"last_month"}, "agent": {strconv.Itoa(benchAgentBase + 7)}}})
		fmt.Println("EXPLAIN:", out, err)
	}
	d = p95("call history", history, url.Values{"period": {"last_month"}, "agent": {strconv.Itoa(benchAgentBase + 7)}}, 50)
	fmt.Printf("call history first page p95: %.1f ms (%s; last month, one agent, 50 rows and totals)\n", ms(d), cond)
	// A team filter: the agents of team 3 (query.Env.People: 20 agents a team).
	team := url.Values{"period": {"last_month"}, "team": {"3"}}
	if os.Getenv("CTIDTEST_QUERY_EXPLAIN") != "" {
		explainAnalyze(b, svc, pool, tn, env(), history, team)
	}
	d = p95("call history team", history, team, 50)
	fmt.Printf("call history first page, team of %d agents p95: %.1f ms (%s; last month, 50 rows and totals)\n", benchTeamSize, ms(d), cond)
	quiet := url.Values{"period": {"last_month"}, "team": {strconv.Itoa(benchQuietTeam)}}
	if os.Getenv("CTIDTEST_QUERY_EXPLAIN") != "" {
		explainAnalyze(b, svc, pool, tn, env(), history, quiet)
	}
	d = p95("call history quiet team", history, quiet, 0)
	fmt.Printf("call history first page, team of %d agents with no calls p95: %.1f ms (%s; last month, 0 rows and totals)\n", benchTeamSize, ms(d), cond)

	// Export: a period that holds about 1,000,000 calls.
	days := min(365, int(365*float64(benchExportRows)/float64(n))+1)
	vals := url.Values{"period": {"custom"}, "period_from": {now.AddDate(0, 0, -days).In(tn.Location()).Format("2006-01-02")},
		"period_to": {now.In(tn.Location()).Format("2006-01-02")}}
	var peak atomic.Uint64
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t0 := time.Now()
	rows, err := svc.Export(ctx, tn, env(), history, query.Request{Values: vals}, query.ExportCSV, "en", io.Discard, nil)
	el := time.Since(t0)
	close(stop)
	<-sampled
	if err != nil {
		b.Fatalf("export: %v", err)
	}
	fmt.Printf("call history CSV export: %.0f rows/s (%d rows in %.1f s, %s)\n", float64(rows)/el.Seconds(), rows, el.Seconds(), cond)
	fmt.Printf("call history CSV export peak heap: %.1f MB (in use; %.1f MB before, %d rows)\n",
		float64(peak.Load())/(1<<20), float64(base.HeapInuse)/(1<<20), rows)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// loadCDRs generates n CDRs spread evenly over [from, to) in the database (generate_series,
// a million rows a statement) into the monthly partitions cti creates; the event counter says
// they are the call.ended events 1..n. Every tenth call is outbound; of the inbound ones a
// tenth are abandoned with no agent, a tenth not answered, the rest answered.
func loadCDRs(b *testing.B, pool *pgxpool.Pool, tn *account.Tenant, from, to time.Time, n int) {
	ctx := context.Background()
	for m := from.AddDate(0, -1, 0); m.Before(to); m = m.AddDate(0, 1, 0) {
		if err := cti.EnsurePartitions(ctx, pool, tn.Code, m); err != nil {
			b.Fatal(err)
		}
	}
	step := to.Sub(from).Microseconds() / int64(n)
	for lo := 1; lo <= n; lo += benchLoadChunk {
		hi := min(n, lo+benchLoadChunk-1)
		err := db.InTenant(ctx, pool, tn.Scope(), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `
INSERT INTO cdrs (call_id, offered_at, direction, caller_raw, caller_e164, did, queue, agent_id, agent_extension,
                  queued_at, ringing_at, answered_at, ended_at, wait_seconds, talk_seconds, result, hangup_by, sip_cause, seq)
SELECT 'bench-' || g, t, dir, e164, e164, CASE WHEN dir = 'inbound' THEN '+862150001000' ELSE '' END,
       CASE WHEN dir = 'inbound' THEN 'q' || ((g / 3) % $5) ELSE '' END,
       CASE WHEN res = 'abandoned' THEN NULL ELSE $4 + (g / 7) % $6 END,
       CASE WHEN res = 'abandoned' THEN '' ELSE (1000 + (g / 7) % $6)::text END,
       CASE WHEN dir = 'inbound' THEN t END,
       CASE WHEN res <> 'abandoned' THEN t + make_interval(secs => w / 2) END,
       CASE WHEN res = 'answered' THEN t + make_interval(secs => w) END,
       t + make_interval(secs => w + CASE WHEN res = 'answered' THEN talk ELSE 0 END),
       w, CASE WHEN res = 'answered' THEN talk ELSE 0 END, res,
       CASE WHEN res = 'abandoned' THEN 'caller' WHEN res = 'answered' THEN 'agent' ELSE 'system' END,
       CASE WHEN res = 'answered' THEN 200 ELSE 487 END, g
FROM (SELECT g, $1::timestamptz + make_interval(secs => (g * $3::bigint) / 1e6) AS t,
             CASE WHEN g % 10 = 0 THEN 'outbound' ELSE 'inbound' END AS dir,
             CASE WHEN g % 10 = 0 THEN 'answered' WHEN g % 10 = 1 THEN 'abandoned' WHEN g % 10 = 2 THEN 'no_answer' ELSE 'answered' END AS res,
             '+86139' || lpad((g % 100000000)::text, 8, '0') AS e164,
             ((g * 7919) % 60000) / 1000.0 AS w, ((g * 104729) % 600000) / 1000.0 AS talk
      FROM generate_series($2::bigint, $7::bigint) AS g) s`, from, lo, step, benchAgentBase, benchQueues, benchAgents, hi)
			return err
		})
		if err != nil {
			b.Fatalf("load CDRs %d–%d: %v", lo, hi, err)
		}
	}
	err := db.InTenant(ctx, pool, tn.Scope(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE event_counter SET last_seq = $1`, n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ANALYZE cdrs`)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// loadRollups writes the daily rollups of the loaded CDRs as the worker keeps them (the call
// counters of query.AgentGrain and query.QueueGrain in SQL), with a working day of state time
// per agent and day (8 h logged in, 30 min break, 60 min lunch rows), and moves the rollup
// cursor past the CDRs' events.
func loadRollups(b *testing.B, pool *pgxpool.Pool, tn *account.Tenant, n int) {
	ctx := context.Background()
	err := db.InTenant(ctx, pool, tn.Scope(), func(tx pgx.Tx) error {
		for _, stmt := range []string{`
INSERT INTO agent_rollup_day (bucket, agent_id, reason, offered, answered, missed, abandoned_ringing, outbound, handled,
                              talk_seconds, wrap_count, wrap_seconds, login_seconds, ready_seconds, not_ready_seconds, busy_seconds)
SELECT date_trunc('day', offered_at, $1), agent_id, '',
       count(*) FILTER (WHERE direction = 'inbound'),
       count(*) FILTER (WHERE direction = 'inbound' AND result = 'answered'),
       count(*) FILTER (WHERE direction = 'inbound' AND result IN ('no_answer', 'timeout', 'busy', 'rejected')),
       count(*) FILTER (WHERE result = 'abandoned' AND ringing_at IS NOT NULL),
       count(*) FILTER (WHERE direction = 'outbound'),
       count(*) FILTER (WHERE result = 'answered'),
       coalesce(sum(talk_seconds) FILTER (WHERE result = 'answered'), 0),
       count(*) FILTER (WHERE result = 'answered'), 15 * count(*) FILTER (WHERE result = 'answered'),
       28800 - 5400, 9000, 0, 28800 - 5400 - 9000
FROM cdrs WHERE agent_id IS NOT NULL GROUP BY 1, 2`, `
INSERT INTO agent_rollup_day (bucket, agent_id, reason, login_seconds, not_ready_seconds)
SELECT d.bucket, d.agent_id, r.reason, r.seconds, r.seconds
FROM agent_rollup_day d CROSS JOIN (VALUES ('break', 1800), ('lunch', 3600)) AS r(reason, seconds)`, `
INSERT INTO queue_rollup_day (bucket, queue, offered, answered, abandoned, short_abandoned, answered_in_sl, wait_seconds, wait_max, talk_seconds)
SELECT date_trunc('day', offered_at, $1), queue, count(*),
       count(*) FILTER (WHERE result = 'answered'), count(*) FILTER (WHERE result = 'abandoned'),
       count(*) FILTER (WHERE result = 'abandoned' AND wait_seconds <= 5),
       count(*) FILTER (WHERE result = 'answered' AND wait_seconds <= 20),
       sum(wait_seconds), max(wait_seconds), coalesce(sum(talk_seconds) FILTER (WHERE result = 'answered'), 0)
FROM cdrs WHERE direction = 'inbound' AND queue <> '' GROUP BY 1, 2`, `
INSERT INTO agent_rollup_month (bucket, agent_id, reason, offered, answered, missed, abandoned_ringing, outbound, handled,
                                talk_seconds, wrap_count, wrap_seconds, login_seconds, ready_seconds, not_ready_seconds, busy_seconds)
SELECT date_trunc('month', bucket, $1), agent_id, reason, sum(offered), sum(answered), sum(missed), sum(abandoned_ringing),
       sum(outbound), sum(handled), sum(talk_seconds), sum(wrap_count), sum(wrap_seconds), sum(login_seconds), sum(ready_seconds),
       sum(not_ready_seconds), sum(busy_seconds)
FROM agent_rollup_day GROUP BY 1, 2, 3`, `
INSERT INTO queue_rollup_month (bucket, queue, offered, answered, abandoned, short_abandoned, answered_in_sl, wait_seconds, wait_max,
                                talk_seconds, wrap_seconds)
SELECT date_trunc('month', bucket, $1), queue, sum(offered), sum(answered), sum(abandoned), sum(short_abandoned), sum(answered_in_sl),
       sum(wait_seconds), max(wait_max), sum(talk_seconds), sum(wrap_seconds)
FROM queue_rollup_day GROUP BY 1, 2`,
		} {
			var args []any
			if strings.Contains(stmt, "$1") {
				args = append(args, tn.TimeZone)
			}
			if _, err := tx.Exec(ctx, stmt, args...); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE rollup_cursor SET last_seq = $1, time_zone = $2`, n, tn.TimeZone); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ANALYZE agent_rollup_day; ANALYZE queue_rollup_day; ANALYZE agent_rollup_month; ANALYZE queue_rollup_month`)
		return err
	})
	if err != nil {
		b.Fatalf("load rollups: %v", err)
	}
}

// explainAnalyze prints how PostgreSQL runs the page and the totals of def (EXPLAIN ANALYZE,
// as the tenant's owner: the plans are the reader's).
func explainAnalyze(b *testing.B, svc *query.Service, pool *pgxpool.Pool, tn *account.Tenant, env *query.Env, def *query.Definition, vals url.Values) {
	ctx := context.Background()
	cat, err := svc.Catalogue(ctx, tn)
	if err != nil {
		b.Fatal(err)
	}
	p, err := query.Compile(def, cat, env, query.Request{Values: vals})
	if err != nil {
		b.Fatal(err)
	}
	// The same page as PostgreSQL reads it without the per-agent form: a catalogue in which
	// no index starts with the owner field.
	var plain []*query.Table
	for _, tb := range cat.Tables() {
		c := &query.Table{Name: tb.Name, Key: tb.Key}
		for _, f := range tb.Fields {
			f.Indexed = false
			c.Fields = append(c.Fields, f)
		}
		plain = append(plain, c)
	}
	pp, err := query.Compile(def, query.NewCatalogue(plain...), env, query.Request{Values: vals})
	if err != nil {
		b.Fatal(err)
	}
	err = db.InTenant(ctx, pool, tn.Scope(), func(tx pgx.Tx) error {
		for _, q := range []struct {
			name, sql string
			args      []any
		}{{"page", p.SQL, p.Args}, {"totals", p.SummarySQL, p.SummaryArgs}, {"page without the per-agent form", pp.SQL, pp.Args}} {
			rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+q.sql, q.args...)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			fmt.Printf("EXPLAIN ANALYZE %s %s (%s):\n%s\n", def.Key, q.name, vals.Encode(), strings.Join(lines, "\n"))
		}
		return nil
	})
	if err != nil {
		b.Fatalf("explain: %v", err)
	}
}
