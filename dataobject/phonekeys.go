package dataobject

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
)

// phoneKeyColumns are the columns written for one phone value.
var phoneKeyColumns = []string{"object_id", "field_id", "record_id", "raw", "e164", "national", "stripped", "rev_digits", "valid", "active", "contact_at"}

// phoneKeyRow is one phone_keys row for value raw of field f of record id.
func phoneKeyRow(o *Object, f *Field, id int64, raw, region string, contact time.Time) []any {
	return phoneKeyRowOf(o, f, id, Normalize(raw, region), contact)
}

func phoneKeyRowOf(o *Object, f *Field, id int64, p Phone, contact time.Time) []any {
	raw := p.Raw
	var rev *string
	if p.Digits != "" {
		r := reverse(p.Digits)
		rev = &r
	}
	return []any{o.ID, f.ID, id, raw, nullIfEmpty(p.E164), nullIfEmpty(p.National), nullIfEmpty(p.Stripped), rev, p.Valid,
		f.MatchCaller && !f.Hidden, contact}
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// phoneValues lists the numbers of a phone field's value (one string or several).
func phoneValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []string:
		return x
	}
	return nil
}

// writePhones replaces the match keys of record id for the phone fields in p. contact is
// the record's latest contact (zero: now).
func (s *Store) writePhones(ctx context.Context, tx pgx.Tx, t *account.Tenant, o *Object, id int64, p *prepared, contact time.Time) error {
	if contact.IsZero() {
		contact = time.Now()
	}
	for i, f := range p.fields {
		if f.Type != TypePhone {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM phone_keys WHERE object_id = $1 AND record_id = $2 AND field_id = $3`, o.ID, id, f.ID); err != nil {
			return fmt.Errorf("clear phone keys: %w", err)
		}
		var rows [][]any
		for _, raw := range phoneValues(p.values[i]) {
			rows = append(rows, phoneKeyRow(o, f, id, raw, t.Region, contact))
		}
		if len(rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"phone_keys"}, phoneKeyColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("write phone keys: %w", err)
		}
	}
	return nil
}

// setPhoneMatching turns caller matching of field f's numbers on or off without
// recomputing their keys.
func setPhoneMatching(ctx context.Context, tx pgx.Tx, f *Field, active bool) error {
	if f.Type != TypePhone {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE phone_keys SET active = $2 WHERE field_id = $1 AND active <> $2`, f.ID, active)
	if err != nil {
		return fmt.Errorf("phone matching of %q: %w", f.Key, err)
	}
	return nil
}

// TouchContact records that the customer (or any record) was in contact at, so caller
// matching ranks it ahead of older records with the same match.
func (s *Store) TouchContact(ctx context.Context, t *account.Tenant, key string, id int64, at time.Time) error {
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE phone_keys SET contact_at = $3 WHERE object_id = $1 AND record_id = $2 AND contact_at < $3`, o.ID, id, at)
		return err
	})
	return wrapUnlessFault(err, "touch %s record %d", key, id)
}
