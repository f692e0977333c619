package query

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// FieldUsers names the saved queries that use column field of table, read through tx (a
// transaction scoped to the tenant). The dataobject store asks it before a field is renamed or
// hidden (dataobject.Options.FieldUsage), so no saved query breaks silently.
func FieldUsers(ctx context.Context, tx pgx.Tx, table, field string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT key, definition FROM queries ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("saved queries using %s.%s: %w", table, field, err)
	}
	defer rows.Close()
	var users []string
	for rows.Next() {
		var key string
		var d Definition
		if err := rows.Scan(&key, &d); err != nil {
			return nil, fmt.Errorf("saved queries using %s.%s: %w", table, field, err)
		}
		if d.usesField(table, field) {
			users = append(users, key)
		}
	}
	return users, rows.Err()
}

// usesField reports whether the definition reads column field of table. SQL text is matched
// by words: a text that names both the table and the column counts (better a false alarm than
// a query broken without a word).
func (d *Definition) usesField(table, field string) bool {
	if d.IsSQL() {
		word := func(w string) *regexp.Regexp { return regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(w) + `\b`) }
		return word(table).MatchString(d.Source.SQL) && word(field).MatchString(d.Source.SQL)
	}
	if d.Source.Table != table {
		return false
	}
	if d.OwnerField == field {
		return true
	}
	var inFilter func(f *Filter) bool
	inFilter = func(f *Filter) bool {
		if f == nil {
			return false
		}
		if f.Field == field {
			return true
		}
		for i := range f.Also {
			if inFilter(&f.Also[i]) {
				return true
			}
		}
		return false
	}
	for _, c := range d.Columns {
		if c.Field == field || inFilter(c.Where) {
			return true
		}
	}
	for _, c := range d.Conditions {
		if c.Field == field {
			return true
		}
	}
	return false
}
