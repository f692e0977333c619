package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
)

// Deleting queues, numbers and trunks, and setting the tenant's SIP domain, in the
// telephony admin pages. A delete asks first (GET shows what will happen, POST with
// confirm=1 does it); a queue still routed to is refused with the references named. Each
// change is one audit-log entry written in the change's transaction, and running calls see
// it at once (the cti.Service forgets its caches).

func (s *Server) mountCTIDelete(h *ctiHandlers) {
	for _, kind := range []string{"queues", "numbers", "trunks"} {
		s.mux.HandleFunc("GET /admin/cti/"+kind+"/{name}/delete", s.page(account.PermConfigure, h.deleteConfirmPage(kind)))
		s.mux.HandleFunc("POST /admin/cti/"+kind+"/{name}/delete", s.page(account.PermConfigure, h.deleteForm(kind)))
	}
	s.mux.HandleFunc("GET /admin/cti/sip", s.page(account.PermConfigure, h.sipDomainPage))
	s.mux.HandleFunc("POST /admin/cti/sip", s.page(account.PermConfigure, h.sipDomainForm))
	s.mux.HandleFunc("DELETE /api/v1/cti/queues/{name}", s.api(account.PermConfigure, h.apiDelete("queues")))
	s.mux.HandleFunc("DELETE /api/v1/cti/numbers/{name}", s.api(account.PermConfigure, h.apiDelete("numbers")))
	s.mux.HandleFunc("DELETE /api/v1/cti/trunks/{name}", s.api(account.PermConfigure, h.apiDelete("trunks")))
}

// auditCTI records a telephony admin change of tenant t by v's user.
func auditCTI(v *visit, t *account.Tenant, action, target string, detail map[string]any) cti.AuditFunc {
	return func(ctx context.Context, tx pgx.Tx) error {
		return account.Audit(ctx, tx, t.ID, actorOf(v), action, target, detail)
	}
}

type ctiDeleteData struct {
	Kind    string // queues, numbers, trunks
	Name    string
	Action  string // the form's target
	Back    string // the list
	Refusal string // why it cannot be deleted now ("" when it can)
}

func ctiDeletePaths(kind, name string) (action, back string) {
	return "/admin/cti/" + kind + "/" + url.PathEscape(name) + "/delete", "/admin/cti/" + kind
}

// deleteCheck says whether kind name exists and what keeps it from being deleted.
func (h *ctiHandlers) deleteCheck(ctx context.Context, tenant, kind, name string) (refusal string, err error) {
	switch kind {
	case "queues":
		refs, err := h.svc.QueueReferences(ctx, tenant, name)
		if err != nil {
			return "", err
		}
		if !refs.Empty() {
			return fault.MessageOf(fault.Errorf(fault.Conflict, "queue %s is still in use: %s; route those elsewhere first", name, refs)), nil
		}
	case "numbers":
		dids, err := h.svc.DIDs(ctx, tenant)
		if err != nil {
			return "", err
		}
		for _, d := range dids {
			if d.Number == name {
				return "", nil
			}
		}
		return "", fault.Errorf(fault.NotFound, "number %q does not exist", name)
	case "trunks":
		trunks, err := h.svc.Trunks(ctx, tenant)
		if err != nil {
			return "", err
		}
		for _, k := range trunks {
			if k.Name == name {
				return "", nil
			}
		}
		return "", fault.Errorf(fault.NotFound, "trunk %q does not exist", name)
	}
	return "", nil
}

func (h *ctiHandlers) deleteConfirmPage(kind string) func(http.ResponseWriter, *http.Request, *visit) error {
	return func(w http.ResponseWriter, r *http.Request, v *visit) error {
		t, err := tenantOf(v, kind)
		if err != nil {
			return err
		}
		name := r.PathValue("name")
		refusal, err := h.deleteCheck(r.Context(), t.Code, kind, name)
		if err != nil {
			return err
		}
		return h.renderDelete(w, r, v, http.StatusOK, kind, name, refusal)
	}
}

func (h *ctiHandlers) renderDelete(w http.ResponseWriter, r *http.Request, v *visit, status int, kind, name, refusal string) error {
	d := ctiDeleteData{Kind: kind, Name: name, Refusal: refusal}
	d.Action, d.Back = ctiDeletePaths(kind, name)
	h.s.render(w, r, v, status, "cti_delete", "ctiadmin.delete_"+kind, d)
	return nil
}

// deleteOne deletes kind name of tenant t with its audit entry.
func (h *ctiHandlers) deleteOne(ctx context.Context, v *visit, t *account.Tenant, kind, name string) error {
	switch kind {
	case "queues":
		return h.svc.DeleteQueue(ctx, t.Code, name, auditCTI(v, t, "cti.queue.delete", name, nil))
	case "numbers":
		return h.svc.DeleteDID(ctx, t.Code, name, auditCTI(v, t, "cti.number.delete", name, nil))
	case "trunks":
		return h.svc.DeleteTrunk(ctx, t.Code, name, auditCTI(v, t, "cti.trunk.delete", name, nil))
	}
	return fault.Errorf(fault.NotFound, "nothing of kind %q", kind)
}

func (h *ctiHandlers) deleteForm(kind string) func(http.ResponseWriter, *http.Request, *visit) error {
	return func(w http.ResponseWriter, r *http.Request, v *visit) error {
		t, err := tenantOf(v, kind)
		if err != nil {
			return err
		}
		name := r.PathValue("name")
		if r.PostFormValue("confirm") != "1" { // not confirmed: ask again
			refusal, err := h.deleteCheck(r.Context(), t.Code, kind, name)
			if err != nil {
				return err
			}
			return h.renderDelete(w, r, v, http.StatusBadRequest, kind, name, refusal)
		}
		if err := h.deleteOne(r.Context(), v, t, kind, name); err != nil {
			if fault.CodeOf(err) == fault.Conflict {
				return h.renderDelete(w, r, v, http.StatusConflict, kind, name, fault.MessageOf(err))
			}
			return err
		}
		_, back := ctiDeletePaths(kind, name)
		http.Redirect(w, r, back+"?deleted="+url.QueryEscape(name), http.StatusSeeOther)
		return nil
	}
}

// apiDelete deletes a queue, number or trunk: 204, or the cti error (409 naming a queue's
// references, 404).
func (h *ctiHandlers) apiDelete(kind string) func(http.ResponseWriter, *http.Request, *visit) error {
	return func(w http.ResponseWriter, r *http.Request, v *visit) error {
		t, err := tenantOf(v, kind)
		if err != nil {
			return err
		}
		if err := h.deleteOne(r.Context(), v, t, kind, r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

type sipDomainData struct {
	Domain  string // the tenant's now
	Form    string // what the form shows
	Changed *cti.SIPDomainChange
	Error   string
}

func (h *ctiHandlers) sipDomainPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return h.renderSIPDomain(w, r, v, http.StatusOK, sipDomainData{})
}

func (h *ctiHandlers) renderSIPDomain(w http.ResponseWriter, r *http.Request, v *visit, status int, d sipDomainData) error {
	t, err := tenantOf(v, "SIP domains")
	if err != nil {
		return err
	}
	if d.Domain, err = h.svc.SIPDomain(r.Context(), t.Code); err != nil {
		return err
	}
	if d.Form == "" {
		d.Form = d.Domain
	}
	h.s.render(w, r, v, status, "cti_sip", "ctiadmin.sip", d)
	return nil
}

// sipDomainForm sets the tenant's SIP domain and shows what the change leaves to do.
func (h *ctiHandlers) sipDomainForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "SIP domains")
	if err != nil {
		return err
	}
	domain := strings.TrimSpace(r.PostFormValue("domain"))
	old, err := h.svc.SIPDomain(r.Context(), t.Code)
	if err != nil {
		return err
	}
	ch, err := h.svc.ChangeSIPDomain(r.Context(), t.Code, domain,
		auditCTI(v, t, "cti.sip_domain.set", strings.ToLower(domain), map[string]any{"old": old}))
	if err != nil {
		return formRefused(err, func(status int, msg string) error {
			return h.renderSIPDomain(w, r, v, status, sipDomainData{Form: domain, Error: msg})
		})
	}
	return h.renderSIPDomain(w, r, v, http.StatusOK, sipDomainData{Changed: &ch})
}
