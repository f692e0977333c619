package dataobject

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Kind is what an object holds (the seed's 数据类型).
type Kind string

const (
	KindCustomer     Kind = "customer"      // 客户数据
	KindWorkOrder    Kind = "work_order"    // 工单数据
	KindQA           Kind = "qa"            // 质检数据
	KindOperationLog Kind = "operation_log" // 操作日志
	KindBaseData     Kind = "base_data"     // 基础数据
)

// Kinds lists every kind.
var Kinds = []Kind{KindCustomer, KindWorkOrder, KindQA, KindOperationLog, KindBaseData}

// SaveMode says how often an agent may save a work order from one screen pop.
type SaveMode string

const (
	SaveOnce SaveMode = "once"
	SaveMany SaveMode = "many"
)

// Limits on what admins define.
const (
	maxNameLength   = 100
	maxFieldsPerObj = 400 // PostgreSQL allows 1600 columns; hidden fields keep theirs
	maxTextLength   = 10000
	defaultTextLen  = 200
)

// Object is a data object: a table and what the catalogue says about it.
type Object struct {
	ID          int64
	Key         string
	Kind        Kind
	NameEN      string
	NameZH      string
	Table       string // obj_<key>
	IsDefault   bool   // the default object of its kind
	LogObject   string // key of the linked operation-log object, "" for none
	EditColumns int    // fields per row on the edit page, 1–3
	SaveMode    SaveMode
	Audit       bool // record the audit trail of updates
	Partitioned bool // monthly partitions on created_at
	CreatedAt   time.Time
	Fields      []*Field // ordered by position, hidden ones included
}

// Field looks up a field by key ("" when absent).
func (o *Object) Field(key string) *Field {
	for _, f := range o.Fields {
		if f.Key == key {
			return f
		}
	}
	return nil
}

// Visible lists the fields that are not hidden, in edit-page order.
func (o *Object) Visible() []*Field {
	var out []*Field
	for _, f := range o.Fields {
		if !f.Hidden {
			out = append(out, f)
		}
	}
	return out
}

// PhoneFields lists the visible phone fields.
func (o *Object) PhoneFields() []*Field {
	var out []*Field
	for _, f := range o.Visible() {
		if f.Type == TypePhone {
			out = append(out, f)
		}
	}
	return out
}

// Name is the object's name in lang ("zh..." for Chinese), falling back to English.
func (o *Object) Name(lang string) string {
	if strings.HasPrefix(lang, "zh") && o.NameZH != "" {
		return o.NameZH
	}
	return o.NameEN
}

// NewObject is what it takes to define an object.
type NewObject struct {
	Key         string
	Kind        Kind
	NameEN      string
	NameZH      string
	IsDefault   bool
	LogObject   string
	EditColumns int      // default 2
	SaveMode    SaveMode // default once
	Audit       bool
	Partitioned bool
	Fields      []NewField
}

func checkName(what, en, zh string) error {
	if strings.TrimSpace(en) == "" {
		return fault.Errorf(fault.Invalid, "%s needs an English name", what)
	}
	if utf8.RuneCountInString(en) > maxNameLength || utf8.RuneCountInString(zh) > maxNameLength {
		return fault.Errorf(fault.Invalid, "%s name is too long: at most %d characters", what, maxNameLength)
	}
	return nil
}

func (no *NewObject) check() error {
	if err := checkKey("object", no.Key); err != nil {
		return err
	}
	no.NameEN, no.NameZH = strings.TrimSpace(no.NameEN), strings.TrimSpace(no.NameZH)
	if err := checkName(fmt.Sprintf("object %q", no.Key), no.NameEN, no.NameZH); err != nil {
		return err
	}
	known := false
	for _, k := range Kinds {
		known = known || k == no.Kind
	}
	if !known {
		return fault.Errorf(fault.Invalid, "object %q: unknown kind %q: want one of customer, work_order, qa, operation_log, base_data", no.Key, no.Kind)
	}
	if no.EditColumns == 0 {
		no.EditColumns = 2
	}
	if no.EditColumns < 1 || no.EditColumns > 3 {
		return fault.Errorf(fault.Invalid, "object %q: edit-page columns must be 1, 2 or 3, not %d", no.Key, no.EditColumns)
	}
	if no.SaveMode == "" {
		no.SaveMode = SaveOnce
	}
	if no.SaveMode != SaveOnce && no.SaveMode != SaveMany {
		return fault.Errorf(fault.Invalid, "object %q: save mode must be once or many, not %q", no.Key, no.SaveMode)
	}
	if no.LogObject == no.Key {
		return fault.Errorf(fault.Invalid, "object %q cannot be its own operation log", no.Key)
	}
	if len(no.Fields) > maxFieldsPerObj {
		return fault.Errorf(fault.Invalid, "object %q: too many fields (at most %d)", no.Key, maxFieldsPerObj)
	}
	seen := map[string]bool{}
	for i := range no.Fields {
		if seen[no.Fields[i].Key] {
			return fault.Errorf(fault.Invalid, "object %q: field %q is defined twice", no.Key, no.Fields[i].Key)
		}
		seen[no.Fields[i].Key] = true
	}
	return nil
}

// CreateObject defines an object: its catalogue rows and its table, in one transaction, so a
// refused field leaves neither. The audit log records it as actor's.
func (s *Store) CreateObject(ctx context.Context, t *account.Tenant, no NewObject, actor account.Actor) (*Object, error) {
	if err := no.check(); err != nil {
		return nil, err
	}
	var o *Object
	err := s.changeCatalogue(ctx, t, actor, func(tx pgx.Tx) (catalogueChange, error) {
		var err error
		if o, err = createObject(ctx, tx, no); err != nil {
			return catalogueChange{}, err
		}
		detail := o.auditOptions()
		detail["kind"], detail["table"], detail["partitioned"] = string(o.Kind), o.Table, o.Partitioned
		fields := make([]string, len(o.Fields))
		for i, f := range o.Fields {
			fields[i] = f.Key + " " + describeType(f.Type, f.Multi)
		}
		detail["fields"] = fields
		return catalogueChange{AuditObjectCreate, o.Key, detail}, nil
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "create object %q", no.Key)
	}
	return o, nil
}

func createObject(ctx context.Context, tx pgx.Tx, no NewObject) (*Object, error) {
	var logID *int64
	if no.LogObject != "" {
		lo, err := loadObject(ctx, tx, no.LogObject)
		if err != nil {
			return nil, err
		}
		if lo.Kind != KindOperationLog {
			return nil, fault.Errorf(fault.Invalid, "object %q: linked log object %q is a %s object, not an operation log", no.Key, lo.Key, lo.Kind)
		}
		logID = &lo.ID
	}
	if no.IsDefault {
		if _, err := tx.Exec(ctx, `UPDATE data_objects SET is_default = false WHERE kind = $1 AND is_default`, no.Kind); err != nil {
			return nil, err
		}
	}
	table := tablePrefix + no.Key
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO data_objects (key, kind, name_en, name_zh, table_name, is_default, log_object_id,
			edit_columns, save_mode, audit, partitioned)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		no.Key, no.Kind, no.NameEN, no.NameZH, table, no.IsDefault, logID, no.EditColumns, no.SaveMode, no.Audit, no.Partitioned).Scan(&id)
	if isUniqueViolation(err) {
		return nil, fault.Errorf(fault.Conflict, "object %q already exists", no.Key)
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, createTableSQL(table, no.Partitioned)); err != nil {
		return nil, fmt.Errorf("create table %s: %w", table, err)
	}
	for _, stmt := range systemIndexSQL(table) {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("index %s: %w", table, err)
		}
	}
	if no.Partitioned {
		if err := ensurePartitions(ctx, tx, table, time.Now()); err != nil {
			return nil, err
		}
	}
	o, err := loadObject(ctx, tx, no.Key)
	if err != nil {
		return nil, err
	}
	for i, nf := range no.Fields {
		if nf.Position == 0 {
			nf.Position = (i + 1) * 10
		}
		if _, err := addField(ctx, tx, o, nf); err != nil {
			return nil, err
		}
		if o, err = loadObject(ctx, tx, no.Key); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Objects lists the tenant's objects by key, with their fields.
func (s *Store) Objects(ctx context.Context, t *account.Tenant) ([]*Object, error) {
	var out []*Object
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		var err error
		out, err = loadObjects(ctx, tx, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	return out, nil
}

// Object loads one object by key; an unknown key is a NotFound error.
func (s *Store) Object(ctx context.Context, t *account.Tenant, key string) (*Object, error) {
	var o *Object
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		var err error
		o, err = loadObject(ctx, tx, key)
		return err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "load object %q", key)
	}
	return o, nil
}

// DefaultObject is the default object of kind (the customer object for screen pops).
func (s *Store) DefaultObject(ctx context.Context, t *account.Tenant, kind Kind) (*Object, error) {
	var key string
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT key FROM data_objects WHERE kind = $1 ORDER BY is_default DESC, id LIMIT 1`, kind).Scan(&key)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "no %s object is defined", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("default %s object: %w", kind, err)
	}
	return s.Object(ctx, t, key)
}

// ObjectOptions are the options of an object an admin may change after creating it.
type ObjectOptions struct {
	NameEN, NameZH string
	IsDefault      bool
	LogObject      string
	EditColumns    int
	SaveMode       SaveMode
	Audit          bool
}

// UpdateObject changes an object's names and options. The kind, key and partitioning are
// fixed at creation: they shape the table. The audit log records each changed option.
func (s *Store) UpdateObject(ctx context.Context, t *account.Tenant, key string, opts ObjectOptions, actor account.Actor) (*Object, error) {
	no := NewObject{Key: key, Kind: KindBaseData, NameEN: opts.NameEN, NameZH: opts.NameZH, EditColumns: opts.EditColumns,
		SaveMode: opts.SaveMode, LogObject: opts.LogObject}
	if err := no.check(); err != nil {
		return nil, err
	}
	var o *Object
	err := s.changeCatalogue(ctx, t, actor, func(tx pgx.Tx) (catalogueChange, error) {
		cur, err := loadObject(ctx, tx, key)
		if err != nil {
			return catalogueChange{}, err
		}
		var logID *int64
		if no.LogObject != "" {
			lo, err := loadObject(ctx, tx, no.LogObject)
			if err != nil {
				return catalogueChange{}, err
			}
			if lo.Kind != KindOperationLog {
				return catalogueChange{}, fault.Errorf(fault.Invalid, "object %q: linked log object %q is not an operation log", key, lo.Key)
			}
			logID = &lo.ID
		}
		if opts.IsDefault && !cur.IsDefault {
			if _, err := tx.Exec(ctx, `UPDATE data_objects SET is_default = false WHERE kind = $1 AND is_default`, cur.Kind); err != nil {
				return catalogueChange{}, err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE data_objects SET name_en = $2, name_zh = $3, is_default = $4, log_object_id = $5,
			edit_columns = $6, save_mode = $7, audit = $8, updated_at = now() WHERE id = $1`,
			cur.ID, no.NameEN, no.NameZH, opts.IsDefault, logID, no.EditColumns, no.SaveMode, opts.Audit)
		if err != nil {
			return catalogueChange{}, err
		}
		if o, err = loadObject(ctx, tx, key); err != nil {
			return catalogueChange{}, err
		}
		return catalogueChange{AuditObjectUpdate, key, changes(cur.auditOptions(), o.auditOptions())}, nil
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "update object %q", key)
	}
	return o, nil
}

const objectColumns = `o.id, o.key, o.kind, o.name_en, o.name_zh, o.table_name, o.is_default, coalesce(l.key, ''),
	o.edit_columns, o.save_mode, o.audit, o.partitioned, o.created_at`

func loadObject(ctx context.Context, tx pgx.Tx, key string) (*Object, error) {
	objs, err := loadObjects(ctx, tx, key)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fault.Errorf(fault.NotFound, "data object %q does not exist", key)
	}
	return objs[0], nil
}

// loadObjects loads the object key, or all objects when key is "".
func loadObjects(ctx context.Context, tx pgx.Tx, key string) ([]*Object, error) {
	rows, err := tx.Query(ctx, `SELECT `+objectColumns+` FROM data_objects o LEFT JOIN data_objects l ON l.id = o.log_object_id
		WHERE $1 = '' OR o.key = $1 ORDER BY o.key`, key)
	if err != nil {
		return nil, fmt.Errorf("load objects: %w", err)
	}
	var objs []*Object
	byID := map[int64]*Object{}
	for rows.Next() {
		var o Object
		if err := rows.Scan(&o.ID, &o.Key, &o.Kind, &o.NameEN, &o.NameZH, &o.Table, &o.IsDefault, &o.LogObject,
			&o.EditColumns, &o.SaveMode, &o.Audit, &o.Partitioned, &o.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load objects: %w", err)
		}
		objs = append(objs, &o)
		byID[o.ID] = &o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load objects: %w", err)
	}
	if len(objs) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(objs))
	for _, o := range objs {
		ids = append(ids, o.ID)
	}
	rows, err = tx.Query(ctx, `SELECT `+fieldColumns+` FROM data_fields f LEFT JOIN data_objects r ON r.id = f.ref_object_id
		WHERE f.object_id = ANY($1) ORDER BY f.object_id, f.position, f.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("load fields: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var objectID int64
		f, err := scanField(rows, &objectID)
		if err != nil {
			return nil, fmt.Errorf("load fields: %w", err)
		}
		o := byID[objectID]
		o.Fields = append(o.Fields, f)
	}
	return objs, rows.Err()
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// wrapUnlessFault keeps a user-facing fault as it is and wraps anything else with context.
func wrapUnlessFault(err error, format string, args ...any) error {
	var fe *fault.Error
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// DefaultCustomer is the customer object every tenant starts with (tenant migration
// 0201_customer.sql creates it; a test keeps the two in step). The owning agent is the
// system column owner_id.
var DefaultCustomer = NewObject{
	Key: "customer", Kind: KindCustomer, NameEN: "Customers", NameZH: "客户资料", IsDefault: true, EditColumns: 2,
	SaveMode: SaveOnce, Audit: true,
	Fields: []NewField{
		{Key: "name", Type: TypeText, LabelEN: "Name", LabelZH: "姓名", MaxLength: 100, Required: true, Searchable: true, InList: true, Position: 10},
		{Key: "phones", Type: TypePhone, LabelEN: "Phones", LabelZH: "电话", Multi: true, Searchable: true, InList: true, Position: 20, MatchCaller: true},
		{Key: "company", Type: TypeText, LabelEN: "Company", LabelZH: "公司", MaxLength: 200, Searchable: true, InList: true, Position: 30},
		{Key: "email", Type: TypeEmail, LabelEN: "E-mail", LabelZH: "邮箱", Searchable: true, Position: 40},
		{Key: "address", Type: TypeText, LabelEN: "Address", LabelZH: "地址", MaxLength: 500, Position: 50},
		{Key: "level", Type: TypeCode, LabelEN: "Level", LabelZH: "客户级别", CodeTable: "customer_level", Default: "normal", InList: true, Position: 60},
		{Key: "notes", Type: TypeLongText, LabelEN: "Notes", LabelZH: "备注", Position: 70},
	},
}
