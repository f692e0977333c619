package web

import (
	"net/http"

	"github.com/ctid/ctid/account"
)

type homeData struct {
	TenantCount int
	UserCount   int
	Roles       []account.Role
}

// home is the landing page: who you are, and what each of your roles does here.
func (s *Server) home(w http.ResponseWriter, r *http.Request, v *visit) error {
	d := homeData{TenantCount: -1, UserCount: -1, Roles: v.user.Roles}
	if v.user.Can(account.PermManageTenants) {
		ts, err := s.opts.Accounts.ListTenants(r.Context())
		if err != nil {
			return err
		}
		d.TenantCount = len(ts)
	}
	if v.user.Can(account.PermManageUsers) && v.user.Tenant != nil {
		us, err := s.opts.Accounts.ListUsers(r.Context(), v.user.Tenant.ID)
		if err != nil {
			return err
		}
		d.UserCount = len(us)
	}
	s.render(w, r, v, http.StatusOK, "home", "home.title", d)
	return nil
}
