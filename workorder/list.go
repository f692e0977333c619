package workorder

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Filter narrows a work-order list. Zero values do not filter.
type Filter struct {
	Object     string // "" for the default work-order object
	Mine       bool   // only u's own, whatever u's scope
	Status     []string
	Type       []string
	AgentID    int64
	TeamID     int64
	CustomerID int64
	CallID     string
	From, To   time.Time // created in [From, To)
	Search     string    // words looked for in the searchable fields
	// Unscored keeps work orders without a QA score (calibration scores aside): the QA queue.
	Unscored bool
	// SamplePercent (1–100, 0 for all) keeps a stable pseudo-random share of the rows; the
	// same SampleSeed gives the same sample.
	SamplePercent int
	SampleSeed    int64
	Limit         int // default DefaultPageSize, at most MaxPageSize
	Offset        int
}

// Page is one page of a list.
type Page struct {
	Items []*WorkOrder `json:"items"`
	Total int          `json:"total"`
}

// List lists the work orders u may see, newest first. Lists span monthly partitions: a
// date range prunes them, no range reads them all.
func (s *Service) List(ctx context.Context, t *account.Tenant, u *account.User, f Filter) (*Page, error) {
	o, err := s.object(ctx, t, f.Object)
	if err != nil {
		return nil, err
	}
	if f.Limit == 0 {
		f.Limit = DefaultPageSize
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return nil, fault.Errorf(fault.Invalid, "page size must be 1–%d, not %d", MaxPageSize, f.Limit)
	}
	if f.Offset < 0 {
		return nil, fault.Errorf(fault.Invalid, "offset must not be negative")
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where = append(where, "deleted_at IS NULL")
	switch scope := account.ScopeOf(u.Roles); {
	case f.Mine || scope == account.ScopeOwn:
		where = append(where, "owner_id = "+arg(u.ID))
	case scope == account.ScopeTeam:
		if o.Field(FieldTeam) == nil || u.TeamID == 0 {
			where = append(where, "owner_id = "+arg(u.ID))
		} else {
			where = append(where, "(owner_id = "+arg(u.ID)+" OR "+pgx.Identifier{FieldTeam}.Sanitize()+" = "+arg(u.TeamID)+")")
		}
	case scope == account.ScopeAll:
	default:
		return nil, fault.Errorf(fault.Forbidden, "your roles do not show work orders")
	}
	field := func(key string) (string, error) {
		if fd := o.Field(key); fd == nil || fd.Hidden {
			return "", fault.Errorf(fault.Invalid, "object %q has no field %q to filter on", o.Key, key)
		}
		return pgx.Identifier{key}.Sanitize(), nil
	}
	codes := func(key string, vals []string) error {
		if len(vals) == 0 {
			return nil
		}
		col, err := field(key)
		if err != nil {
			return err
		}
		where = append(where, col+" = ANY("+arg(vals)+")")
		return nil
	}
	if err := codes(FieldStatus, f.Status); err != nil {
		return nil, err
	}
	if err := codes(FieldType, f.Type); err != nil {
		return nil, err
	}
	if f.AgentID != 0 {
		where = append(where, "owner_id = "+arg(f.AgentID))
	}
	for _, c := range []struct {
		key string
		v   any
		set bool
	}{{FieldTeam, f.TeamID, f.TeamID != 0}, {FieldCustomer, f.CustomerID, f.CustomerID != 0}, {FieldCallID, f.CallID, f.CallID != ""}} {
		if !c.set {
			continue
		}
		col, err := field(c.key)
		if err != nil {
			return nil, err
		}
		where = append(where, col+" = "+arg(c.v))
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < "+arg(f.To))
	}
	if q := strings.TrimSpace(f.Search); q != "" {
		if utf8.RuneCountInString(q) > maxSearchLength {
			return nil, fault.Errorf(fault.Invalid, "search is too long: at most %d characters", maxSearchLength)
		}
		var cols []string
		for _, fd := range o.Visible() {
			if fd.Searchable && (fd.Type == dataobject.TypeText || fd.Type == dataobject.TypeLongText) {
				cols = append(cols, pgx.Identifier{fd.Key}.Sanitize())
			}
		}
		if len(cols) > 0 {
			p := arg("%" + likeEscape(q) + "%")
			var ors []string
			for _, c := range cols {
				ors = append(ors, c+" ILIKE "+p)
			}
			where = append(where, "("+strings.Join(ors, " OR ")+")")
		}
	}
	if f.Unscored {
		where = append(where, "NOT EXISTS (SELECT 1 FROM qa_scores q WHERE q.object = "+arg(o.Key)+" AND q.record_id = w.id AND NOT q.calibration)")
	}
	if f.SamplePercent < 0 || f.SamplePercent > 100 {
		return nil, fault.Errorf(fault.Invalid, "sample must be 1–100 %%, not %d", f.SamplePercent)
	}
	if f.SamplePercent > 0 && f.SamplePercent < 100 {
		where = append(where, "mod(abs(hashtextextended(w.id::text, "+arg(f.SampleSeed)+")), 100) < "+arg(f.SamplePercent))
	}
	cond := strings.Join(where, " AND ")
	table := pgx.Identifier{o.Table}.Sanitize()
	page := &Page{Items: []*WorkOrder{}}
	err = db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+table+" w WHERE "+cond, args...).Scan(&page.Total); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT to_jsonb(w) FROM "+table+" w WHERE "+cond+
			fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT %d OFFSET %d", f.Limit, f.Offset), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			w, err := fromJSON(o, raw)
			if err != nil {
				return err
			}
			page.Items = append(page.Items, w)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list work orders of %q: %w", o.Key, err)
	}
	return page, nil
}

// Queue lists the work orders waiting for a QA score (for QA checkers), filtered and
// sampled like List.
func (s *Service) Queue(ctx context.Context, t *account.Tenant, u *account.User, f Filter) (*Page, error) {
	if err := needs(u, account.PermScoreQA, "the QA queue"); err != nil {
		return nil, err
	}
	f.Unscored = true
	return s.List(ctx, t, u, f)
}

// fromJSON reads a row as to_jsonb gives it: system columns and the visible fields.
func fromJSON(o *dataobject.Object, raw []byte) (*WorkOrder, error) {
	var row map[string]json.RawMessage
	if err := json.Unmarshal(raw, &row); err != nil {
		return nil, err
	}
	w := &WorkOrder{Object: o.Key, Values: map[string]any{}}
	num := func(k string) int64 {
		var n int64
		_ = json.Unmarshal(row[k], &n)
		return n
	}
	tm := func(k string) time.Time {
		var t time.Time
		_ = json.Unmarshal(row[k], &t)
		return t
	}
	w.ID, w.OwnerID, w.CreatedBy, w.UpdatedBy = num("id"), num("owner_id"), num("created_by"), num("updated_by")
	w.CreatedAt, w.UpdatedAt = tm("created_at"), tm("updated_at")
	for _, f := range o.Visible() {
		v, ok := row[f.Key]
		if !ok || string(v) == "null" {
			continue
		}
		switch f.Type {
		case dataobject.TypeInteger, dataobject.TypeReference:
			w.Values[f.Key] = num(f.Key)
		case dataobject.TypeDateTime:
			w.Values[f.Key] = tm(f.Key)
		default:
			var x any
			if err := json.Unmarshal(v, &x); err != nil {
				return nil, err
			}
			w.Values[f.Key] = x
		}
	}
	return w, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// OpenForCustomer lists the open work orders (status not resolved or closed) of a customer
// in the default work-order object, newest first: what a pop shows.
func (s *Service) OpenForCustomer(ctx context.Context, t *account.Tenant, customerID int64, limit int) ([]*WorkOrder, error) {
	o, err := s.object(ctx, t, "")
	if err != nil {
		return nil, err
	}
	if o.Field(FieldCustomer) == nil || o.Field(FieldStatus) == nil {
		return []*WorkOrder{}, nil
	}
	out, err := s.selectWorkOrders(ctx, t, o, `customer_id = $1 AND deleted_at IS NULL AND coalesce(status, '') <> ALL($2)
			ORDER BY created_at DESC, id DESC LIMIT $3`, customerID, closedStatuses, limit)
	if err != nil {
		return nil, fmt.Errorf("open work orders of customer %d: %w", customerID, err)
	}
	return out, nil
}

// selectWorkOrders reads the work orders of object o that match where (a condition and its
// order, with $n parameters args) in t's schema.
func (s *Service) selectWorkOrders(ctx context.Context, t *account.Tenant, o *dataobject.Object, where string, args ...any) ([]*WorkOrder, error) {
	out := []*WorkOrder{}
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT to_jsonb(w) FROM "+pgx.Identifier{o.Table}.Sanitize()+" w WHERE "+where, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			w, err := fromJSON(o, raw)
			if err != nil {
				return err
			}
			out = append(out, w)
		}
		return rows.Err()
	})
	return out, err
}

// DueCallbacks lists u's own open work orders whose callback is due before `before`,
// earliest first: the console's callback list.
func (s *Service) DueCallbacks(ctx context.Context, t *account.Tenant, u *account.User, before time.Time) ([]*WorkOrder, error) {
	o, err := s.object(ctx, t, "")
	if err != nil {
		return nil, err
	}
	if o.Field(FieldCallback) == nil {
		return []*WorkOrder{}, nil
	}
	out, err := s.selectWorkOrders(ctx, t, o, `owner_id = $1 AND callback_at IS NOT NULL AND callback_at < $2 AND deleted_at IS NULL
			AND coalesce(status, '') <> ALL($3) ORDER BY callback_at LIMIT $4`, u.ID, before, closedStatuses, MaxPageSize)
	if err != nil {
		return nil, fmt.Errorf("due callbacks: %w", err)
	}
	return out, nil
}

// Assignment moves a work order to an agent, or to a team (AgentID 0).
type Assignment struct {
	AgentID int64
	TeamID  int64
}

// Assign gives a work order u can see to another agent or team; team leads may assign
// within their team only, agents not at all. The new agent's consoles get a
// workorder.assigned message.
func (s *Service) Assign(ctx context.Context, t *account.Tenant, u *account.User, object string, id int64, a Assignment, version time.Time) (*WorkOrder, error) {
	scope := account.ScopeOf(u.Roles)
	if scope < account.ScopeTeam {
		return nil, fault.Errorf(fault.Forbidden, "only team leads, QA, supervisors and admins assign work orders")
	}
	w, err := s.Get(ctx, t, u, object, id)
	if err != nil {
		return nil, err
	}
	vals := map[string]any{}
	if a.AgentID != 0 {
		agent, err := s.accounts.UserByID(ctx, a.AgentID)
		if err != nil || agent.Tenant == nil || agent.Tenant.ID != t.ID {
			return nil, fault.Errorf(fault.Invalid, "user %d is not an agent of this tenant", a.AgentID)
		}
		if !agent.Can(account.PermTakeCalls) {
			return nil, fault.Errorf(fault.Invalid, "%s is not an agent", agent.Name())
		}
		if a.TeamID == 0 {
			a.TeamID = agent.TeamID
		}
	}
	if a.AgentID == 0 && a.TeamID == 0 {
		return nil, fault.Errorf(fault.Invalid, "assign to an agent or a team")
	}
	if scope == account.ScopeTeam && a.TeamID != u.TeamID {
		return nil, fault.Errorf(fault.Forbidden, "a team lead assigns within their own team only")
	}
	vals["owner_id"] = a.AgentID
	o, err := s.objects.Object(ctx, t, w.Object)
	if err != nil {
		return nil, err
	}
	if o.Field(FieldTeam) != nil {
		vals[FieldTeam] = a.TeamID
	}
	r, err := s.objects.UpdateWith(ctx, t, w.Object, id, vals, actorOf(u), dataobject.WriteOptions{IfUpdatedAt: version, LogAction: "assign"})
	if err != nil {
		return nil, err
	}
	out := fromRecord(w.Object, r)
	if s.notify != nil && a.AgentID != 0 && a.AgentID != w.OwnerID {
		s.notify(ctx, t.Code, a.AgentID, TypeAssigned, map[string]any{"object": out.Object, "id": out.ID,
			"subject": out.Values[FieldSubject], "by": u.Name(), "work_order": out})
	}
	return out, nil
}
