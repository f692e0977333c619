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
	// wrapQueue is the queue of each of today's (and yesterday's) calls that count for a
	// queue: the wrap-up an agent does after one counts for that queue when it ends.
	wrapQueue map[string]wrapCall

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
}

// wrapCall is a call whose agent's wrap-up counts for its queue.
type wrapCall struct {
	queue string
	day   string // the date it was offered
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
	qd, err := loadDefinition(queueTemplate, query.QueueGrain, colOffered, colAnswered, colAbandoned, colAnsweredInSL, colWaitAvg, colServiceLevel, colHandleAvg)
	if err != nil {
		return nil, err
	}
	ad, err := loadDefinition(agentTemplate, query.AgentGrain, colAnswered, colTalkAvg, colHandleAvg)
	if err != nil {
		return nil, err
	}
	if loc == nil {
		loc = time.UTC
	}
	return &Board{loc: loc, queueD: qd, agentD: ad,
		agents: map[int64]*agentState{}, queues: map[string]*queueState{}, members: map[string][]int64{},
		calls: map[string]*callState{}, wrapQueue: map[string]wrapCall{}, dirtyAgents: map[int64]bool{}, dirtyQueues: map[string]bool{}}, nil
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
		q = &queueState{name: name, waiting: map[string]time.Time{}, today: b.queueD.newTally()}
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
	if q.today.add(row, q.sl) {
		b.wrapQueue[c.CallID] = wrapCall{queue: c.Queue, day: day}
	}
	b.dirtyQueues[c.Queue] = true
	if c.AgentID != 0 {
		a := b.agent(c.AgentID)
		a.handled.add(row, 0)
		b.dirtyAgents[c.AgentID] = true
	}
}

// leave counts the interval an agent ends by a transition at at, as the rollups do
// (query.Rollups): the part of it in today's date goes to the agent's state counters (wrap-up
// time, login time, …) and the interval is counted as ended; a wrap-up also counts for the
// queue of the call it began with. from is the state left; an interval whose start the board
// did not see (it began before the board's day) counts from the start of the day.
func (b *Board) leave(a *agentState, from cti.AgentState, callID string, at time.Time) {
	if from == "" || from == cti.LoggedOut {
		return
	}
	start := b.dayStart()
	if at.Before(start) {
		return // an earlier day's: that day's report counts it
	}
	since := a.since
	if a.state != from || since.Before(start) {
		since = start
	}
	d := max(at.Sub(since), 0)
	g := b.agentD.grain
	g.AddState(a.handled.t, string(from), d)
	g.LeaveState(a.handled.t, string(from))
	b.dirtyAgents[a.id] = true
	if from != cti.WrapUp {
		return
	}
	call := a.callID
	if a.state != from || call == "" {
		call = callID
	}
	w, ok := b.wrapQueue[call]
	if !ok {
		return
	}
	delete(b.wrapQueue, call)
	q := b.queue(w.queue)
	b.queueD.grain.AddState(q.today.t, string(from), d)
	b.queueD.grain.LeaveState(q.today.t, string(from))
	b.dirtyQueues[w.queue] = true
}

// transition applies an agent's change of state from from to st (st.Since: when).
func (b *Board) transition(from cti.AgentState, st cti.AgentStatus) {
	st.Since = st.Since.Truncate(time.Microsecond)
	b.Tick(st.Since)
	b.leave(b.agent(st.AgentID), from, st.CallID, st.Since)
	b.SetAgent(st)
}

// dayStart is the start of the board's date in the tenant's zone.
func (b *Board) dayStart() time.Time {
	d, err := time.ParseInLocation(time.DateOnly, b.day, b.loc)
	if err != nil {
		return time.Time{} // no day yet: nothing counted before the first
	}
	return d
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
	// A wrap-up after yesterday's last calls still counts for their queues, in today's part.
	for id, w := range b.wrapQueue {
		if w.day < b.day {
			delete(b.wrapQueue, id)
		}
	}
	b.day = day
	for name, q := range b.queues {
		q.today = b.queueD.newTally()
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
		st := cti.AgentStatus{AgentID: ev.AgentID, CallID: ev.CallID, Since: ev.At}
		var from cti.AgentState
		if ev.State != nil {
			from, st.State, st.Reason = ev.State.From, ev.State.To, ev.State.Reason
		} else {
			// Replayed from the table: the transition is in Data.
			from, st.State, st.Reason = cti.AgentState(ev.Data["from"]), cti.AgentState(ev.Data["to"]), ev.Data["reason"]
		}
		b.transition(from, st)
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
	Handled   int64     `json:"handled"`    // agent template "answered", today
	TalkAvg   *float64  `json:"talk_avg"`   // agent template "talk_avg", today, seconds
	HandleAvg *float64  `json:"handle_avg"` // agent template "handle_avg" (talk + wrap-up), today, seconds
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
	HandleAvg    *float64 `json:"handle_avg"`    // seconds, talk + wrap-up of answered calls whose wrap-up is over
	SLSeconds    int      `json:"sl_seconds"`
}

func (b *Board) agentView(a *agentState) AgentView {
	v := AgentView{ID: a.id, Name: a.person.Name, Extension: a.person.Extension, Team: a.person.Team, State: string(a.state), Reason: a.reason, Since: a.since, CallID: a.callID,
		Handled: a.handled.count(colAnswered), TalkAvg: a.handled.avgSeconds(colTalkAvg), HandleAvg: a.handled.avgSeconds(colHandleAvg)}
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
		ServiceLevel: q.today.ratio(colServiceLevel), WaitAvg: q.today.avgSeconds(colWaitAvg), HandleAvg: q.today.avgSeconds(colHandleAvg)}
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
