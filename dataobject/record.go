package dataobject

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Record is one row of an object's table.
type Record struct {
	ID        int64
	Values    map[string]any // field key → value; absent or nil when empty
	CreatedAt time.Time
	CreatedBy int64
	UpdatedAt time.Time
	UpdatedBy int64
	OwnerID   int64 // the agent who owns the record (row scoping)
}

// FieldError is one problem with one field of a record.
type FieldError struct {
	Field   string
	Problem string
}

// ValidationError lists every problem of a record; it is an Invalid fault.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Problem
	}
	return strings.Join(parts, "; ")
}

// Unwrap makes errors.As find the Invalid fault.
func (e *ValidationError) Unwrap() error {
	return &fault.Error{Code: fault.Invalid, Message: e.Error()}
}

// ownerKey may be set among a record's values to give it to another agent.
const ownerKey = "owner_id"

// prepared is a record's values checked and converted for its columns.
type prepared struct {
	fields []*Field
	values []any
	owner  *int64
}

func (p *prepared) value(f *Field) (any, bool) {
	for i, g := range p.fields {
		if g == f {
			return p.values[i], true
		}
	}
	return nil, false
}

// prepare checks in against o's fields. Creating applies defaults and requires every
// required field; an update requires only the fields it sets.
func prepare(ctx context.Context, tx pgx.Tx, o *Object, in map[string]any, loc *time.Location, creating bool, codes *codeCache) (*prepared, error) {
	var errs []FieldError
	p := &prepared{}
	for k, v := range in {
		if k == ownerKey {
			n, err := toInt(v)
			if err != nil {
				errs = append(errs, FieldError{k, fault.MessageOf(err)})
				continue
			}
			p.owner = &n
			continue
		}
		if f := o.Field(k); f == nil || f.Hidden {
			errs = append(errs, FieldError{k, fmt.Sprintf("object %q has no field %q", o.Key, k)})
		}
	}
	for _, f := range o.Visible() {
		raw, present := in[f.Key]
		if !present && !creating {
			continue
		}
		v, err := parseValueIn(f, raw, loc)
		if err != nil {
			errs = append(errs, FieldError{f.Key, fault.MessageOf(err)})
			continue
		}
		if v == nil && creating && f.Default != "" {
			v, _ = parseValueIn(f, f.Default, loc)
		}
		if v == nil && f.Required {
			errs = append(errs, FieldError{f.Key, "is required"})
			continue
		}
		if v != nil && f.Type == TypeCode {
			if err := codes.check(ctx, tx, f, v); err != nil {
				errs = append(errs, FieldError{f.Key, fault.MessageOf(err)})
				continue
			}
		}
		if v != nil && f.Type == TypeReference {
			if err := checkReference(ctx, tx, f, v.(int64)); err != nil {
				errs = append(errs, FieldError{f.Key, fault.MessageOf(err)})
				continue
			}
		}
		p.fields = append(p.fields, f)
		p.values = append(p.values, v)
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Fields: errs}
	}
	return p, nil
}

func checkReference(ctx context.Context, tx pgx.Tx, f *Field, id int64) error {
	ref, err := loadObject(ctx, tx, f.RefObject)
	if err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+ident(ref.Table)+" WHERE id = $1 AND deleted_at IS NULL)", id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fault.Errorf(fault.Invalid, "%s record %d does not exist", ref.Key, id)
	}
	return nil
}

// param is the placeholder of the n-th value of field f, cast where pgx's Go value needs it.
func param(f *Field, n int) string {
	p := fmt.Sprintf("$%d", n)
	switch f.Type {
	case TypeDecimal:
		return p + "::numeric"
	case TypeDate:
		return p + "::date"
	}
	return p
}

// selectList is the column list of a record: system columns, then the visible fields.
func selectList(o *Object) string {
	var b strings.Builder
	b.WriteString("id, created_at, coalesce(created_by, 0), updated_at, coalesce(updated_by, 0), coalesce(owner_id, 0)")
	for _, f := range o.Visible() {
		b.WriteString(", ")
		col := ident(f.Key)
		switch f.Type {
		case TypeDecimal:
			b.WriteString(col + "::text")
		case TypeDate:
			b.WriteString("to_char(" + col + ", 'YYYY-MM-DD')")
		default:
			b.WriteString(col)
		}
	}
	return b.String()
}

func scanRecord(o *Object, rows pgx.Rows) (*Record, error) {
	vals, err := rows.Values()
	if err != nil {
		return nil, err
	}
	r := &Record{Values: map[string]any{}}
	r.ID, _ = vals[0].(int64)
	r.CreatedAt, _ = vals[1].(time.Time)
	r.CreatedBy, _ = vals[2].(int64)
	r.UpdatedAt, _ = vals[3].(time.Time)
	r.UpdatedBy, _ = vals[4].(int64)
	r.OwnerID, _ = vals[5].(int64)
	for i, f := range o.Visible() {
		v := vals[6+i]
		if list, ok := v.([]any); ok {
			s := make([]string, 0, len(list))
			for _, e := range list {
				if str, ok := e.(string); ok {
					s = append(s, str)
				}
			}
			v = s
		}
		if v != nil {
			r.Values[f.Key] = v
		}
	}
	return r, nil
}

// Create saves a new record of object key, owned by actor unless values set owner_id.
func (s *Store) Create(ctx context.Context, t *account.Tenant, key string, values map[string]any, actor account.Actor) (*Record, error) {
	var r *Record
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		p, err := prepare(ctx, tx, o, values, t.Location(), true, newCodeCache())
		if err != nil {
			return err
		}
		id, err := insertRecord(ctx, tx, o, p, actor)
		if err != nil {
			return err
		}
		if err := s.writePhones(ctx, tx, t, o, id, p, time.Time{}); err != nil {
			return err
		}
		if o.Audit {
			if err := writeHistory(ctx, tx, o, id, "create", actor, nil); err != nil {
				return err
			}
		}
		r, err = getRecord(ctx, tx, o, id)
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "create %s record", key)
	}
	return r, nil
}

func insertRecord(ctx context.Context, tx pgx.Tx, o *Object, p *prepared, actor account.Actor) (int64, error) {
	owner := actor.UserID
	if p.owner != nil {
		owner = *p.owner
	}
	cols := []string{"created_by", "updated_by", "owner_id"}
	params := []string{"NULLIF($1, 0)", "NULLIF($1, 0)", "NULLIF($2, 0)"}
	args := []any{actor.UserID, owner}
	for i, f := range p.fields {
		cols = append(cols, ident(f.Key))
		args = append(args, p.values[i])
		params = append(params, param(f, len(args)))
	}
	var id int64
	err := tx.QueryRow(ctx, "INSERT INTO "+ident(o.Table)+" ("+strings.Join(cols, ", ")+") VALUES ("+
		strings.Join(params, ", ")+") RETURNING id", args...).Scan(&id)
	if err != nil {
		return 0, uniqueFault(o, err)
	}
	return id, nil
}

// uniqueFault names the field whose unique index a write violated.
func uniqueFault(o *Object, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		for _, f := range o.Fields {
			if pe.ConstraintName == fmt.Sprintf("f%d_uq", f.ID) {
				return &ValidationError{Fields: []FieldError{{f.Key, "another record has this value"}}}
			}
		}
		return fault.Errorf(fault.Conflict, "another %s record has these values", o.Key)
	}
	return err
}

// Get loads one record; a deleted or unknown id is a NotFound error.
func (s *Store) Get(ctx context.Context, t *account.Tenant, key string, id int64) (*Record, error) {
	var r *Record
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		r, err = getRecord(ctx, tx, o, id)
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "load %s record %d", key, id)
	}
	return r, nil
}

func getRecord(ctx context.Context, tx pgx.Tx, o *Object, id int64) (*Record, error) {
	return getRecordLocked(ctx, tx, o, id, "")
}

func getRecordLocked(ctx context.Context, tx pgx.Tx, o *Object, id int64, lock string) (*Record, error) {
	rows, err := tx.Query(ctx, "SELECT "+selectList(o)+" FROM "+ident(o.Table)+" WHERE id = $1 AND deleted_at IS NULL"+lock, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, fault.Errorf(fault.NotFound, "%s record %d does not exist", o.Key, id)
	}
	r, err := scanRecord(o, rows)
	if err != nil {
		return nil, err
	}
	rows.Close()
	return r, rows.Err()
}

// Change is one field's change in the audit trail.
type Change struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// Update sets the given fields of a record; others keep their values. With the object's
// audit trail on, the changed fields are recorded old → new with actor and time.
func (s *Store) Update(ctx context.Context, t *account.Tenant, key string, id int64, values map[string]any, actor account.Actor) (*Record, error) {
	var r *Record
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		r, err = updateRecord(ctx, tx, s, t, o, id, values, actor, newCodeCache(), false)
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "update %s record %d", key, id)
	}
	return r, nil
}

// updateRecord sets values on record id. whole treats values as the record's complete
// fields, as a create does: defaults fill the fields not given and every required field
// needs a value.
func updateRecord(ctx context.Context, tx pgx.Tx, s *Store, t *account.Tenant, o *Object, id int64, values map[string]any,
	actor account.Actor, codes *codeCache, whole bool) (*Record, error) {
	old, err := getRecordLocked(ctx, tx, o, id, " FOR UPDATE")
	if err != nil {
		return nil, err
	}
	p, err := prepare(ctx, tx, o, values, t.Location(), whole, codes)
	if err != nil {
		return nil, err
	}
	var changes []Change
	sets := []string{"updated_at = now()", "updated_by = NULLIF($2, 0)"}
	args := []any{id, actor.UserID}
	changed := &prepared{}
	for i, f := range p.fields {
		before, after := old.Values[f.Key], p.values[i]
		if sameValue(before, after) {
			continue
		}
		changes = append(changes, Change{Field: f.Key, Old: before, New: after})
		changed.fields = append(changed.fields, f)
		changed.values = append(changed.values, after)
		args = append(args, after)
		sets = append(sets, ident(f.Key)+" = "+param(f, len(args)))
	}
	if p.owner != nil && *p.owner != old.OwnerID {
		changes = append(changes, Change{Field: ownerKey, Old: old.OwnerID, New: *p.owner})
		args = append(args, *p.owner)
		sets = append(sets, fmt.Sprintf("owner_id = NULLIF($%d, 0)", len(args)))
	}
	if len(changes) == 0 {
		return old, nil
	}
	if _, err := tx.Exec(ctx, "UPDATE "+ident(o.Table)+" SET "+strings.Join(sets, ", ")+" WHERE id = $1", args...); err != nil {
		return nil, uniqueFault(o, err)
	}
	var contact time.Time
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(contact_at), $3) FROM phone_keys WHERE object_id = $1 AND record_id = $2`,
		o.ID, id, old.CreatedAt).Scan(&contact); err != nil {
		return nil, err
	}
	if err := s.writePhones(ctx, tx, t, o, id, changed, contact); err != nil {
		return nil, err
	}
	if o.Audit {
		if err := writeHistory(ctx, tx, o, id, "update", actor, changes); err != nil {
			return nil, err
		}
	}
	return getRecord(ctx, tx, o, id)
}

// sameValue compares a stored value with a new one of the same field.
func sameValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	if sa, ok := a.([]string); ok && len(sa) == 0 {
		a = nil
	}
	if sb, ok := b.([]string); ok && len(sb) == 0 {
		b = nil
	}
	return reflect.DeepEqual(a, b)
}

// Delete marks a record deleted: it leaves lists, searches and caller matching, and its
// row stays for history and for the work orders that refer to it.
func (s *Store) Delete(ctx context.Context, t *account.Tenant, key string, id int64, actor account.Actor) error {
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "UPDATE "+ident(o.Table)+" SET deleted_at = now(), updated_at = now(), updated_by = NULLIF($2, 0) WHERE id = $1 AND deleted_at IS NULL",
			id, actor.UserID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fault.Errorf(fault.NotFound, "%s record %d does not exist", key, id)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM phone_keys WHERE object_id = $1 AND record_id = $2`, o.ID, id); err != nil {
			return err
		}
		if o.Audit {
			return writeHistory(ctx, tx, o, id, "delete", actor, nil)
		}
		return nil
	})
	return wrapUnlessFault(err, "delete %s record %d", key, id)
}

// HistoryEntry is one row of a record's audit trail.
type HistoryEntry struct {
	At      time.Time
	Action  string // create, update, delete
	ActorID int64
	Actor   string
	Changes []Change
}

func writeHistory(ctx context.Context, tx pgx.Tx, o *Object, id int64, action string, actor account.Actor, changes []Change) error {
	if changes == nil {
		changes = []Change{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO record_history (object_id, record_id, action, actor_id, actor, changes)
		VALUES ($1, $2, $3, NULLIF($4, 0), $5, $6)`, o.ID, id, action, actor.UserID, actor.Name, changes)
	if err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	return nil
}

// History lists a record's audit trail, newest first.
func (s *Store) History(ctx context.Context, t *account.Tenant, key string, id int64) ([]HistoryEntry, error) {
	var out []HistoryEntry
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT at, action, coalesce(actor_id, 0), actor, changes FROM record_history
			WHERE object_id = $1 AND record_id = $2 ORDER BY id DESC`, o.ID, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h HistoryEntry
			if err := rows.Scan(&h.At, &h.Action, &h.ActorID, &h.Actor, &h.Changes); err != nil {
				return err
			}
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "history of %s record %d", key, id)
	}
	return out, nil
}

// codeCache keeps the enabled codes of the code tables a write has met, so an import
// checks each cell without a query.
type codeCache struct {
	tables map[string]map[string]string // table → code or label (lower case) → code
}

func newCodeCache() *codeCache { return &codeCache{tables: map[string]map[string]string{}} }

func (c *codeCache) load(ctx context.Context, tx pgx.Tx, table string) (map[string]string, error) {
	if m, ok := c.tables[table]; ok {
		return m, nil
	}
	rows, err := tx.Query(ctx, `SELECT code, label_en, label_zh FROM codes WHERE table_key = $1 AND enabled`, table)
	if err != nil {
		return nil, fmt.Errorf("load codes of %q: %w", table, err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var code, en, zh string
		if err := rows.Scan(&code, &en, &zh); err != nil {
			return nil, err
		}
		for _, k := range []string{en, zh} {
			if k != "" {
				if _, taken := m[strings.ToLower(k)]; !taken {
					m[strings.ToLower(k)] = code
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	// Codes themselves win over labels that happen to equal another code.
	rows, err = tx.Query(ctx, `SELECT code FROM codes WHERE table_key = $1 AND enabled`, table)
	if err != nil {
		return nil, err
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, code := range codes {
		m["\x00"+code] = code
	}
	c.tables[table] = m
	return m, nil
}

// resolve turns each code or label in v into its code, or fails naming the unknown one.
func (c *codeCache) resolve(ctx context.Context, tx pgx.Tx, f *Field, v any) (any, error) {
	m, err := c.load(ctx, tx, f.CodeTable)
	if err != nil {
		return nil, err
	}
	return resolveCodes(m, f, v)
}

// resolveLoaded is resolve for a cache that already holds f's code table; it reads only
// the cache, so goroutines may share it once loading is over.
func (c *codeCache) resolveLoaded(f *Field, v any) (any, error) {
	m, ok := c.tables[f.CodeTable]
	if !ok {
		return nil, fmt.Errorf("codes of %q are not loaded", f.CodeTable)
	}
	return resolveCodes(m, f, v)
}

// resolveCodes resolves v with m, a code table as codeCache.load returns it.
func resolveCodes(m map[string]string, f *Field, v any) (any, error) {
	var err error
	one := func(s string) (string, error) {
		if code, ok := m["\x00"+s]; ok {
			return code, nil
		}
		if code, ok := m[strings.ToLower(s)]; ok {
			return code, nil
		}
		return "", fault.Errorf(fault.Invalid, "%q is not an enabled code of %q", s, f.CodeTable)
	}
	switch x := v.(type) {
	case string:
		return one(x)
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			if out[i], err = one(s); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// check accepts only codes (not labels): the API and forms send codes.
func (c *codeCache) check(ctx context.Context, tx pgx.Tx, f *Field, v any) error {
	m, err := c.load(ctx, tx, f.CodeTable)
	if err != nil {
		return err
	}
	list, _ := v.([]string)
	if s, ok := v.(string); ok {
		list = []string{s}
	}
	for _, s := range list {
		if _, ok := m["\x00"+s]; !ok {
			return fault.Errorf(fault.Invalid, "%q is not an enabled code of %q", s, f.CodeTable)
		}
	}
	return nil
}
