package dataobject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// WriteOptions add to a record write what work orders need. Zero values add nothing.
type WriteOptions struct {
	// IfUpdatedAt, on an update, is the record's UpdatedAt as the writer last read it: when
	// someone saved it since, the update is refused with a Conflict naming who, and nothing
	// is overwritten (optimistic locking). Zero: no check.
	IfUpdatedAt time.Time
	// Within runs in the write's transaction before the write; an error aborts the write.
	// Work orders use it to refuse a second save from one call.
	Within func(ctx context.Context, tx pgx.Tx, o *Object) error
	// LogAction names the action in the linked operation log ("" : create or update).
	LogAction string
	// Whole, on an update, takes the values as the record's complete fields, as a create
	// does: defaults fill the fields not given, and a required field without a value is
	// refused. A QA score's row, inserted by Within, gets its tenant fields this way.
	Whole bool
}

// CreateWith is Create with opts; with a linked operation-log object, the new record's
// snapshot is written to it in the same transaction.
func (s *Store) CreateWith(ctx context.Context, t *account.Tenant, key string, values map[string]any, actor account.Actor, opts WriteOptions) (*Record, error) {
	var r *Record
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		if opts.Within != nil {
			if err := opts.Within(ctx, tx, o); err != nil {
				return err
			}
		}
		codes := newCodeCache()
		p, err := prepare(ctx, tx, o, values, t.Location(), true, codes)
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
		if r, err = getRecord(ctx, tx, o, id); err != nil {
			return err
		}
		return writeOperationLog(ctx, tx, t, o, r, firstOf(opts.LogAction, "create"), actor, codes)
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "create %s record", key)
	}
	return r, nil
}

// UpdateWith is Update with opts: optimistic locking, and the operation-log record.
func (s *Store) UpdateWith(ctx context.Context, t *account.Tenant, key string, id int64, values map[string]any, actor account.Actor, opts WriteOptions) (*Record, error) {
	var r *Record
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		// Within runs first: it may make the row that is then updated (a QA score's row is
		// inserted by package workorder, its tenant fields set here).
		if opts.Within != nil {
			if err := opts.Within(ctx, tx, o); err != nil {
				return err
			}
		}
		cur, err := getRecordLocked(ctx, tx, o, id, " FOR UPDATE")
		if err != nil {
			return err
		}
		if !opts.IfUpdatedAt.IsZero() && !cur.UpdatedAt.Equal(opts.IfUpdatedAt) {
			who, err := lastWriter(ctx, tx, o, cur)
			if err != nil {
				return err
			}
			return fault.Errorf(fault.Conflict, "%s record %d was changed by %s at %s after you opened it; nothing was saved: reload to see the changes",
				o.Key, id, who, cur.UpdatedAt.In(t.Location()).Format(time.DateTime))
		}
		codes := newCodeCache()
		if r, err = updateRecord(ctx, tx, s, t, o, id, values, actor, codes, opts.Whole); err != nil {
			return err
		}
		if r.UpdatedAt.Equal(cur.UpdatedAt) {
			return nil // nothing changed: nothing to log
		}
		return writeOperationLog(ctx, tx, t, o, r, firstOf(opts.LogAction, "update"), actor, codes)
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "update %s record %d", key, id)
	}
	return r, nil
}

// lastWriter names who last saved r: the audit trail's actor, else the user id.
func lastWriter(ctx context.Context, tx pgx.Tx, o *Object, r *Record) (string, error) {
	var name string
	err := tx.QueryRow(ctx, `SELECT actor FROM record_history WHERE object_id = $1 AND record_id = $2 ORDER BY id DESC LIMIT 1`,
		o.ID, r.ID).Scan(&name)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("last writer: %w", err)
	}
	if name != "" {
		return name, nil
	}
	if r.UpdatedBy != 0 {
		return fmt.Sprintf("user #%d", r.UpdatedBy), nil
	}
	return "someone", nil
}

// Operation-log fields a log object may have; a write fills those it has.
const (
	LogFieldRecord   = "record_id" // integer: the logged record's id
	LogFieldAction   = "action"    // text: create, update, assign, ...
	LogFieldActor    = "actor"     // text: who
	LogFieldSnapshot = "snapshot"  // long text: the record's values as JSON after the write
)

// writeOperationLog writes r's snapshot to o's linked operation-log object, if any.
func writeOperationLog(ctx context.Context, tx pgx.Tx, t *account.Tenant, o *Object, r *Record, action string, actor account.Actor, codes *codeCache) error {
	if o.LogObject == "" {
		return nil
	}
	lo, err := loadObject(ctx, tx, o.LogObject)
	if err != nil {
		return err
	}
	snap, err := json.Marshal(r.Values)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	all := map[string]any{LogFieldRecord: r.ID, LogFieldAction: action, LogFieldActor: actor.Name, LogFieldSnapshot: string(snap)}
	vals := map[string]any{}
	for k, v := range all {
		if f := lo.Field(k); f != nil && !f.Hidden {
			if f.Type == TypeText && len([]rune(fmt.Sprint(v))) > f.MaxLength {
				v = string([]rune(fmt.Sprint(v))[:f.MaxLength])
			}
			vals[k] = v
		}
	}
	p, err := prepare(ctx, tx, lo, vals, t.Location(), true, codes)
	if err != nil {
		return fmt.Errorf("operation log %q: %w", lo.Key, err)
	}
	if _, err := insertRecord(ctx, tx, lo, p, actor); err != nil {
		return fmt.Errorf("operation log %q: %w", lo.Key, err)
	}
	return nil
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
