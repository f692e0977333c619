package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// The admin page of external read-only data sources (config admins, as the API): list, add
// or change (the password write-only: never shown, kept when left blank), test the
// connection, remove. Changes go to the audit log as through the API.

func (q *queryPages) sourceRoutes() {
	s := q.s
	s.mux.HandleFunc("GET /admin/query-sources", s.page(account.PermConfigure, q.sourcesPage))
	s.mux.HandleFunc("POST /admin/query-sources", s.page(account.PermConfigure, q.sourcesForm))
	s.mux.HandleFunc("POST /admin/query-sources/{key}/test", s.page(account.PermConfigure, q.sourceTestForm))
	s.mux.HandleFunc("POST /admin/query-sources/{key}/delete", s.page(account.PermConfigure, q.sourceDeleteForm))
	s.mux.HandleFunc("POST /api/v1/query-sources/{key}/check", s.api(account.PermConfigure, q.apiCheckSource))
}

type sourcesData struct {
	Sources []*query.DataSource
	Error   string
	Notice  string
	Form    url.Values // the add form as sent, its URL without a password
}

func (q *queryPages) sourcesPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	data := sourcesData{Form: url.Values{}}
	qv := r.URL.Query()
	switch {
	case qv.Get("saved") != "":
		data.Notice = fmt.Sprintf(tr(v.lang, "qsources.saved"), qv.Get("saved"))
	case qv.Get("removed") != "":
		data.Notice = fmt.Sprintf(tr(v.lang, "qsources.removed"), qv.Get("removed"))
	}
	return q.showSources(w, r, v, data, http.StatusOK)
}

func (q *queryPages) showSources(w http.ResponseWriter, r *http.Request, v *visit, data sourcesData, status int) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	if data.Sources, err = q.svc.Sources(r.Context(), t); err != nil {
		return err
	}
	q.s.render(w, r, v, status, "query_sources", "qsources.title", data)
	return nil
}

func (q *queryPages) sourcesFail(w http.ResponseWriter, r *http.Request, v *visit, err error, form url.Values) error {
	if fault.CodeOf(err) == fault.Internal {
		return err
	}
	return q.showSources(w, r, v, sourcesData{Error: fault.MessageOf(err), Form: form}, fault.HTTPStatus(fault.CodeOf(err)))
}

func (q *queryPages) sourcesForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return fault.Errorf(fault.Invalid, "form: %v", err)
	}
	f := r.PostForm
	in := query.SourceInput{Key: strings.TrimSpace(f.Get("key")), Name: f.Get("name"), URL: strings.TrimSpace(f.Get("url")),
		Schema: strings.TrimSpace(f.Get("schema")), Password: f.Get("password"), KeepPassword: true}
	shown := url.Values{"key": {in.Key}, "name": {in.Name}, "url": {withoutPassword(in.URL)}, "schema": {in.Schema},
		"max_conns": {f.Get("max_conns")}, "statement_timeout_ms": {f.Get("statement_timeout_ms")}}
	for name, dst := range map[string]*int{"max_conns": &in.MaxConns, "statement_timeout_ms": &in.StatementTimeoutMS} {
		if s := strings.TrimSpace(f.Get(name)); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return q.sourcesFail(w, r, v, fault.Errorf(fault.Invalid, "%s %q is not a whole number", name, s), shown)
			}
			*dst = n
		}
	}
	src, err := q.svc.PutSource(r.Context(), t, in, actorOf(v))
	if err != nil {
		return q.sourcesFail(w, r, v, err, shown)
	}
	http.Redirect(w, r, "/admin/query-sources?saved="+url.QueryEscape(src.Key), http.StatusSeeOther)
	return nil
}

// withoutPassword is a connection URL to show back in a form: any password taken out.
func withoutPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

func (q *queryPages) sourceTestForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	n, err := q.svc.CheckSource(r.Context(), t, key)
	if err != nil {
		return q.sourcesFail(w, r, v, err, url.Values{})
	}
	return q.showSources(w, r, v, sourcesData{Notice: fmt.Sprintf(tr(v.lang, "qsources.tested"), key, n), Form: url.Values{}}, http.StatusOK)
}

func (q *queryPages) sourceDeleteForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	if err := q.svc.DeleteSource(r.Context(), t, key, actorOf(v)); err != nil {
		return q.sourcesFail(w, r, v, err, url.Values{})
	}
	http.Redirect(w, r, "/admin/query-sources?removed="+url.QueryEscape(key), http.StatusSeeOther)
	return nil
}

// apiCheckSource connects to a source afresh: {"tables": n}, or the reason it fails.
func (q *queryPages) apiCheckSource(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	n, err := q.svc.CheckSource(r.Context(), t, r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": r.PathValue("key"), "tables": n})
	return nil
}
