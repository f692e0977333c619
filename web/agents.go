package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
)

type reasonJSON struct {
	Code  string `json:"code"`
	Label string `json:"label"`
}

// notReadyReasons lists the reasons an agent may choose (not the ones ctid sets itself).
func (s *Server) notReadyReasons(ctx context.Context, t *account.Tenant, lang string) ([]reasonJSON, error) {
	out := []reasonJSON{}
	err := db.InTenant(ctx, s.opts.Pool, t.Scope(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT code, label_en, label_zh FROM not_ready_reasons WHERE NOT system ORDER BY code`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var code, en, zh string
			if err := rows.Scan(&code, &en, &zh); err != nil {
				return err
			}
			label := en
			if lang == "zh-CN" {
				label = zh
			}
			out = append(out, reasonJSON{Code: code, Label: label})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list not-ready reasons: %w", err)
	}
	return out, nil
}

func (s *Server) apiNotReadyReasons(w http.ResponseWriter, r *http.Request, v *visit) error {
	rs, err := s.notReadyReasons(r.Context(), v.user.Tenant, v.lang)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": rs, "total": len(rs)})
	return nil
}
