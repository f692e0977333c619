package web

import (
	"net/http"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
)

// mountCTIConfig adds the JSON API for a tenant's ACD queues and numbers (config admins).
func (s *Server) mountCTIConfig(h *ctiHandlers) {
	s.mux.HandleFunc("GET /api/v1/cti/queues", s.api(account.PermConfigure, h.listQueues))
	s.mux.HandleFunc("GET /api/v1/cti/queues/{name}", s.api(account.PermConfigure, h.getQueue))
	s.mux.HandleFunc("PUT /api/v1/cti/queues/{name}", s.api(account.PermConfigure, h.putQueue))
	s.mux.HandleFunc("PUT /api/v1/cti/numbers/{number}", s.api(account.PermConfigure, h.putNumber))
}

type callerPriorityJSON struct {
	Caller   string `json:"caller"`
	Priority int    `json:"priority"`
}

// queueJSON is a queue as the API shows and takes it. A PUT replaces every setting: one
// left out takes its default.
type queueJSON struct {
	Name             string               `json:"name"`
	Strategy         string               `json:"strategy"`
	RingTimeoutS     int                  `json:"ring_timeout_s"`
	MaxWaitS         int                  `json:"max_wait_s"`
	Overflow         string               `json:"overflow"`
	WrapUpS          int                  `json:"wrapup_s"`
	ServiceLevelS    int                  `json:"service_level_s"`
	MissedLimit      int                  `json:"missed_limit"`
	CallerPriorities []callerPriorityJSON `json:"caller_priorities"`
	LevelPriorities  []levelPriorityJSON  `json:"level_priorities"`
}

// levelPriorityJSON gives callers whose matched customer has level (a code of table
// customer_level) the priority.
type levelPriorityJSON struct {
	Level    string `json:"level"`
	Priority int    `json:"priority"`
}

func toQueueJSON(q cti.Queue) queueJSON {
	out := queueJSON{Name: q.Name, Strategy: string(q.Strategy), RingTimeoutS: int(q.RingTimeout / time.Second),
		MaxWaitS: int(q.MaxWait / time.Second), Overflow: q.Overflow, WrapUpS: int(q.WrapUp / time.Second),
		ServiceLevelS: int(q.ServiceLevel / time.Second), MissedLimit: q.MissedLimit, CallerPriorities: []callerPriorityJSON{},
		LevelPriorities: []levelPriorityJSON{}}
	for _, p := range q.CallerPriorities {
		out.CallerPriorities = append(out.CallerPriorities, callerPriorityJSON{Caller: p.Caller, Priority: p.Priority})
	}
	for _, p := range q.LevelPriorities {
		out.LevelPriorities = append(out.LevelPriorities, levelPriorityJSON{Level: p.Level, Priority: p.Priority})
	}
	return out
}

func (h *ctiHandlers) listQueues(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "queues belong to a tenant: sign in as one of its users")
	}
	qs, err := h.svc.Queues(r.Context(), v.user.Tenant.Code)
	if err != nil {
		return err
	}
	out := make([]queueJSON, 0, len(qs))
	for _, q := range qs {
		out = append(out, toQueueJSON(q))
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": out})
	return nil
}

func (h *ctiHandlers) getQueue(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "queues belong to a tenant: sign in as one of its users")
	}
	q, err := h.svc.Queue(r.Context(), v.user.Tenant.Code, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toQueueJSON(*q))
	return nil
}

// putQueue adds or replaces a queue's settings, caller and customer-level priorities
// included; calls see them at once.
func (h *ctiHandlers) putQueue(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "queues belong to a tenant: sign in as one of its users")
	}
	var req queueJSON
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	if req.Name != "" && req.Name != name {
		return fault.Errorf(fault.Invalid, "queue name %q in the body differs from %q in the path", req.Name, name)
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"ring_timeout_s", req.RingTimeoutS}, {"max_wait_s", req.MaxWaitS}, {"wrapup_s", req.WrapUpS},
		{"service_level_s", req.ServiceLevelS}, {"missed_limit", req.MissedLimit}} {
		if n.v < 0 {
			return fault.Errorf(fault.Invalid, "%s is %d: it cannot be negative", n.field, n.v)
		}
	}
	q := cti.Queue{Name: name, Strategy: cti.Strategy(req.Strategy), RingTimeout: time.Duration(req.RingTimeoutS) * time.Second,
		MaxWait: time.Duration(req.MaxWaitS) * time.Second, Overflow: req.Overflow, WrapUp: time.Duration(req.WrapUpS) * time.Second,
		ServiceLevel: time.Duration(req.ServiceLevelS) * time.Second, MissedLimit: req.MissedLimit}
	for _, p := range req.CallerPriorities {
		q.CallerPriorities = append(q.CallerPriorities, cti.CallerPriority{Caller: p.Caller, Priority: p.Priority})
	}
	for _, p := range req.LevelPriorities {
		q.LevelPriorities = append(q.LevelPriorities, cti.LevelPriority{Level: p.Level, Priority: p.Priority})
	}
	if err := h.svc.SaveQueue(r.Context(), v.user.Tenant.Code, q); err != nil {
		return err
	}
	saved, err := h.svc.Queue(r.Context(), v.user.Tenant.Code, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toQueueJSON(*saved))
	return nil
}

type numberJSON struct {
	Number    string `json:"number"`
	Queue     string `json:"queue,omitempty"`
	Extension string `json:"extension,omitempty"`
	Priority  int    `json:"priority"`
}

// putNumber routes one of the tenant's numbers (DIDs) to a queue or an extension, with the
// priority its callers get in the queue's line.
func (h *ctiHandlers) putNumber(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "numbers belong to a tenant: sign in as one of its users")
	}
	var req numberJSON
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	number := r.PathValue("number")
	if req.Number != "" && req.Number != number {
		return fault.Errorf(fault.Invalid, "number %q in the body differs from %q in the path", req.Number, number)
	}
	d := cti.DID{Number: number, Queue: req.Queue, Extension: req.Extension, Priority: req.Priority}
	if err := h.svc.SaveDID(r.Context(), v.user.Tenant.Code, d); err != nil {
		return err
	}
	req.Number = number
	writeJSON(w, http.StatusOK, req)
	return nil
}
