package cti

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Limits of the event log's group commit.
const (
	maxBatch        = 1000             // events written by one transaction at most
	maxQueued       = 100_000          // events waiting to be written before Append refuses more
	flushTimeout    = 10 * time.Second // one batch's transaction
	closeFlushLimit = 30 * time.Second // writing what is queued when the log closes
	// groupWindow is how long the writer may hold events no user waits for (the call path's
	// call events, agent transitions and CDRs) to write them with the ones that follow: at
	// hundreds of calls a second a batch then carries tens of events instead of a few, and
	// each commit's fixed cost (round trips, statements, WAL flush) is paid that much less
	// often. An event someone waits for with Append is written at once, with what is queued.
	groupWindow = 10 * time.Millisecond
)

// ErrLogClosed is returned by Append after the log stopped.
var ErrLogClosed = errors.New("event log closed")

// EventLog appends events to the tenants' append-only logs through group commit: appenders
// queue their events and wait; one writer takes everything queued and writes it in one
// transaction, so a busy log writes many events per commit. An event is published to
// subscribers only after it is durable, in sequence order.
type EventLog struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	m    *metrics

	mu      sync.Mutex
	queue   []*pendingEvent
	urgent  int // queued events that may not be held for groupWindow
	closed  bool
	wake    chan struct{}
	stopped chan struct{}

	subMu sync.Mutex
	subs  map[*Subscription]struct{}
}

type pendingEvent struct {
	ev     Event
	done   chan error // buffered: the writer never waits for the appender
	posted bool       // nobody waits: the writer logs a failure
	hold   bool       // the writer may hold it up to groupWindow to batch it with later ones
	queued time.Time
}

// fail reports a write error to the appender, or logs it when nobody waits.
func (l *EventLog) fail(p *pendingEvent, err error) {
	if p.posted {
		l.log.Error("write posted event", "tenant", p.ev.Tenant, "type", p.ev.Type, "call", p.ev.CallID, "error", err)
	}
	p.done <- err
}

// NewEventLog makes an event log on pool; Run writes it.
func NewEventLog(pool *pgxpool.Pool, logger *slog.Logger, m *metrics) *EventLog {
	return &EventLog{
		pool: pool, log: logger, m: m,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}),
		subs: map[*Subscription]struct{}{},
	}
}

// Append writes ev to its tenant's log and returns it with its sequence number once it is
// durable (and published). A bad event is an Invalid fault and is not written.
func (l *EventLog) Append(ctx context.Context, ev Event) (Event, error) {
	return l.append(ctx, ev, false)
}

// appendGrouped is Append for an event whose appender waits for it but tells nobody about it
// (the CDR of a call whose caller already hung up): the writer may hold it for groupWindow.
func (l *EventLog) appendGrouped(ctx context.Context, ev Event) (Event, error) {
	return l.append(ctx, ev, true)
}

func (l *EventLog) append(ctx context.Context, ev Event, hold bool) (Event, error) {
	p, err := l.enqueue(ev, false, hold)
	if err != nil {
		return p.ev, err
	}
	select {
	case err := <-p.done:
		return p.ev, err
	case <-ctx.Done():
		return ev, fmt.Errorf("append %s: %w", ev.Type, ctx.Err())
	}
}

// Post queues ev like Append but does not wait until it is durable: the SIP path posts the
// call events nothing waits for (the caller would hear ringing later). The log writes events
// in the order they were queued, so once a later Append of the same tenant returned, ev is
// durable too. The writer may hold a posted event for groupWindow to batch it with others.
// A write that fails is logged. A bad event is an Invalid fault and is not queued.
func (l *EventLog) Post(ev Event) error {
	_, err := l.enqueue(ev, true, true)
	return err
}

func (l *EventLog) enqueue(ev Event, posted, hold bool) (*pendingEvent, error) {
	now := time.Now()
	if ev.At.IsZero() {
		ev.At = now
	}
	p := &pendingEvent{ev: ev, done: make(chan error, 1), posted: posted, hold: hold, queued: now}
	if err := ev.check(); err != nil {
		return p, err
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return p, ErrLogClosed
	case len(l.queue) >= maxQueued:
		l.mu.Unlock()
		return p, fault.Errorf(fault.Unavailable, "event log is overloaded: %d events waiting", maxQueued)
	}
	l.queue = append(l.queue, p)
	if !hold {
		l.urgent++
	}
	// The writer needs waking for the first event of a batch and for one that may not wait;
	// for the others it is writing already, or holding the queue with a timer.
	wake := !hold || len(l.queue) == 1 || len(l.queue) >= maxBatch
	l.mu.Unlock()
	if wake {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return p, nil
}

// Run writes queued events until ctx ends, then writes what is still queued and returns.
func (l *EventLog) Run(ctx context.Context) {
	defer close(l.stopped)
	hold := time.NewTimer(groupWindow)
	hold.Stop()
	defer hold.Stop()
	for {
		select {
		case <-l.wake:
		case <-hold.C:
		case <-ctx.Done():
			l.mu.Lock()
			l.closed = true
			l.mu.Unlock()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeFlushLimit)
			for l.flushQueued(fctx) {
			}
			cancel()
			return
		}
		// A write that has started finishes (each is bounded by flushTimeout) even when ctx
		// ends meanwhile: stopping must not lose an event, such as the CDR of a call that
		// ended just before shutdown.
		for {
			if d := l.holdFor(); d > 0 {
				hold.Reset(d)
				break
			}
			if !l.flushQueued(context.WithoutCancel(ctx)) {
				break
			}
		}
	}
}

// holdFor is how long the writer may still wait before it writes what is queued: until the
// oldest queued event is groupWindow old, unless an event may not wait or a batch is full.
func (l *EventLog) holdFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 || l.urgent > 0 || len(l.queue) >= maxBatch || l.closed {
		return 0
	}
	return groupWindow - time.Since(l.queue[0].queued)
}

// Wait blocks until Run has returned.
func (l *EventLog) Wait() { <-l.stopped }

// flushQueued writes up to maxBatch queued events and reports whether more are waiting.
func (l *EventLog) flushQueued(ctx context.Context) bool {
	l.mu.Lock()
	n := min(len(l.queue), maxBatch)
	batch := l.queue[:n:n]
	l.queue = l.queue[n:]
	for _, p := range batch {
		if !p.hold {
			l.urgent--
		}
	}
	more := len(l.queue) > 0
	if len(l.queue) == 0 {
		l.queue = nil
	}
	l.mu.Unlock()
	if n == 0 {
		return false
	}
	start := time.Now()
	err := l.write(ctx, batch)
	if err != nil && len(batch) > 1 {
		// One bad event must not fail its neighbours: write each on its own.
		l.log.Warn("event batch failed; writing its events one by one", "events", len(batch), "error", err)
		for _, p := range batch {
			if err := l.write(ctx, []*pendingEvent{p}); err != nil {
				l.fail(p, err)
				continue
			}
			l.publish(p)
		}
		return more
	}
	if err != nil {
		l.fail(batch[0], err)
		return more
	}
	l.m.eventBatch.Observe(float64(len(batch)))
	l.m.eventFlush.Observe(time.Since(start).Seconds())
	for _, p := range batch {
		l.publish(p)
	}
	return more
}

func (l *EventLog) publish(p *pendingEvent) {
	l.m.events.WithLabelValues(string(p.ev.Type)).Inc()
	l.deliver(p.ev)
	p.done <- nil
}

// write stores batch in one transaction, assigning each tenant's sequence numbers.
func (l *EventLog) write(ctx context.Context, batch []*pendingEvent) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	byTenant := map[string][]*pendingEvent{}
	var tenants []string
	for _, p := range batch {
		if byTenant[p.ev.Tenant] == nil {
			tenants = append(tenants, p.ev.Tenant)
		}
		byTenant[p.ev.Tenant] = append(byTenant[p.ev.Tenant], p)
	}
	// A fixed order of tenants: two writers (two ctid processes) lock counters in the same order.
	sort.Strings(tenants)
	if err := writeBatch(ctx, l.pool, tenants, byTenant); err != nil {
		// The numbers were not taken: the transaction rolled back.
		for _, p := range batch {
			p.ev.Seq = 0
		}
		return fmt.Errorf("write %d events: %w", len(batch), err)
	}
	return nil
}

// writeBatch writes a batch in one round trip whatever its size: one pipeline, which
// PostgreSQL runs as one (implicit) transaction, takes each tenant's sequence numbers (the
// counter's row lock orders concurrent writers) and writes every row (events, state log,
// current states, CDRs), each row numbering itself from the counter it just moved. The
// numbers the counters return are then given to the events in memory.
func writeBatch(ctx context.Context, pool *pgxpool.Pool, tenants []string, byTenant map[string][]*pendingEvent) error {
	table := func(tenant, name string) string { return pgx.Identifier{db.SchemaName(tenant), name}.Sanitize() }
	b := &pgx.Batch{}
	for _, tenant := range tenants {
		b.Queue(`UPDATE `+table(tenant, "event_counter")+` SET last_seq = last_seq + $1 RETURNING last_seq`, len(byTenant[tenant]))
	}
	for _, tenant := range tenants {
		if err := queueTenantRows(b, byTenant[tenant], func(name string) string { return table(tenant, name) }); err != nil {
			return err
		}
	}
	res := pool.SendBatch(ctx, b)
	lasts := make([]int64, len(tenants))
	for i, tenant := range tenants {
		if err := res.QueryRow().Scan(&lasts[i]); err != nil {
			res.Close()
			return fmt.Errorf("tenant %s: take sequence numbers: %w", tenant, err)
		}
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("write event rows: %w", err)
	}
	for i, tenant := range tenants {
		evs := byTenant[tenant]
		for j, p := range evs {
			p.ev.Seq = lasts[i] - int64(len(evs)) + int64(j) + 1
		}
	}
	return nil
}

// queueTenantRows adds one tenant's rows to b: one statement per table, arrays unnested.
// Rows carry their event's place in the batch (1…n); the statement makes it a sequence
// number from the tenant's counter, which the batch moved by n just before.
func queueTenantRows(b *pgx.Batch, evs []*pendingEvent, table func(string) string) error {
	n := len(evs)
	// base is the SQL of the number before the batch's first event; its $k is n (a parameter,
	// so that every batch size runs the same prepared statements).
	base := func(k int) string {
		return `(SELECT last_seq - $` + strconv.Itoa(k) + `::bigint FROM ` + table("event_counter") + `)`
	}
	ords, ats := make([]int64, n), make([]time.Time, n)
	types, callIDs, queues, datas := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	agents := make([]*int64, n)
	var st struct {
		ord, agent               []int64
		at                       []time.Time
		from, to, reason, callID []string
		actor                    []string
	}
	current := map[int64]int{} // the last state change of each agent in the batch: its index
	var cdrs cdrRows
	for i, p := range evs {
		ev := &p.ev
		ord := int64(i + 1)
		data := ev.Data
		if data == nil {
			data = map[string]string{}
		}
		js, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("event data: %w", err)
		}
		ords[i], ats[i], types[i], callIDs[i], queues[i], datas[i] = ord, ev.At, string(ev.Type), ev.CallID, ev.Queue, string(js)
		agents[i] = nullID(ev.AgentID)
		if s := ev.State; s != nil {
			st.ord, st.agent, st.at = append(st.ord, ord), append(st.agent, ev.AgentID), append(st.at, ev.At)
			st.from, st.to, st.reason = append(st.from, string(s.From)), append(st.to, string(s.To)), append(st.reason, s.Reason)
			st.callID, st.actor = append(st.callID, ev.CallID), append(st.actor, s.Actor)
			current[ev.AgentID] = i
		}
		if ev.CDR != nil {
			if err := cdrs.add(ev.CDR, ord); err != nil {
				return err
			}
		}
	}
	b.Queue(`INSERT INTO `+table("events")+` (seq, at, type, call_id, agent_id, queue, data)
		SELECT `+base(8)+` + ord, at, type, call_id, agent_id, queue, data
		FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::jsonb[])
			AS e(ord, at, type, call_id, agent_id, queue, data)`,
		ords, ats, types, callIDs, agents, queues, datas, n)
	cdrs.queueInsert(b, table("cdrs"), base(25), n)
	if len(st.ord) == 0 {
		return nil
	}
	b.Queue(`INSERT INTO `+table("agent_state_log")+` (seq, agent_id, at, from_state, to_state, reason, call_id, actor)
		SELECT `+base(9)+` + ord, agent_id, at, from_state, to_state, reason, call_id, actor
		FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
			AS l(ord, agent_id, at, from_state, to_state, reason, call_id, actor)`,
		st.ord, st.agent, st.at, st.from, st.to, st.reason, st.callID, st.actor, n)
	var cur struct {
		agent, ord            []int64
		state, reason, callID []string
		since                 []time.Time
	}
	for id, i := range current {
		ev := &evs[i].ev
		cur.agent, cur.ord, cur.since = append(cur.agent, id), append(cur.ord, int64(i+1)), append(cur.since, ev.At)
		cur.state, cur.reason, cur.callID = append(cur.state, string(ev.State.To)), append(cur.reason, ev.State.Reason), append(cur.callID, ev.CallID)
	}
	b.Queue(`INSERT INTO `+table("agent_states")+` (agent_id, state, reason, call_id, since, seq)
		SELECT agent_id, state, reason, call_id, since, `+base(7)+` + ord
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[])
			AS s(agent_id, state, reason, call_id, since, ord)
		ON CONFLICT (agent_id) DO UPDATE SET state = excluded.state, reason = excluded.reason,
			call_id = excluded.call_id, since = excluded.since, seq = excluded.seq`,
		cur.agent, cur.state, cur.reason, cur.callID, cur.since, cur.ord, n)
	return nil
}

// Since reads a tenant's events after sequence number after, oldest first, at most limit
// (replay after a reconnect).
func (l *EventLog) Since(ctx context.Context, tenant string, after int64, limit int) ([]Event, error) {
	if err := db.CheckTenantCode(tenant); err != nil {
		return nil, fault.Errorf(fault.Invalid, "%s", err)
	}
	var out []Event
	err := db.InTenant(ctx, l.pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, at, type, call_id, coalesce(agent_id, 0), queue, data
			FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			ev := Event{Tenant: tenant}
			var typ string
			if err := rows.Scan(&ev.Seq, &ev.At, &typ, &ev.CallID, &ev.AgentID, &ev.Queue, &ev.Data); err != nil {
				return err
			}
			ev.Type = EventType(typ)
			out = append(out, ev)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read events of %s after %d: %w", tenant, after, err)
	}
	return out, nil
}

// Subscription receives durable events as they are written. A subscriber that falls behind
// (its buffer is full) is dropped: C is closed and Dropped reports true; it subscribes again
// and replays with Since from the last sequence number it saw.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	tenant  string
	log     *EventLog
	dropped bool
	closed  bool
}

// Subscribe delivers the events of tenant ("" for every tenant) to a channel of size buffer.
func (l *EventLog) Subscribe(tenant string, buffer int) *Subscription {
	c := make(chan Event, max(buffer, 1))
	s := &Subscription{C: c, c: c, tenant: tenant, log: l}
	l.subMu.Lock()
	l.subs[s] = struct{}{}
	l.subMu.Unlock()
	return s
}

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.log.subMu.Lock()
	defer s.log.subMu.Unlock()
	s.end()
}

// Dropped reports whether the log dropped the subscription for falling behind.
func (s *Subscription) Dropped() bool {
	s.log.subMu.Lock()
	defer s.log.subMu.Unlock()
	return s.dropped
}

// end closes the channel once; the caller holds subMu.
func (s *Subscription) end() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.log.subs, s)
	close(s.c)
}

func (l *EventLog) deliver(ev Event) {
	// Subscribers share one copy of the event, to be read only: the appender keeps its own.
	ev.State, ev.CDR = cloneState(ev.State), cloneCDR(ev.CDR)
	l.subMu.Lock()
	defer l.subMu.Unlock()
	for s := range l.subs {
		if s.tenant != "" && s.tenant != ev.Tenant {
			continue
		}
		select {
		case s.c <- ev:
		default:
			s.dropped = true
			s.end()
			l.m.subscribersDropped.Inc()
		}
	}
}

func cloneState(s *StateChange) *StateChange {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

func cloneCDR(c *CDR) *CDR {
	if c == nil {
		return nil
	}
	d := *c
	d.SIPCallIDs = append([]string(nil), c.SIPCallIDs...)
	return &d
}
