package query

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ctid/ctid/fault"
)

// Limits of a definition.
const (
	maxColumns      = 60
	maxConditions   = 30
	maxPageSize     = 500
	defaultPageSize = 50
	maxSQLText      = 20_000
	maxLabel        = 100
	maxDefinition   = 256 << 10 // bytes of JSON accepted on import
)

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Label is a text in English and Simplified Chinese.
type Label struct {
	En string `json:"en"`
	Zh string `json:"zh,omitempty"`
}

// In is the label in lang ("zh-CN" or "en"), falling back to English.
func (l Label) In(lang string) string {
	if strings.HasPrefix(lang, "zh") && l.Zh != "" {
		return l.Zh
	}
	return l.En
}

// Definition is one registered query: what it reads, which columns it shows, the search
// form's conditions, the default order and page size, and whose rows each viewer may see.
// It is stored as JSON per tenant and exported/imported as that same JSON.
type Definition struct {
	Key         string      `json:"key"`
	Title       Label       `json:"title"`
	Description Label       `json:"description,omitempty"`
	Source      Source      `json:"source"`
	Columns     []Column    `json:"columns,omitempty"`
	Conditions  []Condition `json:"conditions,omitempty"`
	OrderBy     []Order     `json:"order_by,omitempty"`
	PageSize    int         `json:"page_size,omitempty"`
	// OwnerField holds the platform user id of the agent a row belongs to (a table field, or
	// an output column of a SQL-text query). The server scopes every run by it: agents see
	// their own rows, team leads their team's. Without it, only viewers who see all rows of
	// the tenant may run the query.
	OwnerField string   `json:"owner_field,omitempty"`
	Actions    []Action `json:"actions,omitempty"`
	// Batch lists the batch actions offered on the result: "export_csv", "export_xlsx" and
	// "delete" (selected or all matching rows of a data object that allows it, for the roles
	// that may delete its records; the query needs a column of the table's id field).
	Batch []string `json:"batch,omitempty"`
	Chart *Chart   `json:"chart,omitempty"`
	// Builtin marks a standard template shipped with ctid (read-only; copy it to change it).
	Builtin bool `json:"builtin,omitempty"`
}

// Source is what a query reads: one table of the catalogue, or a SQL text with :named
// parameters (for power users).
type Source struct {
	Table string `json:"table,omitempty"`
	SQL   string `json:"sql,omitempty"`
	// External names a registered external PostgreSQL source (read-only): Table and SQL
	// then refer to its schema, not the tenant's.
	External string `json:"external,omitempty"`
}

// Aggregates a column may apply.
const (
	AggCount = "count"
	AggSum   = "sum"
	AggAvg   = "avg"
	AggMin   = "min"
	AggMax   = "max"
	AggRatio = "ratio" // Of[0] ÷ Of[1], two other aggregate columns
	AggAdd   = "add"   // Of[0] + Of[1] (handle time = talk + wrap-up)
	AggSub   = "sub"   // Of[0] − Of[1]
)

// Formats a column may be shown in.
const (
	FormatText     = "text"
	FormatNumber   = "number"   // integer with grouping
	FormatDecimal  = "decimal"  // two decimals
	FormatPercent  = "percent"  // a ratio shown as 12.5%
	FormatDuration = "duration" // seconds shown as h:mm:ss
	FormatDateTime = "datetime" // in the tenant's time zone
	FormatDate     = "date"
	FormatUser     = "user" // a platform user id shown as the user's name
)

var formats = map[string]bool{FormatText: true, FormatNumber: true, FormatDecimal: true, FormatPercent: true,
	FormatDuration: true, FormatDateTime: true, FormatDate: true, FormatUser: true}

// Column is one result column: a field, a time bucket of a field, or an aggregate.
type Column struct {
	Key   string `json:"key"`
	Label Label  `json:"label"`
	Field string `json:"field,omitempty"`
	// Bucket truncates a time field to hour, day, week or month in the tenant's time zone
	// (for grouping over time).
	Bucket string `json:"bucket,omitempty"`
	Agg    string `json:"agg,omitempty"`
	// Where limits an aggregate to the rows that match (count of answered calls).
	Where *Filter `json:"where,omitempty"`
	// Of names the numerator and denominator columns of a ratio.
	Of       []string `json:"of,omitempty"`
	Format   string   `json:"format,omitempty"`
	Width    int      `json:"width,omitempty"` // in characters; 0 = automatic
	Sortable bool     `json:"sortable,omitempty"`
	Total    bool     `json:"total,omitempty"` // shown in the totals row
	Hidden   bool     `json:"hidden,omitempty"`
	// Action makes the cell a link: "dial" (click-to-dial the number) or "open" (the record of
	// Actions with that key).
	Action string `json:"action,omitempty"`
}

// IsAggregate reports whether the column is computed over groups of rows.
func (c Column) IsAggregate() bool { return c.Agg != "" }

// IsDerived reports whether the column combines two other aggregate columns (ratio, add, sub).
func (c Column) IsDerived() bool { return c.Agg == AggRatio || c.Agg == AggAdd || c.Agg == AggSub }

// Filter operators, the only ones a definition may use.
const (
	OpEq      = "eq"
	OpNe      = "ne"
	OpIn      = "in"
	OpNotIn   = "not_in"
	OpGt      = "gt"
	OpGe      = "ge"
	OpLt      = "lt"
	OpLe      = "le"
	OpNull    = "is_null"
	OpNotNull = "not_null"
)

var filterOps = map[string]string{OpEq: "=", OpNe: "<>", OpGt: ">", OpGe: ">=", OpLt: "<", OpLe: "<="}

// Filter is a fixed predicate in a definition: field, operator, values (bound as parameters).
type Filter struct {
	Field  string   `json:"field"`
	Op     string   `json:"op"`
	Values []string `json:"values,omitempty"`
	// Also: every one of these must hold too (AND).
	Also []Filter `json:"also,omitempty"`
}

// Condition types.
const (
	CondText        = "text"         // Match: exact, contains, prefix
	CondChoice      = "choice"       // drop-down (Multi: multi-select) from Options or OptionsFrom
	CondNumberRange = "number_range" // inputs <key>_min, <key>_max
	CondDateRange   = "date_range"   // input <key> is a preset; <key>_from, <key>_to for custom
	CondAgent       = "agent"        // agents the viewer may see
	CondTeam        = "team"         // a team the viewer may see
)

// Text matches.
const (
	MatchExact    = "exact"
	MatchContains = "contains"
	MatchPrefix   = "prefix"
)

// Condition is one field of the search form.
type Condition struct {
	Key         string        `json:"key"`
	Label       Label         `json:"label"`
	Field       string        `json:"field,omitempty"` // table field it filters (not for SQL text)
	Type        string        `json:"type"`
	Match       string        `json:"match,omitempty"`
	Multi       bool          `json:"multi,omitempty"`
	Options     []Option      `json:"options,omitempty"`
	OptionsFrom *OptionSource `json:"options_from,omitempty"`
	// Default applies when the form does not mention the condition at all: a value, a
	// comma-separated list (choice), "min..max" (number range) or a preset (date range).
	Default  string `json:"default,omitempty"`
	Required bool   `json:"required,omitempty"`
}

// Option is one choice of a drop-down.
type Option struct {
	Value string `json:"value"`
	Label Label  `json:"label"`
}

// OptionSource reads a drop-down's options from a code table of the catalogue.
type OptionSource struct {
	Table   string `json:"table"`
	Value   string `json:"value"`
	LabelEn string `json:"label_en"`
	LabelZh string `json:"label_zh,omitempty"`
}

// Order is one ORDER BY item: a column key, descending or not.
type Order struct {
	Column string `json:"column"`
	Desc   bool   `json:"desc,omitempty"`
}

// Action is an action column or row link: dial a number, open a work order or customer.
type Action struct {
	Key   string `json:"key"`
	Label Label  `json:"label"`
	Kind  string `json:"kind"`  // "dial" or "open"
	Field string `json:"field"` // the column key whose value it uses
	// Target is what "open" opens: "work_order", "customer", or a data-object key.
	Target string `json:"target,omitempty"`
}

// Chart draws grouped results: X is a column key (a bucket for lines), Y the value columns.
type Chart struct {
	Kind string   `json:"kind"` // bar, line
	X    string   `json:"x"`
	Y    []string `json:"y"`
}

// Batch actions.
const (
	BatchCSV    = "export_csv"
	BatchXLSX   = "export_xlsx"
	BatchDelete = "delete"
)

// Offers reports whether the definition declares batch action b.
func (d *Definition) Offers(b string) bool {
	for _, x := range d.Batch {
		if x == b {
			return true
		}
	}
	return false
}

// IDColumn is the index of the column showing the table's id field (batch delete's row
// selection), or -1.
func (d *Definition) IDColumn() int {
	for i, c := range d.Columns {
		if c.Field == idField && c.Agg == "" && c.Bucket == "" {
			return i
		}
	}
	return -1
}

// IsSQL reports whether the definition is a SQL-text query.
func (d *Definition) IsSQL() bool { return d.Source.SQL != "" }

// Column finds a column by key.
func (d *Definition) Column(key string) (Column, bool) {
	for _, c := range d.Columns {
		if c.Key == key {
			return c, true
		}
	}
	return Column{}, false
}

// Size is the page size to use: the definition's, capped, or the default.
func (d *Definition) Size(requested int) int {
	n := d.PageSize
	if requested > 0 {
		n = requested
	}
	if n <= 0 {
		n = defaultPageSize
	}
	return min(n, maxPageSize)
}

// Check validates what can be checked without the catalogue: keys, kinds, limits. The
// compiler checks fields against the catalogue. Errors name the bad part.
func (d *Definition) Check() error {
	bad := func(format string, args ...any) error {
		return fault.Errorf(fault.Invalid, "query %q: "+format, append([]any{d.Key}, args...)...)
	}
	if !keyRE.MatchString(d.Key) {
		return fault.Errorf(fault.Invalid, "query key %q is not valid: a lower-case letter, then up to 62 of a–z, 0–9, _", d.Key)
	}
	if strings.TrimSpace(d.Title.En) == "" {
		return bad("title (en) is empty")
	}
	if err := checkLabel(d.Title); err != nil {
		return bad("title: %s", err)
	}
	switch {
	case d.Source.Table == "" && d.Source.SQL == "":
		return bad("source names no table and no SQL text")
	case d.Source.Table != "" && d.Source.SQL != "":
		return bad("source names both a table and a SQL text; choose one")
	case len(d.Source.SQL) > maxSQLText:
		return bad("SQL text is longer than %d bytes", maxSQLText)
	case d.Source.External != "" && !keyRE.MatchString(d.Source.External):
		return bad("external data source %q is not a source key", d.Source.External)
	}
	if !d.IsSQL() && len(d.Columns) == 0 {
		return bad("has no columns")
	}
	if len(d.Columns) > maxColumns {
		return bad("has %d columns; at most %d", len(d.Columns), maxColumns)
	}
	if len(d.Conditions) > maxConditions {
		return bad("has %d conditions; at most %d", len(d.Conditions), maxConditions)
	}
	if d.PageSize < 0 || d.PageSize > maxPageSize {
		return bad("page size %d is out of range 1–%d", d.PageSize, maxPageSize)
	}
	seen := map[string]bool{}
	for _, c := range d.Columns {
		if !keyRE.MatchString(c.Key) {
			return bad("column key %q is not valid", c.Key)
		}
		if seen[c.Key] {
			return bad("column %q appears twice", c.Key)
		}
		seen[c.Key] = true
		if err := checkLabel(c.Label); err != nil {
			return bad("column %q label: %s", c.Key, err)
		}
		if c.Format != "" && !formats[c.Format] {
			return bad("column %q: unknown format %q", c.Key, c.Format)
		}
		if c.Width < 0 || c.Width > 200 {
			return bad("column %q: width %d is out of range 0–200", c.Key, c.Width)
		}
		if c.Action != "" && c.Action != "dial" && c.Action != "open" {
			return bad("column %q: unknown action %q (want dial or open)", c.Key, c.Action)
		}
	}
	conds := map[string]bool{}
	for _, c := range d.Conditions {
		if !keyRE.MatchString(c.Key) {
			return bad("condition key %q is not valid", c.Key)
		}
		if conds[c.Key] {
			return bad("condition %q appears twice", c.Key)
		}
		conds[c.Key] = true
		if err := checkLabel(c.Label); err != nil {
			return bad("condition %q label: %s", c.Key, err)
		}
		switch c.Type {
		case CondText:
			if c.Match != "" && c.Match != MatchExact && c.Match != MatchContains && c.Match != MatchPrefix {
				return bad("condition %q: unknown text match %q (want exact, contains or prefix)", c.Key, c.Match)
			}
		case CondChoice:
			if len(c.Options) == 0 && c.OptionsFrom == nil {
				return bad("condition %q: a choice needs options or options_from", c.Key)
			}
		case CondNumberRange, CondAgent, CondTeam:
		case CondDateRange:
			if c.Default != "" {
				if _, err := ParsePreset(c.Default); err != nil {
					return bad("condition %q default: %s", c.Key, fault.MessageOf(err))
				}
			}
		default:
			return bad("condition %q: unknown type %q", c.Key, c.Type)
		}
	}
	for _, o := range d.OrderBy {
		if !d.IsSQL() && !seen[o.Column] {
			return bad("order by names no column %q", o.Column)
		}
	}
	for _, a := range d.Actions {
		if !keyRE.MatchString(a.Key) {
			return bad("action key %q is not valid", a.Key)
		}
		if a.Kind != "dial" && a.Kind != "open" {
			return bad("action %q: unknown kind %q (want dial or open)", a.Key, a.Kind)
		}
		if !d.IsSQL() && !seen[a.Field] {
			return bad("action %q uses no column %q", a.Key, a.Field)
		}
	}
	for _, b := range d.Batch {
		switch b {
		case BatchCSV, BatchXLSX:
		case BatchDelete:
			if d.IsSQL() || d.Source.External != "" {
				return bad("batch delete needs a table of the tenant as source, not a SQL text or an external source")
			}
			for _, c := range d.Columns {
				if c.IsAggregate() {
					return bad("batch delete needs one row per record: column %q is an aggregate", c.Key)
				}
			}
			if d.IDColumn() < 0 {
				return bad("batch delete needs a column of field %q (it may be hidden) to select rows by", idField)
			}
		default:
			return bad("unknown batch action %q (want export_csv, export_xlsx or delete)", b)
		}
	}
	if d.Chart != nil {
		if d.Chart.Kind != "bar" && d.Chart.Kind != "line" {
			return bad("chart kind %q: want bar or line", d.Chart.Kind)
		}
		if !d.IsSQL() {
			for _, k := range append([]string{d.Chart.X}, d.Chart.Y...) {
				if !seen[k] {
					return bad("chart names no column %q", k)
				}
			}
		}
	}
	return nil
}

func checkLabel(l Label) error {
	if utf8.RuneCountInString(l.En) > maxLabel || utf8.RuneCountInString(l.Zh) > maxLabel {
		return fmt.Errorf("longer than %d characters", maxLabel)
	}
	return nil
}

// Export is the definition as indented JSON, for download and re-import.
func (d *Definition) Export() ([]byte, error) {
	e := *d
	e.Builtin = false
	return json.MarshalIndent(e, "", "  ")
}

// Import reads a definition from JSON, refusing unknown fields, and checks it.
func Import(b []byte) (*Definition, error) {
	if len(b) > maxDefinition {
		return nil, fault.Errorf(fault.Invalid, "query definition is larger than %d bytes", maxDefinition)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var d Definition
	if err := dec.Decode(&d); err != nil {
		return nil, fault.Errorf(fault.Invalid, "query definition is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fault.Errorf(fault.Invalid, "query definition has data after the JSON value")
	}
	d.Builtin = false
	if err := d.Check(); err != nil {
		return nil, err
	}
	return &d, nil
}
