package query

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ctid/ctid/fault"
)

// token is the page token's content. It carries no SQL: its sort signature must match the
// request's, its offset is a number, its keys are values bound as parameters by the kind of
// the field they belong to.
type token struct {
	Sig    string   `json:"s"`
	Offset int      `json:"o,omitempty"`
	Keys   []string `json:"k,omitempty"`
}

const maxTokenLen = 4096

var errToken = fault.Errorf(fault.Invalid, "page token is not valid for this query and sort: start again from the first page")

func decodeToken(s, sig string) (token, error) {
	if s == "" {
		return token{Sig: sig}, nil
	}
	if len(s) > maxTokenLen {
		return token{}, errToken
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return token{}, errToken
	}
	var t token
	if err := json.Unmarshal(b, &t); err != nil || t.Sig != sig || t.Offset < 0 || t.Offset > maxOffset {
		return token{}, errToken
	}
	return t, nil
}

func (t token) encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

// order builds ORDER BY: the user's sort (a sortable column), the definition's order, then
// tie-breakers so pages never repeat or skip rows. It returns the keyset parts when keyset
// paging applies: not grouped, and every order item a NOT NULL field ending in the primary key.
func (c *compiler) order(req Request, grouped bool, groups []string) ([]string, []keyPart, error) {
	var items []Order
	if req.Sort != "" {
		key, desc := strings.CutPrefix(req.Sort, "-")
		col, ok := c.d.Column(key)
		if !ok {
			return nil, nil, fault.Errorf(fault.Invalid, "sort: query %q has no column %q", c.d.Key, key)
		}
		if !col.Sortable && !c.inOrderBy(key) {
			return nil, nil, fault.Errorf(fault.Invalid, "sort: column %q of query %q is not sortable", key, c.d.Key)
		}
		items = append(items, Order{Column: key, Desc: desc})
	}
	for _, o := range c.d.OrderBy {
		if len(items) == 0 || items[0].Column != o.Column {
			items = append(items, o)
		}
	}
	var order []string
	var keys []keyPart
	keysetOK := !grouped && len(c.t.Key) > 0
	used := map[string]bool{}
	for _, o := range items {
		i := c.columnIndex(o.Column)
		dir := ""
		if o.Desc {
			dir = " DESC"
		}
		order = append(order, qi("c"+strconv.Itoa(i))+dir)
		e := c.exprs[o.Column]
		if !e.plain || !e.field.NotNull {
			keysetOK = false
		}
		keys = append(keys, keyPart{expr: e.sql, kind: e.kind, desc: o.Desc})
		used[e.field.Name] = e.plain
	}
	if grouped {
		order = append(order, groups...)
		return order, nil, nil
	}
	for _, k := range c.t.Key {
		if used[k] {
			continue
		}
		f, _ := c.t.Field(k)
		order = append(order, qi(k))
		keys = append(keys, keyPart{expr: qi(k), kind: f.Kind})
	}
	if !keysetOK {
		return order, nil, nil
	}
	for _, k := range keys {
		if k.kind == KindOther {
			return order, nil, nil
		}
	}
	return order, keys, nil
}

func (c *compiler) inOrderBy(key string) bool {
	for _, o := range c.d.OrderBy {
		if o.Column == key {
			return true
		}
	}
	return false
}

func (c *compiler) columnIndex(key string) int {
	for i, col := range c.d.Columns {
		if col.Key == key {
			return i
		}
	}
	return -1
}

// afterKeys is the keyset predicate "rows after these key values" in the order's directions:
// (a > $1) OR (a = $1 AND b < $2) OR ...
func (c *compiler) afterKeys(parts []keyPart, vals []string) (string, error) {
	if len(vals) != len(parts) {
		return "", errToken
	}
	args := make([]string, len(parts))
	for i, p := range parts {
		v, err := keyValue(p.kind, vals[i])
		if err != nil {
			return "", errToken
		}
		args[i] = c.b.arg(v)
	}
	var ors []string
	for i, p := range parts {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, parts[j].expr+" = "+args[j])
		}
		op := " > "
		if p.desc {
			op = " < "
		}
		ands = append(ands, p.expr+op+args[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

// keyValue decodes a token key value by the kind of its field.
func keyValue(k Kind, s string) (any, error) {
	switch k {
	case KindText:
		return s, nil
	case KindInt:
		return strconv.ParseInt(s, 10, 64)
	case KindNumber:
		var n pgtype.Numeric
		if err := n.Scan(s); err != nil {
			return nil, err
		}
		return n, nil
	case KindTime:
		return time.Parse(time.RFC3339Nano, s)
	case KindDate:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, err
		}
		y, m, d := t.Date()
		return pgtype.Date{Time: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), Valid: true}, nil
	case KindBool:
		return strconv.ParseBool(s)
	}
	return nil, errToken
}

// keyString encodes a row's key value for the token.
func keyString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int16:
		return strconv.FormatInt(int64(x), 10), true
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), true
	case bool:
		return strconv.FormatBool(x), true
	case pgtype.Numeric:
		b, err := x.MarshalJSON()
		return strings.Trim(string(b), `"`), err == nil
	}
	return "", false
}
