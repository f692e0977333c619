package dataobject

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Paging limits of lists.
const (
	DefaultPerPage   = 20
	MaxPerPage       = 200
	maxSearchLength  = 100
	minSearchDigits  = 3 // a search with this many digits also looks in phone numbers
	maxFilterEntries = 20
)

// ListQuery selects and pages records.
type ListQuery struct {
	Search  string            // words found in any searchable field; digits also match phone numbers
	Filters map[string]string // field key → value the field must equal (contain, for multi-value fields)
	Owners  []int64           // nil: every record; else only records owned by these users (row scoping)
	Page    int               // 1-based
	PerPage int               // default 20, at most 200
}

// where builds the WHERE clause of q for o; args receives the values.
func (q *ListQuery) where(ctx context.Context, tx pgx.Tx, o *Object, loc *time.Location, args *[]any) (string, error) {
	add := func(v any) string {
		*args = append(*args, v)
		return fmt.Sprintf("$%d", len(*args))
	}
	conds := []string{"deleted_at IS NULL"}
	if q.Owners != nil {
		conds = append(conds, "owner_id = ANY("+add(q.Owners)+")")
	}
	search := strings.TrimSpace(q.Search)
	if len([]rune(search)) > maxSearchLength {
		return "", fault.Errorf(fault.Invalid, "search is too long: at most %d characters", maxSearchLength)
	}
	if search != "" {
		var ors []string
		pattern := add("%" + escapeLike(search) + "%")
		for _, f := range o.Visible() {
			if !f.Searchable {
				continue
			}
			switch f.Type {
			case TypeText, TypeLongText, TypeEmail:
				ors = append(ors, ident(f.Key)+" ILIKE "+pattern)
			case TypeCode:
				if f.Multi {
					ors = append(ors, add(search)+" = ANY("+ident(f.Key)+")")
				} else {
					ors = append(ors, ident(f.Key)+" = "+add(search))
				}
			}
		}
		if digits := digitsOf(search); len(digits) >= minSearchDigits && len(o.PhoneFields()) > 0 && isPhoneLike(search) {
			ors = append(ors, "id IN (SELECT record_id FROM phone_keys WHERE object_id = "+add(o.ID)+
				" AND rev_digits LIKE "+add("%"+reverse(digits)+"%")+")")
		}
		if len(ors) == 0 {
			conds = append(conds, "false")
		} else {
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		}
	}
	if len(q.Filters) > maxFilterEntries {
		return "", fault.Errorf(fault.Invalid, "too many filters: at most %d", maxFilterEntries)
	}
	codes := newCodeCache()
	for key, raw := range q.Filters {
		f := o.Field(key)
		if f == nil || f.Hidden {
			return "", fault.Errorf(fault.Invalid, "object %q has no field %q to filter on", o.Key, key)
		}
		if f.Type == TypePhone {
			return "", fault.Errorf(fault.Invalid, "filter phone field %q with the search instead", key)
		}
		single := *f
		single.Multi = false
		v, err := parseValueIn(&single, raw, loc)
		if err == nil && f.Type == TypeCode && v != nil {
			v, err = codes.resolve(ctx, tx, &single, v)
		}
		if err != nil {
			return "", fault.Errorf(fault.Invalid, "filter %q: %s", key, fault.MessageOf(err))
		}
		switch {
		case v == nil:
			conds = append(conds, ident(f.Key)+" IS NULL")
		case f.Multi:
			conds = append(conds, add(v)+" = ANY("+ident(f.Key)+")")
		default:
			conds = append(conds, ident(f.Key)+" = "+param(f, len(*args)+1))
			add(v)
		}
	}
	return strings.Join(conds, " AND "), nil
}

// isPhoneLike: only digits and what people type between them.
func isPhoneLike(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789０１２３４５６７８９+-() .", r) {
			return false
		}
	}
	return true
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// List returns one page of o's records, newest first, and the number of records that match.
func (s *Store) List(ctx context.Context, t *account.Tenant, key string, q ListQuery) ([]*Record, int, error) {
	if q.PerPage <= 0 {
		q.PerPage = DefaultPerPage
	}
	q.PerPage = min(q.PerPage, MaxPerPage)
	q.Page = max(q.Page, 1)
	var out []*Record
	var total int
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		var args []any
		where, err := q.where(ctx, tx, o, t.Location(), &args)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+ident(o.Table)+" WHERE "+where, args...).Scan(&total); err != nil {
			return err
		}
		args = append(args, q.PerPage, (q.Page-1)*q.PerPage)
		rows, err := tx.Query(ctx, "SELECT "+selectList(o)+" FROM "+ident(o.Table)+" WHERE "+where+
			fmt.Sprintf(" ORDER BY id DESC LIMIT $%d OFFSET $%d", len(args)-1, len(args)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRecord(o, rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, wrapUnlessFault(err, "list %s records", key)
	}
	return out, total, nil
}
