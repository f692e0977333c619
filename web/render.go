package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// navLink is one entry of the navigation bar; a page shows only the links its user may follow.
type navLink struct {
	Path  string
	Label string // message key
	Perm  account.Permission
}

// nav lists the pages in the navigation bar. Packages that add pages add their links here.
var nav = []navLink{
	{"/home", "nav.home", ""},
	{"/console", "nav.console", account.PermTakeCalls},
	{"/platform/tenants", "nav.tenants", account.PermManageTenants},
	{"/admin/users", "nav.users", account.PermManageUsers},
	{"/workorders", "nav.workorders", account.PermViewRecords},
	{"/qa/queue", "nav.qa_queue", account.PermScoreQA},
	{"/qa/scores", "nav.qa_scores", account.PermViewRecords},
	{"/qa/summary", "nav.qa_summary", account.PermViewRecords},
	{"/admin/workorders", "nav.workorders_admin", account.PermConfigure},
	{"/queries", "nav.queries", account.PermViewRecords},
	{"/admin/queries", "nav.query_admin", account.PermConfigure},
	{"/account/tokens", "nav.tokens", ""},
}

// pageData is what every template gets.
type pageData struct {
	Lang    string
	Title   string
	User    *account.User
	CSRF    string
	Nav     []navLink
	Current string
	Path    string
	Data    any
}

// T translates key; with arguments it formats like fmt.Sprintf.
func (p pageData) T(key string, args ...any) string {
	s := tr(p.Lang, key)
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// RoleName is the localised name of a role.
func (p pageData) RoleName(r account.Role) string { return tr(p.Lang, "role."+string(r)) }

// Time formats t in the user's tenant time zone.
func (p pageData) Time(t any) string {
	var tm time.Time
	switch v := t.(type) {
	case time.Time:
		tm = v
	case *time.Time:
		if v == nil {
			return ""
		}
		tm = *v
	default:
		return ""
	}
	if p.User != nil && p.User.Tenant != nil {
		tm = tm.In(p.User.Tenant.Location())
	}
	return tm.Format("2006-01-02 15:04")
}

func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.ParseFS(assets, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", f, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page name inside the layout. It renders to a buffer first, so a template
// error becomes a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, v *visit, status int, name, titleKey string, data any) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := pageData{Lang: v.lang, Title: tr(v.lang, titleKey), User: v.user, CSRF: v.csrf, Current: r.URL.Path,
		Path: r.URL.RequestURI(), Data: data}
	if v.user != nil {
		for _, l := range append(nav[:len(nav):len(nav)], s.moreNav...) {
			if l.Perm == "" || v.user.Can(l.Perm) {
				p.Nav = append(p.Nav, l)
			}
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render template", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows err as a page with the status of its code; internal details are logged.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	s.logError(r, err)
	code := fault.CodeOf(err)
	s.render(w, r, v, fault.HTTPStatus(code), "error", "error.title", map[string]string{"Message": fault.MessageOf(err)})
}
