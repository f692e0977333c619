package query

import (
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Limits on what a request may send.
const (
	maxTextValue    = 200
	maxChoiceValues = 200
	maxOffset       = 10_000_000
)

// idField is the field that identifies a row of a data object's table (batch delete).
const idField = "id"

// buckets are the time units a column may truncate to; the SQL literal is ours, not input.
var buckets = map[string]string{"hour": "'hour'", "day": "'day'", "week": "'week'", "month": "'month'"}

// OutColumn is a result column as pages, the API and exports show it.
type OutColumn struct {
	Key      string `json:"key"`
	Label    Label  `json:"label"`
	Format   string `json:"format,omitempty"`
	Width    int    `json:"width,omitempty"`
	Sortable bool   `json:"sortable,omitempty"`
	Action   string `json:"action,omitempty"`
	Total    bool   `json:"total,omitempty"`
	Hidden   bool   `json:"hidden,omitempty"`
}

// Plan is a compiled query: SQL texts whose every value is in the args.
type Plan struct {
	Columns []OutColumn
	// SQL reads one page: Size+1 rows (an extra row says there is a next page), the visible
	// columns first, then the keyset columns.
	SQL  string
	Args []any
	// SummarySQL reads one row: the row count, then one value per column with Total.
	SummarySQL  string
	SummaryArgs []any
	// ExportSQL reads every row in order, for exports.
	ExportSQL  string
	ExportArgs []any
	Size       int
	Offset     int
	// Applied are the condition values in force (defaults included), for the form.
	Applied url.Values

	keyset  []keyPart
	sortSig string
	// planEach: the page and totals filter on "= ANY" lists (agents, teams) and must be
	// planned with their values each time.
	planEach bool
	totalKey []string
	// matchSQL and matchArgs select the id of every matching row (batch delete); "" when
	// the query is grouped or its table has no id field.
	matchSQL  string
	matchArgs []any
}

type keyPart struct {
	expr string
	kind Kind
	desc bool
}

// builder collects bound parameters.
type builder struct {
	args []any
	tz   string // the placeholder of the tenant's time zone, once bound
	loc  *time.Location
}

func (b *builder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *builder) tzArg() string {
	if b.tz == "" {
		b.tz = b.arg(b.loc.String())
	}
	return b.tz
}

func qi(name string) string { return pgx.Identifier{name}.Sanitize() }

func invalid(d *Definition, format string, args ...any) error {
	return fault.Errorf(fault.Invalid, "query %q: "+format, append([]any{d.Key}, args...)...)
}

// Compile turns a table-source definition and a request into SQL. Identifiers come from cat
// only; every value from the request becomes a parameter.
func Compile(d *Definition, cat *Catalogue, env *Env, req Request) (*Plan, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	if d.IsSQL() {
		return nil, invalid(d, "is a SQL-text query: use CompileSQL")
	}
	t, ok := cat.Table(d.Source.Table)
	if !ok {
		return nil, invalid(d, "table %q is not queryable in this tenant (not in its schema or not on the allow-list)", d.Source.Table)
	}
	if env.Loc == nil {
		env.Loc = time.UTC
	}
	c := &compiler{d: d, t: t, env: env, b: &builder{loc: env.Loc}, exprs: map[string]colExpr{}, single: map[string]bool{}}
	return c.compile(req)
}

type colExpr struct {
	sql   string
	kind  Kind
	field Field // for plain fields
	plain bool
	agg   bool
}

type compiler struct {
	d     *Definition
	t     *Table
	env   *Env
	b     *builder
	exprs map[string]colExpr
	// fans are the "field = ANY(ids)" predicates of the WHERE clause (agent, team and
	// team-scope filters); single names the fields also held to one value.
	fans   []fan
	single map[string]bool
}

func (c *compiler) field(name, where string) (Field, error) {
	f, ok := c.t.Field(name)
	if !ok {
		return Field{}, invalid(c.d, "%s names field %q, which table %q does not have", where, name, c.t.Name)
	}
	return f, nil
}

func (c *compiler) compile(req Request) (*Plan, error) {
	p := &Plan{Applied: url.Values{}}
	grouped := false
	for _, col := range c.d.Columns {
		if col.IsAggregate() {
			grouped = true
		}
	}
	// Columns: ratios, sums and differences of columns last, as they refer to other columns
	// (in the order declared: one may refer to an earlier one).
	for pass := 0; pass < 2; pass++ {
		for _, col := range c.d.Columns {
			if col.IsDerived() != (pass == 1) {
				continue
			}
			e, err := c.column(col)
			if err != nil {
				return nil, err
			}
			c.exprs[col.Key] = e
		}
	}
	var selects, groups []string
	for i, col := range c.d.Columns {
		e := c.exprs[col.Key]
		selects = append(selects, e.sql+" AS "+qi("c"+strconv.Itoa(i)))
		if grouped && !e.agg {
			groups = append(groups, strconv.Itoa(i+1))
		}
		format := col.Format
		if format == "" {
			format = defaultFormat(e.kind)
		}
		p.Columns = append(p.Columns, OutColumn{Key: col.Key, Label: col.Label, Format: format, Width: col.Width,
			Sortable: col.Sortable, Action: col.Action, Total: col.Total, Hidden: col.Hidden})
	}
	where, err := c.where(req, p)
	if err != nil {
		return nil, err
	}
	from := " FROM " + qi(c.t.Name)
	whereSQL := ""
	if len(where) > 0 {
		whereSQL = " WHERE " + strings.Join(where, " AND ")
	}
	groupSQL := ""
	if len(groups) > 0 {
		groupSQL = " GROUP BY " + strings.Join(groups, ", ")
	}
	if f, ok := c.t.Field(idField); ok && f.Kind == KindInt && !grouped {
		p.matchSQL, p.matchArgs = usedArgs("SELECT "+qi(f.Name)+from+whereSQL, c.b.args)
	}
	order, keyset, err := c.order(req, grouped, groups)
	if err != nil {
		return nil, err
	}
	p.sortSig = c.d.Key + "|" + req.Sort

	// Summary: row count and totals over every matching row.
	count := "count(*)"
	if grouped {
		count = "(SELECT count(*) FROM (SELECT " + strings.Join(groupExprs(c), ", ") + from + whereSQL + groupSQL + ") AS g)"
		if len(groups) == 0 {
			count = "1"
		}
	}
	summary := []string{count}
	for _, col := range c.d.Columns {
		if !col.Total {
			continue
		}
		e := c.exprs[col.Key]
		switch {
		case e.agg:
			summary = append(summary, e.sql)
		case e.plain && (e.kind == KindInt || e.kind == KindNumber):
			summary = append(summary, "sum("+e.sql+")")
		default:
			summary = append(summary, "NULL")
		}
		p.totalKey = append(p.totalKey, col.Key)
	}
	// The summary leaves out columns that are not totalled, and with them their parameters.
	p.SummarySQL, p.SummaryArgs = usedArgs("SELECT "+strings.Join(summary, ", ")+from+whereSQL, c.b.args)

	orderSQL := " ORDER BY " + strings.Join(order, ", ")
	p.ExportSQL = "SELECT " + strings.Join(selects, ", ") + from + whereSQL + groupSQL + orderSQL
	p.ExportArgs = append([]any(nil), c.b.args...)

	p.Size = c.d.Size(req.PageSize)
	tok, err := decodeToken(req.Page, p.sortSig)
	if err != nil {
		return nil, err
	}
	pageWhere := where
	if keyset != nil {
		p.keyset = keyset
		for i, k := range keyset {
			selects = append(selects, k.expr+" AS "+qi("k"+strconv.Itoa(i)))
		}
		if tok.Keys != nil {
			pred, err := c.afterKeys(keyset, tok.Keys)
			if err != nil {
				return nil, err
			}
			pageWhere = append(append([]string(nil), where...), pred)
		}
	} else {
		p.Offset = tok.Offset
	}
	pageWhereSQL := ""
	if len(pageWhere) > 0 {
		pageWhereSQL = " WHERE " + strings.Join(pageWhere, " AND ")
	}
	limit := " LIMIT " + c.b.arg(p.Size+1)
	if p.Offset > 0 {
		limit += " OFFSET " + c.b.arg(p.Offset)
	}
	p.SQL = "SELECT " + strings.Join(selects, ", ") + from + pageWhereSQL + groupSQL + orderSQL + limit
	p.planEach = len(c.fans) > 0
	if fn, ok := c.fanOut(keyset); ok {
		// The same page, read per id: for each one an index scan in the page's order,
		// stopping at the page's size, then the merged rows cut to the page. Each id's
		// predicate replaces the "= ANY" one; every other predicate stays inside.
		inner := make([]string, len(pageWhere))
		replaced := 0
		for i, w := range pageWhere {
			inner[i] = w
			if w == fn.pred {
				inner[i] = fn.col + " = " + fanAlias + ".id"
				replaced++
			}
		}
		outer := make([]string, len(keyset))
		for i, k := range keyset {
			outer[i] = qi("k" + strconv.Itoa(i))
			if k.desc {
				outer[i] += " DESC"
			}
		}
		// Only when the list is one predicate of the filter, which it replaces: otherwise
		// each id's rows would come once per id (the plain form stays).
		if replaced == 1 {
			p.SQL = "SELECT f.* FROM unnest(" + fn.arg + "::bigint[]) AS " + fanAlias + "(id) CROSS JOIN LATERAL (SELECT " +
				strings.Join(selects, ", ") + from + " WHERE " + strings.Join(inner, " AND ") + orderSQL + limit + ") AS f" +
				" ORDER BY " + strings.Join(outer, ", ") + limit
		}
	}
	p.Args = c.b.args
	return p, nil
}

// usedArgs renumbers the $n placeholders of sql to the parameters it uses, in order, and
// returns those: PostgreSQL refuses a parameter that a statement never mentions (it cannot
// tell its type). Quoted identifiers and string literals are skipped.
func usedArgs(sql string, args []any) (string, []any) {
	var out strings.Builder
	var used []any
	renum := map[int]int{}
	for i := 0; i < len(sql); {
		switch ch := sql[i]; {
		case ch == '"' || ch == '\'':
			j := i + 1
			for j < len(sql) && sql[j] != ch {
				j++
			}
			// A doubled quote inside continues the same token; copying up to each
			// closing quote in turn keeps it whole.
			j = min(j+1, len(sql))
			out.WriteString(sql[i:j])
			i = j
		case ch == '$' && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9':
			j := i + 1
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(sql[i+1 : j])
			if n < 1 || n > len(args) {
				out.WriteString(sql[i:j]) // not ours; left for PostgreSQL to refuse
				i = j
				continue
			}
			m, ok := renum[n]
			if !ok {
				used = append(used, args[n-1])
				m = len(used)
				renum[n] = m
			}
			out.WriteString("$" + strconv.Itoa(m))
			i = j
		default:
			out.WriteByte(ch)
			i++
		}
	}
	return out.String(), used
}

func groupExprs(c *compiler) []string {
	var out []string
	for _, col := range c.d.Columns {
		if e := c.exprs[col.Key]; !e.agg {
			out = append(out, e.sql)
		}
	}
	return out
}

func defaultFormat(k Kind) string {
	switch k {
	case KindInt:
		return FormatNumber
	case KindNumber:
		return FormatDecimal
	case KindTime:
		return FormatDateTime
	case KindDate:
		return FormatDate
	}
	return FormatText
}

// column compiles one result column.
func (c *compiler) column(col Column) (colExpr, error) {
	where := "column " + strconv.Quote(col.Key)
	if col.Agg == "" {
		if col.Where != nil || len(col.Of) > 0 {
			return colExpr{}, invalid(c.d, "%s: where and of apply to aggregates only", where)
		}
		f, err := c.field(col.Field, where)
		if err != nil {
			return colExpr{}, err
		}
		if col.Bucket != "" {
			unit, ok := buckets[col.Bucket]
			if !ok {
				return colExpr{}, invalid(c.d, "%s: unknown bucket %q (want hour, day, week or month)", where, col.Bucket)
			}
			if f.Kind != KindTime {
				return colExpr{}, invalid(c.d, "%s: bucket needs a time field; %q is %s", where, f.Name, f.Type)
			}
			// date_trunc with a zone gives local midnight (or hour) as an instant.
			return colExpr{sql: "date_trunc(" + unit + ", " + qi(f.Name) + ", " + c.b.tzArg() + ")", kind: KindTime}, nil
		}
		return colExpr{sql: qi(f.Name), kind: f.Kind, field: f, plain: true}, nil
	}
	if col.Bucket != "" {
		return colExpr{}, invalid(c.d, "%s: an aggregate cannot have a bucket", where)
	}
	if col.IsDerived() {
		if len(col.Of) != 2 || col.Field != "" || col.Where != nil {
			return colExpr{}, invalid(c.d, "%s: %s needs of: [first column, second column] and nothing else", where, col.Agg)
		}
		var parts [2]string
		for i, k := range col.Of {
			e, ok := c.exprs[k]
			if !ok || !e.agg {
				return colExpr{}, invalid(c.d, "%s: %s names %q, which is not an aggregate column declared before it", where, col.Agg, k)
			}
			parts[i] = e.sql
		}
		switch col.Agg {
		case AggAdd:
			return colExpr{sql: "(coalesce((" + parts[0] + ")::numeric, 0) + coalesce((" + parts[1] + ")::numeric, 0))", kind: KindNumber, agg: true}, nil
		case AggSub:
			return colExpr{sql: "(coalesce((" + parts[0] + ")::numeric, 0) - coalesce((" + parts[1] + ")::numeric, 0))", kind: KindNumber, agg: true}, nil
		}
		return colExpr{sql: "((" + parts[0] + ")::numeric / NULLIF((" + parts[1] + ")::numeric, 0))", kind: KindNumber, agg: true}, nil
	}
	filter := ""
	if col.Where != nil {
		pred, err := c.filter(*col.Where, where+" where")
		if err != nil {
			return colExpr{}, err
		}
		filter = " FILTER (WHERE " + pred + ")"
	}
	if col.Agg == AggCount && col.Field == "" {
		return colExpr{sql: "count(*)" + filter, kind: KindInt, agg: true}, nil
	}
	f, err := c.field(col.Field, where)
	if err != nil {
		return colExpr{}, err
	}
	kind := f.Kind
	switch col.Agg {
	case AggCount:
		kind = KindInt
	case AggSum, AggAvg:
		if f.Kind != KindInt && f.Kind != KindNumber {
			return colExpr{}, invalid(c.d, "%s: %s needs a number field; %q is %s", where, col.Agg, f.Name, f.Type)
		}
		kind = KindNumber
	case AggMin, AggMax:
		if f.Kind == KindOther || f.Kind == KindBool {
			return colExpr{}, invalid(c.d, "%s: %s needs a number, text or time field; %q is %s", where, col.Agg, f.Name, f.Type)
		}
	default:
		return colExpr{}, invalid(c.d, "%s: unknown aggregate %q (want count, sum, avg, min, max, ratio, add or sub)", where, col.Agg)
	}
	// The function name is our literal, chosen by the switch above.
	return colExpr{sql: col.Agg + "(" + qi(f.Name) + ")" + filter, kind: kind, agg: true}, nil
}

// filter compiles a fixed predicate of the definition.
func (c *compiler) filter(fl Filter, where string) (string, error) {
	f, err := c.field(fl.Field, where)
	if err != nil {
		return "", err
	}
	col := qi(f.Name)
	var pred string
	switch fl.Op {
	case OpNull, OpNotNull:
		if len(fl.Values) != 0 {
			return "", invalid(c.d, "%s: %s takes no values", where, fl.Op)
		}
		pred = col + " IS NULL"
		if fl.Op == OpNotNull {
			pred = col + " IS NOT NULL"
		}
	case OpIn, OpNotIn:
		if len(fl.Values) == 0 {
			return "", invalid(c.d, "%s: %s needs at least one value", where, fl.Op)
		}
		arr, err := c.bindSlice(f, fl.Values, where)
		if err != nil {
			return "", err
		}
		pred = col + " = ANY(" + c.b.arg(arr) + ")"
		if fl.Op == OpNotIn {
			pred = "NOT (" + pred + ")" // one parameter: an unused second one has no type
		}
	default:
		op, ok := filterOps[fl.Op]
		if !ok {
			return "", invalid(c.d, "%s: unknown operator %q (want eq, ne, in, not_in, gt, ge, lt, le, is_null, not_null)", where, fl.Op)
		}
		if len(fl.Values) != 1 {
			return "", invalid(c.d, "%s: %s needs exactly one value", where, fl.Op)
		}
		v, err := c.bindValue(f, fl.Values[0], where)
		if err != nil {
			return "", err
		}
		pred = col + " " + op + " " + c.b.arg(v)
	}
	for _, also := range fl.Also {
		p, err := c.filter(also, where)
		if err != nil {
			return "", err
		}
		pred += " AND " + p
	}
	return "(" + pred + ")", nil
}

// bindValue converts a text value to the Go type of field f's kind.
func (c *compiler) bindValue(f Field, s, where string) (any, error) {
	bad := func(want string) error {
		return fault.Errorf(fault.Invalid, "%s: %q is not %s (field %q)", where, s, want, f.Name)
	}
	switch f.Kind {
	case KindText:
		return s, nil
	case KindInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, bad("a whole number")
		}
		return n, nil
	case KindNumber:
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, bad("a number")
		}
		return x, nil
	case KindBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, bad("true or false")
		}
		return b, nil
	case KindTime:
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
		t, err := parseDay(s, c.env.Loc, false)
		if err != nil {
			return nil, bad("a date or time (2006-01-02, 2006-01-02T15:04 or RFC 3339)")
		}
		return t, nil
	case KindDate:
		t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
		if err != nil {
			return nil, bad("a date (2006-01-02)")
		}
		return pgtype.Date{Time: t, Valid: true}, nil
	}
	return nil, fault.Errorf(fault.Invalid, "%s: field %q (%s) cannot be compared", where, f.Name, f.Type)
}

func (c *compiler) bindSlice(f Field, vals []string, where string) (any, error) {
	if len(vals) > maxChoiceValues {
		return nil, fault.Errorf(fault.Invalid, "%s: more than %d values", where, maxChoiceValues)
	}
	var texts []string
	var ints []int64
	var nums []float64
	for _, s := range vals {
		v, err := c.bindValue(f, s, where)
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case string:
			texts = append(texts, x)
		case int64:
			ints = append(ints, x)
		case float64:
			nums = append(nums, x)
		default:
			return nil, fault.Errorf(fault.Invalid, "%s: field %q (%s) cannot take a list of values", where, f.Name, f.Type)
		}
	}
	switch f.Kind {
	case KindInt:
		return ints, nil
	case KindNumber:
		return nums, nil
	}
	return texts, nil
}

// where compiles the conditions of the form and the viewer's row scope.
func (c *compiler) where(req Request, p *Plan) ([]string, error) {
	var preds []string
	for _, cond := range c.d.Conditions {
		pred, err := c.condition(cond, req, p)
		if err != nil {
			return nil, err
		}
		if pred != "" {
			preds = append(preds, pred)
		}
	}
	// Soft-deleted records (data objects keep deleted rows for history) are never shown.
	if f, ok := c.t.Field("deleted_at"); ok && f.Kind == KindTime {
		preds = append(preds, qi(f.Name)+" IS NULL")
	}
	scope, err := c.scope()
	if err != nil {
		return nil, err
	}
	if scope != "" {
		preds = append(preds, scope)
	}
	return preds, nil
}

// scope is the predicate of the viewer's row scope: added to every run whatever the
// definition and the request say.
func (c *compiler) scope() (string, error) {
	v := c.env.Viewer
	if v.Scope == account.ScopeAll {
		return "", nil
	}
	if v.Scope == account.ScopeNone {
		return "", fault.Errorf(fault.Forbidden, "your roles do not let you see records")
	}
	if c.d.OwnerField == "" {
		return "", fault.Errorf(fault.Forbidden, "query %q has no owner field: only users who see all of the tenant's records may run it", c.d.Key)
	}
	f, err := c.field(c.d.OwnerField, "owner field")
	if err != nil {
		return "", err
	}
	if f.Kind != KindInt {
		return "", invalid(c.d, "owner field %q must hold user ids (a whole-number field); it is %s", f.Name, f.Type)
	}
	if v.Scope == account.ScopeTeam && v.TeamID != 0 {
		return c.anyOf(f, teamScope(c.env)), nil
	}
	return scopePredicate(c.b, qi(f.Name), c.env), nil
}

// teamScope lists the ids a team lead's rows may belong to: the team's and the lead's own.
func teamScope(env *Env) []int64 {
	ids := env.teamMembers(env.Viewer.TeamID)
	if !slices.Contains(ids, env.Viewer.UserID) {
		ids = append(ids, env.Viewer.UserID)
	}
	return ids
}

func scopePredicate(b *builder, col string, env *Env) string {
	v := env.Viewer
	if v.Scope == account.ScopeTeam && v.TeamID != 0 {
		return col + " = ANY(" + b.arg(teamScope(env)) + ")"
	}
	return col + " = " + b.arg(v.UserID)
}

// Fan-out of "field = ANY(ids)" for a page (a team or several agents). PostgreSQL reads such a
// first page by walking an index on the order's column and dropping other agents' rows, which
// on a big month reads most of the period. Read instead as one index scan per id on an index
// led by the field, each stopped at the page size, merged and cut to the page (identical rows:
// the page's order is total, so each id's first rows hold the page's).
const (
	// maxFanOut: above it, walking the order's index finds the ids' rows soon enough.
	maxFanOut = 64
	fanAlias  = "ctid_fan_ids"
)

type fan struct {
	col, field, pred, arg string
	n                     int
}

// anyOf is the predicate "f = ANY(ids)", with ids once each, noted for fan-out.
func (c *compiler) anyOf(f Field, ids []int64) string {
	seen := make(map[int64]bool, len(ids))
	uniq := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	fn := fan{col: qi(f.Name), field: f.Name, arg: c.b.arg(uniq), n: len(uniq)}
	fn.pred = fn.col + " = ANY(" + fn.arg + ")"
	c.fans = append(c.fans, fn)
	return fn.pred
}

// fanOut picks the fan-out for a keyset page: the "= ANY" with the fewest ids, on a field an
// index starts with, unless the field is also held to one value.
func (c *compiler) fanOut(keyset []keyPart) (fan, bool) {
	var best fan
	found := false
	if keyset == nil {
		return best, false
	}
	for _, fn := range c.fans {
		f, _ := c.t.Field(fn.field)
		if !f.Indexed || c.single[fn.field] || fn.n == 0 || fn.n > maxFanOut {
			continue
		}
		if !found || fn.n < best.n {
			best, found = fn, true
		}
	}
	return best, found
}

// pageArgs and summaryArgs are the arguments of SQL and SummarySQL as pgx takes them. With
// "= ANY" lists of agents they are sent unprepared (described, then run as an unnamed
// statement), so PostgreSQL plans them with their values every time: pgx prepares
// statements, and from a prepared statement's sixth run PostgreSQL may keep a generic plan
// made without the values. For a team's call history at 1,000,000 CDRs that plan read the
// month's rows by time instead of the team's by agent (15 ms became 60 ms after five runs).
func (p *Plan) pageArgs() []any { return p.withMode(p.Args) }

func (p *Plan) summaryArgs() []any { return p.withMode(p.SummaryArgs) }

func (p *Plan) withMode(args []any) []any {
	if !p.planEach {
		return args
	}
	return append([]any{pgx.QueryExecModeDescribeExec}, args...)
}
