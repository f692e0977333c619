package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/workorder"
)

// EnableWorkOrders adds the work-order and QA pages and API (cmd/ctid calls it after New).
// agents (nil: none) puts an agent back to Ready after a save, per the tenant's setting.
func (s *Server) EnableWorkOrders(svc *workorder.Service, objects *dataobject.Store, agents *cti.Agents) {
	wo := &workOrderPages{s: s, svc: svc, objects: objects, agents: agents}
	s.mux.HandleFunc("GET /workorders", s.page(account.PermViewRecords, wo.list))
	s.mux.HandleFunc("GET /workorders/{id}", s.page(account.PermViewRecords, wo.show))
	s.mux.HandleFunc("POST /workorders/{id}", s.page(account.PermViewRecords, wo.editForm))
	s.mux.HandleFunc("POST /workorders/{id}/assign", s.page(account.PermViewRecords, wo.assignForm))

	s.mux.HandleFunc("GET /api/v1/workorders", s.api(account.PermViewRecords, wo.apiList))
	s.mux.HandleFunc("POST /api/v1/workorders", s.api(account.PermTakeCalls, wo.apiSave))
	s.mux.HandleFunc("GET /api/v1/workorders/form", s.api(account.PermViewRecords, wo.apiForm))
	s.mux.HandleFunc("GET /api/v1/workorders/callbacks", s.api(account.PermTakeCalls, wo.apiCallbacks))
	s.mux.HandleFunc("GET /api/v1/workorders/{id}", s.api(account.PermViewRecords, wo.apiGet))
	s.mux.HandleFunc("PUT /api/v1/workorders/{id}", s.api(account.PermViewRecords, wo.apiUpdate))
	s.mux.HandleFunc("POST /api/v1/workorders/{id}/assign", s.api(account.PermViewRecords, wo.apiAssign))
	s.mux.HandleFunc("GET /api/v1/workorder-settings", s.api(account.PermConfigure, wo.apiSettings))
	s.mux.HandleFunc("PUT /api/v1/workorder-settings", s.api(account.PermConfigure, wo.apiPutSettings))
	s.mux.HandleFunc("GET /admin/workorders", s.page(account.PermConfigure, wo.adminPage))
	s.mux.HandleFunc("POST /admin/workorders/settings", s.page(account.PermConfigure, wo.settingsForm))
	s.mux.HandleFunc("POST /admin/workorders/qa-forms", s.page(account.PermConfigure, wo.qaFormForm))
	wo.enableQA()
}

type workOrderPages struct {
	s       *Server
	svc     *workorder.Service
	objects *dataobject.Store
	agents  *cti.Agents
}

// saveRequest is POST /api/v1/workorders: a work order saved from a pop or a form.
type saveRequest struct {
	Object     string         `json:"object"`
	CallID     string         `json:"call_id"`
	CustomerID int64          `json:"customer_id"`
	Values     map[string]any `json:"values"`
}

// apiSave saves a new work order linked to its call and customer. Saved from a call while
// the agent is in after-call work, with the tenant's auto-ready setting on (autoConf2Idle),
// the agent goes back to Ready; the answer says which state the agent is in.
func (wo *workOrderPages) apiSave(w http.ResponseWriter, r *http.Request, v *visit) error {
	var req saveRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	saved, err := wo.svc.Save(r.Context(), v.user.Tenant, v.user, workorder.Input{Object: req.Object, CallID: req.CallID,
		CustomerID: req.CustomerID, Values: req.Values})
	if err != nil {
		return err
	}
	body := map[string]any{"work_order": saved}
	if req.CallID != "" && wo.agents != nil {
		st, err := wo.svc.Settings(r.Context(), v.user.Tenant)
		if err != nil {
			wo.s.log.Warn("work-order settings", "tenant", v.user.Tenant.Code, "err", err)
		}
		if err == nil && st.AutoReady {
			// Only from after-call work: an agent who went Not ready or took another call stays.
			state, err := wo.agents.Set(r.Context(), v.user.Tenant.Code, v.user.ID,
				cti.Change{To: cti.Ready, From: cti.WrapUp, Who: cti.ByAgent, Actor: "agent"})
			if err == nil {
				body["agent_state"] = toAgentStateJSON(state)
			} else if fault.CodeOf(err) != fault.Conflict {
				wo.s.log.Warn("auto ready after save", "tenant", v.user.Tenant.Code, "agent", v.user.ID, "err", err)
			}
		}
	}
	writeJSON(w, http.StatusCreated, body)
	return nil
}

// filterOf reads list filters from a query string.
func filterOf(r *http.Request, loc *time.Location) (workorder.Filter, error) {
	q := r.URL.Query()
	f := workorder.Filter{Object: q.Get("object"), Search: q.Get("q"), Mine: q.Get("mine") == "1", CallID: q.Get("call_id")}
	split := func(k string) []string {
		var out []string
		for _, v := range q[k] {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	f.Status, f.Type = split("status"), split("type")
	ints := []struct {
		key string
		dst *int64
	}{{"agent", &f.AgentID}, {"team", &f.TeamID}, {"customer", &f.CustomerID}}
	for _, c := range ints {
		if s := q.Get(c.key); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return f, fault.Errorf(fault.Invalid, "%s %q is not an id", c.key, s)
			}
			*c.dst = n
		}
	}
	for _, c := range []struct {
		key string
		dst *int
	}{{"limit", &f.Limit}, {"offset", &f.Offset}} {
		if s := q.Get(c.key); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return f, fault.Errorf(fault.Invalid, "%s %q is not a number", c.key, s)
			}
			*c.dst = n
		}
	}
	for _, c := range []struct {
		key  string
		dst  *time.Time
		plus int
	}{{"from", &f.From, 0}, {"to", &f.To, 1}} {
		if s := q.Get(c.key); s != "" {
			d, err := time.ParseInLocation(time.DateOnly, s, loc)
			if err != nil {
				return f, fault.Errorf(fault.Invalid, "%s %q is not a date (YYYY-MM-DD)", c.key, s)
			}
			*c.dst = d.AddDate(0, 0, c.plus) // "to" includes its day
		}
	}
	return f, nil
}

func (wo *workOrderPages) apiList(w http.ResponseWriter, r *http.Request, v *visit) error {
	f, err := filterOf(r, v.user.Tenant.Location())
	if err != nil {
		return err
	}
	p, err := wo.svc.List(r.Context(), v.user.Tenant, v.user, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (wo *workOrderPages) apiGet(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	object := r.URL.Query().Get("object")
	got, err := wo.svc.Get(r.Context(), v.user.Tenant, v.user, object, id)
	if err != nil {
		return err
	}
	hist, err := wo.svc.History(r.Context(), v.user.Tenant, v.user, object, id)
	if err != nil {
		return err
	}
	logs, err := wo.svc.OperationLog(r.Context(), v.user.Tenant, v.user, object, id)
	if err != nil {
		return err
	}
	if hist == nil {
		hist = []dataobject.HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"work_order": got, "history": hist, "operation_log": logs})
	return nil
}

// updateRequest is PUT /api/v1/workorders/{id}: the fields to change and the version
// (updated_at) the editor read.
type updateRequest struct {
	Object  string         `json:"object"`
	Values  map[string]any `json:"values"`
	Version time.Time      `json:"version"`
}

func (wo *workOrderPages) apiUpdate(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	var req updateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	got, err := wo.svc.Update(r.Context(), v.user.Tenant, v.user, req.Object, id, req.Values, req.Version)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, got)
	return nil
}

type assignRequest struct {
	Object  string    `json:"object"`
	AgentID int64     `json:"agent_id"`
	TeamID  int64     `json:"team_id"`
	Version time.Time `json:"version"`
}

func (wo *workOrderPages) apiAssign(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	var req assignRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	got, err := wo.svc.Assign(r.Context(), v.user.Tenant, v.user, req.Object, id,
		workorder.Assignment{AgentID: req.AgentID, TeamID: req.TeamID}, req.Version)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, got)
	return nil
}

func (wo *workOrderPages) apiCallbacks(w http.ResponseWriter, r *http.Request, v *visit) error {
	due, err := wo.svc.DueCallbacks(r.Context(), v.user.Tenant, v.user, time.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": due, "total": len(due)})
	return nil
}

// woFormField is a work-order field as the console's form needs it, in the user's language.
type woFormField struct {
	Key       string       `json:"key"`
	Type      string       `json:"type"`
	Label     string       `json:"label"`
	Required  bool         `json:"required"`
	MaxLength int          `json:"max_length,omitempty"`
	Multi     bool         `json:"multi,omitempty"`
	Default   string       `json:"default,omitempty"`
	Codes     []woFormCode `json:"codes,omitempty"`
}

type woFormCode struct {
	Code  string `json:"code"`
	Label string `json:"label"`
}

// linkedFields are set from the call, the customer and the agent, not typed.
var linkedFields = []string{workorder.FieldCallID, workorder.FieldCustomer, workorder.FieldTeam}

// apiForm describes the work-order object's form: its visible fields in order, code
// choices, and fields per row.
func (wo *workOrderPages) apiForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	ctx := r.Context()
	var o *dataobject.Object
	var err error
	if key := r.URL.Query().Get("object"); key != "" {
		o, err = wo.objects.Object(ctx, v.user.Tenant, key)
	} else {
		o, err = wo.objects.DefaultObject(ctx, v.user.Tenant, dataobject.KindWorkOrder)
	}
	if err != nil {
		return err
	}
	if o.Kind != dataobject.KindWorkOrder {
		return fault.Errorf(fault.Invalid, "object %q holds %s records, not work orders", o.Key, o.Kind)
	}
	tables := map[string]*dataobject.CodeTable{}
	fields := []woFormField{}
	for _, f := range o.Visible() {
		ff := woFormField{Key: f.Key, Type: string(f.Type), Label: f.Label(v.lang), Required: f.Required, MaxLength: f.MaxLength,
			Multi: f.Multi, Default: f.Default}
		if f.Type == dataobject.TypeCode {
			ct := tables[f.CodeTable]
			if ct == nil {
				if ct, err = wo.objects.CodeTable(ctx, v.user.Tenant, f.CodeTable); err != nil {
					return err
				}
				tables[f.CodeTable] = ct
			}
			for _, c := range ct.Codes {
				if c.Enabled {
					ff.Codes = append(ff.Codes, woFormCode{Code: c.Code, Label: c.Label(v.lang)})
				}
			}
		}
		fields = append(fields, ff)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": o.Key, "name": o.Name(v.lang), "edit_columns": o.EditColumns,
		"save_mode": o.SaveMode, "fields": fields, "linked": linkedFields})
	return nil
}

func (wo *workOrderPages) apiSettings(w http.ResponseWriter, r *http.Request, v *visit) error {
	st, err := wo.svc.Settings(r.Context(), v.user.Tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (wo *workOrderPages) apiPutSettings(w http.ResponseWriter, r *http.Request, v *visit) error {
	var st workorder.Settings
	if err := decodeJSON(r, &st); err != nil {
		return err
	}
	if err := wo.svc.PutSettings(r.Context(), v.user.Tenant, st, actorOf(v)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
