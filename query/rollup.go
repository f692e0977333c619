package query

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
)

// Rollup limits and pace.
const (
	// rollupBatch is how many events one rollup transaction applies at most.
	rollupBatch = 5_000
	// catchUpBatches bounds the catch-up a report run does before reading rollups; a longer
	// backlog (after an outage) is left to the worker, and the run reads what is there.
	catchUpBatches = 20
	// RollupEvery is how often the worker catches every tenant's rollups up.
	RollupEvery = 5 * time.Second
	bucket15    = 15 * time.Minute
)

// rollupSources are the tables that read rollups: a run of a query on one catches the rollups
// up first, so its numbers include every event committed before it.
var rollupSources = map[string]bool{"agent_stats": true, "queue_stats": true,
	"agent_stats_day": true, "agent_stats_15m": true, "queue_stats_day": true, "queue_stats_15m": true}

// Rollups keeps each tenant's statistics rollups (migration 0310_stats_rollup.sql) current
// from its event log: the CDRs of call.ended events and the agent_state_log rows, both found
// by the event's seq, are applied in seq order through the counters of AgentGrain and
// QueueGrain. rollup_cursor.last_seq, updated in the same transaction as the rollup rows, is
// how far it got: a crash loses nothing and counts nothing twice.
type Rollups struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	m    *rollupMetrics
	// beforeCommit, when set (tests), runs just before a batch commits; an error aborts it.
	beforeCommit func(ctx context.Context) error
}

type rollupMetrics struct {
	events  prometheus.Counter
	errors  prometheus.Counter
	seconds prometheus.Histogram
}

func newRollupMetrics(reg prometheus.Registerer) *rollupMetrics {
	m := &rollupMetrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ctid_query_rollup_events_total", Help: "Events applied to the statistics rollups.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ctid_query_rollup_errors_total", Help: "Rollup catch-ups that failed (retried on the next round).",
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ctid_query_rollup_batch_seconds", Help: "Time to apply one batch of events to the rollups.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.errors, m.seconds)
	}
	return m
}

// NewRollups builds the rollup worker on the owner pool.
func NewRollups(pool *pgxpool.Pool, logger *slog.Logger, reg prometheus.Registerer) *Rollups {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Rollups{pool: pool, log: logger.With("component", "query.rollup"), m: newRollupMetrics(reg)}
}

// Run catches every tenant's rollups up every RollupEvery until ctx ends.
func (r *Rollups) Run(ctx context.Context, tenants func(context.Context) ([]*account.Tenant, error)) {
	tick := time.NewTicker(RollupEvery)
	defer tick.Stop()
	for {
		ts, err := tenants(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("list tenants for rollups", "err", err)
		}
		for _, t := range ts {
			if _, err := r.CatchUp(ctx, t, 0); err != nil && ctx.Err() == nil {
				r.m.errors.Inc()
				r.log.Error("statistics rollup", "tenant", t.Code, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// CatchUp applies tenant t's events that the rollups have not seen, in batches of its own
// transaction each, at most maxBatches of them (0: until caught up). It returns the events
// applied.
func (r *Rollups) CatchUp(ctx context.Context, t *account.Tenant, maxBatches int) (int64, error) {
	var total int64
	for i := 0; maxBatches == 0 || i < maxBatches; i++ {
		var n int64
		err := db.InTenant(ctx, r.pool, t.Scope(), func(tx pgx.Tx) error {
			var err error
			n, err = r.applyBatch(ctx, tx, t)
			if err != nil || n == 0 {
				return err
			}
			if r.beforeCommit != nil {
				return r.beforeCommit(ctx)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("roll up events of tenant %s: %w", t.Code, err)
		}
		r.m.events.Add(float64(n))
		total += n
		if n == 0 {
			break
		}
	}
	return total, nil
}

// Rebuild recomputes tenant t's rollups from its whole event log, in one transaction (the
// reports read the old rollups until it commits), cutting day buckets in the tenant's
// current time zone.
func (r *Rollups) Rebuild(ctx context.Context, t *account.Tenant) error {
	err := db.InTenant(ctx, r.pool, t.Scope(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM rollup_cursor FOR UPDATE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `TRUNCATE agent_rollup_15m, agent_rollup_day, agent_rollup_month, queue_rollup_15m, queue_rollup_day, queue_rollup_month, rollup_agents`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE rollup_cursor SET last_seq = 0, time_zone = $1, rebuilt_at = now()`, t.Location().String()); err != nil {
			return err
		}
		for {
			n, err := r.applyBatch(ctx, tx, t)
			if err != nil {
				return err
			}
			r.m.events.Add(float64(n))
			if n == 0 {
				return nil
			}
		}
	})
	if err != nil {
		return fmt.Errorf("rebuild rollups of tenant %s: %w", t.Code, err)
	}
	return nil
}

// openState is an agent's state interval not yet closed by a transition.
type openState struct {
	state, reason, callID string
	since                 time.Time
}

// rowReason is the rollup row an interval of state goes to: not-ready time is kept per reason.
func rowReason(state, reason string) string {
	if state == "not_ready" {
		return reason
	}
	return ""
}

type rollupKey struct {
	bucket time.Time
	id     int64  // agent
	name   string // queue
	reason string
}

// rollupBatch accumulates one batch's increments per grain table.
type rollupBatchRows struct {
	agent15, agentDay, queue15, queueDay map[rollupKey]Tally
}

func (b *rollupBatchRows) tally(m map[rollupKey]Tally, k rollupKey) Tally {
	k.bucket = k.bucket.UTC()
	t := m[k]
	if t == nil {
		t = Tally{}
		m[k] = t
	}
	return t
}

// applyBatch applies the next batch of events inside tx (search_path set) and moves the
// cursor; it returns how many events it covered (0: caught up).
func (r *Rollups) applyBatch(ctx context.Context, tx pgx.Tx, t *account.Tenant) (int64, error) {
	start := time.Now()
	var last, upto int64
	var zone string
	err := tx.QueryRow(ctx, `SELECT c.last_seq, c.time_zone, e.last_seq FROM rollup_cursor c, event_counter e FOR UPDATE OF c`).Scan(&last, &zone, &upto)
	if err != nil {
		return 0, fmt.Errorf("read rollup cursor: %w", err)
	}
	if zone == "" {
		zone = t.Location().String()
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return 0, fmt.Errorf("rollup time zone %q: %w", zone, err)
	}
	upto = min(upto, last+rollupBatch)
	if upto <= last {
		return 0, nil
	}
	rows := &rollupBatchRows{agent15: map[rollupKey]Tally{}, agentDay: map[rollupKey]Tally{},
		queue15: map[rollupKey]Tally{}, queueDay: map[rollupKey]Tally{}}
	if err := r.addCalls(ctx, tx, rows, last, upto, loc); err != nil {
		return 0, err
	}
	opened, err := r.addStates(ctx, tx, rows, last, upto, loc)
	if err != nil {
		return 0, err
	}
	agentMonth, queueMonth := byMonth(AgentGrain, rows.agentDay, loc), byMonth(QueueGrain, rows.queueDay, loc)
	for _, w := range []struct {
		table string
		grain *Grain
		rows  map[rollupKey]Tally
	}{
		{"agent_rollup_15m", AgentGrain, rows.agent15}, {"agent_rollup_day", AgentGrain, rows.agentDay},
		{"agent_rollup_month", AgentGrain, agentMonth},
		{"queue_rollup_15m", QueueGrain, rows.queue15}, {"queue_rollup_day", QueueGrain, rows.queueDay},
		{"queue_rollup_month", QueueGrain, queueMonth},
	} {
		if err := upsertRollup(ctx, tx, w.table, w.grain, w.rows); err != nil {
			return 0, err
		}
	}
	if err := saveOpen(ctx, tx, opened); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE rollup_cursor SET last_seq = $1, time_zone = $2`, upto, zone); err != nil {
		return 0, fmt.Errorf("move rollup cursor: %w", err)
	}
	r.m.seconds.Observe(time.Since(start).Seconds())
	return upto - last, nil
}

// byMonth folds a batch's day increments into month increments (months of loc).
func byMonth(g *Grain, days map[rollupKey]Tally, loc *time.Location) map[rollupKey]Tally {
	out := map[rollupKey]Tally{}
	for k, t := range days {
		y, m, _ := k.bucket.In(loc).Date()
		k.bucket = time.Date(y, m, 1, 0, 0, 0, 0, loc).UTC()
		dst := out[k]
		if dst == nil {
			dst = Tally{}
			out[k] = dst
		}
		g.merge(dst, t)
	}
	return out
}

// addCalls adds the CDRs of the batch's call.ended events.
func (r *Rollups) addCalls(ctx context.Context, tx pgx.Tx, rows *rollupBatchRows, last, upto int64, loc *time.Location) error {
	sl := map[string]time.Duration{}
	qrows, err := tx.Query(ctx, `SELECT name, service_level_s FROM queues`)
	if err != nil {
		return fmt.Errorf("read queue thresholds: %w", err)
	}
	for qrows.Next() {
		var name string
		var s int
		if err := qrows.Scan(&name, &s); err != nil {
			qrows.Close()
			return err
		}
		sl[name] = time.Duration(s) * time.Second
	}
	if err := qrows.Err(); err != nil {
		return fmt.Errorf("read queue thresholds: %w", err)
	}
	crows, err := tx.Query(ctx, `SELECT direction, result, queue, coalesce(agent_id, 0), offered_at, ringing_at IS NOT NULL,
		queued_at IS NOT NULL, answered_at IS NOT NULL, (wait_seconds * 1000)::bigint, (talk_seconds * 1000)::bigint
		FROM cdrs WHERE seq > $1 AND seq <= $2`, last, upto)
	if err != nil {
		return fmt.Errorf("read CDRs for rollups: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		var c CallFacts
		var waitMs, talkMs int64
		if err := crows.Scan(&c.Direction, &c.Result, &c.Queue, &c.AgentID, &c.OfferedAt, &c.Ringing, &c.Queued, &c.Answered, &waitMs, &talkMs); err != nil {
			return fmt.Errorf("read CDRs for rollups: %w", err)
		}
		c.Wait, c.Talk = time.Duration(waitMs)*time.Millisecond, time.Duration(talkMs)*time.Millisecond
		q15, qDay := c.OfferedAt.Truncate(bucket15), midnight(c.OfferedAt, loc)
		one := Tally{}
		if AgentGrain.AddCall(one, c, Thresholds{}) {
			AgentGrain.merge(rows.tally(rows.agent15, rollupKey{bucket: q15, id: c.AgentID}), one)
			AgentGrain.merge(rows.tally(rows.agentDay, rollupKey{bucket: qDay, id: c.AgentID}), one)
		}
		one = Tally{}
		if QueueGrain.AddCall(one, c, Thresholds{ServiceLevel: sl[c.Queue]}) {
			QueueGrain.merge(rows.tally(rows.queue15, rollupKey{bucket: q15, name: c.Queue}), one)
			QueueGrain.merge(rows.tally(rows.queueDay, rollupKey{bucket: qDay, name: c.Queue}), one)
		}
	}
	if err := crows.Err(); err != nil {
		return fmt.Errorf("read CDRs for rollups: %w", err)
	}
	return nil
}

// addStates closes the open interval of each agent with a transition in the batch, split by
// bucket, and returns the agents' new open intervals. A wrap-up interval also counts for the
// queue of the call it began with (QueueGrain's wrap-up time).
func (r *Rollups) addStates(ctx context.Context, tx pgx.Tx, rows *rollupBatchRows, last, upto int64, loc *time.Location) (map[int64]openState, error) {
	type transition struct {
		agent                 int64
		at                    time.Time
		state, reason, callID string
	}
	srows, err := tx.Query(ctx, `SELECT agent_id, at, to_state, reason, call_id FROM agent_state_log WHERE seq > $1 AND seq <= $2 ORDER BY seq`, last, upto)
	if err != nil {
		return nil, fmt.Errorf("read agent states for rollups: %w", err)
	}
	trs, err := pgx.CollectRows(srows, func(row pgx.CollectableRow) (transition, error) {
		var tr transition
		err := row.Scan(&tr.agent, &tr.at, &tr.state, &tr.reason, &tr.callID)
		return tr, err
	})
	if err != nil {
		return nil, fmt.Errorf("read agent states for rollups: %w", err)
	}
	open := map[int64]openState{}
	if len(trs) == 0 {
		return open, nil
	}
	var ids []int64
	for _, tr := range trs {
		ids = append(ids, tr.agent)
	}
	orows, err := tx.Query(ctx, `SELECT agent_id, state, reason, call_id, since FROM rollup_agents WHERE agent_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read open agent states: %w", err)
	}
	for orows.Next() {
		var id int64
		var o openState
		if err := orows.Scan(&id, &o.state, &o.reason, &o.callID, &o.since); err != nil {
			orows.Close()
			return nil, err
		}
		open[id] = o
	}
	if err := orows.Err(); err != nil {
		return nil, fmt.Errorf("read open agent states: %w", err)
	}
	// The intervals the batch closes, then the queues of the calls wrapped up in them.
	type closed struct {
		agent   int64
		o       openState
		until   time.Time
		counted bool // the interval has a length (time never runs back)
	}
	var done []closed
	var wrapCalls []string
	for _, tr := range trs {
		if o, ok := open[tr.agent]; ok {
			done = append(done, closed{agent: tr.agent, o: o, until: tr.at, counted: tr.at.After(o.since)})
			if o.state == "wrap_up" && o.callID != "" {
				wrapCalls = append(wrapCalls, o.callID)
			}
		}
		since := tr.at
		if o, ok := open[tr.agent]; ok && !tr.at.After(o.since) {
			since = o.since // a transition stamped before the last one: time never runs back
		}
		open[tr.agent] = openState{state: tr.state, reason: tr.reason, callID: tr.callID, since: since}
	}
	queueOf, err := queuesOfCalls(ctx, tx, wrapCalls)
	if err != nil {
		return nil, err
	}
	for _, c := range done {
		// Only states that feed a counter make rows (hours logged out make none).
		timed, ends := AgentGrain.Feeds(c.o.state)
		if c.counted && timed {
			reason := rowReason(c.o.state, c.o.reason)
			queue, forQueue := queueOf[c.o.callID]
			forQueue = forQueue && c.o.state == "wrap_up"
			splitBuckets(c.o.since, c.until, loc, func(b15 bool, bucket time.Time, d time.Duration) {
				am, qm := rows.agentDay, rows.queueDay
				if b15 {
					am, qm = rows.agent15, rows.queue15
				}
				AgentGrain.AddState(rows.tally(am, rollupKey{bucket: bucket, id: c.agent, reason: reason}), c.o.state, d)
				if forQueue {
					QueueGrain.AddState(rows.tally(qm, rollupKey{bucket: bucket, name: queue}), c.o.state, d)
				}
			})
		}
		if ends {
			AgentGrain.LeaveState(rows.tally(rows.agent15, rollupKey{bucket: c.until.Truncate(bucket15), id: c.agent}), c.o.state)
			AgentGrain.LeaveState(rows.tally(rows.agentDay, rollupKey{bucket: midnight(c.until, loc), id: c.agent}), c.o.state)
		}
	}
	return open, nil
}

// queuesOfCalls maps the calls (by call id) that count for QueueGrain to their queue.
func queuesOfCalls(ctx context.Context, tx pgx.Tx, calls []string) (map[string]string, error) {
	out := map[string]string{}
	if len(calls) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT call_id, queue FROM cdrs WHERE call_id = ANY($1) AND direction = 'inbound' AND queue <> ''`, calls)
	if err != nil {
		return nil, fmt.Errorf("read the queues of wrapped-up calls: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, queue string
		if err := rows.Scan(&id, &queue); err != nil {
			return nil, fmt.Errorf("read the queues of wrapped-up calls: %w", err)
		}
		out[id] = queue
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the queues of wrapped-up calls: %w", err)
	}
	return out, nil
}

// splitBuckets calls fn for each 15-minute and each day bucket that [from, to) overlaps,
// with the time of the overlap.
func splitBuckets(from, to time.Time, loc *time.Location, fn func(b15 bool, bucket time.Time, d time.Duration)) {
	for b := from.Truncate(bucket15); b.Before(to); b = b.Add(bucket15) {
		fn(true, b, minTime(to, b.Add(bucket15)).Sub(maxTime(from, b)))
	}
	for day := midnight(from, loc); day.Before(to); day = addDays(day, 1) {
		fn(false, day, minTime(to, addDays(day, 1)).Sub(maxTime(from, day)))
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// merge adds src into dst: sums add, maxima take the larger.
func (g *Grain) merge(dst, src Tally) {
	for _, k := range g.Counters {
		v, ok := src[k.Key]
		if !ok {
			continue
		}
		if k.Agg == AggMax {
			dst[k.Key] = max(dst[k.Key], v)
		} else {
			dst[k.Key] += v
		}
	}
}

// upsertRollup adds the batch's increments to table, one statement (arrays unnested). The
// column names are the grain's counter keys, constants of this package.
func upsertRollup(ctx context.Context, tx pgx.Tx, table string, g *Grain, rows map[rollupKey]Tally) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	buckets := make([]time.Time, 0, n)
	ids := make([]int64, 0, n)
	names := make([]string, 0, n)
	reasons := make([]string, 0, n)
	vals := make([][]int64, len(g.Counters))
	for k, t := range rows {
		buckets, ids, names, reasons = append(buckets, k.bucket), append(ids, k.id), append(names, k.name), append(reasons, k.reason)
		for i, c := range g.Counters {
			vals[i] = append(vals[i], t[c.Key])
		}
	}
	var cols, exprs, sets, unnest []string
	args := []any{buckets}
	unnest = append(unnest, "$1::timestamptz[]")
	var conflict string
	if g == AgentGrain {
		cols = []string{"bucket", "agent_id", "reason"}
		exprs = []string{"u.b", "u.id", "u.reason"}
		args = append(args, ids, reasons)
		unnest = append(unnest, "$2::bigint[]", "$3::text[]")
		conflict = "agent_id, bucket, reason"
	} else {
		cols = []string{"bucket", "queue"}
		exprs = []string{"u.b", "u.name"}
		args = append(args, names)
		unnest = append(unnest, "$2::text[]")
		conflict = "queue, bucket"
	}
	alias := []string{"b"}
	if g == AgentGrain {
		alias = append(alias, "id", "reason")
	} else {
		alias = append(alias, "name")
	}
	for i, c := range g.Counters {
		col := qi(c.Key)
		v := "v" + strconv.Itoa(i)
		args = append(args, vals[i])
		unnest = append(unnest, "$"+strconv.Itoa(len(args))+"::bigint[]")
		alias = append(alias, v)
		cols = append(cols, col)
		if c.Unit == UnitCount {
			exprs = append(exprs, "(u."+v+" / 1000000)::int")
		} else {
			exprs = append(exprs, "u."+v+"::numeric / 1000000")
		}
		if c.Agg == AggMax {
			sets = append(sets, col+" = greatest(r."+col+", excluded."+col+")")
		} else {
			sets = append(sets, col+" = r."+col+" + excluded."+col)
		}
	}
	sql := "INSERT INTO " + qi(table) + " AS r (" + strings.Join(cols, ", ") + ") SELECT " + strings.Join(exprs, ", ") +
		" FROM unnest(" + strings.Join(unnest, ", ") + ") AS u(" + strings.Join(alias, ", ") + ")" +
		" ON CONFLICT (" + conflict + ") DO UPDATE SET " + strings.Join(sets, ", ")
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("update %s: %w", table, err)
	}
	return nil
}

// saveOpen stores the agents' open intervals with the counters their state feeds.
func saveOpen(ctx context.Context, tx pgx.Tx, open map[int64]openState) error {
	if len(open) == 0 {
		return nil
	}
	var ids []int64
	var states, reasons, calls, counters []string
	var since []time.Time
	for id, o := range open {
		ids, states, since, calls = append(ids, id), append(states, o.state), append(since, o.since), append(calls, o.callID)
		reasons = append(reasons, rowReason(o.state, o.reason))
		counters = append(counters, "{"+strings.Join(AgentGrain.StateCounters(o.state), ",")+"}")
	}
	_, err := tx.Exec(ctx, `INSERT INTO rollup_agents (agent_id, state, reason, since, counters, call_id)
		SELECT u.a, u.s, u.r, u.t, u.c::text[], u.call FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[]) AS u(a, s, r, t, c, call)
		ON CONFLICT (agent_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, since = excluded.since, counters = excluded.counters, call_id = excluded.call_id`,
		ids, states, reasons, since, counters, calls)
	if err != nil {
		return fmt.Errorf("save open agent states: %w", err)
	}
	return nil
}
