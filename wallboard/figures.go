package wallboard

import (
	"fmt"
	"math"
	"time"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/query"
)

// The board's day figures are not a second set of formulas: each call and each ended agent-state
// interval (wrap-up) is counted through the query engine's counters (query.AgentGrain,
// query.QueueGrain: what one call or interval adds to the statistics rollups) and the figures are the standard templates' columns (sums, ratios, handle
// time = talk + wrap-up; query/templates/*.json, docs/metrics.md) evaluated over those counts
// with query.Evaluate. A change of a definition changes the live board and the report together.
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
	colHandleAvg    = "handle_avg" // (talk + wrap-up) ÷ answered calls
)

// definition is a template and the grain whose counters its columns read.
type definition struct {
	key   string
	tmpl  *query.Definition
	grain *query.Grain
}

func loadDefinition(key string, grain *query.Grain, want ...string) (*definition, error) {
	t := query.Template(key)
	if t == nil {
		return nil, fmt.Errorf("query template %q is missing", key)
	}
	for _, k := range want {
		c, ok := t.Column(k)
		if !ok || !c.IsAggregate() {
			return nil, fmt.Errorf("query template %q has no aggregate column %q", key, k)
		}
	}
	return &definition{key: key, tmpl: t, grain: grain}, nil
}

// tally accumulates one grain's counters over CDRs.
type tally struct {
	def *definition
	t   query.Tally
}

func (d *definition) newTally() *tally { return &tally{def: d, t: query.Tally{}} }

// add counts one call; sl is the queue's service-level threshold (0: the default). It
// reports whether the call counts for the grain.
func (t *tally) add(c query.CallFacts, sl time.Duration) bool {
	return t.def.grain.AddCall(t.t, c, query.Thresholds{ServiceLevel: sl})
}

// count is a count column's value.
func (t *tally) count(key string) int64 {
	v, _ := query.Evaluate(t.def.tmpl, key, t.t)
	return int64(math.Round(v))
}

// avgSeconds is an average column's value in seconds, nil when nothing was averaged.
func (t *tally) avgSeconds(key string) *float64 { return t.ratio(key) }

// ratio is a ratio column's value, nil when its denominator is 0 (docs/metrics.md).
func (t *tally) ratio(key string) *float64 {
	v, ok := query.Evaluate(t.def.tmpl, key, t.t)
	if !ok {
		return nil
	}
	return &v
}

// callFacts is what the counters read of a CDR; waitMs and talkMs are its stored
// wait_seconds and talk_seconds in milliseconds, or -1 to compute them as cti stores them.
func callFacts(c *cti.CDR, waitMs, talkMs int64) query.CallFacts {
	if waitMs < 0 {
		waitMs = int64(math.Round(c.WaitSeconds() * 1000))
	}
	if talkMs < 0 {
		talkMs = int64(math.Round(c.TalkSeconds() * 1000))
	}
	return query.CallFacts{Direction: string(c.Direction), Result: string(c.Result), Queue: c.Queue, AgentID: c.AgentID,
		OfferedAt: c.OfferedAt, Ringing: !c.RingingAt.IsZero(), Queued: !c.QueuedAt.IsZero(), Answered: !c.AnsweredAt.IsZero(),
		Wait: time.Duration(waitMs) * time.Millisecond, Talk: time.Duration(talkMs) * time.Millisecond}
}
