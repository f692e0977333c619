package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
)

// MountCTI adds the telephony API: agent states and the call-event API for external PBXs.
// cmd/ctid calls it once after New, with the running SIP service.
func (s *Server) MountCTI(svc *cti.Service) {
	h := &ctiHandlers{s: s, svc: svc, accounts: s.opts.Accounts}
	s.sipPhones = true
	s.moreNav = append(s.moreNav, navLink{"/admin/cti/queues", "nav.cti_admin", account.PermConfigure})
	s.mux.HandleFunc("GET /api/v1/agents/me/state", s.api(account.PermTakeCalls, h.myState))
	s.mux.HandleFunc("PUT /api/v1/agents/me/state", s.api(account.PermTakeCalls, h.setMyState))
	s.mux.HandleFunc("PUT /api/v1/agents/{id}/state", s.api(account.PermWatchFloor, h.forceState))
	s.mux.HandleFunc("POST /api/v1/cti/events", s.api(account.PermConfigure, h.callEvent))
	s.mountDial(h)
	s.mountCTIConfig(h)
	s.mountCTIAdmin(h)
	s.mountCTIDelete(h)
}

type ctiHandlers struct {
	s        *Server
	svc      *cti.Service
	accounts *account.Store
}

type agentStateJSON struct {
	AgentID int64     `json:"agent_id"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	CallID  string    `json:"call_id,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

func toAgentStateJSON(st cti.AgentStatus) agentStateJSON {
	return agentStateJSON{AgentID: st.AgentID, State: string(st.State), Reason: st.Reason, CallID: st.CallID, Since: st.Since}
}

func (h *ctiHandlers) myState(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "only a tenant's agents have a state")
	}
	st, err := h.svc.Agents().Status(r.Context(), v.user.Tenant.Code, v.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAgentStateJSON(st))
	return nil
}

type setStateRequest struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}

func (h *ctiHandlers) setMyState(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "only a tenant's agents have a state")
	}
	var req setStateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	st, err := h.svc.Agents().Set(r.Context(), v.user.Tenant.Code, v.user.ID,
		cti.Change{To: cti.AgentState(req.State), Reason: req.Reason, Who: cti.ByAgent})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAgentStateJSON(st))
	return nil
}

// forceState lets a supervisor (any agent of the tenant) or a team lead (their team's agents)
// set an agent's state; the log names who did it.
func (h *ctiHandlers) forceState(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	target, err := h.accounts.UserByID(r.Context(), id)
	if err != nil {
		return err
	}
	if v.user.Tenant == nil || target.Tenant == nil || target.Tenant.ID != v.user.Tenant.ID {
		return fault.Errorf(fault.NotFound, "user %d does not exist", id)
	}
	if account.ScopeOf(v.user.Roles) == account.ScopeTeam && (target.TeamID == 0 || target.TeamID != v.user.TeamID) {
		return fault.Errorf(fault.Forbidden, "agent %d is not in your team", id)
	}
	var req setStateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	st, err := h.svc.Agents().Set(r.Context(), v.user.Tenant.Code, id, cti.Change{To: cti.AgentState(req.State),
		Reason: req.Reason, Who: cti.BySupervisor, Actor: "user:" + strconv.FormatInt(v.user.ID, 10)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAgentStateJSON(st))
	return nil
}

func (h *ctiHandlers) callEvent(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "call events belong to a tenant: use a token of one of its users")
	}
	var e cti.ExternalEvent
	if err := decodeJSON(r, &e); err != nil {
		return err
	}
	res, err := h.svc.ReportCallEvent(r.Context(), v.user.Tenant.Code, e)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, res)
	return nil
}
