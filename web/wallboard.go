package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/wallboard"
)

// MountWallboard adds the live wallboard: the supervisors' and team leads' board
// (/wallboard, whose frames come over /ws: the hub's board feed), TV links
// (/tv/{tenant}/{token}) and the tenant admin's page of TV links. cmd/ctid calls it once
// after New.
func (s *Server) MountWallboard(b *wallboard.Service) {
	h := &boardHandlers{s: s, boards: b}
	s.mux.HandleFunc("GET /wallboard", s.page(account.PermWatchFloor, h.page))
	s.mux.HandleFunc("GET /admin/tv", s.page(account.PermManageUsers, h.tokensPage))
	s.mux.HandleFunc("POST /admin/tv", s.page(account.PermManageUsers, h.createToken))
	s.mux.HandleFunc("POST /admin/tv/{id}/revoke", s.page(account.PermManageUsers, h.revokeToken))
	s.mux.HandleFunc("GET /api/v1/wallboard/agents/{id}/pop", s.api(account.PermWatchFloor, h.agentPop))
	s.mux.HandleFunc("GET /tv/{tenant}/{token}", h.tvPage)
}

type boardHandlers struct {
	s      *Server
	boards *wallboard.Service
}

// boardKeys are the messages the board's script shows.
var boardKeys = []string{
	"wallboard.live", "wallboard.reconnecting", "wallboard.age", "wallboard.no_agents", "wallboard.confirm_logout",
	"wallboard.forced", "wallboard.not_ready", "wallboard.log_out", "wallboard.show_pop", "wallboard.pop_title",
	"wallboard.pop_agent", "wallboard.pop_caller", "wallboard.pop_customer", "wallboard.pop_queue", "wallboard.pop_recent",
	"wallboard.pop_withheld", "wallboard.pop_picker", "wallboard.pop_new", "wallboard.close",
}

type boardData struct {
	WS       string // the /ws URL the page subscribes to the board feed on
	TV       bool
	Tenant   string
	Reasons  []reasonJSON
	Messages map[string]string
}

func (h *boardHandlers) messages(lang string) map[string]string {
	m := map[string]string{}
	for _, k := range boardKeys {
		m[strings.TrimPrefix(k, "wallboard.")] = tr(lang, k)
	}
	for _, st := range []string{"logged_out", "ready", "not_ready", "reserved", "ringing", "on_call", "wrap_up"} {
		m["state."+st] = tr(lang, "console.state."+st)
	}
	return m
}

func (h *boardHandlers) page(w http.ResponseWriter, r *http.Request, v *visit) error {
	if _, err := wallboard.ViewerOf(v.user); err != nil {
		return fault.Errorf(fault.Forbidden, "%s", err)
	}
	reasons, err := h.s.notReadyReasons(r.Context(), v.user.Tenant, v.lang)
	if err != nil {
		return err
	}
	h.s.render(w, r, v, http.StatusOK, "wallboard", "wallboard.title",
		boardData{WS: "/ws", Tenant: v.user.Tenant.Name, Reasons: reasons, Messages: h.messages(v.lang)})
	return nil
}

// tvTenant checks a TV link: the tenant and a live token of it.
func (s *Server) tvTenant(r *http.Request, code, token string) (*account.Tenant, error) {
	t, err := s.opts.Accounts.TenantByCode(r.Context(), code)
	if err != nil {
		return nil, fault.Errorf(fault.Unauthorized, "this TV link is not valid")
	}
	if err := wallboard.CheckTVToken(r.Context(), s.opts.Pool, t, token); err != nil {
		return nil, err
	}
	return t, nil
}

// tvPage is the wall display: queue figures in large type, no agents, no actions.
func (h *boardHandlers) tvPage(w http.ResponseWriter, r *http.Request) {
	v := &visit{lang: h.s.langOf(r, nil)}
	if l := r.URL.Query().Get("lang"); l == "en" || l == "zh-CN" {
		v.lang = l
	}
	t, err := h.s.tvTenant(r, r.PathValue("tenant"), r.PathValue("token"))
	if err != nil {
		h.s.renderError(w, r, v, err)
		return
	}
	q := url.Values{"tenant": {t.Code}, "tv": {r.PathValue("token")}}
	h.s.render(w, r, v, http.StatusOK, "wallboard", "wallboard.title", boardData{TV: true, Tenant: t.Name,
		WS: "/ws?" + q.Encode(), Messages: h.messages(v.lang)})
}

// tvWS serves /ws?tenant=<code>&tv=<token>: a TV link's read-only token authenticates a
// connection that may subscribe to the board feed only (queues, no agents). It is checked
// again every 30 s, so a revoked link's screen stops.
func (s *Server) tvWS(w http.ResponseWriter, r *http.Request) {
	code, token := r.URL.Query().Get("tenant"), r.URL.Query().Get("tv")
	t, err := s.tvTenant(r, code, token)
	if err != nil {
		http.Error(w, fault.MessageOf(err), fault.HTTPStatus(fault.CodeOf(err)))
		return
	}
	s.opts.Pops.ServeFeedWS(w, r, t, s.sameSite, func(ctx context.Context) error {
		return wallboard.CheckTVToken(ctx, s.opts.Pool, t, token)
	})
}

type tvTokensData struct {
	Tokens []wallboard.TVToken
	NewURL string
	Error  string
}

func (h *boardHandlers) showTokens(w http.ResponseWriter, r *http.Request, v *visit, d tvTokensData, status int) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "TV links belong to a tenant")
	}
	ts, err := wallboard.ListTVTokens(r.Context(), h.s.opts.Pool, v.user.Tenant)
	if err != nil {
		return err
	}
	d.Tokens = ts
	h.s.render(w, r, v, status, "wallboard_tv", "wallboard.tv_title", d)
	return nil
}

func (h *boardHandlers) tokensPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return h.showTokens(w, r, v, tvTokensData{}, http.StatusOK)
}

// createToken shows the new TV link once, on the page that answers the post.
func (h *boardHandlers) createToken(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "TV links belong to a tenant")
	}
	token, _, err := wallboard.CreateTVToken(r.Context(), h.s.opts.Pool, v.user.Tenant, r.PostFormValue("name"), v.user.ID)
	if err != nil {
		if fault.CodeOf(err) == fault.Internal {
			return err
		}
		return h.showTokens(w, r, v, tvTokensData{Error: fault.MessageOf(err)}, fault.HTTPStatus(fault.CodeOf(err)))
	}
	h.s.log.Info("TV link created", "tenant", v.user.Tenant.Code, "by", v.user.ID)
	return h.showTokens(w, r, v, tvTokensData{NewURL: "/tv/" + v.user.Tenant.Code + "/" + token}, http.StatusOK)
}

func (h *boardHandlers) revokeToken(w http.ResponseWriter, r *http.Request, v *visit) error {
	if v.user.Tenant == nil {
		return fault.Errorf(fault.Forbidden, "TV links belong to a tenant")
	}
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	if err := wallboard.RevokeTVToken(r.Context(), h.s.opts.Pool, v.user.Tenant, id, v.user.ID); err != nil {
		return err
	}
	h.s.log.Info("TV link revoked", "tenant", v.user.Tenant.Code, "id", id, "by", v.user.ID)
	http.Redirect(w, r, "/admin/tv", http.StatusSeeOther)
	return nil
}

// agentPop is the pop of the call an agent is on, read-only, for a supervisor or the agent's
// team lead (an agent the viewer's board does not show is not found).
func (h *boardHandlers) agentPop(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	viewer, err := wallboard.ViewerOf(v.user)
	if err != nil {
		return fault.Errorf(fault.Forbidden, "%s", err)
	}
	if h.s.opts.Pops == nil {
		return fault.Errorf(fault.Unavailable, "screen pops are not enabled")
	}
	snap, err := h.boards.Snapshot(r.Context(), v.user.Tenant, viewer)
	if err != nil {
		return err
	}
	callID := ""
	found := false
	for _, a := range snap.Agents {
		if a.ID == id {
			found, callID = true, a.CallID
		}
	}
	switch {
	case !found:
		return fault.Errorf(fault.NotFound, "agent %d is not on your board", id)
	case callID == "":
		return fault.Errorf(fault.NotFound, "agent %d is not on a call", id)
	}
	pop, err := h.s.opts.Pops.Builder().Get(r.Context(), v.user.Tenant, callID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pop)
	return nil
}
