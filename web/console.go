package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/screenpop"
)

// ws opens a console WebSocket for the session's user, or for the user of a short-lived
// token from /api/v1/ws-token (?token=...), or — ?tenant=...&tv=... — a TV link's
// connection that gets the board feed only. Pages of other sites may not connect.
func (s *Server) ws(w http.ResponseWriter, r *http.Request) {
	if s.opts.Pops == nil {
		http.Error(w, "screen pops are not enabled", http.StatusServiceUnavailable)
		return
	}
	if !s.sameSite(r) {
		http.Error(w, "WebSocket from another site refused", http.StatusForbidden)
		return
	}
	if r.URL.Query().Has("tv") {
		s.tvWS(w, r)
		return
	}
	var user *account.User
	if token := r.URL.Query().Get("token"); token != "" {
		u, err := s.opts.Accounts.UserByWSToken(r.Context(), token)
		if err != nil {
			http.Error(w, fault.MessageOf(err), fault.HTTPStatus(fault.CodeOf(err)))
			return
		}
		user = u
	} else {
		sess, err := s.sessionOf(r)
		if err != nil {
			http.Error(w, fault.MessageOf(err), fault.HTTPStatus(fault.CodeOf(err)))
			return
		}
		user = sess.User
	}
	if user.Tenant == nil {
		http.Error(w, "platform operators have no console", http.StatusForbidden)
		return
	}
	s.opts.Pops.ServeWS(w, r, user, s.sameSite)
}

// sameSite accepts requests without an Origin (non-browser clients with a token) and those
// whose Origin is this site: the configured public URL, else the Host the request came to.
func (s *Server) sameSite(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if s.opts.PublicURL != "" {
		pub, err := url.Parse(s.opts.PublicURL)
		return err == nil && strings.EqualFold(pub.Host, u.Host) && pub.Scheme == u.Scheme
	}
	return strings.EqualFold(u.Host, r.Host)
}

func (s *Server) apiWSToken(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "platform operators have no console")
	}
	token, expires, err := s.opts.Accounts.WSToken(r.Context(), v.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "expires_at": expires, "url": "/ws?token=" + token})
	return nil
}

// apiChoosePop remembers which of several matching records the agent picked for the caller.
func (s *Server) apiChoosePop(w http.ResponseWriter, r *http.Request, v *visit) error {
	if s.opts.Pops == nil {
		return fault.Errorf(fault.Unavailable, "screen pops are not enabled")
	}
	var req screenpop.RecordRef
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.opts.Pops.Builder().Choose(r.Context(), v.user.Tenant, v.user.ID, r.PathValue("call"), req); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	return nil
}
