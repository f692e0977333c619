package web

import (
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// EnableQueries adds the query engine's pages and API (cmd/ctid calls it after New).
func (s *Server) EnableQueries(svc *query.Service) {
	q := &queryPages{s: s, svc: svc}
	s.queries = q
	q.exportRoutes()
	q.sourceRoutes()
	s.mux.HandleFunc("GET /queries", s.page(account.PermViewRecords, q.list))
	s.mux.HandleFunc("GET /queries/{key}", s.page(account.PermViewRecords, q.run))
	s.mux.HandleFunc("GET /queries/{key}/export", s.page(account.PermViewRecords, q.export))
	s.mux.HandleFunc("GET /admin/queries", s.page(account.PermConfigure, q.admin))
	s.mux.HandleFunc("POST /admin/queries", s.page(account.PermConfigure, q.build))
	s.mux.HandleFunc("POST /admin/queries/import", s.page(account.PermConfigure, q.importForm))
	s.mux.HandleFunc("POST /admin/queries/tables", s.page(account.PermConfigure, q.allowForm))
	s.mux.HandleFunc("POST /admin/queries/{key}/delete", s.page(account.PermConfigure, q.deleteForm))

	s.mux.HandleFunc("GET /api/v1/queries", s.api(account.PermViewRecords, q.apiList))
	s.mux.HandleFunc("GET /api/v1/queries/{key}", s.api(account.PermViewRecords, q.apiGet))
	s.mux.HandleFunc("PUT /api/v1/queries/{key}", s.api(account.PermConfigure, q.apiSave))
	s.mux.HandleFunc("DELETE /api/v1/queries/{key}", s.api(account.PermConfigure, q.apiDelete))
	s.mux.HandleFunc("GET /api/v1/queries/{key}/run", s.api(account.PermViewRecords, q.apiRun))
	s.mux.HandleFunc("GET /api/v1/queries/{key}/export", s.api(account.PermViewRecords, q.apiExport))
	s.mux.HandleFunc("POST /api/v1/queries/preview", s.api(account.PermConfigure, q.apiPreview))
	s.mux.HandleFunc("GET /api/v1/query-tables", s.api(account.PermConfigure, q.apiTables))
	s.mux.HandleFunc("GET /api/v1/query-sources", s.api(account.PermConfigure, q.apiSources))
	s.mux.HandleFunc("PUT /api/v1/query-sources/{key}", s.api(account.PermConfigure, q.apiPutSource))
	s.mux.HandleFunc("DELETE /api/v1/query-sources/{key}", s.api(account.PermConfigure, q.apiDeleteSource))
	s.mux.HandleFunc("GET /api/v1/query-sources/{key}/tables", s.api(account.PermConfigure, q.apiSourceTables))
}

type queryPages struct {
	s       *Server
	svc     *query.Service
	objects *dataobject.Store // set by EnableQueryBatchDelete; nil: no batch delete
}

// reserved URL parameters of a run; every other parameter is a condition value.
var reservedParams = map[string]bool{"sort": true, "page": true, "size": true, "format": true}

func requestOf(r *http.Request) (query.Request, error) {
	qv := r.URL.Query()
	req := query.Request{Values: url.Values{}, Sort: qv.Get("sort"), Page: qv.Get("page")}
	if s := qv.Get("size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return req, fault.Errorf(fault.Invalid, "size %q is not a positive number", s)
		}
		req.PageSize = n
	}
	for k, vs := range qv {
		if !reservedParams[k] {
			req.Values[k] = vs
		}
	}
	return req, nil
}

func (q *queryPages) env(r *http.Request, v *visit) (*query.Env, error) {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return nil, err
	}
	users, err := q.s.opts.Accounts.ListUsers(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	return &query.Env{Now: time.Now(), Loc: t.Location(), Viewer: query.ViewerOf(v.user), People: query.PeopleOf(users)}, nil
}

type queryLink struct {
	Key, Title, Description string
	Builtin                 bool
}

func (q *queryPages) list(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	defs, err := q.svc.List(r.Context(), t)
	if err != nil {
		return err
	}
	var links []queryLink
	for _, d := range defs {
		links = append(links, queryLink{Key: d.Key, Title: d.Title.In(v.lang), Description: d.Description.In(v.lang), Builtin: d.Builtin})
	}
	q.s.render(w, r, v, http.StatusOK, "query_list", "queries.title", links)
	return nil
}

// The run page's view of the form, the table and the pager.
type (
	formOption struct {
		Value, Label string
		Selected     bool
	}
	formField struct {
		Key, Label, Type string
		Value, Min, Max  string
		Preset, From, To string
		Multi            bool
		Options          []formOption
	}
	headCell struct {
		Label, SortURL, Arrow string
		Width                 int
	}
	bodyCell struct {
		Text, Href, Open, OpenID string
		Links                    []rowLink    // further "open" actions of the row (on its first cell)
		Tel                      template.URL // a dial action's tel: link (click-to-dial takes it over); safe: telLink keeps digits and + only
	}
	rowLink struct{ Label, Href string }
	runData struct {
		Key, Title, Description string
		Form                    []formField
		Head                    []headCell
		Rows                    [][]bodyCell
		Totals                  []string
		HasTotals               bool
		Total                   int64
		From, To                int
		NextURL, FirstURL       string
		CSVURL, XLSXURL         string
		CSVJobURL, XLSXJobURL   string // the same export as a background job with progress (static/export.js)
		Error                   string
		Chart                   *chartData
		// Batch delete, when the user may: the form's action (the search in its URL) and
		// each row's record id.
		CanDelete bool
		DeleteURL string
		RowIDs    []string
	}
)

func (q *queryPages) run(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	d, err := q.svc.Get(r.Context(), t, r.PathValue("key"))
	if err != nil {
		return err
	}
	env, err := q.env(r, v)
	if err != nil {
		return err
	}
	data := runData{Key: d.Key, Title: d.Title.In(v.lang), Description: d.Description.In(v.lang)}
	req, err := requestOf(r)
	var res *query.Result
	if err == nil {
		res, err = q.svc.Run(r.Context(), t, env, d, req)
	}
	applied := req.Values
	status := http.StatusOK
	if err != nil {
		if fault.CodeOf(err) == fault.Internal {
			return err
		}
		data.Error = fault.MessageOf(err)
		status = fault.HTTPStatus(fault.CodeOf(err))
	} else {
		applied = res.Applied
	}
	if data.Form, err = q.form(r, t, d, env, applied, v.lang); err != nil {
		return err
	}
	if res != nil {
		if d.Offers(query.BatchDelete) && q.objects != nil {
			_, err := q.batchObject(r.Context(), t, d, v.user)
			if err != nil && fault.CodeOf(err) == fault.Internal {
				return err
			}
			data.CanDelete = err == nil && d.IDColumn() >= 0
		}
		q.table(r, d, req, res, env, v.lang, v.user.Can(account.PermScoreQA), &data)
	}
	q.s.render(w, r, v, status, "query_run", "queries.title", data)
	return nil
}

func (q *queryPages) form(r *http.Request, t *account.Tenant, d *query.Definition, env *query.Env, vals url.Values, lang string) ([]formField, error) {
	var out []formField
	for _, c := range d.Conditions {
		f := formField{Key: c.Key, Label: c.Label.In(lang), Type: c.Type, Multi: c.Multi,
			Value: vals.Get(c.Key), Min: vals.Get(c.Key + "_min"), Max: vals.Get(c.Key + "_max"),
			Preset: vals.Get(c.Key), From: vals.Get(c.Key + "_from"), To: vals.Get(c.Key + "_to")}
		chosen := map[string]bool{}
		for _, x := range vals[c.Key] {
			chosen[x] = true
		}
		switch c.Type {
		case query.CondChoice:
			opts, err := q.svc.Options(r.Context(), t, c)
			if err != nil {
				return nil, err
			}
			for _, o := range opts {
				f.Options = append(f.Options, formOption{Value: o.Value, Label: orValue(o.Label.In(lang), o.Value), Selected: chosen[o.Value]})
			}
		case query.CondDateRange:
			for _, p := range query.Presets {
				f.Options = append(f.Options, formOption{Value: p, Label: tr(lang, "preset."+p), Selected: p == f.Preset})
			}
		case query.CondAgent:
			for _, p := range env.Visible() {
				id := strconv.FormatInt(p.ID, 10)
				f.Options = append(f.Options, formOption{Value: id, Label: p.Name, Selected: chosen[id]})
			}
		case query.CondTeam:
			teams := env.VisibleTeams()
			ids := make([]int64, 0, len(teams))
			for id := range teams {
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return teams[ids[i]] < teams[ids[j]] })
			for _, id := range ids {
				s := strconv.FormatInt(id, 10)
				f.Options = append(f.Options, formOption{Value: s, Label: teams[id], Selected: chosen[s]})
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func orValue(label, value string) string {
	if label == "" {
		return value
	}
	return label
}

func (q *queryPages) table(r *http.Request, d *query.Definition, req query.Request, res *query.Result, env *query.Env, lang string, canScore bool, data *runData) {
	base := r.URL.Query()
	base.Del("page")
	link := func(change func(url.Values)) string {
		u := url.Values{}
		for k, vs := range base {
			u[k] = vs
		}
		change(u)
		return r.URL.Path + "?" + u.Encode()
	}
	for k, vs := range res.Applied { // the defaults in force, so links keep them
		if _, ok := base[k]; !ok {
			base[k] = vs
		}
	}
	actions := map[string]query.Action{}
	for _, a := range d.Actions {
		actions[a.Field] = a
	}
	var visible []int
	for i, c := range res.Columns {
		if c.Hidden {
			continue
		}
		visible = append(visible, i)
		h := headCell{Label: c.Label.In(lang), Width: c.Width}
		if c.Sortable {
			next := c.Key
			switch req.Sort {
			case c.Key:
				h.Arrow, next = "▲", "-"+c.Key
			case "-" + c.Key:
				h.Arrow = "▼"
			}
			h.SortURL = link(func(u url.Values) { u.Set("sort", next) })
		}
		data.Head = append(data.Head, h)
	}
	index := map[string]int{}
	for i, c := range res.Columns {
		index[c.Key] = i
	}
	for _, row := range res.Rows {
		var cells []bodyCell
		for _, i := range visible {
			c := res.Columns[i]
			cell := bodyCell{Text: query.Format(c, row[i], env)}
			if a, ok := actions[c.Key]; ok && cell.Text != "" {
				switch a.Kind {
				case "dial":
					cell.Tel = template.URL(telLink(cell.Text))
				case "open":
					cell.Open, cell.OpenID = a.Target, cell.Text
				}
			}
			cells = append(cells, cell)
		}
		// "open" actions on hidden columns (a work order by call id) go on the first cell:
		// the first as its link, the others as links beside it. Scoring a call is offered
		// to those who may score.
		for _, a := range d.Actions {
			j, ok := index[a.Field]
			if !ok || a.Kind != "open" || !res.Columns[j].Hidden || len(cells) == 0 || (a.Target == "qa_call" && !canScore) {
				continue
			}
			id := query.Format(res.Columns[j], row[j], env)
			if cells[0].Open == "" {
				cells[0].Open, cells[0].OpenID = a.Target, id
			} else if href := openHref(a.Target, id); href != "" {
				cells[0].Links = append(cells[0].Links, rowLink{Label: a.Label.In(lang), Href: href})
			}
		}
		for i := range cells {
			if cells[i].Href == "" && cells[i].Open != "" {
				cells[i].Href = openHref(cells[i].Open, cells[i].OpenID)
			}
		}
		data.Rows = append(data.Rows, cells)
	}
	if res.Totals != nil {
		data.HasTotals = true
		for _, i := range visible {
			c := res.Columns[i]
			if v, ok := res.Totals[c.Key]; ok {
				data.Totals = append(data.Totals, query.Format(c, v, env))
			} else {
				data.Totals = append(data.Totals, "")
			}
		}
	}
	data.Total = res.Total
	if len(res.Rows) > 0 {
		data.From, data.To = res.Offset+1, res.Offset+len(res.Rows)
		if res.Keyset && req.Page != "" {
			data.From, data.To = 0, 0 // keyset pages know no position
		}
	}
	if res.Next != "" {
		data.NextURL = link(func(u url.Values) { u.Set("page", res.Next) })
	}
	if req.Page != "" {
		data.FirstURL = link(func(url.Values) {})
	}
	exportURL := func(path, format string) string {
		u := url.Values{}
		for k, vs := range base {
			u[k] = vs
		}
		u.Set("format", format)
		return path + "?" + u.Encode()
	}
	jobs := "/api/v1/queries/" + url.PathEscape(d.Key) + "/exports"
	for _, b := range d.Batch {
		switch b {
		case query.BatchCSV:
			data.CSVURL, data.CSVJobURL = exportURL(r.URL.Path+"/export", "csv"), exportURL(jobs, "csv")
		case query.BatchXLSX:
			data.XLSXURL, data.XLSXJobURL = exportURL(r.URL.Path+"/export", "xlsx"), exportURL(jobs, "xlsx")
		}
	}
	if data.CanDelete {
		u := url.Values{}
		for k, vs := range base {
			u[k] = vs
		}
		u.Del("sort")
		data.DeleteURL = r.URL.Path + "/delete?" + u.Encode()
		idCol := d.IDColumn()
		for _, row := range res.Rows {
			data.RowIDs = append(data.RowIDs, fmt.Sprint(row[idCol]))
		}
	}
	data.Chart = chartOf(d, res, env, lang)
}

func (q *queryPages) export(w http.ResponseWriter, r *http.Request, v *visit) error {
	return q.streamExport(w, r, v)
}

// streamExport writes the export straight to the response. Once the first byte is out an
// error can no longer become a status: it is logged and the download ends short.
func (q *queryPages) streamExport(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, d, format, err := q.exportable(r, v)
	if err != nil {
		return err
	}
	env, err := q.env(r, v)
	if err != nil {
		return err
	}
	req, err := requestOf(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", exportType(format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.%s"`, d.Key, time.Now().In(env.Loc).Format("20060102-1504"), format))
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	cw := &countingWriter{w: w}
	n, err := q.svc.Export(r.Context(), t, env, d, req, format, v.lang, cw, func(int64) { _ = rc.Flush() })
	if err != nil {
		if cw.n == 0 { // nothing sent yet: the error can still be the response
			w.Header().Del("Content-Disposition")
			return err
		}
		q.s.log.Warn("query export ended early", "query", d.Key, "rows", n, "err", err)
	}
	return nil
}

// exportable is the query and format of an export request (format=csv|xlsx), refused
// unless the query offers that export.
func (q *queryPages) exportable(r *http.Request, v *visit) (*account.Tenant, *query.Definition, string, error) {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return nil, nil, "", err
	}
	d, err := q.svc.Get(r.Context(), t, r.PathValue("key"))
	if err != nil {
		return nil, nil, "", err
	}
	format := r.URL.Query().Get("format")
	wanted := map[string]string{query.ExportCSV: query.BatchCSV, query.ExportXLSX: query.BatchXLSX}[format]
	if wanted == "" {
		return nil, nil, "", fault.Errorf(fault.Invalid, "export format %q: want csv or xlsx", format)
	}
	if !d.Offers(wanted) {
		return nil, nil, "", fault.Errorf(fault.Forbidden, "query %q does not offer %s export", d.Key, format)
	}
	return t, d, format, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
