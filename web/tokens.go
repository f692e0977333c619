package web

import (
	"net/http"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

type tokensData struct {
	Tokens   []account.APIToken
	NewToken string
	Error    string
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return s.showTokens(w, r, v, tokensData{}, http.StatusOK)
}

func (s *Server) showTokens(w http.ResponseWriter, r *http.Request, v *visit, d tokensData, status int) error {
	ts, err := s.opts.Accounts.ListTokens(r.Context(), v.user.ID)
	if err != nil {
		return err
	}
	d.Tokens = ts
	s.render(w, r, v, status, "tokens", "tokens.title", d)
	return nil
}

// createTokenForm shows the new token on the page that answers the post, once.
func (s *Server) createTokenForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	token, _, err := s.opts.Accounts.CreateToken(r.Context(), v.user.ID, r.PostFormValue("name"), 0)
	if err != nil {
		if fault.CodeOf(err) == fault.Internal {
			return err
		}
		return s.showTokens(w, r, v, tokensData{Error: fault.MessageOf(err)}, fault.HTTPStatus(fault.CodeOf(err)))
	}
	return s.showTokens(w, r, v, tokensData{NewToken: token}, http.StatusOK)
}

func (s *Server) revokeTokenForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	if err := s.opts.Accounts.RevokeToken(r.Context(), v.user.ID, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/account/tokens", http.StatusSeeOther)
	return nil
}
