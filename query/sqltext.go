package query

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Built-in parameters of SQL-text queries.
const (
	ParamMe = "me" // the viewer's user id
	ParamTZ = "tz" // the tenant's time zone name
)

// bindNamed replaces each :name in sql with $n (one number per distinct name, from base+1)
// and returns the names in number order. It skips string literals, quoted identifiers,
// dollar-quoted strings, comments and :: casts, and refuses $n placeholders.
func bindNamed(sql string, base int) (string, []string, error) {
	var out strings.Builder
	var names []string
	index := map[string]int{}
	n := len(sql)
	for i := 0; i < n; {
		ch := sql[i]
		switch {
		case ch == '\'' || ch == '"':
			j := i + 1
			for j < n {
				if sql[j] == ch {
					if j+1 < n && sql[j+1] == ch { // doubled quote
						j += 2
						continue
					}
					break
				}
				if ch == '\'' && sql[j] == '\\' && i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') {
					j += 2
					continue
				}
				j++
			}
			if j >= n {
				return "", nil, fault.Errorf(fault.Invalid, "SQL text: unterminated %c quote", ch)
			}
			out.WriteString(sql[i : j+1])
			i = j + 1
		case ch == '-' && i+1 < n && sql[i+1] == '-':
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				j = n - i
			}
			out.WriteString(sql[i : i+j])
			i += j
		case ch == '/' && i+1 < n && sql[i+1] == '*':
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return "", nil, fault.Errorf(fault.Invalid, "SQL text: unterminated /* comment")
			}
			out.WriteString(sql[i : i+2+j+2])
			i += 2 + j + 2
		case ch == '$':
			j := i + 1
			for j < n && (isIdentChar(sql[j])) {
				j++
			}
			if j < n && sql[j] == '$' && (j == i+1 || !isDigit(sql[i+1])) {
				tag := sql[i : j+1]
				end := strings.Index(sql[j+1:], tag)
				if end < 0 {
					return "", nil, fault.Errorf(fault.Invalid, "SQL text: unterminated %s string", tag)
				}
				out.WriteString(sql[i : j+1+end+len(tag)])
				i = j + 1 + end + len(tag)
				continue
			}
			if i+1 < n && isDigit(sql[i+1]) {
				return "", nil, fault.Errorf(fault.Invalid, "SQL text: use :name parameters, not $%c", sql[i+1])
			}
			out.WriteByte(ch)
			i++
		case ch == ':':
			if i+1 < n && sql[i+1] == ':' {
				out.WriteString("::")
				i += 2
				continue
			}
			j := i + 1
			if j < n && isIdentStart(sql[j]) {
				for j < n && isIdentChar(sql[j]) {
					j++
				}
				name := sql[i+1 : j]
				num, ok := index[name]
				if !ok {
					names = append(names, name)
					num = base + len(names)
					index[name] = num
				}
				out.WriteString("$" + strconv.Itoa(num))
				i = j
				continue
			}
			out.WriteByte(ch)
			i++
		default:
			out.WriteByte(ch)
			i++
		}
	}
	return out.String(), names, nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// sqlParams is the value of every parameter a SQL-text query may use, from its conditions
// and the built-ins. Values are typed Go values, bound as parameters.
func sqlParams(d *Definition, env *Env, req Request, p *Plan) (map[string]any, error) {
	params := map[string]any{ParamMe: env.Viewer.UserID, ParamTZ: env.Loc.String()}
	for _, cond := range d.Conditions {
		vals := cond.values(req, p)
		where := "condition " + strconv.Quote(cond.Key)
		k := cond.Key
		switch cond.Type {
		case CondText:
			s := first(vals[k])
			if len(s) > maxTextValue {
				return nil, fault.Errorf(fault.Invalid, "%s: the value is longer than %d bytes", where, maxTextValue)
			}
			params[k] = nilIfEmpty(s)
		case CondChoice:
			vs := vals[k]
			if len(vs) > maxChoiceValues {
				return nil, fault.Errorf(fault.Invalid, "%s: more than %d values", where, maxChoiceValues)
			}
			if len(cond.Options) > 0 {
				for _, v := range vs {
					if !hasOption(cond.Options, v) {
						return nil, fault.Errorf(fault.Invalid, "%s: %q is not one of its options", where, v)
					}
				}
			}
			if cond.Multi {
				params[k] = vs
			} else {
				params[k] = nilIfEmpty(first(vs))
			}
		case CondNumberRange:
			for _, key := range []string{k + "_min", k + "_max"} {
				params[key] = nil
				if s := first(vals[key]); s != "" {
					x, err := strconv.ParseFloat(s, 64)
					if err != nil {
						return nil, fault.Errorf(fault.Invalid, "%s: %s %q is not a number", where, key, s)
					}
					params[key] = x
				}
			}
		case CondDateRange:
			r, ok, err := dateRange(cond, vals, env)
			if err != nil {
				return nil, err
			}
			params[k+"_from"], params[k+"_to"] = nil, nil
			if ok && !r.From.IsZero() {
				params[k+"_from"] = r.From
			}
			if ok && !r.To.IsZero() {
				params[k+"_to"] = r.To
			}
		case CondAgent:
			ids, err := pickAgents(env, vals[k], where)
			if err != nil {
				return nil, err
			}
			params[k] = ids
		case CondTeam:
			ids, err := pickTeam(env, vals[k], where)
			if err != nil {
				return nil, err
			}
			params[k] = ids
		}
		if cond.Required && params[k] == nil && params[k+"_from"] == nil && params[k+"_min"] == nil {
			return nil, fault.Errorf(fault.Invalid, "%s (%s) needs a value", where, cond.Label.En)
		}
	}
	return params, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SQLInner is a SQL-text query with its named parameters bound: the first step of running it.
type SQLInner struct {
	SQL  string
	Args []any
}

// BindSQL binds the named parameters of a SQL-text definition.
func BindSQL(d *Definition, env *Env, req Request, p *Plan) (*SQLInner, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	if !d.IsSQL() {
		return nil, invalid(d, "is not a SQL-text query")
	}
	if env.Loc == nil {
		env.Loc = time.UTC
	}
	text := strings.TrimSpace(d.Source.SQL)
	text = strings.TrimSpace(strings.TrimSuffix(text, ";"))
	sql, names, err := bindNamed(text, 0)
	if err != nil {
		return nil, invalid(d, "%s", fault.MessageOf(err))
	}
	params, err := sqlParams(d, env, req, p)
	if err != nil {
		return nil, err
	}
	args := make([]any, len(names))
	for i, name := range names {
		v, ok := params[name]
		if !ok {
			known := make([]string, 0, len(params))
			for k := range params {
				known = append(known, ":"+k)
			}
			sort.Strings(known)
			return nil, invalid(d, "SQL text uses parameter :%s, which no condition provides (known: %s)", name, strings.Join(known, ", "))
		}
		args[i] = v
	}
	// A newline before the closing parenthesis ends a trailing -- comment.
	return &SQLInner{SQL: "(\n" + sql + "\n)", Args: args}, nil
}

// CompileSQL wraps a bound SQL-text query whose output columns are outputs (as PostgreSQL
// described them): the viewer's row scope, the user's sort, totals and paging go around it.
func CompileSQL(d *Definition, inner *SQLInner, outputs []string, env *Env, req Request, p *Plan) error {
	b := &builder{args: append([]any(nil), inner.Args...), loc: env.Loc}
	from := " FROM " + inner.SQL + " AS q"
	has := map[string]bool{}
	for _, o := range outputs {
		has[o] = true
	}
	var where string
	switch env.Viewer.Scope {
	case account.ScopeAll:
	case account.ScopeNone:
		return fault.Errorf(fault.Forbidden, "your roles do not let you see records")
	default:
		if d.OwnerField == "" {
			return fault.Errorf(fault.Forbidden, "query %q has no owner field: only users who see all of the tenant's records may run it", d.Key)
		}
		if !has[d.OwnerField] {
			return invalid(d, "owner field %q is not a column of the SQL text's result", d.OwnerField)
		}
		where = " WHERE " + scopePredicate(b, "q."+qi(d.OwnerField), env)
	}
	p.Columns = nil
	for _, o := range outputs {
		col, ok := d.Column(o)
		if !ok {
			col = Column{Key: o, Label: Label{En: o}}
		}
		p.Columns = append(p.Columns, OutColumn{Key: o, Label: col.Label, Format: col.Format, Width: col.Width,
			Sortable: col.Sortable || ok, Action: col.Action, Total: col.Total, Hidden: col.Hidden})
	}
	var order []string
	if req.Sort != "" {
		key, desc := strings.CutPrefix(req.Sort, "-")
		if !has[key] {
			return fault.Errorf(fault.Invalid, "sort: query %q has no column %q", d.Key, key)
		}
		order = append(order, "q."+qi(key)+map[bool]string{true: " DESC", false: ""}[desc])
	}
	for _, o := range d.OrderBy {
		if !has[o.Column] {
			return invalid(d, "order by names %q, which is not a column of the SQL text's result", o.Column)
		}
		order = append(order, "q."+qi(o.Column)+map[bool]string{true: " DESC", false: ""}[o.Desc])
	}
	summary := []string{"count(*)"}
	p.totalKey = nil
	for _, c := range p.Columns {
		if c.Total {
			summary = append(summary, "sum(q."+qi(c.Key)+")")
			p.totalKey = append(p.totalKey, c.Key)
		}
	}
	p.SummarySQL = "SELECT " + strings.Join(summary, ", ") + from + where
	p.SummaryArgs = append([]any(nil), b.args...)
	orderSQL := ""
	if len(order) > 0 {
		orderSQL = " ORDER BY " + strings.Join(order, ", ")
	}
	p.ExportSQL = "SELECT *" + from + where + orderSQL
	p.ExportArgs = append([]any(nil), b.args...)
	p.sortSig = d.Key + "|" + req.Sort
	tok, err := decodeToken(req.Page, p.sortSig)
	if err != nil {
		return err
	}
	if tok.Keys != nil {
		return errToken
	}
	p.Size = d.Size(req.PageSize)
	p.Offset = tok.Offset
	limit := " LIMIT " + b.arg(p.Size+1)
	if p.Offset > 0 {
		limit += " OFFSET " + b.arg(p.Offset)
	}
	p.SQL = "SELECT *" + from + where + orderSQL + limit
	p.Args = b.args
	return nil
}
