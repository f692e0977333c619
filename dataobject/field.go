package dataobject

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// FieldType is the kind of value a field holds; it decides the column's SQL type.
type FieldType string

const (
	TypeText      FieldType = "text"      // varchar(max length)
	TypeLongText  FieldType = "long_text" // text
	TypeInteger   FieldType = "integer"   // bigint
	TypeDecimal   FieldType = "decimal"   // numeric
	TypeDate      FieldType = "date"      // date
	TypeDateTime  FieldType = "datetime"  // timestamptz
	TypeBoolean   FieldType = "boolean"   // boolean
	TypePhone     FieldType = "phone"     // text (text[] when multi); match keys in phone_keys
	TypeEmail     FieldType = "email"     // varchar(320)
	TypeCode      FieldType = "code"      // text (text[] when multi), values from a code table
	TypeReference FieldType = "reference" // bigint, the id of a record of another object
)

// FieldTypes lists every field type.
var FieldTypes = []FieldType{TypeText, TypeLongText, TypeInteger, TypeDecimal, TypeDate, TypeDateTime,
	TypeBoolean, TypePhone, TypeEmail, TypeCode, TypeReference}

const maxEmailLength = 320

// Field is one field of an object: a column of its table.
type Field struct {
	ID          int64
	Key         string // also the column name
	Type        FieldType
	LabelEN     string
	LabelZH     string
	MaxLength   int    // text: at most this many characters
	CodeTable   string // code: the code table's key
	Multi       bool   // phone, code: several values
	RefObject   string // reference: the referenced object's key
	Required    bool
	Unique      bool
	Default     string // applied when a new record leaves the field empty
	Searchable  bool   // list search looks in it
	InList      bool   // shown as a list column
	Position    int    // order on the edit page and in lists
	MatchCaller bool   // phone: caller lookup matches it
	Hidden      bool   // removed by an admin: the column and its data stay
}

// Label is the field's label in lang ("zh..." for Chinese), falling back to English.
func (f *Field) Label(lang string) string {
	if strings.HasPrefix(lang, "zh") && f.LabelZH != "" {
		return f.LabelZH
	}
	return f.LabelEN
}

const fieldColumns = `f.object_id, f.id, f.key, f.type, f.label_en, f.label_zh, f.max_length, coalesce(f.code_table, ''), f.multi,
	coalesce(r.key, ''), f.required, f.is_unique, f.default_value, f.searchable, f.in_list, f.position, f.match_caller, f.hidden`

func scanField(row pgx.Row, objectID *int64) (*Field, error) {
	var f Field
	err := row.Scan(objectID, &f.ID, &f.Key, &f.Type, &f.LabelEN, &f.LabelZH, &f.MaxLength, &f.CodeTable, &f.Multi,
		&f.RefObject, &f.Required, &f.Unique, &f.Default, &f.Searchable, &f.InList, &f.Position, &f.MatchCaller, &f.Hidden)
	return &f, err
}

// NewField is what it takes to add a field.
type NewField struct {
	Key         string
	Type        FieldType
	LabelEN     string
	LabelZH     string
	MaxLength   int
	CodeTable   string
	Multi       bool
	RefObject   string
	Required    bool
	Unique      bool
	Default     string
	Searchable  bool
	InList      bool
	Position    int // 0: after the last field
	MatchCaller bool
}

func (nf *NewField) check(o *Object) error {
	if err := checkFieldKey(nf.Key); err != nil {
		return err
	}
	what := fmt.Sprintf("field %q", nf.Key)
	nf.LabelEN, nf.LabelZH = strings.TrimSpace(nf.LabelEN), strings.TrimSpace(nf.LabelZH)
	if nf.LabelEN == "" {
		nf.LabelEN = nf.Key
	}
	if utf8.RuneCountInString(nf.LabelEN) > maxNameLength || utf8.RuneCountInString(nf.LabelZH) > maxNameLength {
		return fault.Errorf(fault.Invalid, "%s: label is too long: at most %d characters", what, maxNameLength)
	}
	known := false
	for _, t := range FieldTypes {
		known = known || t == nf.Type
	}
	if !known {
		return fault.Errorf(fault.Invalid, "%s: unknown type %q", what, nf.Type)
	}
	switch nf.Type {
	case TypeText:
		if nf.MaxLength == 0 {
			nf.MaxLength = defaultTextLen
		}
		if nf.MaxLength < 1 || nf.MaxLength > maxTextLength {
			return fault.Errorf(fault.Invalid, "%s: max length must be 1–%d, not %d", what, maxTextLength, nf.MaxLength)
		}
	case TypeEmail:
		nf.MaxLength = maxEmailLength
	default:
		if nf.MaxLength != 0 {
			return fault.Errorf(fault.Invalid, "%s: only text fields have a max length", what)
		}
	}
	if nf.Multi && nf.Type != TypePhone && nf.Type != TypeCode {
		return fault.Errorf(fault.Invalid, "%s: only phone and code fields can hold several values", what)
	}
	if nf.Unique && (nf.Multi || nf.Type == TypeLongText || nf.Type == TypeBoolean) {
		return fault.Errorf(fault.Invalid, "%s: a %s field cannot be unique", what, describeType(nf.Type, nf.Multi))
	}
	if nf.Unique && o.Partitioned {
		return fault.Errorf(fault.Invalid, "%s: object %q has monthly partitions, where values cannot be unique across months", what, o.Key)
	}
	if (nf.Type == TypeCode) != (nf.CodeTable != "") {
		return fault.Errorf(fault.Invalid, "%s: a code table is needed by code fields and only by them", what)
	}
	if (nf.Type == TypeReference) != (nf.RefObject != "") {
		return fault.Errorf(fault.Invalid, "%s: a referenced object is needed by reference fields and only by them", what)
	}
	if nf.MatchCaller && nf.Type != TypePhone {
		return fault.Errorf(fault.Invalid, "%s: only phone fields can be matched against callers", what)
	}
	return nil
}

func describeType(t FieldType, multi bool) string {
	if multi {
		return "multi-value " + string(t)
	}
	return string(t)
}

// columnType is the SQL type of a field's column. Every part comes from our constants or
// checked integers, never from admin text.
func columnType(f *Field) string {
	switch f.Type {
	case TypeText:
		return "varchar(" + strconv.Itoa(f.MaxLength) + ")"
	case TypeLongText:
		return "text"
	case TypeInteger, TypeReference:
		return "bigint"
	case TypeDecimal:
		return "numeric"
	case TypeDate:
		return "date"
	case TypeDateTime:
		return "timestamptz"
	case TypeBoolean:
		return "boolean"
	case TypeEmail:
		return "varchar(" + strconv.Itoa(maxEmailLength) + ")"
	case TypePhone, TypeCode:
		if f.Multi {
			return "text[]"
		}
		return "text"
	}
	panic("dataobject: column type of unknown field type " + string(f.Type))
}

// AddField adds a field to an object: a catalogue row and ALTER TABLE ... ADD COLUMN in one
// transaction.
func (s *Store) AddField(ctx context.Context, t *account.Tenant, objectKey string, nf NewField) (*Field, error) {
	var f *Field
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, objectKey)
		if err != nil {
			return err
		}
		f, err = addField(ctx, tx, o, nf)
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "add field %q to %q", nf.Key, objectKey)
	}
	return f, nil
}

func addField(ctx context.Context, tx pgx.Tx, o *Object, nf NewField) (*Field, error) {
	if err := nf.check(o); err != nil {
		return nil, fault.Errorf(fault.Invalid, "object %q: %s", o.Key, fault.MessageOf(err))
	}
	if len(o.Fields) >= maxFieldsPerObj {
		return nil, fault.Errorf(fault.Invalid, "object %q has %d fields, the most allowed", o.Key, maxFieldsPerObj)
	}
	if o.Field(nf.Key) != nil {
		return nil, fault.Errorf(fault.Conflict, "object %q already has a field %q (hidden fields keep their key)", o.Key, nf.Key)
	}
	f := &Field{Key: nf.Key, Type: nf.Type, LabelEN: nf.LabelEN, LabelZH: nf.LabelZH, MaxLength: nf.MaxLength,
		CodeTable: nf.CodeTable, Multi: nf.Multi, RefObject: nf.RefObject, Required: nf.Required, Unique: nf.Unique,
		Searchable: nf.Searchable, InList: nf.InList, Position: nf.Position, MatchCaller: nf.MatchCaller}
	if f.Position == 0 {
		f.Position = 10
		for _, g := range o.Fields {
			f.Position = max(f.Position, g.Position+10)
		}
	}
	var refID *int64
	var ref *Object
	if f.Type == TypeReference {
		var err error
		if ref, err = loadObject(ctx, tx, f.RefObject); err != nil {
			return nil, fault.Errorf(fault.Invalid, "object %q: field %q refers to object %q, which does not exist", o.Key, f.Key, f.RefObject)
		}
		refID = &ref.ID
	}
	var codeTable *string
	if f.Type == TypeCode {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM code_tables WHERE key = $1)`, f.CodeTable).Scan(&exists); err != nil {
			return nil, err
		}
		if !exists {
			return nil, fault.Errorf(fault.Invalid, "object %q: field %q uses code table %q, which does not exist", o.Key, f.Key, f.CodeTable)
		}
		codeTable = &f.CodeTable
	}
	if nf.Default != "" {
		v, err := parseValue(f, nf.Default)
		if err != nil {
			return nil, fault.Errorf(fault.Invalid, "object %q: field %q: default: %s", o.Key, f.Key, fault.MessageOf(err))
		}
		if f.Type == TypeCode {
			if err := checkCodes(ctx, tx, f, v); err != nil {
				return nil, fault.Errorf(fault.Invalid, "object %q: field %q: default: %s", o.Key, f.Key, fault.MessageOf(err))
			}
		}
		f.Default = nf.Default
	}
	err := tx.QueryRow(ctx, `INSERT INTO data_fields (object_id, key, type, label_en, label_zh, max_length, code_table, multi,
			ref_object_id, required, is_unique, default_value, searchable, in_list, position, match_caller)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id`,
		o.ID, f.Key, f.Type, f.LabelEN, f.LabelZH, f.MaxLength, codeTable, f.Multi, refID, f.Required, f.Unique,
		f.Default, f.Searchable, f.InList, f.Position, f.MatchCaller).Scan(&f.ID)
	if err != nil {
		return nil, fmt.Errorf("catalogue field %q: %w", f.Key, err)
	}
	table := ident(o.Table)
	col := ident(f.Key)
	stmt := "ALTER TABLE " + table + " ADD COLUMN " + col + " " + columnType(f)
	if ref != nil && !ref.Partitioned {
		stmt += " REFERENCES " + ident(ref.Table) + " (id)"
	}
	stmts := []string{stmt}
	if f.Unique {
		stmts = append(stmts, uniqueIndexSQL(o, f))
	}
	if f.Type == TypeReference || f.Type == TypeCode && !f.Multi {
		stmts = append(stmts, "CREATE INDEX "+ident(fmt.Sprintf("f%d_idx", f.ID))+" ON "+table+" ("+col+")")
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			if isUniqueViolation(err) {
				return nil, fault.Errorf(fault.Conflict, "object %q: field %q cannot be unique: existing records share values", o.Key, f.Key)
			}
			// Objects built on ctid's own tables (the QA score object's qa_scores) have
			// columns of their own that are not fields.
			if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42701" {
				return nil, fault.Errorf(fault.Conflict, "object %q: %q is a built-in column of its table; choose another field key", o.Key, f.Key)
			}
			return nil, fmt.Errorf("add column %q to %s: %w", f.Key, o.Table, err)
		}
	}
	return f, nil
}

// uniqueIndexSQL: soft-deleted records do not hold on to their values.
func uniqueIndexSQL(o *Object, f *Field) string {
	return "CREATE UNIQUE INDEX " + ident(fmt.Sprintf("f%d_uq", f.ID)) + " ON " + ident(o.Table) +
		" (" + ident(f.Key) + ") WHERE deleted_at IS NULL"
}

// FieldOptions are what an admin may change on an existing field.
type FieldOptions struct {
	LabelEN, LabelZH string
	MaxLength        int // text fields: 0 keeps the current length
	Required         bool
	Unique           bool
	Default          string
	Searchable       bool
	InList           bool
	Position         int
	MatchCaller      bool
}

// UpdateField changes a field's labels and options. Making it unique fails with a Conflict
// naming the field when existing records share values.
func (s *Store) UpdateField(ctx context.Context, t *account.Tenant, objectKey, fieldKey string, opts FieldOptions) (*Field, error) {
	var f *Field
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, objectKey)
		if err != nil {
			return err
		}
		cur := o.Field(fieldKey)
		if cur == nil {
			return fault.Errorf(fault.NotFound, "object %q has no field %q", objectKey, fieldKey)
		}
		nf := NewField{Key: cur.Key, Type: cur.Type, LabelEN: opts.LabelEN, LabelZH: opts.LabelZH, MaxLength: opts.MaxLength,
			CodeTable: cur.CodeTable, Multi: cur.Multi, RefObject: cur.RefObject, Unique: opts.Unique, MatchCaller: opts.MatchCaller}
		if nf.MaxLength == 0 && cur.Type == TypeText {
			nf.MaxLength = cur.MaxLength
		}
		if err := nf.check(o); err != nil {
			return err
		}
		next := *cur
		next.LabelEN, next.LabelZH, next.MaxLength = nf.LabelEN, nf.LabelZH, nf.MaxLength
		next.Required, next.Unique, next.Searchable, next.InList = opts.Required, opts.Unique, opts.Searchable, opts.InList
		next.MatchCaller = opts.MatchCaller
		if opts.Position != 0 {
			next.Position = opts.Position
		}
		if opts.Default != "" {
			v, err := parseValue(&next, opts.Default)
			if err == nil && next.Type == TypeCode {
				err = checkCodes(ctx, tx, &next, v)
			}
			if err != nil {
				return fault.Errorf(fault.Invalid, "field %q: default: %s", fieldKey, fault.MessageOf(err))
			}
		}
		next.Default = opts.Default
		if err := alterField(ctx, tx, o, cur, &next); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE data_fields SET label_en = $2, label_zh = $3, max_length = $4, required = $5, is_unique = $6,
			default_value = $7, searchable = $8, in_list = $9, position = $10, match_caller = $11 WHERE id = $1`,
			cur.ID, next.LabelEN, next.LabelZH, next.MaxLength, next.Required, next.Unique, next.Default,
			next.Searchable, next.InList, next.Position, next.MatchCaller)
		if err != nil {
			return err
		}
		f = &next
		if next.MatchCaller != cur.MatchCaller {
			return setPhoneMatching(ctx, tx, cur, next.MatchCaller && !cur.Hidden)
		}
		return nil
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "update field %q of %q", fieldKey, objectKey)
	}
	return f, nil
}

// alterField applies the DDL that a change of options needs.
func alterField(ctx context.Context, tx pgx.Tx, o *Object, cur, next *Field) error {
	table, col := ident(o.Table), ident(cur.Key)
	if next.Type == TypeText && next.MaxLength != cur.MaxLength {
		if next.MaxLength < cur.MaxLength {
			var longest int
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(char_length("+col+")), 0) FROM "+table).Scan(&longest); err != nil {
				return err
			}
			if longest > next.MaxLength {
				return fault.Errorf(fault.Conflict, "field %q cannot be shortened to %d characters: a record holds %d", cur.Key, next.MaxLength, longest)
			}
		}
		if _, err := tx.Exec(ctx, "ALTER TABLE "+table+" ALTER COLUMN "+col+" TYPE "+columnType(next)); err != nil {
			return fmt.Errorf("change length of %q: %w", cur.Key, err)
		}
	}
	if next.Unique && !cur.Unique {
		if _, err := tx.Exec(ctx, uniqueIndexSQL(o, next)); err != nil {
			if isUniqueViolation(err) {
				return fault.Errorf(fault.Conflict, "field %q cannot be unique: existing records share values", cur.Key)
			}
			return err
		}
	}
	if cur.Unique && !next.Unique {
		if _, err := tx.Exec(ctx, "DROP INDEX "+ident(fmt.Sprintf("f%d_uq", cur.ID))); err != nil {
			return err
		}
	}
	return nil
}

// HideField removes a field from forms, lists and matching; its column and data stay, and
// UnhideField brings it back. Queries that use the field are named in a Conflict error
// unless force is set; with force they are returned.
func (s *Store) HideField(ctx context.Context, t *account.Tenant, objectKey, fieldKey string, force bool) (usedBy []string, err error) {
	return s.setHidden(ctx, t, objectKey, fieldKey, true, force)
}

// UnhideField shows a hidden field again.
func (s *Store) UnhideField(ctx context.Context, t *account.Tenant, objectKey, fieldKey string) error {
	_, err := s.setHidden(ctx, t, objectKey, fieldKey, false, true)
	return err
}

func (s *Store) setHidden(ctx context.Context, t *account.Tenant, objectKey, fieldKey string, hidden, force bool) ([]string, error) {
	var users []string
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, objectKey)
		if err != nil {
			return err
		}
		f := o.Field(fieldKey)
		if f == nil {
			return fault.Errorf(fault.NotFound, "object %q has no field %q", objectKey, fieldKey)
		}
		if hidden {
			if users, err = s.fieldUsers(ctx, tx, o, f, "hidden", force); err != nil {
				return err
			}
		}
		if _, err = tx.Exec(ctx, `UPDATE data_fields SET hidden = $2 WHERE id = $1`, f.ID, hidden); err != nil {
			return err
		}
		return setPhoneMatching(ctx, tx, f, f.MatchCaller && !hidden)
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "hide field %q of %q", fieldKey, objectKey)
	}
	return users, nil
}

// RenameField gives a field a new key: the column is renamed and keeps its data. Queries
// that use the old key are named in a Conflict error unless force is set.
func (s *Store) RenameField(ctx context.Context, t *account.Tenant, objectKey, oldKey, newKey string, force bool) (usedBy []string, err error) {
	if err := checkFieldKey(newKey); err != nil {
		return nil, err
	}
	var users []string
	err = s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, objectKey)
		if err != nil {
			return err
		}
		f := o.Field(oldKey)
		if f == nil {
			return fault.Errorf(fault.NotFound, "object %q has no field %q", objectKey, oldKey)
		}
		if o.Field(newKey) != nil {
			return fault.Errorf(fault.Conflict, "object %q already has a field %q", objectKey, newKey)
		}
		if users, err = s.fieldUsers(ctx, tx, o, f, "renamed", force); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "ALTER TABLE "+ident(o.Table)+" RENAME COLUMN "+ident(oldKey)+" TO "+ident(newKey)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE data_fields SET key = $2 WHERE id = $1`, f.ID, newKey)
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "rename field %q of %q", oldKey, objectKey)
	}
	return users, nil
}

func (s *Store) fieldUsers(ctx context.Context, tx pgx.Tx, o *Object, f *Field, change string, force bool) ([]string, error) {
	if s.opts.FieldUsage == nil {
		return nil, nil
	}
	users, err := s.opts.FieldUsage(ctx, tx, o.Table, f.Key)
	if err != nil {
		return nil, fmt.Errorf("queries using %s.%s: %w", o.Key, f.Key, err)
	}
	if len(users) > 0 && !force {
		return users, fault.Errorf(fault.Conflict, "field %q of %q is used by saved queries %s; they need changing if it is %s (force to go ahead)",
			f.Key, o.Key, strings.Join(users, ", "), change)
	}
	return users, nil
}

// ident quotes a name that has passed the catalogue's checks.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
