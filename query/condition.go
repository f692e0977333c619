package query

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ctid/ctid/fault"
)

// inputs are the form keys a condition reads.
func (cond Condition) inputs() []string {
	switch cond.Type {
	case CondNumberRange:
		return []string{cond.Key + "_min", cond.Key + "_max"}
	case CondDateRange:
		return []string{cond.Key, cond.Key + "_from", cond.Key + "_to"}
	}
	return []string{cond.Key}
}

// values returns the condition's effective input: the request's, or the default when the
// request does not mention the condition at all. It records them in p.Applied.
func (cond Condition) values(req Request, p *Plan) map[string][]string {
	out := map[string][]string{}
	mentioned := false
	for _, k := range cond.inputs() {
		if vs, ok := req.Values[k]; ok {
			mentioned = true
			var kept []string
			for _, v := range vs {
				if v = strings.TrimSpace(v); v != "" {
					kept = append(kept, v)
				}
			}
			out[k] = kept
		}
	}
	if !mentioned && cond.Default != "" {
		switch cond.Type {
		case CondNumberRange:
			lo, hi, _ := strings.Cut(cond.Default, "..")
			out[cond.Key+"_min"] = nonEmpty(lo)
			out[cond.Key+"_max"] = nonEmpty(hi)
		case CondChoice, CondAgent:
			out[cond.Key] = nonEmpty(strings.Split(cond.Default, ",")...)
		default:
			out[cond.Key] = []string{cond.Default}
		}
	}
	for k, vs := range out {
		p.Applied[k] = vs
	}
	return out
}

func nonEmpty(vs ...string) []string {
	var out []string
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// condition compiles one search-form condition; "" when it has no value.
func (c *compiler) condition(cond Condition, req Request, p *Plan) (string, error) {
	where := "condition " + strconv.Quote(cond.Key)
	f, err := c.field(cond.Field, where)
	if err != nil {
		return "", err
	}
	if err := c.checkCondition(cond, f, where); err != nil {
		return "", err
	}
	vals := cond.values(req, p)
	col := qi(f.Name)
	missing := func() (string, error) {
		if cond.Required {
			return "", fault.Errorf(fault.Invalid, "%s (%s) needs a value", where, cond.Label.En)
		}
		return "", nil
	}
	switch cond.Type {
	case CondText:
		s := first(vals[cond.Key])
		if s == "" {
			return missing()
		}
		if len(s) > maxTextValue {
			return "", fault.Errorf(fault.Invalid, "%s: the value is longer than %d bytes", where, maxTextValue)
		}
		match := cond.Match
		if match == "" {
			match = MatchExact
		}
		if match == MatchExact {
			v, err := c.bindValue(f, s, where)
			if err != nil {
				return "", err
			}
			return col + " = " + c.b.arg(v), nil
		}
		if f.Kind != KindText {
			return "", invalid(c.d, "%s: %s matching needs a text field; %q is %s", where, match, f.Name, f.Type)
		}
		pattern := escapeLike(s) + "%"
		if match == MatchContains {
			pattern = "%" + pattern
		}
		// The pattern is a parameter; escaping only stops the user's % and _ acting as wildcards.
		return col + ` ILIKE ` + c.b.arg(pattern) + ` ESCAPE '\'`, nil
	case CondChoice:
		vs := vals[cond.Key]
		if len(vs) == 0 {
			return missing()
		}
		if !cond.Multi && len(vs) > 1 {
			return "", fault.Errorf(fault.Invalid, "%s takes one value, got %d", where, len(vs))
		}
		if len(cond.Options) > 0 {
			for _, v := range vs {
				if !hasOption(cond.Options, v) {
					return "", fault.Errorf(fault.Invalid, "%s: %q is not one of its options", where, v)
				}
			}
		}
		arr, err := c.bindSlice(f, vs, where)
		if err != nil {
			return "", err
		}
		return col + " = ANY(" + c.b.arg(arr) + ")", nil
	case CondNumberRange:
		if f.Kind != KindInt && f.Kind != KindNumber {
			return "", invalid(c.d, "%s: a number range needs a number field; %q is %s", where, f.Name, f.Type)
		}
		var preds []string
		for i, k := range []string{cond.Key + "_min", cond.Key + "_max"} {
			s := first(vals[k])
			if s == "" {
				continue
			}
			x, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return "", fault.Errorf(fault.Invalid, "%s: %s %q is not a number", where, k, s)
			}
			op := " >= "
			if i == 1 {
				op = " <= "
			}
			var v any = x
			if f.Kind == KindInt {
				// whole-number fields compare with whole numbers, keeping their indexes usable
				if i == 0 {
					x = math.Ceil(x)
				} else {
					x = math.Floor(x)
				}
				if math.Abs(x) > 1<<62 {
					return "", fault.Errorf(fault.Invalid, "%s: %s %q is out of range", where, k, s)
				}
				v = int64(x)
			}
			preds = append(preds, col+op+c.b.arg(v))
		}
		if len(preds) == 0 {
			return missing()
		}
		return strings.Join(preds, " AND "), nil
	case CondDateRange:
		if f.Kind != KindTime && f.Kind != KindDate {
			return "", invalid(c.d, "%s: a date range needs a date or time field; %q is %s", where, f.Name, f.Type)
		}
		r, ok, err := dateRange(cond, vals, c.env)
		if err != nil {
			return "", err
		}
		if !ok {
			return missing()
		}
		if gradedViews[c.d.Source.Table] && c.d.Source.External == "" && f.Name == gradedBucket && f.Kind == KindTime {
			return c.gradedRange(col, r), nil
		}
		var preds []string
		if !r.From.IsZero() {
			preds = append(preds, col+" >= "+c.b.arg(boundFor(f, r.From)))
		}
		if !r.To.IsZero() {
			preds = append(preds, col+" < "+c.b.arg(boundFor(f, r.To)))
		}
		return strings.Join(preds, " AND "), nil
	case CondAgent:
		ids, err := c.agents(cond, vals[cond.Key], where)
		if err != nil || ids == nil {
			if err == nil {
				return missing()
			}
			return "", err
		}
		if f.Kind != KindInt {
			return "", invalid(c.d, "%s: an agent condition needs a user-id field; %q is %s", where, f.Name, f.Type)
		}
		if len(ids) == 1 {
			// One agent as "=": PostgreSQL then reads an (agent, time) index in time order
			// for the first page; with "= ANY" it walks the time index filtering agents.
			c.single[f.Name] = true
			return col + " = " + c.b.arg(ids[0]), nil
		}
		return c.anyOf(f, ids), nil
	case CondTeam:
		ids, err := c.team(vals[cond.Key], where)
		if err != nil || ids == nil {
			if err == nil {
				return missing()
			}
			return "", err
		}
		if f.Kind != KindInt {
			return "", invalid(c.d, "%s: a team condition needs a user-id field; %q is %s", where, f.Name, f.Type)
		}
		return c.anyOf(f, ids), nil
	}
	return "", invalid(c.d, "%s: unknown type %q", where, cond.Type)
}

// checkCondition refuses a condition whose type does not fit its field, whatever the values.
func (c *compiler) checkCondition(cond Condition, f Field, where string) error {
	ok := true
	want := ""
	switch cond.Type {
	case CondText:
		ok = f.Kind != KindOther && (cond.Match == "" || cond.Match == MatchExact || f.Kind == KindText)
		want = cond.Match + " matching needs a text field"
	case CondChoice:
		ok = f.Kind == KindText || f.Kind == KindInt || f.Kind == KindNumber
		want = "a choice needs a text or number field"
	case CondNumberRange:
		ok, want = f.Kind == KindInt || f.Kind == KindNumber, "a number range needs a number field"
	case CondDateRange:
		ok, want = f.Kind == KindTime || f.Kind == KindDate, "a date range needs a date or time field"
	case CondAgent, CondTeam:
		ok, want = f.Kind == KindInt, "an agent or team condition needs a user-id field"
	}
	if !ok {
		return invalid(c.d, "%s: %s; %q is %s", where, want, f.Name, f.Type)
	}
	return nil
}

func hasOption(opts []Option, v string) bool {
	for _, o := range opts {
		if o.Value == v {
			return true
		}
	}
	return false
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// boundFor is a range bound as the field's type wants it: an instant, or a calendar date.
// gradedViews hold rollup rows of two grains (column grain: 'month', 'day'; migration
// 0341_stats_month.sql) over the same events: a period on their bucket must take each span
// from one grain only. gradedRange reads whole months that are over (in the tenant's zone)
// from month rows, and the partial months at the edges — and the current month, whose day
// rows include the agents' open intervals up to now — from day rows.
var gradedViews = map[string]bool{"agent_stats": true, "queue_stats": true}

const (
	gradedBucket = "bucket"
	gradedGrain  = "grain"
)

func (c *compiler) gradedRange(col string, r Range) string {
	grain := qi(gradedGrain)
	day := func(from, to time.Time) string {
		var preds []string
		if !from.IsZero() {
			preds = append(preds, col+" >= "+c.b.arg(from))
		}
		if !to.IsZero() {
			preds = append(preds, col+" < "+c.b.arg(to))
		}
		if len(preds) == 0 {
			return "true"
		}
		return strings.Join(preds, " AND ")
	}
	loc := c.env.Loc
	y, m, _ := c.env.Now.In(loc).Date()
	thisMonth := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	var mFrom, mTo time.Time
	if !r.From.IsZero() {
		y, m, d := r.From.In(loc).Date()
		mFrom = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		if d != 1 || !mFrom.Equal(r.From) {
			mFrom = mFrom.AddDate(0, 1, 0)
		}
	}
	mTo = thisMonth
	if !r.To.IsZero() {
		y, m, _ := r.To.In(loc).Date()
		if end := time.Date(y, m, 1, 0, 0, 0, 0, loc); end.Before(mTo) {
			mTo = end
		}
	}
	if r.From.IsZero() || !mFrom.Before(mTo) {
		return grain + " = 'day' AND " + day(r.From, r.To)
	}
	return "((" + grain + " = 'month' AND " + day(mFrom, mTo) + ") OR (" + grain + " = 'day' AND ((" +
		day(r.From, mFrom) + ") OR (" + day(mTo, r.To) + "))))"
}

func boundFor(f Field, t time.Time) any {
	if f.Kind == KindDate {
		y, m, d := t.Date()
		return pgtype.Date{Time: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), Valid: true}
	}
	return t
}

// dateRange reads a date-range condition: a preset, or custom from/to in the tenant's zone.
func dateRange(cond Condition, vals map[string][]string, env *Env) (Range, bool, error) {
	where := "condition " + strconv.Quote(cond.Key)
	name := first(vals[cond.Key])
	from, to := first(vals[cond.Key+"_from"]), first(vals[cond.Key+"_to"])
	if name == "" && (from != "" || to != "") {
		name = PresetCustom
	}
	if name == "" {
		return Range{}, false, nil
	}
	preset, err := ParsePreset(name)
	if err != nil {
		return Range{}, false, fault.Errorf(fault.Invalid, "%s: %s", where, fault.MessageOf(err))
	}
	if preset.Name != PresetCustom {
		return preset.Range(env.Now, env.Loc), true, nil
	}
	var r Range
	if from != "" {
		if r.From, err = parseDay(from, env.Loc, false); err != nil {
			return Range{}, false, fault.Errorf(fault.Invalid, "%s: from %q is not a date (2006-01-02) or date-time (2006-01-02T15:04)", where, from)
		}
	}
	if to != "" {
		if r.To, err = parseDay(to, env.Loc, true); err != nil {
			return Range{}, false, fault.Errorf(fault.Invalid, "%s: to %q is not a date (2006-01-02) or date-time (2006-01-02T15:04)", where, to)
		}
	}
	if r.From.IsZero() && r.To.IsZero() {
		return Range{}, false, nil
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return Range{}, false, fault.Errorf(fault.Invalid, "%s: from %s is not before to %s", where, from, to)
	}
	return r, true, nil
}

// agents reads agent ids the viewer may pick; nil when none are chosen.
func (c *compiler) agents(cond Condition, vs []string, where string) ([]int64, error) {
	return pickAgents(c.env, vs, where)
}

func pickAgents(env *Env, vs []string, where string) ([]int64, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	if len(vs) > maxChoiceValues {
		return nil, fault.Errorf(fault.Invalid, "%s: more than %d agents", where, maxChoiceValues)
	}
	ids := make([]int64, 0, len(vs))
	for _, s := range vs {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fault.Errorf(fault.Invalid, "%s: agent %q is not a user id", where, s)
		}
		if !env.mayPick(id) {
			return nil, fault.Errorf(fault.Forbidden, "%s: agent %d is not one you may see", where, id)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (c *compiler) team(vs []string, where string) ([]int64, error) {
	return pickTeam(c.env, vs, where)
}

func pickTeam(env *Env, vs []string, where string) ([]int64, error) {
	s := first(vs)
	if s == "" {
		return nil, nil
	}
	if len(vs) > 1 {
		return nil, fault.Errorf(fault.Invalid, "%s takes one team", where)
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "%s: team %q is not a team id", where, s)
	}
	if _, ok := env.VisibleTeams()[id]; !ok {
		return nil, fault.Errorf(fault.Forbidden, "%s: team %d is not one you may see", where, id)
	}
	ids := env.teamMembers(id)
	if ids == nil {
		ids = []int64{}
	}
	return ids, nil
}
