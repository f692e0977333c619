package query

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The statistics' metrics are declared once, in two layers (docs/metrics.md):
//
//   - counters (this file): the additive quantities the rollups keep per agent or queue and
//     bucket, each declared as what one call (a CDR) or one agent-state interval adds;
//   - metrics (the templates' columns, query/templates/*.json): sums and maxima of counters
//     and formulas over them (ratio, add, sub), such as handle time = talk + wrap-up.
//
// The rollup worker applies the counters to the event log; the live wallboard applies the
// same counters to each call as it ends (Grain.AddCall into a Tally) and evaluates the same
// template columns over its tally (Evaluate), so a report and the board never disagree.

// Units of a counter.
const (
	UnitCount   = "count"
	UnitSeconds = "seconds"
)

// Thresholds of a call counter's wait condition.
const (
	// ThresholdServiceLevel is the queue's own service-level threshold (queues.service_level_s).
	ThresholdServiceLevel = "service_level"
	// ThresholdShortAbandon is ShortAbandon: a caller who hung up within it is a short abandon.
	ThresholdShortAbandon = "short_abandon"
)

// ShortAbandon is the short-abandon threshold: an abandoned call that waited at most this long
// is counted apart (short_abandoned) and left out of the abandon rate.
const ShortAbandon = 5 * time.Second

// Counter is one rollup column: what a call or a state interval adds to it.
type Counter struct {
	Key   string // the rollup column
	Label Label
	Unit  string
	// A call counter: Agg is count (one per matching call), sum or max of Field, over the
	// calls that match Where and, when WaitWithin names a threshold, waited at most that long.
	Agg        string
	Field      string
	Where      *Filter
	WaitWithin string
	// A state counter: the seconds spent in States, or with Ends the number of intervals in
	// one of them that ended (counted in the bucket where each ends). Closed seconds count
	// only once the interval is over: an agent's open interval adds nothing yet (wrap-up, so
	// that a report and the live board agree while an agent is still wrapping up).
	States []string
	Ends   bool
	Closed bool
}

// IsState reports whether the counter counts agent-state time rather than calls.
func (c Counter) IsState() bool { return len(c.States) > 0 }

// Grain is what a rollup is kept per (agent or queue), with its counters.
type Grain struct {
	Key string // "agent" or "queue"
	// Calls is which calls count for the grain at all; a call counts for the agent or queue it
	// names (agent_id, queue).
	Calls    Filter
	Counters []Counter
}

func eq(field string, values ...string) Filter {
	op := OpEq
	if len(values) > 1 {
		op = OpIn
	}
	return Filter{Field: field, Op: op, Values: values}
}

func and(f Filter, also ...Filter) *Filter {
	f.Also = also
	return &f
}

// Agent states as cti names them (agent_state_log.to_state).
var (
	loggedInStates = []string{"ready", "not_ready", "reserved", "ringing", "on_call", "wrap_up"}
	busyStates     = []string{"reserved", "ringing", "on_call", "wrap_up"}
)

// AgentGrain: per agent. Calls count for the agent of the CDR (agent_id: who answered, or the
// last agent offered). State time comes from the agent-state log.
var AgentGrain = &Grain{
	Key:   "agent",
	Calls: Filter{Field: "agent_id", Op: OpNotNull},
	Counters: []Counter{
		{Key: "offered", Label: Label{"Offered", "呼入"}, Unit: UnitCount, Agg: AggCount, Where: &Filter{Field: "direction", Op: OpEq, Values: []string{"inbound"}}},
		{Key: "answered", Label: Label{"Answered", "接听"}, Unit: UnitCount, Agg: AggCount, Where: and(eq("result", "answered"), eq("direction", "inbound"))},
		{Key: "missed", Label: Label{"Missed", "未接"}, Unit: UnitCount, Agg: AggCount, Where: and(eq("result", "no_answer", "timeout", "busy", "rejected"), eq("direction", "inbound"))},
		{Key: "abandoned_ringing", Label: Label{"Abandoned while ringing", "振铃放弃"}, Unit: UnitCount, Agg: AggCount, Where: and(eq("result", "abandoned"), Filter{Field: "ringing_at", Op: OpNotNull})},
		{Key: "outbound", Label: Label{"Outbound", "外拨"}, Unit: UnitCount, Agg: AggCount, Where: &Filter{Field: "direction", Op: OpEq, Values: []string{"outbound"}}},
		{Key: "handled", Label: Label{"Handled", "处理"}, Unit: UnitCount, Agg: AggCount, Where: &Filter{Field: "result", Op: OpEq, Values: []string{"answered"}}},
		{Key: "talk_seconds", Label: Label{"Talk time", "通话时长"}, Unit: UnitSeconds, Agg: AggSum, Field: "talk_seconds", Where: &Filter{Field: "result", Op: OpEq, Values: []string{"answered"}}},
		{Key: "wrap_count", Label: Label{"Wrap-ups", "话后处理次数"}, Unit: UnitCount, States: []string{"wrap_up"}, Ends: true},
		{Key: "wrap_seconds", Label: Label{"Wrap-up time", "话后处理时长"}, Unit: UnitSeconds, States: []string{"wrap_up"}, Closed: true},
		{Key: "login_seconds", Label: Label{"Login time", "登录时长"}, Unit: UnitSeconds, States: loggedInStates},
		{Key: "ready_seconds", Label: Label{"Ready time", "就绪时长"}, Unit: UnitSeconds, States: []string{"ready"}},
		{Key: "not_ready_seconds", Label: Label{"Not-ready time", "示忙时长"}, Unit: UnitSeconds, States: []string{"not_ready"}},
		{Key: "busy_seconds", Label: Label{"Busy time", "忙碌时长"}, Unit: UnitSeconds, States: busyStates},
	},
}

// QueueGrain: per queue, the inbound calls that reached a queue, and the wrap-up time that
// followed them (an agent's wrap-up interval counts for the queue of the call it began with).
var QueueGrain = &Grain{
	Key:   "queue",
	Calls: *and(eq("direction", "inbound"), Filter{Field: "queue", Op: OpNe, Values: []string{""}}),
	Counters: []Counter{
		{Key: "offered", Label: Label{"Offered", "呼入"}, Unit: UnitCount, Agg: AggCount},
		{Key: "answered", Label: Label{"Answered", "接听"}, Unit: UnitCount, Agg: AggCount, Where: &Filter{Field: "result", Op: OpEq, Values: []string{"answered"}}},
		{Key: "abandoned", Label: Label{"Abandoned", "放弃"}, Unit: UnitCount, Agg: AggCount, Where: &Filter{Field: "result", Op: OpEq, Values: []string{"abandoned"}}},
		{Key: "short_abandoned", Label: Label{"Short abandons", "短时放弃"}, Unit: UnitCount, Agg: AggCount, Where: &Filter{Field: "result", Op: OpEq, Values: []string{"abandoned"}}, WaitWithin: ThresholdShortAbandon},
		{Key: "answered_in_sl", Label: Label{"Answered within threshold", "阈值内接听"}, Unit: UnitCount, Agg: AggCount, Where: &Filter{Field: "result", Op: OpEq, Values: []string{"answered"}}, WaitWithin: ThresholdServiceLevel},
		{Key: "wait_seconds", Label: Label{"Wait time", "等待时长"}, Unit: UnitSeconds, Agg: AggSum, Field: "wait_seconds"},
		{Key: "wait_max", Label: Label{"Longest wait", "最长等待"}, Unit: UnitSeconds, Agg: AggMax, Field: "wait_seconds"},
		{Key: "talk_seconds", Label: Label{"Talk time", "通话时长"}, Unit: UnitSeconds, Agg: AggSum, Field: "talk_seconds", Where: &Filter{Field: "result", Op: OpEq, Values: []string{"answered"}}},
		{Key: "wrap_seconds", Label: Label{"Wrap-up time", "话后处理时长"}, Unit: UnitSeconds, States: []string{"wrap_up"}, Closed: true},
	},
}

// Counter finds a counter by key.
func (g *Grain) Counter(key string) (Counter, bool) {
	for _, c := range g.Counters {
		if c.Key == key {
			return c, true
		}
	}
	return Counter{}, false
}

// CallFacts is what the counters read of a call: the CDR fields their filters name.
type CallFacts struct {
	Direction string // inbound, outbound, internal
	Result    string
	Queue     string
	AgentID   int64 // 0: none
	OfferedAt time.Time
	Ringing   bool // an agent's phone rang (ringing_at is set)
	Queued    bool
	Answered  bool
	// Wait and talk as stored in cdrs (numeric(12,3): milliseconds).
	Wait, Talk time.Duration
}

// Thresholds are a queue's wait thresholds; zero ones fall back to the defaults.
type Thresholds struct {
	ServiceLevel time.Duration
}

// DefaultServiceLevel is queues.service_level_s's default, for calls of an unknown queue.
const DefaultServiceLevel = 20 * time.Second

// Tally holds counter values in millionths (a count of 3 is 3,000,000; 1.5 s is 1,500,000),
// so sums of seconds are exact, as in the rollups' numeric columns.
type Tally map[string]int64

const micro = 1_000_000

// AddCall adds one call to t, under the grain's counters; it reports whether the call counts
// for the grain at all.
func (g *Grain) AddCall(t Tally, c CallFacts, th Thresholds) bool {
	if !matchCall(g.Calls, c) {
		return false
	}
	for _, k := range g.Counters {
		if k.IsState() {
			continue
		}
		if k.Where != nil && !matchCall(*k.Where, c) {
			continue
		}
		if k.WaitWithin != "" && c.Wait > th.of(k.WaitWithin) {
			continue
		}
		switch k.Agg {
		case AggCount:
			t[k.Key] += micro
		case AggSum:
			t[k.Key] += callValue(k.Field, c)
		case AggMax:
			t[k.Key] = max(t[k.Key], callValue(k.Field, c))
		}
	}
	return true
}

func (th Thresholds) of(name string) time.Duration {
	switch name {
	case ThresholdServiceLevel:
		if th.ServiceLevel > 0 {
			return th.ServiceLevel
		}
		return DefaultServiceLevel
	case ThresholdShortAbandon:
		return ShortAbandon
	}
	return -1 // an unknown threshold matches no call
}

// AddState adds d spent in state (part of an interval that has ended) to t's time counters;
// the caller splits intervals by bucket.
func (g *Grain) AddState(t Tally, state string, d time.Duration) {
	for _, k := range g.Counters {
		if k.IsState() && !k.Ends && slices.Contains(k.States, state) {
			t[k.Key] += d.Microseconds()
		}
	}
}

// LeaveState counts an interval in state that ended (an agent left the state).
func (g *Grain) LeaveState(t Tally, state string) {
	for _, k := range g.Counters {
		if k.IsState() && k.Ends && slices.Contains(k.States, state) {
			t[k.Key] += micro
		}
	}
}

// Feeds reports whether time in state feeds any of g's time counters, and whether an ended
// interval in it is counted (LeaveState).
func (g *Grain) Feeds(state string) (time, ends bool) {
	for _, k := range g.Counters {
		if k.IsState() && slices.Contains(k.States, state) {
			time, ends = time || !k.Ends, ends || k.Ends
		}
	}
	return time, ends
}

// StateCounters lists the time counters that an open interval in state feeds up to now (the
// reports' views add an agent's open interval to them); Closed counters are not among them.
func (g *Grain) StateCounters(state string) []string {
	out := []string{}
	for _, k := range g.Counters {
		if k.IsState() && !k.Ends && !k.Closed && slices.Contains(k.States, state) {
			out = append(out, k.Key)
		}
	}
	return out
}

// callValue is a duration field of a call in millionths of a second.
func callValue(field string, c CallFacts) int64 {
	switch field {
	case "wait_seconds":
		return c.Wait.Microseconds()
	case "talk_seconds":
		return c.Talk.Microseconds()
	}
	return 0
}

// matchCall evaluates a filter on a call's fields (the CDR columns the counters use).
func matchCall(f Filter, c CallFacts) bool {
	var text string
	var num int64
	set, isNum := true, false
	switch f.Field {
	case "direction":
		text = c.Direction
	case "result":
		text = c.Result
	case "queue":
		text = c.Queue
	case "agent_id":
		num, isNum, set = c.AgentID*micro, true, c.AgentID != 0
	case "ringing_at":
		set = c.Ringing
	case "queued_at":
		set = c.Queued
	case "answered_at":
		set = c.Answered
	case "wait_seconds", "talk_seconds":
		num, isNum = callValue(f.Field, c), true
	default:
		return false // a field calls do not have never matches
	}
	ok := false
	switch f.Op {
	case OpNull:
		ok = !set
	case OpNotNull:
		ok = set
	case OpEq, OpIn:
		ok = set && valueIn(text, num, isNum, f.Values)
	case OpNe, OpNotIn:
		ok = set && !valueIn(text, num, isNum, f.Values)
	case OpGt, OpGe, OpLt, OpLe:
		if len(f.Values) != 1 || !isNum {
			return false
		}
		lim, err := millionths(f.Values[0])
		if err != nil {
			return false
		}
		switch f.Op {
		case OpGt:
			ok = num > lim
		case OpGe:
			ok = num >= lim
		case OpLt:
			ok = num < lim
		case OpLe:
			ok = num <= lim
		}
	}
	if !ok {
		return false
	}
	for _, a := range f.Also {
		if !matchCall(a, c) {
			return false
		}
	}
	return true
}

func valueIn(text string, num int64, isNum bool, values []string) bool {
	for _, s := range values {
		if isNum {
			if n, err := millionths(s); err == nil && n == num {
				return true
			}
		} else if s == text {
			return true
		}
	}
	return false
}

func millionths(s string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return int64(math.Round(f * micro)), nil
}

// Evaluate computes column key of template d over a tally: a sum or max column is its
// counter's value; ratio, add and sub columns combine other columns as the report's SQL does.
// ok is false for a ratio whose denominator is 0 (the report shows NULL) or an unknown column.
func Evaluate(d *Definition, key string, t Tally) (v float64, ok bool) {
	col, found := d.Column(key)
	if !found {
		return 0, false
	}
	if col.Agg == AggRatio {
		if len(col.Of) != 2 {
			return 0, false
		}
		num, ok1 := exact(d, col.Of[0], t, 0)
		den, ok2 := exact(d, col.Of[1], t, 0)
		if !ok1 || !ok2 || den == 0 {
			return 0, false
		}
		// One division of exact integers: the correctly rounded quotient, as PostgreSQL's
		// numeric division converted to float8.
		return float64(num) / float64(den), true
	}
	n, ok := exact(d, key, t, 0)
	return float64(n) / micro, ok
}

// exact is a non-ratio column's value in millionths.
func exact(d *Definition, key string, t Tally, depth int) (int64, bool) {
	col, found := d.Column(key)
	if !found || depth > maxColumns {
		return 0, false
	}
	switch col.Agg {
	case AggSum, AggMax:
		return t[col.Field], true
	case AggAdd, AggSub:
		if len(col.Of) != 2 {
			return 0, false
		}
		a, ok1 := exact(d, col.Of[0], t, depth+1)
		b, ok2 := exact(d, col.Of[1], t, depth+1)
		if col.Agg == AggSub {
			b = -b
		}
		return a + b, ok1 && ok2
	}
	return 0, false
}
