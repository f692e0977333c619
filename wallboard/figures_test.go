package wallboard

import (
	"testing"
	"time"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/query"
)

// The template filters as the board evaluates them on one CDR: answered inbound call of queue
// sales, rung, waited 20.5 s, talked 60 s.
func TestTemplateFilterOnCDR(t *testing.T) {
	c := &cti.CDR{CallID: "x", Direction: cti.Inbound, Queue: "sales", Result: cti.Answered, AgentID: 7,
		OfferedAt: t0, RingingAt: at(20), AnsweredAt: t0.Add(20500 * time.Millisecond), EndedAt: t0.Add(80500 * time.Millisecond)}
	row := cdrRow(c, -1, -1, -1)
	f := func(field, op string, values ...string) query.Filter {
		return query.Filter{Field: field, Op: op, Values: values}
	}
	tests := []struct {
		name   string
		filter query.Filter
		sl     time.Duration
		want   bool
	}{
		{"eq text", f("result", query.OpEq, "answered"), 0, true},
		{"eq other text", f("result", query.OpEq, "abandoned"), 0, false},
		{"in", f("result", query.OpIn, "no_answer", "answered"), 0, true},
		{"not in", f("result", query.OpNotIn, "no_answer", "busy"), 0, true},
		{"ne", f("direction", query.OpNe, "inbound"), 0, false},
		{"le threshold of the template", f("wait_seconds", query.OpLe, "20"), 0, false},
		{"le the queue's threshold instead", f("wait_seconds", query.OpLe, "20"), 30 * time.Second, true},
		{"ge", f("wait_seconds", query.OpGe, "20.5"), 0, true},
		{"gt", f("wait_seconds", query.OpGt, "20.5"), 0, false},
		{"lt talk", f("talk_seconds", query.OpLt, "60.001"), 0, true},
		{"eq number", f("agent_id", query.OpEq, "7"), 0, true},
		{"not null time", f("ringing_at", query.OpNotNull), 0, true},
		{"null time", f("queued_at", query.OpNull), 0, true},
		{"a compare on text never matches", f("result", query.OpGt, "1"), 0, false},
		{"an unknown field never matches", f("nope", query.OpEq, "x"), 0, false},
		{"also: every part must hold", query.Filter{Field: "result", Op: query.OpEq, Values: []string{"answered"},
			Also: []query.Filter{f("direction", query.OpEq, "inbound"), f("queue", query.OpEq, "support")}}, 0, false},
		{"also: all hold", query.Filter{Field: "result", Op: query.OpEq, Values: []string{"answered"},
			Also: []query.Filter{f("direction", query.OpEq, "inbound"), f("queue", query.OpEq, "sales")}}, 0, true},
	}
	for _, tt := range tests {
		if got := match(tt.filter, row, tt.sl); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
