package query

import (
	"testing"
	"time"
)

// The counters' filters as they are evaluated on one call: answered inbound call of queue
// sales, rung, waited 20.5 s, talked 60 s.
func TestCallFilter(t *testing.T) {
	c := CallFacts{Direction: "inbound", Queue: "sales", Result: "answered", AgentID: 7, Ringing: true, Answered: true,
		Wait: 20500 * time.Millisecond, Talk: 60 * time.Second}
	f := func(field, op string, values ...string) Filter { return Filter{Field: field, Op: op, Values: values} }
	tests := []struct {
		name   string
		filter Filter
		want   bool
	}{
		{"eq text", f("result", OpEq, "answered"), true},
		{"eq other text", f("result", OpEq, "abandoned"), false},
		{"in", f("result", OpIn, "no_answer", "answered"), true},
		{"not in", f("result", OpNotIn, "no_answer", "busy"), true},
		{"ne", f("direction", OpNe, "inbound"), false},
		{"le", f("wait_seconds", OpLe, "20"), false},
		{"ge", f("wait_seconds", OpGe, "20.5"), true},
		{"gt", f("wait_seconds", OpGt, "20.5"), false},
		{"lt talk", f("talk_seconds", OpLt, "60.001"), true},
		{"eq number", f("agent_id", OpEq, "7"), true},
		{"not null time", f("ringing_at", OpNotNull), true},
		{"null time", f("queued_at", OpNull), true},
		{"a compare on text never matches", f("result", OpGt, "1"), false},
		{"a bad number never matches", f("wait_seconds", OpLe, "twenty"), false},
		{"an unknown field never matches", f("nope", OpEq, "x"), false},
		{"also: every part must hold", Filter{Field: "result", Op: OpEq, Values: []string{"answered"},
			Also: []Filter{f("direction", OpEq, "inbound"), f("queue", OpEq, "support")}}, false},
		{"also: all hold", Filter{Field: "result", Op: OpEq, Values: []string{"answered"},
			Also: []Filter{f("direction", OpEq, "inbound"), f("queue", OpEq, "sales")}}, true},
	}
	for _, tt := range tests {
		if got := matchCall(tt.filter, c); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// What one call adds to a queue's counters, by the queue's thresholds.
func TestQueueCountersOfACall(t *testing.T) {
	call := func(result string, wait float64) CallFacts {
		return CallFacts{Direction: "inbound", Queue: "sales", Result: result, Wait: time.Duration(wait * float64(time.Second))}
	}
	tests := []struct {
		name string
		call CallFacts
		sl   time.Duration
		want Tally
	}{
		{"answered at the threshold", call("answered", 20), 0, Tally{"offered": micro, "answered": micro, "answered_in_sl": micro,
			"wait_seconds": 20 * micro, "wait_max": 20 * micro}},
		{"answered over the queue's own threshold", call("answered", 15), 10 * time.Second, Tally{"offered": micro, "answered": micro,
			"wait_seconds": 15 * micro, "wait_max": 15 * micro}},
		{"short abandon at 5 s", call("abandoned", 5), 0, Tally{"offered": micro, "abandoned": micro, "short_abandoned": micro,
			"wait_seconds": 5 * micro, "wait_max": 5 * micro}},
		{"abandon after 5 s", call("abandoned", 5.001), 0, Tally{"offered": micro, "abandoned": micro,
			"wait_seconds": 5_001_000, "wait_max": 5_001_000}},
		{"outbound: not a queue's", CallFacts{Direction: "outbound", Queue: "sales", Result: "answered"}, 0, Tally{}},
		{"no queue", CallFacts{Direction: "inbound", Result: "abandoned"}, 0, Tally{}},
	}
	for _, tt := range tests {
		got := Tally{}
		QueueGrain.AddCall(got, tt.call, Thresholds{ServiceLevel: tt.sl})
		for k := range got {
			if got[k] == 0 {
				delete(got, k)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: %s = %d, want %d", tt.name, k, got[k], v)
			}
		}
	}
}

// The templates' derived columns evaluated over a tally, as the wallboard does: handle time is
// talk + wrap-up, a ratio with a zero denominator is empty.
func TestEvaluateTemplateColumns(t *testing.T) {
	agent := Template("agent_statistics")
	tally := Tally{}
	AgentGrain.AddCall(tally, CallFacts{Direction: "inbound", Result: "answered", AgentID: 1, Talk: 90 * time.Second}, Thresholds{})
	AgentGrain.AddCall(tally, CallFacts{Direction: "outbound", Result: "answered", AgentID: 1, Talk: 30500 * time.Millisecond}, Thresholds{})
	AgentGrain.AddState(tally, "wrap_up", 12*time.Second)
	AgentGrain.LeaveState(tally, "wrap_up")
	AgentGrain.AddState(tally, "ready", 100*time.Second)
	AgentGrain.AddState(tally, "on_call", 120500*time.Millisecond)
	for _, tt := range []struct {
		key  string
		want float64
		ok   bool
	}{
		{"handle_total", 132.5, true},
		{"handle_avg", 66.25, true},
		{"talk_avg", 60.25, true},
		{"wrap_avg", 12, true},
		{"occupancy", 132.5 / 232.5, true},
		{"answer_rate", 1, true},
		{"login", 232.5, true},
		{"agent", 0, false},
		{"nope", 0, false},
	} {
		got, ok := Evaluate(agent, tt.key, tally)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s = %v, %v; want %v, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := Evaluate(Template("queue_statistics"), "service_level", Tally{}); ok {
		t.Error("service level of no calls has a value; want none (0 ÷ 0)")
	}
}

// Every column a statistics template sums is a counter of its grain, and every template
// column the metrics evaluate compiles: the definitions cannot drift apart.
func TestTemplatesReadTheGrainsCounters(t *testing.T) {
	for key, g := range map[string]*Grain{"agent_statistics": AgentGrain, "queue_statistics": QueueGrain} {
		d := Template(key)
		for _, c := range d.Columns {
			if c.Agg != AggSum && c.Agg != AggMax {
				continue
			}
			k, ok := g.Counter(c.Field)
			if !ok {
				t.Errorf("%s column %s sums %q, which is not a %s counter", key, c.Key, c.Field, g.Key)
			}
			if c.Agg == AggMax && k.Agg != AggMax || c.Agg == AggSum && k.Agg == AggMax {
				t.Errorf("%s column %s: %s of a %s counter", key, c.Key, c.Agg, k.Agg)
			}
		}
	}
}
