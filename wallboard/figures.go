package wallboard

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/query"
)

// The board's day figures are not a second set of formulas: they are the aggregate columns of
// the query engine's standard templates (query/templates/*.json, docs/metrics.md), evaluated
// over each CDR as it arrives. A column's fixed filter (where), its aggregate and its ratio
// come from the template, so a change of a definition changes the live board and the
// historical report together.
const (
	queueTemplate = "queue_statistics"
	agentTemplate = "agent_statistics"
)

// The template columns the board shows.
const (
	colOffered      = "offered"
	colAnswered     = "answered"
	colAbandoned    = "abandoned"
	colAnsweredInSL = "answered_in_sl"
	colWaitAvg      = "wait_avg"
	colServiceLevel = "service_level"
	colTalkAvg      = "talk_avg"
	colHandleAvg    = "handle_avg" // talk + wrap-up, over calls whose wrap-up is over
)

// tally accumulates one template's aggregate columns over CDRs.
type tally struct {
	def  *definition
	sums map[string]int64 // per column: count, or sum in milliseconds
	ns   map[string]int64 // per avg column: rows averaged
	max  map[string]int64
}

// definition is a template's aggregate columns, as the board evaluates them.
type definition struct {
	key     string
	columns []query.Column
	// scope is the template's default condition on a CDR field (the queue template counts
	// inbound calls unless the form says otherwise); the board uses the defaults.
	scope []query.Filter
}

func loadDefinition(key string, want ...string) (*definition, error) {
	t := query.Template(key)
	if t == nil {
		return nil, fmt.Errorf("query template %q is missing", key)
	}
	d := &definition{key: key}
	byKey := map[string]query.Column{}
	for _, c := range t.Columns {
		byKey[c.Key] = c
	}
	for _, k := range want {
		c, ok := byKey[k]
		if !ok || !c.IsAggregate() {
			return nil, fmt.Errorf("query template %q has no aggregate column %q", key, k)
		}
		d.columns = append(d.columns, c)
	}
	for _, c := range t.Conditions {
		if c.Type == query.CondChoice && c.Field != "" && c.Default != "" {
			d.scope = append(d.scope, query.Filter{Field: c.Field, Op: query.OpEq, Values: []string{c.Default}})
		}
	}
	return d, nil
}

func (d *definition) newTally() *tally {
	return &tally{def: d, sums: map[string]int64{}, ns: map[string]int64{}, max: map[string]int64{}}
}

// add counts one CDR; slThreshold, when > 0, replaces the template's service-level wait
// threshold with the queue's own.
func (t *tally) add(row map[string]value, slThreshold time.Duration) {
	for _, f := range t.def.scope {
		if !match(f, row, 0) {
			return
		}
	}
	for _, col := range t.def.columns {
		if col.Agg == query.AggRatio {
			continue
		}
		if col.Where != nil && !match(*col.Where, row, slThreshold) {
			continue
		}
		switch col.Agg {
		case query.AggCount:
			t.sums[col.Key]++
		case query.AggSum, query.AggAvg, query.AggMax:
			f := row[col.Field]
			if !f.set {
				continue // NULL: sum, avg and max skip it, as in SQL
			}
			t.sums[col.Key] += f.num
			t.ns[col.Key]++
			if f.num > t.max[col.Key] {
				t.max[col.Key] = f.num
			}
		}
	}
}

// remove takes back a row that add counted (max keeps its value: rows only grow here).
func (t *tally) remove(row map[string]value, slThreshold time.Duration) {
	for _, f := range t.def.scope {
		if !match(f, row, 0) {
			return
		}
	}
	for _, col := range t.def.columns {
		if col.Agg == query.AggRatio || (col.Where != nil && !match(*col.Where, row, slThreshold)) {
			continue
		}
		switch col.Agg {
		case query.AggCount:
			t.sums[col.Key]--
		case query.AggSum, query.AggAvg, query.AggMax:
			if f := row[col.Field]; f.set {
				t.sums[col.Key] -= f.num
				t.ns[col.Key]--
			}
		}
	}
}

// replace counts new instead of old (a CDR whose wrap-up became known).
func (t *tally) replace(old, new map[string]value, slThreshold time.Duration) {
	t.remove(old, slThreshold)
	t.add(new, slThreshold)
}

// count is a count column's value.
func (t *tally) count(key string) int64 { return t.sums[key] }

// avgSeconds is an avg column's value in seconds, nil when no row was averaged.
func (t *tally) avgSeconds(key string) *float64 {
	n := t.ns[key]
	if n == 0 {
		return nil
	}
	// One division of exact integers: the correctly rounded quotient, as PostgreSQL's avg over
	// numeric(12,3) converted to float8.
	v := float64(t.sums[key]) / (float64(n) * 1000)
	return &v
}

// ratio is a ratio column's value, nil when its denominator is 0 (docs/metrics.md).
func (t *tally) ratio(key string) *float64 {
	for _, col := range t.def.columns {
		if col.Key != key || col.Agg != query.AggRatio || len(col.Of) != 2 {
			continue
		}
		num, den := t.sums[col.Of[0]], t.sums[col.Of[1]]
		if den == 0 {
			return nil
		}
		v := float64(num) / float64(den)
		return &v
	}
	return nil
}

// value is one CDR field: text, a number in thousandths (numeric(12,3) columns are stored to
// the millisecond, so sums are exact), or whether a timestamp is set.
type value struct {
	text  string
	num   int64
	set   bool
	isNum bool
}

// cdrRow is a CDR's fields; waitMs and talkMs are its stored wait_seconds and talk_seconds in
// milliseconds, or -1 to compute them as cti stores them; wrapupMs is its wrapup_seconds, -1
// while unknown (NULL: the agent is still in wrap-up).
func cdrRow(c *cti.CDR, waitMs, talkMs, wrapupMs int64) map[string]value {
	if waitMs < 0 {
		waitMs = int64(math.Round(c.WaitSeconds() * 1000))
	}
	if talkMs < 0 {
		talkMs = int64(math.Round(c.TalkSeconds() * 1000))
	}
	ms := func(n int64) value { return value{num: n, set: true, isNum: true} }
	ts := func(t time.Time) value { return value{set: !t.IsZero()} }
	txt := func(s string) value { return value{text: s, set: true} }
	row := map[string]value{
		"direction":    txt(string(c.Direction)),
		"result":       txt(string(c.Result)),
		"queue":        txt(c.Queue),
		"source":       txt(c.Source),
		"hangup_by":    txt(c.HangupBy),
		"wait_seconds": ms(waitMs),
		"talk_seconds": ms(talkMs),
		"queued_at":    ts(c.QueuedAt),
		"ringing_at":   ts(c.RingingAt),
		"answered_at":  ts(c.AnsweredAt),
		"agent_id":     {num: c.AgentID * 1000, set: c.AgentID != 0, isNum: true},
	}
	setWrapup(row, wrapupMs)
	return row
}

// setWrapup sets wrapup_seconds and handle_seconds (= talk + wrap-up, the generated column
// of cdrs) of a row; wrapupMs < 0 leaves both NULL.
func setWrapup(row map[string]value, wrapupMs int64) {
	if wrapupMs < 0 {
		row["wrapup_seconds"], row["handle_seconds"] = value{isNum: true}, value{isNum: true}
		return
	}
	row["wrapup_seconds"] = value{num: wrapupMs, set: true, isNum: true}
	row["handle_seconds"] = value{num: row["talk_seconds"].num + wrapupMs, set: true, isNum: true}
}

// match evaluates a template filter on a row. A filter of wait_seconds ≤ T (the service-level
// threshold) takes the queue's threshold instead of T when slThreshold > 0.
func match(f query.Filter, row map[string]value, slThreshold time.Duration) bool {
	v, ok := row[f.Field]
	if !ok {
		return false // a field the board does not know never matches: the figure stays 0
	}
	ok = false
	switch f.Op {
	case query.OpNull:
		ok = !v.set
	case query.OpNotNull:
		ok = v.set
	case query.OpEq, query.OpIn:
		ok = in(v, f.Values)
	case query.OpNe, query.OpNotIn:
		ok = v.set && !in(v, f.Values)
	case query.OpGt, query.OpGe, query.OpLt, query.OpLe:
		if len(f.Values) != 1 || !v.isNum {
			return false
		}
		lim, err := thousandths(f.Values[0])
		if err != nil {
			return false
		}
		if f.Field == "wait_seconds" && f.Op == query.OpLe && slThreshold > 0 {
			lim = slThreshold.Milliseconds()
		}
		switch f.Op {
		case query.OpGt:
			ok = v.num > lim
		case query.OpGe:
			ok = v.num >= lim
		case query.OpLt:
			ok = v.num < lim
		case query.OpLe:
			ok = v.num <= lim
		}
	}
	if !ok {
		return false
	}
	for _, a := range f.Also {
		if !match(a, row, slThreshold) {
			return false
		}
	}
	return true
}

func in(v value, values []string) bool {
	if !v.set {
		return false
	}
	for _, s := range values {
		if v.isNum {
			n, err := thousandths(s)
			if err == nil && n == v.num {
				return true
			}
			continue
		}
		if s == v.text {
			return true
		}
	}
	return false
}

func thousandths(s string) (int64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(math.Round(f * 1000)), nil
}
