package query

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// Kind is what a field holds, as far as conditions, aggregates and formats care.
type Kind string

const (
	KindText   Kind = "text"
	KindInt    Kind = "int"
	KindNumber Kind = "number" // numeric, real, double
	KindTime   Kind = "time"   // timestamptz, timestamp
	KindDate   Kind = "date"
	KindBool   Kind = "bool"
	KindOther  Kind = "other" // arrays, json, ...: shown, never filtered
)

// Field is one column of a catalogue table.
type Field struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // PostgreSQL's name of the type
	Kind    Kind   `json:"kind"`
	NotNull bool   `json:"not_null"`
	// Indexed: an index of the table starts with this field.
	Indexed bool `json:"indexed,omitempty"`
}

// Table is a queryable table (or view) of the tenant's schema.
type Table struct {
	Name   string   `json:"name"`
	Fields []Field  `json:"fields"`
	Key    []string `json:"key,omitempty"` // primary key columns, for keyset paging
	byName map[string]Field
}

// Field finds a field by name.
func (t *Table) Field(name string) (Field, bool) {
	f, ok := t.byName[name]
	return f, ok
}

// Catalogue is everything a query of one tenant may name: the tables of the tenant's schema
// that are on its allow-list (query_tables), with their columns as PostgreSQL reports them.
// It is the only source of identifiers in compiled SQL.
type Catalogue struct {
	tables map[string]*Table
}

// NewCatalogue builds a catalogue from tables (LoadCatalogue reads the real one).
func NewCatalogue(tables ...*Table) *Catalogue {
	c := &Catalogue{tables: map[string]*Table{}}
	for _, t := range tables {
		t.byName = map[string]Field{}
		for _, f := range t.Fields {
			t.byName[f.Name] = f
		}
		c.tables[t.Name] = t
	}
	return c
}

// Table finds a table by name.
func (c *Catalogue) Table(name string) (*Table, bool) {
	t, ok := c.tables[name]
	return t, ok
}

// Tables lists the tables by name.
func (c *Catalogue) Tables() []*Table {
	out := make([]*Table, 0, len(c.tables))
	for _, t := range c.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// kindOf maps a pg_type category and name to a Kind.
func kindOf(category, typname string) Kind {
	switch typname {
	case "int2", "int4", "int8":
		return KindInt
	case "timestamptz", "timestamp":
		return KindTime
	case "date":
		return KindDate
	case "bool":
		return KindBool
	}
	switch category {
	case "S":
		return KindText
	case "N":
		return KindNumber
	}
	return KindOther
}

// catalogueSQL reads the allow-listed tables, views and partitioned parents (never single
// partitions: a query reads the parent and so spans months) of the current schema.
const catalogueSQL = `
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory::text, t.typname, a.attnotnull,
       coalesce(a.attnum = ANY (i.indkey::int2[]), false),
       EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indkey[0] = a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = current_schema()
  AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
  %s
ORDER BY c.relname, a.attnum`

// allowListed limits the catalogue of a tenant's own schema to its allow-list; an external
// source's catalogue is its whole schema (the source's owner chose what the login reads).
const allowListed = `AND c.relname IN (SELECT table_name FROM query_tables)`

// LoadCatalogue reads the catalogue of the tenant schema that tx's search_path names.
func LoadCatalogue(ctx context.Context, tx pgx.Tx) (*Catalogue, error) {
	return loadCatalogue(ctx, tx, true)
}

func loadCatalogue(ctx context.Context, tx pgx.Tx, tenant bool) (*Catalogue, error) {
	filter := ""
	if tenant {
		filter = allowListed
	}
	rows, err := tx.Query(ctx, fmt.Sprintf(catalogueSQL, filter))
	if err != nil {
		return nil, fmt.Errorf("read query catalogue: %w", err)
	}
	defer rows.Close()
	byName := map[string]*Table{}
	var order []*Table
	for rows.Next() {
		var table, typeName, category, typname string
		var f Field
		var inKey bool
		if err := rows.Scan(&table, &f.Name, &typeName, &category, &typname, &f.NotNull, &inKey, &f.Indexed); err != nil {
			return nil, fmt.Errorf("read query catalogue: %w", err)
		}
		f.Type = typeName
		f.Kind = kindOf(category, typname)
		t := byName[table]
		if t == nil {
			t = &Table{Name: table}
			byName[table] = t
			order = append(order, t)
		}
		t.Fields = append(t.Fields, f)
		if inKey {
			t.Key = append(t.Key, f.Name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read query catalogue: %w", err)
	}
	return NewCatalogue(order...), nil
}
