package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

const (
	sessionCookie  = "ctid_session"
	preLoginCookie = "ctid_pre" // binds the login form's CSRF token before a session exists
	langCookie     = "ctid_lang"
	csrfField      = "csrf_token"
	csrfHeader     = "X-CSRF-Token"
)

// visit is one request of a known user (or of a visitor on the login page).
type visit struct {
	user    *account.User
	session *account.Session // nil for bearer-token API calls
	lang    string
	csrf    string
}

func (s *Server) sessionOf(r *http.Request) (*account.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, fault.Errorf(fault.Unauthorized, "not signed in")
	}
	return s.opts.Accounts.SessionByToken(r.Context(), c.Value)
}

// checkCSRF refuses a state-changing request that comes from another site or lacks the
// token of this session (form field or X-CSRF-Token header).
func (s *Server) checkCSRF(r *http.Request, want string) error {
	if err := s.origin.Check(r); err != nil {
		return fault.Errorf(fault.Forbidden, "cross-site request refused")
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return fault.Errorf(fault.Forbidden, "missing or wrong CSRF token: reload the page and try again")
	}
	return nil
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

type pageHandler func(w http.ResponseWriter, r *http.Request, v *visit) error

// page wraps a page handler: it needs a session (else the login page), the permission perm
// ("" for any signed-in user) and, for posts, the session's CSRF token.
func (s *Server) page(perm account.Permission, h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessionOf(r)
		if err != nil {
			if fault.CodeOf(err) != fault.Unauthorized {
				s.renderError(w, r, &visit{lang: s.langOf(r, nil)}, err)
				return
			}
			s.clearCookie(w, sessionCookie)
			q := url.Values{}
			if strings.Contains(err.Error(), "expired") {
				q.Set("expired", "1")
			}
			if r.Method == http.MethodGet {
				q.Set("next", r.URL.RequestURI())
			}
			http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
			return
		}
		v := &visit{user: sess.User, session: sess, lang: s.langOf(r, sess.User), csrf: sess.CSRFToken()}
		if unsafeMethod(r.Method) {
			if err := s.checkCSRF(r, v.csrf); err != nil {
				s.renderError(w, r, v, err)
				return
			}
		}
		if perm != "" && !sess.User.Can(perm) {
			s.renderError(w, r, v, fault.Errorf(fault.Forbidden, "your roles do not allow this page"))
			return
		}
		if err := h(w, r, v); err != nil {
			s.renderError(w, r, v, err)
		}
	}
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) { s.setCookie(w, name, "", -1) }

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// remoteAddr is the client's IP address (no port), the key of per-address login limits.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps only local paths as redirect targets after login (no open redirect).
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/home"
	}
	return next
}

type loginData struct {
	Tenant, Username, Next string
	Error, Notice          string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	v := &visit{lang: s.langOf(r, nil)}
	if sess, err := s.sessionOf(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		_ = sess
		return
	}
	d := loginData{Next: r.URL.Query().Get("next")}
	if c, err := r.Cookie("ctid_last_tenant"); err == nil {
		d.Tenant = c.Value
	}
	if r.URL.Query().Get("expired") == "1" {
		d.Notice = tr(v.lang, "login.expired")
	}
	if r.URL.Query().Get("out") == "1" {
		d.Notice = tr(v.lang, "login.signed_out")
	}
	s.renderLogin(w, r, v, d, http.StatusOK)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, v *visit, d loginData, status int) {
	pre := randomToken()
	s.setCookie(w, preLoginCookie, pre, 3600)
	v.csrf = account.CSRFTokenFor(pre)
	s.render(w, r, v, status, "login", "login.title", d)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	v := &visit{lang: s.langOf(r, nil)}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, v, fault.Errorf(fault.Invalid, "bad login form"))
		return
	}
	d := loginData{Tenant: strings.TrimSpace(r.PostFormValue("tenant")), Username: strings.TrimSpace(r.PostFormValue("username")),
		Next: r.PostFormValue("next")}
	pre, err := r.Cookie(preLoginCookie)
	if err != nil {
		d.Error = tr(v.lang, "login.no_cookie")
		s.renderLogin(w, r, v, d, http.StatusForbidden)
		return
	}
	if err := s.checkCSRF(r, account.CSRFTokenFor(pre.Value)); err != nil {
		d.Error = fault.MessageOf(err)
		s.renderLogin(w, r, v, d, http.StatusForbidden)
		return
	}
	u, err := s.opts.Accounts.Login(r.Context(), d.Tenant, d.Username, r.PostFormValue("password"), remoteAddr(r))
	if err != nil {
		s.logError(r, err)
		d.Error = fault.MessageOf(err)
		s.renderLogin(w, r, v, d, fault.HTTPStatus(fault.CodeOf(err)))
		return
	}
	token, err := s.opts.Accounts.CreateSession(r.Context(), u.ID, remoteAddr(r), r.UserAgent())
	if err != nil {
		s.renderError(w, r, v, err)
		return
	}
	s.setCookie(w, sessionCookie, token, int(s.opts.Accounts.SessionTTL().Seconds()))
	s.clearCookie(w, preLoginCookie)
	s.setCookie(w, "ctid_last_tenant", d.Tenant, 365*24*3600)
	if u.Locale != "" {
		s.setCookie(w, langCookie, u.Locale, 365*24*3600)
	}
	s.log.Info("signed in", "tenant", d.Tenant, "user", u.Username)
	http.Redirect(w, r, safeNext(d.Next), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, v *visit) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.opts.Accounts.DeleteSession(r.Context(), c.Value); err != nil {
			return err
		}
	}
	s.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
	return nil
}

// setLang switches the UI language: remembered in a cookie, and for a signed-in user in
// their account so that it follows them to other browsers.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	v := &visit{lang: s.langOf(r, nil)}
	if _, ok := messages[lang]; !ok {
		s.renderError(w, r, v, fault.Errorf(fault.Invalid, "unknown language %q: want en or zh-CN", lang))
		return
	}
	if sess, err := s.sessionOf(r); err == nil {
		if err := s.checkCSRF(r, sess.CSRFToken()); err != nil {
			s.renderError(w, r, v, err)
			return
		}
		if err := s.opts.Accounts.SetLocale(r.Context(), sess.User.ID, lang); err != nil {
			s.renderError(w, r, v, err)
			return
		}
	} else if err := s.origin.Check(r); err != nil {
		s.renderError(w, r, v, fault.Errorf(fault.Forbidden, "cross-site request refused"))
		return
	}
	s.setCookie(w, langCookie, lang, 365*24*3600)
	http.Redirect(w, r, safeNext(r.PostFormValue("back")), http.StatusSeeOther)
}
