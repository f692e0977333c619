package workorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// settingsKey is the row of the tenant's settings table holding Settings.
const settingsKey = "workorder"

// maxOpenInPop bounds the open work orders a pop lists.
const maxOpenInPop = 5

// Settings are a tenant's work-order options, set by a config admin.
type Settings struct {
	// AutoReady puts the agent back to Ready after a work order is saved from a pop in
	// after-call work (the seed's autoConf2Idle).
	AutoReady bool `json:"auto_ready"`
	// DraftMap maps customer fields to work-order fields: the pop's draft is pre-filled
	// from the chosen customer with them (call fields are always filled).
	DraftMap map[string]string `json:"draft_map"`
}

// DefaultSettings apply until a config admin saves others.
func DefaultSettings() Settings {
	return Settings{AutoReady: true, DraftMap: map[string]string{"name": FieldCustomerName}}
}

// Settings reads t's work-order settings.
func (s *Service) Settings(ctx context.Context, t *account.Tenant) (Settings, error) {
	st := DefaultSettings()
	var raw []byte
	err := db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, settingsKey).Scan(&raw)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("work-order settings: %w", err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return DefaultSettings(), fmt.Errorf("work-order settings: %w", err)
	}
	return st, nil
}

// PutSettings stores t's work-order settings after checking the mapping names real fields
// of the default customer and work-order objects.
func (s *Service) PutSettings(ctx context.Context, t *account.Tenant, st Settings, actor account.Actor) error {
	cust, err := s.objects.DefaultObject(ctx, t, dataobject.KindCustomer)
	if err != nil {
		return err
	}
	wo, err := s.object(ctx, t, "")
	if err != nil {
		return err
	}
	for from, to := range st.DraftMap {
		if f := cust.Field(from); f == nil || f.Hidden {
			return fault.Errorf(fault.Invalid, "draft mapping: customer object %q has no field %q", cust.Key, from)
		}
		if f := wo.Field(to); f == nil || f.Hidden {
			return fault.Errorf(fault.Invalid, "draft mapping: work-order object %q has no field %q", wo.Key, to)
		}
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return db.InTenant(ctx, s.pool, t.Scope(), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO settings (key, value, updated_by) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by`,
			settingsKey, raw, actor.Name)
		return err
	})
}

// PopSource gives a screen pop the chosen customer's open work orders and the draft
// values mapped from the customer's fields (screenpop.Options.WorkOrders).
func (s *Service) PopSource(ctx context.Context, t *account.Tenant, object string, recordID int64, record map[string]any) ([]any, map[string]any, error) {
	wo, err := s.object(ctx, t, "")
	if err != nil {
		return nil, nil, err
	}
	if f := wo.Field(FieldCustomer); f == nil || f.RefObject != object {
		return []any{}, map[string]any{}, nil // the work orders do not refer to this object's records
	}
	open, err := s.OpenForCustomer(ctx, t, recordID, maxOpenInPop)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.Settings(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	out := make([]any, len(open))
	for i, w := range open {
		out[i] = w
	}
	draft := map[string]any{}
	for from, to := range st.DraftMap {
		if v, ok := record[from]; ok && v != nil {
			draft[to] = v
		}
	}
	return out, draft, nil
}
