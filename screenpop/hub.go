package screenpop

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
)

// Sizes of the hub's queues.
const (
	hubBuffer      = 4096 // events between the log and the hub; a full buffer resubscribes and replays
	sendQueueSize  = 64   // messages waiting for one console; a full queue disconnects it
	replayPageSize = 500  // events read per round trip while replaying
	agentCacheTTL  = time.Minute
)

// Hub routes the event log to consoles: each agent's consoles get that agent's pops and state;
// supervisors and team leads who follow get their agents' too. Publishing never waits for a
// browser: a console whose queue is full is disconnected, reconnects and replays.
type Hub struct {
	events   *cti.EventLog
	accounts *account.Store
	builder  *Builder
	pool     *pgxpool.Pool
	log      *slog.Logger
	m        *metrics
	feeds    FeedSource

	mu sync.Mutex
	// Consoles by tenant and user (an agent's own), and the following ones (supervisors,
	// team leads) by tenant: a delivery looks at its agent's consoles and the followers only.
	own       map[string]map[int64]map[*conn]struct{}
	followers map[string]map[*conn]struct{}
	nconns    int
	routers   map[string]*router // per tenant, for the live stream
	lastSeq   map[string]int64   // per tenant, the last live event seen
	tenants   map[string]*account.Tenant
	agents    map[int64]agentInfo
}

type agentInfo struct {
	teamID  int64
	fetched time.Time
}

// Options wire a Hub.
type Options struct {
	Events     *cti.EventLog
	Accounts   *account.Store
	Objects    *dataobject.Store
	Pool       *pgxpool.Pool
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	WorkOrders WorkOrderSource // open work orders and draft mapping of pops (nil: none)
	Feeds      FeedSource      // what a subscribe frame may open (the wallboard); nil: none
}

// NewHub makes a Hub; Run feeds it.
func NewHub(o Options) *Hub {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log := o.Logger.With("component", "screenpop")
	m := newMetrics(o.Registerer)
	b := NewBuilder(o.Pool, o.Objects, log, m)
	b.workOrders = o.WorkOrders
	return &Hub{events: o.Events, accounts: o.Accounts, builder: b, pool: o.Pool,
		log: log, m: m, feeds: o.Feeds,
		own: map[string]map[int64]map[*conn]struct{}{}, followers: map[string]map[*conn]struct{}{}, routers: map[string]*router{}, lastSeq: map[string]int64{},
		tenants: map[string]*account.Tenant{}, agents: map[int64]agentInfo{}}
}

// Builder is the hub's pop builder (for picks made in the console).
func (h *Hub) Builder() *Builder { return h.builder }

// Run follows the event log until ctx ends. Falling behind the log drops the subscription;
// the hub subscribes again and replays what it missed, so no pop is lost.
func (h *Hub) Run(ctx context.Context) {
	for ctx.Err() == nil {
		sub := h.events.Subscribe("", hubBuffer)
		h.catchUp(ctx)
		h.consume(ctx, sub)
		sub.Close()
	}
	h.mu.Lock()
	for _, users := range h.own {
		for _, cs := range users {
			for c := range cs {
				c.close()
			}
		}
	}
	for _, cs := range h.followers {
		for c := range cs {
			c.close()
		}
	}
	h.mu.Unlock()
}

func (h *Hub) consume(ctx context.Context, sub *cti.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C:
			if !ok {
				h.log.Warn("hub fell behind the event log; replaying")
				return
			}
			h.handle(ctx, ev)
		}
	}
}

// catchUp replays, for every tenant the hub has seen, the events after its last one.
func (h *Hub) catchUp(ctx context.Context) {
	h.mu.Lock()
	seen := make(map[string]int64, len(h.lastSeq))
	for t, s := range h.lastSeq {
		seen[t] = s
	}
	h.mu.Unlock()
	for tenant, after := range seen {
		for ctx.Err() == nil {
			evs, err := h.events.Since(ctx, tenant, after, replayPageSize)
			if err != nil {
				h.log.Error("hub replay", "tenant", tenant, "err", err)
				break
			}
			for _, ev := range evs {
				h.handle(ctx, ev)
				after = ev.Seq
			}
			if len(evs) < replayPageSize {
				break
			}
		}
	}
}

func (h *Hub) handle(ctx context.Context, ev cti.Event) {
	h.mu.Lock()
	if ev.Seq <= h.lastSeq[ev.Tenant] {
		h.mu.Unlock()
		return // seen already (a replay overlapping the live stream)
	}
	h.lastSeq[ev.Tenant] = ev.Seq
	r := h.routers[ev.Tenant]
	if r == nil {
		r = newRouter()
		h.routers[ev.Tenant] = r
	}
	deliveries := r.route(ev)
	h.mu.Unlock()

	if ev.Type == cti.CallOffered {
		if t, err := h.tenant(ctx, ev.Tenant); err == nil {
			h.builder.Start(t, ev)
		} else {
			h.log.Error("pop for unknown tenant", "tenant", ev.Tenant, "err", err)
		}
	}
	for _, d := range deliveries {
		h.deliver(ctx, ev.Tenant, d)
	}
}

// deliver queues d for the agent's own consoles and for consoles that follow that agent.
func (h *Hub) deliver(ctx context.Context, tenant string, d delivery) {
	team := h.teamOf(ctx, d.agentID)
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.own[tenant][d.agentID] {
		c.enqueue(&out{delivery: d})
	}
	for c := range h.followers[tenant] {
		if c.wants(d.agentID, team) { // followers are not in own: no double delivery
			c.enqueue(&out{delivery: d})
		}
	}
}

func (h *Hub) tenant(ctx context.Context, code string) (*account.Tenant, error) {
	h.mu.Lock()
	t := h.tenants[code]
	h.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := h.accounts.TenantByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.tenants[code] = t
	h.mu.Unlock()
	return t, nil
}

// teamOf is the team of an agent, cached for a minute (teams change rarely).
func (h *Hub) teamOf(ctx context.Context, agentID int64) int64 {
	h.mu.Lock()
	info, ok := h.agents[agentID]
	h.mu.Unlock()
	if ok && time.Since(info.fetched) < agentCacheTTL {
		return info.teamID
	}
	u, err := h.accounts.UserByID(ctx, agentID)
	if err != nil {
		return 0
	}
	h.mu.Lock()
	h.agents[agentID] = agentInfo{teamID: u.TeamID, fetched: time.Now()}
	h.mu.Unlock()
	return u.TeamID
}

func (h *Hub) add(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := c.tenant.Code
	if c.follow != followNone {
		if h.followers[t] == nil {
			h.followers[t] = map[*conn]struct{}{}
		}
		h.followers[t][c] = struct{}{}
	} else {
		if h.own[t] == nil {
			h.own[t] = map[int64]map[*conn]struct{}{}
		}
		if h.own[t][c.user.ID] == nil {
			h.own[t][c.user.ID] = map[*conn]struct{}{}
		}
		h.own[t][c.user.ID][c] = struct{}{}
	}
	h.nconns++
	h.m.connections.Set(float64(h.nconns))
}

func (h *Hub) remove(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := c.tenant.Code
	if c.follow != followNone {
		delete(h.followers[t], c)
	} else {
		delete(h.own[t][c.user.ID], c)
		if len(h.own[t][c.user.ID]) == 0 {
			delete(h.own[t], c.user.ID)
		}
	}
	h.nconns--
	h.m.connections.Set(float64(h.nconns))
}

// replay sends c the messages for it in the tenant's events after `after`, and returns the
// last sequence number it read.
func (h *Hub) replay(ctx context.Context, c *conn, after int64) (int64, error) {
	r := newRouter()
	for {
		evs, err := h.events.Since(ctx, c.tenant.Code, after, replayPageSize)
		if err != nil {
			return after, fmt.Errorf("replay after %d: %w", after, err)
		}
		for _, ev := range evs {
			for _, d := range r.route(ev) {
				if c.wants(d.agentID, h.teamOf(ctx, d.agentID)) {
					if err := c.write(ctx, out{delivery: d, replayed: true}); err != nil {
						return after, err
					}
				}
			}
			after = ev.Seq
		}
		if len(evs) < replayPageSize {
			return after, nil
		}
	}
}

// currentSeq is the tenant's newest event sequence number.
func (h *Hub) currentSeq(ctx context.Context, t *account.Tenant) (int64, error) {
	var seq int64
	err := h.pool.QueryRow(ctx, `SELECT last_seq FROM `+quoted(t.Scope().Schema, "event_counter")).Scan(&seq)
	return seq, err
}

// openCallStart is where a fresh console (no last seq) starts replaying: just before the
// newest ring of its agent whose call has not ended, so a console opened mid-call shows the pop.
func (h *Hub) openCallStart(ctx context.Context, t *account.Tenant, agentID int64, current int64) (int64, error) {
	var seq int64
	var callID string
	err := h.pool.QueryRow(ctx, `SELECT seq, call_id FROM `+quoted(t.Scope().Schema, "events")+`
		WHERE agent_id = $1 AND type = 'call.ringing' ORDER BY seq DESC LIMIT 1`, agentID).Scan(&seq, &callID)
	if err != nil {
		return current, nil // no ring at all (pgx.ErrNoRows) or unreadable: start from now
	}
	var ended bool
	err = h.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+quoted(t.Scope().Schema, "events")+`
		WHERE call_id = $1 AND seq > $2 AND type IN ('call.ended', 'call.abandoned')
		   OR (call_id = $1 AND seq > $2 AND type = 'call.missed' AND agent_id = $3))`, callID, seq, agentID).Scan(&ended)
	if err != nil || ended {
		return current, err
	}
	return seq - 1, nil
}
