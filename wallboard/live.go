package wallboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
)

// Limits and periods of the live boards.
const (
	subscribeBuffer = 4096             // events a floor may fall behind before the log drops it
	watcherQueue    = 64               // frames a board may fall behind before it is disconnected
	maxDrain        = 512              // events applied before one frame goes out
	configPeriod    = 30 * time.Second // queues, members and agents' names are reloaded this often
	tickPeriod      = time.Second      // the day's rollover is checked this often
	maxOpenCall     = 4 * time.Hour    // an unfinished call older than this is not shown as waiting
	rebuildTimeout  = 30 * time.Second
	nameQueue       = 1024                   // answered calls waiting for their customer's name
	nameTimeout     = 5 * time.Second        // one lookup of a pop
	nameRetry       = 700 * time.Millisecond // a pop not stored yet is looked up once more after this
)

// Frame types sent to boards (docs/wallboard.md).
const (
	TypeSnapshot = "board.snapshot"
	TypeUpdate   = "board.update"
)

// Frame is one message to a board.
type Frame struct {
	Type string    `json:"type"`
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"` // server time when sent: the page measures the data's age from it
	Data Snapshot  `json:"data"`
}

// Options is what the live boards need.
type Options struct {
	Pool       *pgxpool.Pool
	Events     *cti.EventLog
	Accounts   *account.Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Service keeps one live board per tenant that someone watches, fed by the event log.
type Service struct {
	opts Options
	log  *slog.Logger
	m    *metrics

	started chan struct{} // closed when Run has begun
	mu      sync.Mutex
	ctx     context.Context
	floors  map[string]*floor
}

type metrics struct {
	boards  prometheus.Gauge
	frames  *prometheus.CounterVec
	delay   prometheus.Histogram
	dropped *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		boards: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ctid_wallboard_boards", Help: "Boards connected."}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ctid_wallboard_frames_total", Help: "Frames sent to boards by type."}, []string{"type"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ctid_wallboard_update_seconds",
			Help: "From an event's time to its update frame being queued for the boards.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ctid_wallboard_dropped_total", Help: "Boards disconnected or floors rebuilt for falling behind."}, []string{"who"}),
	}
	if reg != nil {
		reg.MustRegister(m.boards, m.frames, m.delay, m.dropped)
	}
	return m
}

// New makes the live boards; Run serves them.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts, log: opts.Logger.With("component", "wallboard"), m: newMetrics(opts.Registerer), floors: map[string]*floor{},
		started: make(chan struct{})}
}

// Run lets boards start until ctx ends; then every floor stops and its boards are closed.
func (s *Service) Run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	close(s.started)
	<-ctx.Done()
}

// Viewer is who watches a board: a supervisor sees every agent, a team lead their team's, a
// TV (read-only token) the queues only.
type Viewer struct {
	AllAgents bool
	TeamID    int64 // with AllAgents false: the team whose agents are shown; 0 shows none
}

// ViewerOf is the board scope of a user: supervisors and admins (row scope all) see every
// agent, team leads their team's.
func ViewerOf(u *account.User) (Viewer, error) {
	if u.Tenant == nil || !u.Can(account.PermWatchFloor) {
		return Viewer{}, errors.New("the wallboard is for a tenant's supervisors and team leads")
	}
	if account.ScopeOf(u.Roles) == account.ScopeAll {
		return Viewer{AllAgents: true}, nil
	}
	return Viewer{TeamID: u.TeamID}, nil
}

// Watcher is one connected board: Frames delivers a snapshot first, then updates. It is
// closed when the board falls behind, the floor is rebuilt (a new watch gets a fresh
// snapshot) or the service stops.
type Watcher struct {
	Frames <-chan []byte
	c      chan []byte
	viewer Viewer
	floor  *floor
	closed bool
}

// Close stops the watcher.
func (w *Watcher) Close() {
	w.floor.mu.Lock()
	defer w.floor.mu.Unlock()
	w.floor.drop(w)
}

// Watch connects a board of tenant t for viewer: the first frame is the snapshot.
func (s *Service) Watch(ctx context.Context, t *account.Tenant, v Viewer) (*Watcher, error) {
	f, err := s.floorOf(ctx, t)
	if err != nil {
		return nil, err
	}
	c := make(chan []byte, watcherQueue)
	w := &Watcher{Frames: c, c: c, viewer: v, floor: f}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.board == nil {
		return nil, errors.New("the wallboard stopped")
	}
	b, err := json.Marshal(Frame{Type: TypeSnapshot, Seq: f.board.Seq, Time: time.Now(), Data: f.board.Snapshot(f.visible(v))})
	if err != nil {
		return nil, fmt.Errorf("board snapshot: %w", err)
	}
	c <- b
	f.watchers[w] = struct{}{}
	s.m.boards.Inc()
	s.m.frames.WithLabelValues(TypeSnapshot).Inc()
	return w, nil
}

// Snapshot is the tenant's current board for v (for tests and the JSON API).
func (s *Service) Snapshot(ctx context.Context, t *account.Tenant, v Viewer) (Snapshot, error) {
	f, err := s.floorOf(ctx, t)
	if err != nil {
		return Snapshot{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.board == nil {
		return Snapshot{}, errors.New("the wallboard stopped")
	}
	return f.board.Snapshot(f.visible(v)), nil
}

// floorOf starts the tenant's floor when nobody watched it yet, and waits until it is built.
func (s *Service) floorOf(ctx context.Context, t *account.Tenant) (*floor, error) {
	select {
	case <-s.started:
	case <-ctx.Done():
		return nil, fmt.Errorf("the wallboard is not running: %w", ctx.Err())
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return nil, errors.New("the wallboard stopped")
	}
	f := s.floors[t.Code]
	if f == nil {
		f = &floor{svc: s, tenant: t, watchers: map[*Watcher]struct{}{}, built: make(chan struct{})}
		s.floors[t.Code] = f
		go f.run(s.ctx)
	}
	s.mu.Unlock()
	select {
	case <-f.built:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		s.mu.Lock()
		if s.floors[t.Code] == f {
			delete(s.floors, t.Code) // the next board tries again
		}
		s.mu.Unlock()
		return nil, f.err
	}
	return f, nil
}

// floor is one tenant's live board and its watchers.
type floor struct {
	svc    *Service
	tenant *account.Tenant

	built chan struct{} // closed after the first build (err set when it failed)
	err   error

	mu       sync.Mutex
	board    *Board
	watchers map[*Watcher]struct{}
}

func (f *floor) visible(v Viewer) func(int64) bool {
	if v.AllAgents {
		return nil
	}
	b := f.board
	return func(id int64) bool { return v.TeamID != 0 && b.TeamOf(id) == v.TeamID }
}

// drop closes a watcher; the caller holds f.mu.
func (f *floor) drop(w *Watcher) {
	if w.closed {
		return
	}
	w.closed = true
	delete(f.watchers, w)
	close(w.c)
	f.svc.m.boards.Dec()
}

func (f *floor) run(ctx context.Context) {
	log := f.svc.log.With("tenant", f.tenant.Code)
	first := true
	defer func() {
		f.mu.Lock()
		for w := range f.watchers {
			f.drop(w)
		}
		f.board = nil
		f.mu.Unlock()
	}()
	for ctx.Err() == nil {
		// Subscribe before reading the snapshot: what commits meanwhile arrives on the
		// subscription, and the board skips what the snapshot already has (by seq).
		sub := f.svc.opts.Events.Subscribe(f.tenant.Code, subscribeBuffer)
		b, err := f.rebuild(ctx)
		if err != nil {
			sub.Close()
			if first {
				f.err = err
				close(f.built)
				return
			}
			log.Warn("rebuild the wallboard", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		f.mu.Lock()
		old := f.board
		f.board = b
		if old != nil {
			// Boards of the old state reconnect and get the rebuilt snapshot.
			for w := range f.watchers {
				f.drop(w)
			}
		}
		f.mu.Unlock()
		if first {
			first = false
			close(f.built)
		}
		f.follow(ctx, sub)
		sub.Close()
		if ctx.Err() == nil {
			f.svc.m.dropped.WithLabelValues("floor").Inc()
			log.Warn("the wallboard fell behind the event log; rebuilding")
		}
	}
}

// follow applies the subscription's events until it ends (dropped) or ctx does.
func (f *floor) follow(ctx context.Context, sub *cti.Subscription) {
	lookups := make(chan string, nameQueue)
	names := make(chan [2]string, nameQueue)
	lctx, stopLookups := context.WithCancel(ctx)
	defer stopLookups()
	go f.lookupNames(lctx, lookups, names)
	ask := func(ev cti.Event) {
		if ev.Type == cti.CallAnswered && ev.CallID != "" {
			select {
			case lookups <- ev.CallID:
			default: // a burst beyond the queue: those rows show the number only
			}
		}
	}
	tick := time.NewTicker(tickPeriod)
	defer tick.Stop()
	reload := time.NewTicker(configPeriod)
	defer reload.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			f.mu.Lock()
			f.board.Apply(ev)
			ask(ev)
			oldest := ev.At
		drain:
			for range maxDrain {
				select {
				case ev, ok := <-sub.C:
					if !ok {
						break drain
					}
					f.board.Apply(ev)
					ask(ev)
				default:
					break drain
				}
			}
			f.flush()
			f.mu.Unlock()
			f.svc.m.delay.Observe(time.Since(oldest).Seconds())
		case n := <-names:
			f.mu.Lock()
			f.board.SetCustomer(n[0], n[1])
			f.flush()
			f.mu.Unlock()
		case now := <-tick.C:
			f.mu.Lock()
			if f.board.Tick(now) {
				f.flush()
			}
			f.mu.Unlock()
		case <-reload.C:
			cfg, err := f.loadConfig(ctx)
			if err != nil {
				f.svc.log.Warn("reload wallboard queues and agents", "tenant", f.tenant.Code, "err", err)
				continue
			}
			f.mu.Lock()
			cfg.apply(f.board)
			f.flush()
			f.mu.Unlock()
		}
	}
}

// flush sends what changed to every watcher, one encoding per scope; the caller holds f.mu.
func (f *floor) flush() {
	agents, queues := f.board.Changes()
	if len(agents) == 0 && len(queues) == 0 {
		return
	}
	frames := map[Viewer][]byte{}
	now := time.Now()
	for w := range f.watchers {
		b, ok := frames[w.viewer]
		if !ok {
			d := f.board.Delta(agents, queues, f.visible(w.viewer))
			var err error
			if b, err = json.Marshal(Frame{Type: TypeUpdate, Seq: f.board.Seq, Time: now, Data: d}); err != nil {
				f.svc.log.Error("encode board update", "err", err)
				return
			}
			frames[w.viewer] = b
		}
		select {
		case w.c <- b:
			f.svc.m.frames.WithLabelValues(TypeUpdate).Inc()
		default:
			// A board that stops reading is closed; it reconnects and gets a snapshot.
			f.svc.m.dropped.WithLabelValues("board").Inc()
			f.drop(w)
		}
	}
}

// lookupNames reads the customer's name of each answered call from its pop (package
// screenpop builds it when the call is offered) and hands it to the floor.
func (f *floor) lookupNames(ctx context.Context, calls <-chan string, names chan<- [2]string) {
	table := pgx.Identifier{f.tenant.Scope().Schema, "pops"}.Sanitize()
	lookup := func(id string) (string, bool) {
		lctx, cancel := context.WithTimeout(ctx, nameTimeout)
		defer cancel()
		var name *string
		err := f.svc.opts.Pool.QueryRow(lctx, `SELECT payload->'draft'->>'customer_name' FROM `+table+` WHERE call_id = $1`, id).Scan(&name)
		if err != nil {
			if !errors.Is(err, pgx.ErrNoRows) && ctx.Err() == nil {
				f.svc.log.Warn("customer name of a call", "tenant", f.tenant.Code, "call", id, "err", err)
			}
			return "", false
		}
		if name == nil {
			return "", true
		}
		return *name, true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-calls:
			name, ok := lookup(id)
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-time.After(nameRetry):
				}
				name, _ = lookup(id)
			}
			if name == "" {
				continue
			}
			select {
			case names <- [2]string{id, name}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// config is the tenant's queues and agents as the board shows them.
type config struct {
	queues []QueueConfig
	people map[int64]Person
}

func (c config) apply(b *Board) {
	b.SetQueues(c.queues)
	b.SetDirectory(c.people)
}

func (f *floor) loadConfig(ctx context.Context) (config, error) {
	cfg := config{people: map[int64]Person{}}
	users, err := f.svc.opts.Accounts.ListUsers(ctx, f.tenant.ID)
	if err != nil {
		return cfg, err
	}
	for _, u := range users {
		if u.Disabled || !u.Can(account.PermTakeCalls) {
			continue
		}
		cfg.people[u.ID] = Person{Name: u.Name(), Extension: u.Extension, TeamID: u.TeamID, Team: u.TeamName}
	}
	err = f.inTenant(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		cfg.queues, err = readQueues(ctx, tx)
		return err
	})
	return cfg, err
}

func readQueues(ctx context.Context, tx pgx.Tx) ([]QueueConfig, error) {
	rows, err := tx.Query(ctx, `SELECT q.name, q.service_level_s, coalesce(array_agg(m.agent_id ORDER BY m.agent_id) FILTER (WHERE m.agent_id IS NOT NULL), '{}')
		FROM queues q LEFT JOIN queue_members m ON m.queue = q.name GROUP BY q.name, q.service_level_s ORDER BY q.name`)
	if err != nil {
		return nil, fmt.Errorf("read queues: %w", err)
	}
	var out []QueueConfig
	for rows.Next() {
		var q QueueConfig
		var sl int
		if err := rows.Scan(&q.Name, &sl, &q.Members); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read queues: %w", err)
		}
		q.ServiceLevel = time.Duration(sl) * time.Second
		out = append(out, q)
	}
	return out, rows.Err()
}

func (f *floor) inTenant(ctx context.Context, iso pgx.TxIsoLevel, fn func(pgx.Tx) error) error {
	schema := f.tenant.Scope().Schema
	return pgx.BeginTxFunc(ctx, f.svc.opts.Pool, pgx.TxOptions{IsoLevel: iso, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("tenant scope %s: %w", schema, err)
		}
		return fn(tx)
	})
}

// rebuild derives the board from the database as of one snapshot: today's CDRs, the calls
// still open, the agents' current states and the queues. A restarted ctid, or a second one,
// gets the same board.
func (f *floor) rebuild(ctx context.Context) (*Board, error) {
	ctx, cancel := context.WithTimeout(ctx, rebuildTimeout)
	defer cancel()
	loc := f.tenant.Location()
	b, err := NewBoard(loc)
	if err != nil {
		return nil, err
	}
	cfg, err := f.loadConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("wallboard of %s: %w", f.tenant.Code, err)
	}
	now := time.Now()
	b.Tick(now)
	cfg.apply(b)
	err = f.inTenant(ctx, pgx.RepeatableRead, func(tx pgx.Tx) error { return readBoard(ctx, tx, b, now, loc) })
	if err != nil {
		return nil, fmt.Errorf("wallboard of %s: %w", f.tenant.Code, err)
	}
	b.Changes() // a new board is sent whole
	return b, nil
}

// readBoard fills b from the tenant's tables, inside one repeatable-read transaction.
func readBoard(ctx context.Context, tx pgx.Tx, b *Board, now time.Time, loc *time.Location) error {
	var last int64
	if err := tx.QueryRow(ctx, `SELECT last_seq FROM event_counter`).Scan(&last); err != nil {
		return fmt.Errorf("read the event counter: %w", err)
	}
	// Calls not yet ended: their events, oldest first (callers waiting, agents' current calls).
	since := now.Add(-maxOpenCall)
	rows, err := tx.Query(ctx, `SELECT seq, at, type, call_id, coalesce(agent_id, 0), queue, data FROM events
		WHERE at >= $1 AND call_id <> '' AND type LIKE 'call.%' AND call_id IN (
			SELECT call_id FROM events WHERE at >= $1 AND type = 'call.offered'
			EXCEPT SELECT call_id FROM events WHERE at >= $1 AND type = 'call.ended')
		ORDER BY seq`, since)
	if err != nil {
		return fmt.Errorf("read open calls: %w", err)
	}
	for rows.Next() {
		var ev cti.Event
		var typ string
		if err := rows.Scan(&ev.Seq, &ev.At, &typ, &ev.CallID, &ev.AgentID, &ev.Queue, &ev.Data); err != nil {
			rows.Close()
			return fmt.Errorf("read open calls: %w", err)
		}
		ev.Type = cti.EventType(typ)
		b.Apply(ev)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read open calls: %w", err)
	}
	if open := b.answeredCalls(); len(open) > 0 {
		rows, err = tx.Query(ctx, `SELECT call_id, payload->'draft'->>'customer_name' FROM pops
			WHERE call_id = ANY($1) AND payload->'draft'->>'customer_name' IS NOT NULL`, open)
		if err != nil {
			return fmt.Errorf("read customers of open calls: %w", err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return fmt.Errorf("read customers of open calls: %w", err)
			}
			b.SetCustomer(id, name)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read customers of open calls: %w", err)
		}
	}
	// Today's finished calls, in the tenant's time zone, as the query engine's "today".
	y, m, d := now.In(loc).Date()
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, loc)
	rows, err = tx.Query(ctx, `SELECT call_id, offered_at, direction, source, queue, coalesce(agent_id, 0),
			queued_at, ringing_at, answered_at, ended_at, result, hangup_by,
			(wait_seconds * 1000)::bigint, (talk_seconds * 1000)::bigint
		FROM cdrs WHERE offered_at >= $1 AND offered_at < $2`, dayStart, dayStart.AddDate(0, 0, 1))
	if err != nil {
		return fmt.Errorf("read today's CDRs: %w", err)
	}
	for rows.Next() {
		var c cti.CDR
		var dir, result string
		var queued, ringing, answered *time.Time
		var waitMs, talkMs int64
		if err := rows.Scan(&c.CallID, &c.OfferedAt, &dir, &c.Source, &c.Queue, &c.AgentID,
			&queued, &ringing, &answered, &c.EndedAt, &result, &c.HangupBy, &waitMs, &talkMs); err != nil {
			rows.Close()
			return fmt.Errorf("read today's CDRs: %w", err)
		}
		c.Direction, c.Result = cti.Direction(dir), cti.Result(result)
		c.QueuedAt, c.RingingAt, c.AnsweredAt = deref(queued), deref(ringing), deref(answered)
		b.AddStoredCDR(&c, waitMs, talkMs)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read today's CDRs: %w", err)
	}
	// Today's agent-state transitions: the state intervals they end (wrap-up time of the
	// agents and of their calls' queues), counted as the live board counts them. The log
	// shares the event log's seq: start at the last event before the day (index on at).
	rows, err = tx.Query(ctx, `SELECT agent_id, at, from_state, to_state, reason, call_id FROM agent_state_log
		WHERE seq > coalesce((SELECT seq FROM events WHERE at < $1 ORDER BY at DESC LIMIT 1), 0) AND at >= $1
		ORDER BY seq`, dayStart)
	if err != nil {
		return fmt.Errorf("read today's agent states: %w", err)
	}
	for rows.Next() {
		var st cti.AgentStatus
		var from, to string
		if err := rows.Scan(&st.AgentID, &st.Since, &from, &to, &st.Reason, &st.CallID); err != nil {
			rows.Close()
			return fmt.Errorf("read today's agent states: %w", err)
		}
		st.State = cti.AgentState(to)
		b.transition(cti.AgentState(from), st)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read today's agent states: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT agent_id, state, reason, call_id, since FROM agent_states`)
	if err != nil {
		return fmt.Errorf("read agent states: %w", err)
	}
	for rows.Next() {
		var st cti.AgentStatus
		var state string
		if err := rows.Scan(&st.AgentID, &state, &st.Reason, &st.CallID, &st.Since); err != nil {
			rows.Close()
			return fmt.Errorf("read agent states: %w", err)
		}
		st.State = cti.AgentState(state)
		b.SetAgent(st)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read agent states: %w", err)
	}
	b.Seq = last
	return nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
