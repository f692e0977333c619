package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// maxAPIBody bounds JSON request bodies.
const maxAPIBody = 1 << 20

type apiHandler func(w http.ResponseWriter, r *http.Request, v *visit) error

// api wraps a JSON endpoint: the caller is a bearer token (Authorization: Bearer ctid_...) or
// a browser session, which must send X-CSRF-Token on state-changing methods. Errors are
// {"error": {"code", "message"}} with the status of their code.
func (s *Server) api(perm account.Permission, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := s.apiCaller(r)
		if err == nil && perm != "" && !v.user.Can(perm) {
			err = fault.Errorf(fault.Forbidden, "your roles do not allow this")
		}
		if err == nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
			err = h(w, r, v)
		}
		if err != nil {
			s.logError(r, err)
			if fault.CodeOf(err) == fault.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ctid"`)
			}
			writeJSON(w, fault.HTTPStatus(fault.CodeOf(err)), map[string]any{
				"error": map[string]string{"code": string(fault.CodeOf(err)), "message": fault.MessageOf(err)},
			})
		}
	}
}

func (s *Server) apiCaller(r *http.Request) (*visit, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, fault.Errorf(fault.Unauthorized, "Authorization must be: Bearer <token>")
		}
		u, err := s.opts.Accounts.UserByToken(r.Context(), strings.TrimSpace(token))
		if err != nil {
			return nil, err
		}
		return &visit{user: u, lang: s.langOf(r, u)}, nil
	}
	sess, err := s.sessionOf(r)
	if err != nil {
		if fault.CodeOf(err) == fault.Unauthorized {
			return nil, fault.Errorf(fault.Unauthorized, "no credentials: send Authorization: Bearer <token> or sign in")
		}
		return nil, err
	}
	v := &visit{user: sess.User, session: sess, lang: s.langOf(r, sess.User), csrf: sess.CSRFToken()}
	if unsafeMethod(r.Method) {
		if err := s.checkCSRF(r, v.csrf); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// decodeJSON reads a JSON body into dst, refusing unknown fields and trailing data.
func decodeJSON(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fault.Errorf(fault.Invalid, "request body is larger than %d bytes", mbe.Limit)
		}
		return fault.Errorf(fault.Invalid, "request body is not valid JSON for this endpoint: %v", err)
	}
	if dec.More() {
		return fault.Errorf(fault.Invalid, "request body has data after the JSON value")
	}
	return nil
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{
		"code": string(fault.NotFound), "message": "no API endpoint " + r.Method + " " + r.URL.Path}})
}

// userJSON is a user as the API shows it.
type userJSON struct {
	ID          int64    `json:"id"`
	Tenant      string   `json:"tenant,omitempty"`
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	Roles       []string `json:"roles"`
	Team        string   `json:"team,omitempty"`
	Extension   string   `json:"extension,omitempty"`
	Locale      string   `json:"locale,omitempty"`
}

func toUserJSON(u *account.User) userJSON {
	j := userJSON{ID: u.ID, Tenant: u.TenantCode(), Username: u.Username, DisplayName: u.DisplayName,
		Team: u.TeamName, Extension: u.Extension, Locale: u.Locale, Roles: []string{}}
	for _, r := range u.Roles {
		j.Roles = append(j.Roles, string(r))
	}
	return j
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request, v *visit) error {
	writeJSON(w, http.StatusOK, toUserJSON(v.user))
	return nil
}

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request, v *visit) error {
	var req struct {
		Name       string `json:"name"`
		TTLSeconds int64  `json:"ttl_seconds"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.TTLSeconds < 0 {
		return fault.Errorf(fault.Invalid, "ttl_seconds must not be negative")
	}
	token, t, err := s.opts.Accounts.CreateToken(r.Context(), v.user.ID, req.Name, time.Duration(req.TTLSeconds)*time.Second)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": t.ID, "name": t.Name, "token": token, "expires_at": t.ExpiresAt})
	return nil
}

type tenantJSON struct {
	Code     string    `json:"code"`
	Name     string    `json:"name"`
	Region   string    `json:"region"`
	TimeZone string    `json:"time_zone"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created_at"`
}

func toTenantJSON(t *account.Tenant) tenantJSON {
	return tenantJSON{Code: t.Code, Name: t.Name, Region: t.Region, TimeZone: t.TimeZone, Status: t.Status, Created: t.CreatedAt}
}

func (s *Server) apiListTenants(w http.ResponseWriter, r *http.Request, v *visit) error {
	ts, err := s.opts.Accounts.ListTenants(r.Context())
	if err != nil {
		return err
	}
	items := []tenantJSON{}
	for _, t := range ts {
		items = append(items, toTenantJSON(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": len(items)})
	return nil
}

func (s *Server) apiCreateTenant(w http.ResponseWriter, r *http.Request, v *visit) error {
	var req struct {
		Code     string `json:"code"`
		Name     string `json:"name"`
		Region   string `json:"region"`
		TimeZone string `json:"time_zone"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	t, err := s.opts.Accounts.CreateTenant(r.Context(), account.NewTenant{Code: req.Code, Name: req.Name,
		Region: req.Region, TimeZone: req.TimeZone}, actorOf(v))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toTenantJSON(t))
	return nil
}

// tenantOf is the caller's tenant; platform operators have none, so what (records, queries)
// is refused to them.
func tenantOf(v *visit, what string) (*account.Tenant, error) {
	if v.user.Tenant == nil {
		return nil, fault.Errorf(fault.Forbidden, "%s belong to a tenant; platform operators have none", what)
	}
	return v.user.Tenant, nil
}

// ownTenant refuses a tenant in the path that is not the caller's own.
func ownTenant(r *http.Request, v *visit) error {
	code := r.PathValue("tenant")
	if v.user.Tenant == nil || v.user.Tenant.Code != code {
		return fault.Errorf(fault.Forbidden, "you have no access to tenant %q", code)
	}
	return nil
}

func (s *Server) apiListUsers(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := ownTenant(r, v); err != nil {
		return err
	}
	us, err := s.opts.Accounts.ListUsers(r.Context(), v.user.Tenant.ID)
	if err != nil {
		return err
	}
	items := []userJSON{}
	for _, u := range us {
		items = append(items, toUserJSON(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": len(items)})
	return nil
}

func (s *Server) apiAddUser(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := ownTenant(r, v); err != nil {
		return err
	}
	var req struct {
		Username    string   `json:"username"`
		DisplayName string   `json:"display_name"`
		Password    string   `json:"password"`
		Roles       []string `json:"roles"`
		Team        string   `json:"team"`
		Extension   string   `json:"extension"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	for _, role := range req.Roles {
		if rr, _ := account.ParseRole(role); rr == account.RoleOperator {
			return fault.Errorf(fault.Forbidden, "a tenant admin cannot make platform operators")
		}
	}
	u, err := s.opts.Accounts.AddUser(r.Context(), account.NewUser{TenantCode: v.user.Tenant.Code, Username: req.Username,
		DisplayName: req.DisplayName, Password: req.Password, Roles: req.Roles, Team: req.Team, Extension: req.Extension}, actorOf(v))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
	return nil
}
