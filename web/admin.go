package web

import (
	"net/http"
	"strings"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

func actorOf(v *visit) account.Actor {
	return account.Actor{UserID: v.user.ID, Name: v.user.Username}
}

type tenantsData struct {
	Tenants []*account.Tenant
	Form    account.NewTenant
	Error   string
	Created string
}

func (s *Server) tenantsPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return s.showTenants(w, r, v, tenantsData{Created: r.URL.Query().Get("created")}, http.StatusOK)
}

func (s *Server) showTenants(w http.ResponseWriter, r *http.Request, v *visit, d tenantsData, status int) error {
	ts, err := s.opts.Accounts.ListTenants(r.Context())
	if err != nil {
		return err
	}
	d.Tenants = ts
	s.render(w, r, v, status, "tenants", "tenants.title", d)
	return nil
}

func (s *Server) createTenantForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	nt := account.NewTenant{Code: strings.TrimSpace(r.PostFormValue("code")), Name: r.PostFormValue("name"),
		Region: strings.TrimSpace(r.PostFormValue("region")), TimeZone: strings.TrimSpace(r.PostFormValue("tz"))}
	t, err := s.opts.Accounts.CreateTenant(r.Context(), nt, actorOf(v))
	if err != nil {
		if fault.CodeOf(err) == fault.Internal {
			return err
		}
		return s.showTenants(w, r, v, tenantsData{Form: nt, Error: fault.MessageOf(err)}, fault.HTTPStatus(fault.CodeOf(err)))
	}
	http.Redirect(w, r, "/platform/tenants?created="+t.Code, http.StatusSeeOther)
	return nil
}

type usersData struct {
	Users     []*account.User
	Roles     []account.Role
	Form      account.NewUser
	Error     string
	Added     string
	SIPPhones bool   // the SIP phone form is there (the telephony service runs)
	SIPError  string // of the SIP phone form
	SIPSaved  string // the user whose phone settings were saved
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return s.showUsers(w, r, v, usersData{Added: r.URL.Query().Get("added"), SIPSaved: r.URL.Query().Get("sip")}, http.StatusOK)
}

func (s *Server) showUsers(w http.ResponseWriter, r *http.Request, v *visit, d usersData, status int) error {
	us, err := s.opts.Accounts.ListUsers(r.Context(), v.user.Tenant.ID)
	if err != nil {
		return err
	}
	d.Users = us
	d.SIPPhones = s.sipPhones
	d.Roles = account.Roles[1:] // a tenant admin cannot make operators
	s.render(w, r, v, status, "users", "users.title", d)
	return nil
}

func (s *Server) addUserForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	nu := account.NewUser{TenantCode: v.user.Tenant.Code, Username: r.PostFormValue("username"),
		DisplayName: r.PostFormValue("display_name"), Password: r.PostFormValue("password"),
		Roles: r.PostForm["role"], Team: strings.TrimSpace(r.PostFormValue("team")),
		Extension: strings.TrimSpace(r.PostFormValue("extension"))}
	for _, role := range nu.Roles {
		if role == string(account.RoleOperator) {
			return fault.Errorf(fault.Forbidden, "a tenant admin cannot make platform operators")
		}
	}
	u, err := s.opts.Accounts.AddUser(r.Context(), nu, actorOf(v))
	if err != nil {
		if fault.CodeOf(err) == fault.Internal {
			return err
		}
		nu.Password = ""
		return s.showUsers(w, r, v, usersData{Form: nu, Error: fault.MessageOf(err)}, fault.HTTPStatus(fault.CodeOf(err)))
	}
	http.Redirect(w, r, "/admin/users?added="+u.Username, http.StatusSeeOther)
	return nil
}
