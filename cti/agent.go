package cti

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// AgentState is where an agent is in the state machine:
// Logged out → Ready ⇄ Not ready(reason) → Reserved → Ringing → On call → Wrap-up → Ready.
type AgentState string

const (
	LoggedOut AgentState = "logged_out"
	Ready     AgentState = "ready"
	NotReady  AgentState = "not_ready"
	Reserved  AgentState = "reserved" // the ACD chose the agent for a call; the phone is not ringing yet
	Ringing   AgentState = "ringing"
	OnCall    AgentState = "on_call"
	WrapUp    AgentState = "wrap_up" // after-call work
)

// AllAgentStates lists the states in machine order.
var AllAgentStates = []AgentState{LoggedOut, Ready, NotReady, Reserved, Ringing, OnCall, WrapUp}

// Actor kinds: who may make a transition.
const (
	BySystem     = "system"     // ctid itself: ACD, SIP signalling, timers
	ByAgent      = "agent"      // the agent, from the console or PUT /api/v1/agents/me/state
	BySupervisor = "supervisor" // an admin or team lead forcing an agent's state
)

type transition struct {
	from, to AgentState
}

// transitions is the table of allowed moves and who may make each.
var transitions = map[transition][]string{
	{LoggedOut, Ready}:    {ByAgent, BySupervisor},
	{LoggedOut, NotReady}: {ByAgent, BySupervisor},
	{Ready, NotReady}:     {ByAgent, BySupervisor, BySystem},
	{Ready, LoggedOut}:    {ByAgent, BySupervisor, BySystem},
	{NotReady, Ready}:     {ByAgent, BySupervisor},
	{NotReady, NotReady}:  {ByAgent, BySupervisor}, // another reason
	{NotReady, LoggedOut}: {ByAgent, BySupervisor, BySystem},
	{Ready, Reserved}:     {BySystem},
	{Reserved, Ringing}:   {BySystem},
	{Reserved, Ready}:     {BySystem}, // the call went elsewhere before the phone rang
	{Ringing, OnCall}:     {BySystem},
	{Ringing, Ready}:      {BySystem}, // no answer, declined, caller gave up
	{Ringing, NotReady}:   {BySystem}, // the missed-call rule
	{Ready, OnCall}:       {BySystem}, // the agent's own outbound call, or a direct extension call
	{OnCall, WrapUp}:      {BySystem},
	{OnCall, Ready}:       {BySystem}, // no wrap-up time
	{WrapUp, Ready}:       {ByAgent, BySupervisor, BySystem},
	{WrapUp, NotReady}:    {ByAgent, BySupervisor},
	{WrapUp, LoggedOut}:   {ByAgent, BySupervisor},
}

// CheckTransition says whether actor kind who may move an agent from one state to another.
func CheckTransition(from, to AgentState, who string) error {
	for _, w := range transitions[transition{from, to}] {
		if w == who {
			return nil
		}
	}
	if transitions[transition{from, to}] == nil {
		return fault.Errorf(fault.Conflict, "an agent cannot go from %s to %s", from, to)
	}
	return fault.Errorf(fault.Forbidden, "the move from %s to %s is not made by the %s", from, to, who)
}

// AgentStatus is an agent's current state.
type AgentStatus struct {
	AgentID int64
	State   AgentState
	Reason  string
	CallID  string
	Since   time.Time
}

// Agents keeps every agent's state in memory, loaded from agent_states, and makes each
// transition durable (an agent.state event with its log row) before it takes effect.
type Agents struct {
	pool   *pgxpool.Pool
	events *EventLog
	m      *metrics

	mu     sync.Mutex
	agents map[agentKey]*agent

	// onReady is told when an agent of a tenant becomes Ready (the ACD wakes waiting callers).
	onReady func(tenant string)
}

type agentKey struct {
	tenant string
	id     int64
}

type agent struct {
	mu     sync.Mutex // held across the durable write of a transition
	status AgentStatus
	loaded bool

	// view is what the ACD reads while a transition is being written: it must not wait for
	// the event log, or scanning a queue's members would queue behind every write.
	view struct {
		sync.Mutex
		loaded   bool
		state    AgentState
		lastIdle time.Time
		claimed  bool // a call is reserving this Ready agent right now
	}
	// idle is the view as the ACD's scan of a queue's members reads it, in one atomic word:
	// notLoaded, notIdle, or (Ready and not claimed) when the agent became Ready, in Unix
	// nanoseconds. It changes with the view, under its lock.
	idle atomic.Int64
	// lastIdle is when the agent last became Ready: longest-idle-first orders by it.
	lastIdle time.Time
	missed   int // unanswered offers in a row (the missed-call rule)
}

// Values of agent.idle besides a time.
const (
	notLoaded = math.MinInt64 // the state was not read from the database yet
	notIdle   = 0             // not Ready, or claimed by a call
)

// setIdle stores the view in idle; the caller holds the view's lock.
func (ag *agent) setIdle() {
	switch {
	case !ag.view.loaded:
		ag.idle.Store(notLoaded)
	case ag.view.state != Ready || ag.view.claimed:
		ag.idle.Store(notIdle)
	default:
		ag.idle.Store(max(ag.view.lastIdle.UnixNano(), 1))
	}
}

// NewAgents makes the agent state keeper.
func NewAgents(pool *pgxpool.Pool, events *EventLog, m *metrics) *Agents {
	return &Agents{pool: pool, events: events, m: m, agents: map[agentKey]*agent{}}
}

func (a *Agents) get(tenant string, id int64) *agent {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := agentKey{tenant, id}
	ag := a.agents[k]
	if ag == nil {
		ag = &agent{status: AgentStatus{AgentID: id, State: LoggedOut}}
		ag.idle.Store(notLoaded)
		a.agents[k] = ag
	}
	return ag
}

// load reads the agent's stored state once; the caller holds ag.mu.
func (a *Agents) load(ctx context.Context, tenant string, ag *agent) error {
	if ag.loaded {
		return nil
	}
	// Callers on the call path pass no deadline (the state is in memory nearly always).
	ctx, cancel := context.WithTimeout(ctx, handlerTimeout)
	defer cancel()
	err := db.InTenant(ctx, a.pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		var st string
		err := tx.QueryRow(ctx, `SELECT state, reason, call_id, since FROM agent_states WHERE agent_id = $1`, ag.status.AgentID).
			Scan(&st, &ag.status.Reason, &ag.status.CallID, &ag.status.Since)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		ag.status.State = AgentState(st)
		return err
	})
	if err != nil {
		return fmt.Errorf("load state of agent %d: %w", ag.status.AgentID, err)
	}
	ag.loaded = true
	a.m.agents.WithLabelValues(string(ag.status.State)).Inc()
	if ag.status.State == Ready {
		ag.lastIdle = ag.status.Since
	}
	ag.publish()
	return nil
}

// publish copies the state into the view; the caller holds ag.mu.
func (ag *agent) publish() {
	ag.view.Lock()
	ag.view.loaded, ag.view.state, ag.view.lastIdle = ag.loaded, ag.status.State, ag.lastIdle
	ag.view.claimed = false
	ag.setIdle()
	ag.view.Unlock()
}

// Status is the agent's current state.
func (a *Agents) Status(ctx context.Context, tenant string, agentID int64) (AgentStatus, error) {
	ag := a.get(tenant, agentID)
	ag.mu.Lock()
	defer ag.mu.Unlock()
	if err := a.load(ctx, tenant, ag); err != nil {
		return AgentStatus{}, err
	}
	return ag.status, nil
}

// Change is a requested transition.
type Change struct {
	To     AgentState
	Reason string // for Not ready: a code of not_ready_reasons
	CallID string
	Who    string // BySystem, ByAgent, BySupervisor
	Actor  string // logged: "system", "agent", "user:<id>"
	// From, when set, makes the change conditional: it fails with Conflict unless the agent
	// is in that state (the ACD reserving an agent it saw Ready).
	From AgentState
}

// Set moves an agent to another state, checked against the transition table, and returns
// the new status once the transition is durable.
func (a *Agents) Set(ctx context.Context, tenant string, agentID int64, c Change) (AgentStatus, error) {
	return a.set(ctx, tenant, agentID, c, true)
}

// move is Set for the transitions SIP signalling drives during a call (Reserved, Ringing,
// On call, Wrap-up, Ready): the new state takes effect at once and its agent.state event is
// posted to the log's group commit instead of waited for, so a call does not wait for a
// commit at each step. Nobody is told such a transition was saved; the event log writes
// events in the order they were queued and publishes each only once it is durable, so
// subscribers see an agent's transitions in order and gap-free, and a later Set of the same
// agent returns only after this one is durable too.
func (a *Agents) move(ctx context.Context, tenant string, agentID int64, c Change) (AgentStatus, error) {
	return a.set(ctx, tenant, agentID, c, false)
}

func (a *Agents) set(ctx context.Context, tenant string, agentID int64, c Change, wait bool) (AgentStatus, error) {
	ag := a.get(tenant, agentID)
	if c.From != "" {
		// A conditional move fails at once when the agent is elsewhere or being reserved by
		// another call: concurrent calls must not queue up behind one agent's write.
		ag.view.Lock()
		busy := ag.view.loaded && (ag.view.state != c.From || ag.view.claimed)
		claim := !busy && c.To == Reserved
		if claim {
			ag.view.claimed = true
			ag.setIdle()
		}
		ag.view.Unlock()
		if busy {
			return AgentStatus{}, fault.Errorf(fault.Conflict, "agent %d is not %s", agentID, c.From)
		}
		if claim {
			defer func() {
				ag.view.Lock()
				if ag.view.state != Reserved {
					ag.view.claimed = false // the reservation failed
					ag.setIdle()
				}
				ag.view.Unlock()
			}()
		}
	}
	ag.mu.Lock()
	defer ag.mu.Unlock()
	if err := a.load(ctx, tenant, ag); err != nil {
		return AgentStatus{}, err
	}
	from := ag.status.State
	if c.From != "" && c.From != from {
		return ag.status, fault.Errorf(fault.Conflict, "agent %d is %s, not %s", agentID, from, c.From)
	}
	if err := CheckTransition(from, c.To, c.Who); err != nil {
		return ag.status, err
	}
	if c.To == NotReady && c.Reason == "" {
		return ag.status, fault.Errorf(fault.Invalid, "not ready needs a reason")
	}
	if c.To == NotReady && c.Who != BySystem {
		if err := a.checkReason(ctx, tenant, c.Reason); err != nil {
			return ag.status, err
		}
	}
	switch {
	case c.To == LoggedOut && c.Who != BySystem:
		// Why an agent was logged out (a supervisor forcing it at the end of a shift) is kept
		// in the log and the event, like a not-ready reason; it is a free note, not a code.
		c.Reason = strings.TrimSpace(c.Reason)
		if err := checkLogoutReason(c.Reason); err != nil {
			return ag.status, err
		}
	case c.To != NotReady && c.Who != BySystem:
		c.Reason = ""
	}
	actor := c.Actor
	if actor == "" {
		actor = c.Who
	}
	ev := Event{
		Tenant: tenant, Type: AgentStateSet, AgentID: agentID, CallID: c.CallID, At: time.Now(),
		Data:  map[string]string{"from": string(from), "to": string(c.To), "reason": c.Reason},
		State: &StateChange{From: from, To: c.To, Reason: c.Reason, Actor: actor},
	}
	var err error
	if wait {
		ev, err = a.events.Append(ctx, ev)
	} else {
		err = a.events.Post(ev)
	}
	if err != nil {
		return ag.status, fmt.Errorf("agent %d %s → %s: %w", agentID, from, c.To, err)
	}
	a.m.agents.WithLabelValues(string(from)).Dec()
	a.m.agents.WithLabelValues(string(c.To)).Inc()
	ag.status = AgentStatus{AgentID: agentID, State: c.To, Reason: c.Reason, CallID: c.CallID, Since: ev.At}
	if c.To == Ready {
		ag.lastIdle = ev.At
	}
	if c.To == OnCall {
		ag.missed = 0
	}
	ag.publish()
	if c.To == Ready && a.onReady != nil {
		a.onReady(tenant)
	}
	return ag.status, nil
}

// idleOf is idle for an agent already looked up (the ACD keeps the pointers of a queue's
// members: looking each one up in the map on every call cost more than the rest of the call):
// whether it is Ready and not claimed by a call, and since when in Unix nanoseconds. It reads
// one atomic word, no lock: the ACD scans every member of a queue for every call.
func (a *Agents) idleOf(ctx context.Context, tenant string, ag *agent) (bool, int64, error) {
	if v := ag.idle.Load(); v != notLoaded {
		return v != notIdle, v, nil
	}
	ag.mu.Lock()
	defer ag.mu.Unlock()
	if err := a.load(ctx, tenant, ag); err != nil {
		return false, 0, err
	}
	v := ag.idle.Load()
	return v != notIdle && v != notLoaded, v, nil
}

// missedOffer counts an unanswered offer and reports whether the agent reached limit
// (0: the missed-call rule is off).
func (a *Agents) missedOffer(tenant string, agentID int64, limit int) bool {
	ag := a.get(tenant, agentID)
	ag.mu.Lock()
	defer ag.mu.Unlock()
	ag.missed++
	if limit > 0 && ag.missed >= limit {
		ag.missed = 0
		return true
	}
	return false
}

// maxLogoutReason bounds the note a logout may carry.
const maxLogoutReason = 120 // characters: 120 four-byte runes still fit an event field

// checkLogoutReason says what is wrong with the note of a logout.
func checkLogoutReason(reason string) error {
	if utf8.RuneCountInString(reason) > maxLogoutReason {
		return fault.Errorf(fault.Invalid, "logout reason is longer than %d characters", maxLogoutReason)
	}
	for _, r := range reason {
		if unicode.IsControl(r) {
			return fault.Errorf(fault.Invalid, "logout reason contains a control character")
		}
	}
	return nil
}

func (a *Agents) checkReason(ctx context.Context, tenant, reason string) error {
	var system bool
	err := db.InTenant(ctx, a.pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT system FROM not_ready_reasons WHERE code = $1`, reason).Scan(&system)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.Errorf(fault.Invalid, "not-ready reason %q is not in the tenant's reason codes", reason)
	}
	if err != nil {
		return fmt.Errorf("check not-ready reason %q: %w", reason, err)
	}
	if system {
		return fault.Errorf(fault.Invalid, "not-ready reason %q is set by ctid only", reason)
	}
	return nil
}

// StateLogEntry is one logged transition.
type StateLogEntry struct {
	Seq      int64
	At       time.Time
	From, To AgentState
	Reason   string
	CallID   string
	Actor    string
}

// StateLog lists an agent's transitions, oldest first.
func StateLog(ctx context.Context, pool *pgxpool.Pool, tenant string, agentID int64) ([]StateLogEntry, error) {
	var out []StateLogEntry
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, at, from_state, to_state, reason, call_id, actor
			FROM agent_state_log WHERE agent_id = $1 ORDER BY seq`, agentID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e StateLogEntry
			var from, to string
			if err := rows.Scan(&e.Seq, &e.At, &from, &to, &e.Reason, &e.CallID, &e.Actor); err != nil {
				return err
			}
			e.From, e.To = AgentState(from), AgentState(to)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read state log of agent %d: %w", agentID, err)
	}
	return out, nil
}

func isConflict(err error) bool { return fault.CodeOf(err) == fault.Conflict }
