package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

type stateJSON struct {
	AgentID int64     `json:"agent_id"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	CallID  string    `json:"call_id,omitempty"`
	Since   time.Time `json:"since"`
}

func toStateJSON(s cti.AgentStatus) stateJSON {
	return stateJSON{AgentID: s.AgentID, State: string(s.State), Reason: s.Reason, CallID: s.CallID, Since: s.Since}
}

func (s *Server) agentsEnabled() error {
	if s.opts.Agents == nil {
		return fault.Errorf(fault.Unavailable, "the CTI service is not running")
	}
	return nil
}

// apiMyState answers GET /api/v1/agents/me/state.
func (s *Server) apiMyState(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := s.agentsEnabled(); err != nil {
		return err
	}
	st, err := s.opts.Agents.Status(r.Context(), v.user.Tenant.Code, v.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toStateJSON(st))
	return nil
}

type stateRequest struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}

func parseState(name string) (cti.AgentState, error) {
	for _, st := range cti.AllAgentStates {
		if string(st) == name {
			return st, nil
		}
	}
	return "", fault.Errorf(fault.Invalid, "unknown agent state %q: want ready, not_ready or logged_out", name)
}

// apiSetMyState answers PUT /api/v1/agents/me/state: the agent sets Ready, Not ready (with a
// reason code) or Logged out; the state machine refuses what the agent may not do.
func (s *Server) apiSetMyState(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := s.agentsEnabled(); err != nil {
		return err
	}
	var req stateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	to, err := parseState(req.State)
	if err != nil {
		return err
	}
	st, err := s.opts.Agents.Set(r.Context(), v.user.Tenant.Code, v.user.ID, cti.Change{To: to, Reason: req.Reason, Who: cti.ByAgent, Actor: "agent"})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toStateJSON(st))
	return nil
}

// apiForceState answers PUT /api/v1/agents/{id}/state: a supervisor or admin (any agent of the
// tenant) or a team lead (their team's agents) forces an agent's state; the move is logged
// with who made it.
func (s *Server) apiForceState(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := s.agentsEnabled(); err != nil {
		return err
	}
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	agent, err := s.opts.Accounts.UserByID(r.Context(), id)
	if err != nil || agent.Tenant == nil || agent.Tenant.ID != v.user.Tenant.ID || !agent.Has(account.RoleAgent) {
		return fault.Errorf(fault.NotFound, "agent %d does not exist", id)
	}
	if account.ScopeOf(v.user.Roles) != account.ScopeAll && (agent.TeamID == 0 || agent.TeamID != v.user.TeamID) {
		return fault.Errorf(fault.Forbidden, "agent %s is not in your team", agent.Username)
	}
	var req stateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	to, err := parseState(req.State)
	if err != nil {
		return err
	}
	st, err := s.opts.Agents.Set(r.Context(), v.user.Tenant.Code, agent.ID, cti.Change{To: to, Reason: req.Reason,
		Who: cti.BySupervisor, Actor: fmt.Sprintf("user:%d", v.user.ID)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toStateJSON(st))
	return nil
}

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
