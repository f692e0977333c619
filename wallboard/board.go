// Package wallboard is the live floor state of a tenant — agents by state with time in state,
// queues with callers waiting and today's figures — derived from the event log and the
// agent-state log of package cti, and pushed to supervisors' and team leads' boards over a
// WebSocket (docs/wallboard.md).
package wallboard

import (
	"sort"
	"time"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/query"
)

// Board is one tenant's floor, built by applying its events in sequence order. It is not safe
// for concurrent use: one goroutine per tenant owns it.
type Board struct {
	Seq int64 // the last event applied

	loc    *time.Location
	day    string // the tenant's date the figures count (offered_at of the CDRs)
	queueD *definition
	agentD *definition

	agents  map[int64]*agentState
	queues  map[string]*queueState
	members map[string][]int64 // queue → agent ids
	calls   map[string]*callState

	// dirty holds what changed since the last frame.
	dirtyAgents map[int64]bool
	dirtyQueues map[string]bool
}

type agentState struct {
	id      int64
	person  Person
	state   cti.AgentState
	reason  string
	since   time.Time
	callID  string
	handled *tally // agent template, this agent's CDRs of the day
}

type queueState struct {
	name    string
	sl      time.Duration // the queue's service-level threshold
	waiting map[string]time.Time
	today   *tally // queue template
	talk    *tally // agent template (average talk) over the queue's calls
}

type callState struct {
	id         string
	caller     string
	customer   string // the matched customer's name from the call's pop, "" when none
	queue      string
	agent      int64
	offeredAt  time.Time
	answeredAt time.Time
	waiting    bool
}

// QueueConfig is what the board knows of a configured queue.
type QueueConfig struct {
	Name         string
	ServiceLevel time.Duration
	Members      []int64
}

// NewBoard makes an empty board whose "today" is in loc. The figures' definitions come from
// the query engine's standard templates.
func NewBoard(loc *time.Location) (*Board, error) {
	qd, err := loadDefinition(queueTemplate, query.QueueGrain, colOffered, colAnswered, colAbandoned, colAnsweredInSL, colWaitAvg, colServiceLevel)
	if err != nil {
		return nil, err
	}
	ad, err := loadDefinition(agentTemplate, query.AgentGrain, colAnswered, colTalkAvg)
	if err != nil {
		return nil, err
	}
	if loc == nil {
		loc = time.UTC
	}
	return &Board{loc: loc, queueD: qd, agentD: ad,
		agents: map[int64]*agentState{}, queues: map[string]*queueState{}, members: map[string][]int64{},
		calls: map[string]*callState{}, dirtyAgents: map[int64]bool{}, dirtyQueues: map[string]bool{}}, nil
}

// SetQueues replaces the configured queues and their members (queues are configuration, not
// events: the service reloads them).
func (b *Board) SetQueues(qs []QueueConfig) {
	seen := map[string]bool{}
	b.members = map[string][]int64{}
	for _, q := range qs {
		seen[q.Name] = true
		st := b.queue(q.Name)
		st.sl = q.ServiceLevel
		b.members[q.Name] = append([]int64(nil), q.Members...)
		b.dirtyQueues[q.Name] = true
	}
	for name, q := range b.queues {
		if !seen[name] && len(q.waiting) == 0 && q.today.count(colOffered) == 0 {
			delete(b.queues, name)
		}
	}
}

func (b *Board) queue(name string) *queueState {
	q := b.queues[name]
	if q == nil {
		q = &queueState{name: name, waiting: map[string]time.Time{}, today: b.queueD.newTally(), talk: b.agentD.newTally()}
		b.queues[name] = q
	}
	return q
}

func (b *Board) agent(id int64) *agentState {
	a := b.agents[id]
	if a == nil {
		a = &agentState{id: id, state: cti.LoggedOut, handled: b.agentD.newTally()}
		b.agents[id] = a
	}
	return a
}

// Person is what the board shows of an agent beside the state.
type Person struct {
	Name      string
	Extension string
	TeamID    int64
	Team      string
}

// SetDirectory names the tenant's agents; each one has a row, logged in or not.
func (b *Board) SetDirectory(people map[int64]Person) {
	for id, p := range people {
		a := b.agent(id)
		if a.person != p {
			a.person = p
			b.dirtyAgents[id] = true
		}
	}
}

// TeamOf is the team of an agent (0: none or unknown).
func (b *Board) TeamOf(id int64) int64 {
	if a := b.agents[id]; a != nil {
		return a.person.TeamID
	}
	return 0
}

// SetAgent sets an agent's current state as stored in agent_states (rebuild after restart).
func (b *Board) SetAgent(st cti.AgentStatus) {
	a := b.agent(st.AgentID)
	a.state, a.reason, a.since, a.callID = st.State, st.Reason, st.Since.Truncate(time.Microsecond), st.CallID
	b.touchAgent(a.id)
}

// AddCDR counts a finished call in today's figures, when it was offered today.
func (b *Board) AddCDR(c *cti.CDR) { b.addCDR(c, -1, -1) }

// AddStoredCDR is AddCDR with the wait and talk seconds as stored in cdrs (milliseconds).
func (b *Board) AddStoredCDR(c *cti.CDR, waitMs, talkMs int64) { b.addCDR(c, waitMs, talkMs) }

func (b *Board) addCDR(c *cti.CDR, waitMs, talkMs int64) {
	day := c.OfferedAt.In(b.loc).Format(time.DateOnly)
	switch {
	case day > b.day:
		b.resetDay(day)
	case day < b.day:
		return // offered on an earlier day: that day's report counts it, not today's
	}
	row := callFacts(c, waitMs, talkMs)
	q := b.queue(c.Queue)
	q.today.add(row, q.sl)
	q.talk.add(row, 0)
	b.dirtyQueues[c.Queue] = true
	if c.AgentID != 0 {
		a := b.agent(c.AgentID)
		a.handled.add(row, 0)
		b.dirtyAgents[c.AgentID] = true
	}
}

// Tick starts a new day's figures when the tenant's date has changed; it reports whether it did.
func (b *Board) Tick(now time.Time) bool {
	day := now.In(b.loc).Format(time.DateOnly)
	if day > b.day {
		b.resetDay(day)
		return true
	}
	return false
}

func (b *Board) resetDay(day string) {
	b.day = day
	for name, q := range b.queues {
		q.today, q.talk = b.queueD.newTally(), b.agentD.newTally()
		b.dirtyQueues[name] = true
	}
	for id, a := range b.agents {
		a.handled = b.agentD.newTally()
		b.dirtyAgents[id] = true
	}
}

// Apply applies one event of the tenant's log. Events at or below Seq are ignored (the live
// stream and a rebuild overlap at their seam).
func (b *Board) Apply(ev cti.Event) {
	if ev.Seq != 0 && ev.Seq <= b.Seq {
		return
	}
	if ev.Seq > b.Seq {
		b.Seq = ev.Seq
	}
	// Times as the database keeps them (microseconds): a rebuilt board shows the same.
	ev.At = ev.At.Truncate(time.Microsecond)
	c := b.calls[ev.CallID]
	switch ev.Type {
	case cti.CallOffered:
		b.calls[ev.CallID] = &callState{id: ev.CallID, caller: ev.Data["caller"], queue: ev.Queue, offeredAt: ev.At}
	case cti.CallQueued:
		if c == nil {
			c = &callState{id: ev.CallID, offeredAt: ev.At}
			b.calls[ev.CallID] = c
		}
		b.stopWaiting(c)
		if ev.Queue != "" {
			c.queue = ev.Queue
		}
		c.waiting = true
		b.queue(c.queue).waiting[c.id] = ev.At
		b.dirtyQueues[c.queue] = true
	case cti.CallRinging:
		if c != nil {
			c.agent = ev.AgentID
		}
	case cti.CallAnswered:
		if c != nil {
			c.agent, c.answeredAt = ev.AgentID, ev.At
			b.stopWaiting(c)
			b.touchAgent(ev.AgentID)
		}
	case cti.CallAbandoned, cti.CallOverflowed:
		if c != nil {
			b.stopWaiting(c)
		}
	case cti.CallEnded:
		if c != nil {
			b.stopWaiting(c)
			delete(b.calls, ev.CallID)
			if c.agent != 0 {
				b.touchAgent(c.agent)
			}
		}
		if ev.CDR != nil {
			b.AddCDR(ev.CDR)
		}
	case cti.AgentStateSet:
		if ev.State != nil {
			b.SetAgent(cti.AgentStatus{AgentID: ev.AgentID, State: ev.State.To, Reason: ev.State.Reason, CallID: ev.CallID, Since: ev.At})
		} else {
			// Replayed from the table: the transition is in Data.
			b.SetAgent(cti.AgentStatus{AgentID: ev.AgentID, State: cti.AgentState(ev.Data["to"]), Reason: ev.Data["reason"], CallID: ev.CallID, Since: ev.At})
		}
	}
}

// SetCustomer names the customer of an open call (looked up from its pop).
func (b *Board) SetCustomer(callID, name string) {
	c := b.calls[callID]
	if c == nil || c.customer == name {
		return
	}
	c.customer = name
	if c.agent != 0 {
		b.touchAgent(c.agent)
	}
}

// answeredCalls lists the open calls an agent has answered (their pops name the customer).
func (b *Board) answeredCalls() []string {
	var out []string
	for id, c := range b.calls {
		if !c.answeredAt.IsZero() {
			out = append(out, id)
		}
	}
	return out
}

func (b *Board) stopWaiting(c *callState) {
	if !c.waiting {
		return
	}
	c.waiting = false
	if q := b.queues[c.queue]; q != nil {
		delete(q.waiting, c.id)
	}
	b.dirtyQueues[c.queue] = true
}

func (b *Board) touchAgent(id int64) {
	b.dirtyAgents[id] = true
	for q, ids := range b.members {
		for _, m := range ids {
			if m == id {
				b.dirtyQueues[q] = true
			}
		}
	}
}

// AgentView is one agent's row on a board.
type AgentView struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name,omitempty"`
	Extension string    `json:"extension,omitempty"`
	Team      string    `json:"team,omitempty"`
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	CallID    string    `json:"call_id,omitempty"`
	Caller    string    `json:"caller,omitempty"`
	// Customer is the name of the customer the caller's number matched (from the pop).
	Customer string `json:"customer,omitempty"`
	// TalkSince is when the current call was answered (talk time ticks from it).
	TalkSince time.Time `json:"talk_since,omitzero"`
	Handled   int64     `json:"handled"`  // agent template "answered", today
	TalkAvg   *float64  `json:"talk_avg"` // agent template "talk_avg", today, seconds
}

// QueueView is one queue's row on a board.
type QueueView struct {
	Name    string `json:"name"`
	Waiting int    `json:"waiting"`
	// OldestSince is when the longest-waiting caller started waiting (the wait ticks from it).
	OldestSince time.Time `json:"oldest_since,omitzero"`
	Ready       int       `json:"ready"`
	OnCall      int       `json:"on_call"` // reserved, ringing, on call or wrap-up
	NotReady    int       `json:"not_ready"`
	// Today's figures: the queue template's columns over the CDRs offered today.
	Offered      int64    `json:"offered"`
	Answered     int64    `json:"answered"`
	Abandoned    int64    `json:"abandoned"`
	AnsweredInSL int64    `json:"answered_in_sl"`
	ServiceLevel *float64 `json:"service_level"` // answered within the threshold ÷ offered
	WaitAvg      *float64 `json:"wait_avg"`      // seconds
	TalkAvg      *float64 `json:"talk_avg"`      // seconds, the agent template's talk_avg over the queue's calls
	SLSeconds    int      `json:"sl_seconds"`
}

func (b *Board) agentView(a *agentState) AgentView {
	v := AgentView{ID: a.id, Name: a.person.Name, Extension: a.person.Extension, Team: a.person.Team, State: string(a.state), Reason: a.reason, Since: a.since, CallID: a.callID,
		Handled: a.handled.count(colAnswered), TalkAvg: a.handled.avgSeconds(colTalkAvg)}
	if c := b.calls[a.callID]; c != nil {
		v.Caller, v.Customer = c.caller, c.customer
		if c.agent == a.id {
			v.TalkSince = c.answeredAt
		}
	} else if a.callID == "" {
		// The agent.state event of Ready → On call may come before call.answered's: find the call.
		for _, c := range b.calls {
			if c.agent == a.id && !c.answeredAt.IsZero() && (a.state == cti.OnCall) {
				v.CallID, v.Caller, v.Customer, v.TalkSince = c.id, c.caller, c.customer, c.answeredAt
			}
		}
	}
	return v
}

func (b *Board) queueView(q *queueState) QueueView {
	v := QueueView{Name: q.name, Waiting: len(q.waiting), SLSeconds: int(q.sl / time.Second),
		Offered: q.today.count(colOffered), Answered: q.today.count(colAnswered),
		Abandoned: q.today.count(colAbandoned), AnsweredInSL: q.today.count(colAnsweredInSL),
		ServiceLevel: q.today.ratio(colServiceLevel), WaitAvg: q.today.avgSeconds(colWaitAvg)}
	for _, at := range q.waiting {
		if v.OldestSince.IsZero() || at.Before(v.OldestSince) {
			v.OldestSince = at
		}
	}
	for _, id := range b.members[q.name] {
		a := b.agents[id]
		if a == nil {
			continue
		}
		switch a.state {
		case cti.Ready:
			v.Ready++
		case cti.NotReady:
			v.NotReady++
		case cti.Reserved, cti.Ringing, cti.OnCall, cti.WrapUp:
			v.OnCall++
		}
	}
	// Average talk of the queue's calls: the agent template's definition over the queue's CDRs.
	v.TalkAvg = q.talk.avgSeconds(colTalkAvg)
	return v
}

// Snapshot is a whole board as a viewer may see it.
type Snapshot struct {
	Seq    int64       `json:"seq"`
	Day    string      `json:"day"`
	Agents []AgentView `json:"agents"`
	Queues []QueueView `json:"queues"`
}

// Snapshot returns the agents that visible accepts (nil: every agent) and every queue.
func (b *Board) Snapshot(visible func(agentID int64) bool) Snapshot {
	s := Snapshot{Seq: b.Seq, Day: b.day, Agents: []AgentView{}, Queues: []QueueView{}}
	for id, a := range b.agents {
		if visible == nil || visible(id) {
			s.Agents = append(s.Agents, b.agentView(a))
		}
	}
	for _, q := range b.queues {
		if q.name != "" { // calls to an extension: counted in reports, no queue panel
			s.Queues = append(s.Queues, b.queueView(q))
		}
	}
	sortViews(&s)
	return s
}

// Changes returns what changed since the last call (for the agents visible accepts) and
// forgets it: the rows of a delta frame.
func (b *Board) Changes() (agents []int64, queues []string) {
	for id := range b.dirtyAgents {
		agents = append(agents, id)
	}
	for q := range b.dirtyQueues {
		queues = append(queues, q)
	}
	clear(b.dirtyAgents)
	clear(b.dirtyQueues)
	return agents, queues
}

// Delta is the rows of the given agents (filtered by visible) and queues.
func (b *Board) Delta(agents []int64, queues []string, visible func(int64) bool) Snapshot {
	s := Snapshot{Seq: b.Seq, Day: b.day, Agents: []AgentView{}, Queues: []QueueView{}}
	for _, id := range agents {
		if a := b.agents[id]; a != nil && (visible == nil || visible(id)) {
			s.Agents = append(s.Agents, b.agentView(a))
		}
	}
	for _, name := range queues {
		if q := b.queues[name]; q != nil && name != "" {
			s.Queues = append(s.Queues, b.queueView(q))
		}
	}
	sortViews(&s)
	return s
}

func sortViews(s *Snapshot) {
	sort.Slice(s.Agents, func(i, j int) bool { return s.Agents[i].ID < s.Agents[j].ID })
	sort.Slice(s.Queues, func(i, j int) bool { return s.Queues[i].Name < s.Queues[j].Name })
}
