package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/fault"
)

// mountDial adds click-to-dial for the signed-in agent: ctid calls the agent's phone, then
// the number (cti.Originate). MountCTI calls it.
func (s *Server) mountDial(h *ctiHandlers) {
	s.mux.HandleFunc("POST /api/v1/calls/dial", s.api(account.PermTakeCalls, h.dial))
	s.mux.HandleFunc("GET /api/v1/calls/dial/{call}", s.api(account.PermTakeCalls, h.dialStatus))
	s.mux.HandleFunc("DELETE /api/v1/calls/dial/{call}", s.api(account.PermTakeCalls, h.hangUpDial))
}

type dialRequest struct {
	Number string `json:"number"`
}

// dialJSON is a dial's status as the API shows it; message is for people, in their language.
type dialJSON struct {
	CallID    string    `json:"call_id"`
	Number    string    `json:"number"`
	State     string    `json:"state"`
	Result    string    `json:"result,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	SIPCode   int       `json:"sip_code,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Message   string    `json:"message"`
}

func toDialJSON(st cti.DialStatus, lang string) dialJSON {
	msg := tr(lang, "dial."+string(st.State))
	if st.State == cti.DialEnded {
		key := "dial.reason." + st.Reason
		if st.Reason == "" {
			key = "dial.result." + string(st.Result)
		}
		msg = tr(lang, key)
	}
	return dialJSON{CallID: st.CallID, Number: st.Number, State: string(st.State), Result: string(st.Result),
		Reason: st.Reason, SIPCode: st.SIPCode, StartedAt: st.Started, Message: msg}
}

// CanDial reports whether the page's user may click-to-dial (layout.html adds the dial box).
func (p pageData) CanDial() bool {
	return p.User != nil && p.User.Tenant != nil && p.User.Can(account.PermTakeCalls)
}

// telLink is the tel: URI of a number as people write it.
func telLink(number string) string {
	return "tel:" + strings.Map(func(r rune) rune {
		if r == '+' || (r >= '0' && r <= '9') {
			return r
		}
		return -1
	}, number)
}

func (h *ctiHandlers) dial(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "only a tenant's agents dial")
	}
	var req dialRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	st, err := h.svc.Originate(r.Context(), v.user.Tenant.Code, v.user.ID, req.Number)
	var np *cti.NoPhoneError
	if errors.As(err, &np) {
		// The console dials with the agent's softphone instead (the operating system's tel: handler).
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":            map[string]string{"code": "no_phone", "message": fault.MessageOf(err)},
			"fallback":         telLink(req.Number),
			"fallback_message": tr(v.lang, "dial.fallback"),
		})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, toDialJSON(st, v.lang))
	return nil
}

func (h *ctiHandlers) dialStatus(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.NotFound, "no such call")
	}
	st, err := h.svc.Dial(r.Context(), v.user.Tenant.Code, v.user.ID, r.PathValue("call"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDialJSON(st, v.lang))
	return nil
}

func (h *ctiHandlers) hangUpDial(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.NotFound, "no such call")
	}
	st, err := h.svc.HangUpDial(r.Context(), v.user.Tenant.Code, v.user.ID, r.PathValue("call"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDialJSON(st, v.lang))
	return nil
}
