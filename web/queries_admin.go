package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

type adminData struct {
	Queries []queryLink
	Sources []*query.DataSource // external sources the builder may read instead
	Source  string              // the source the builder reads ("": the tenant's tables)
	Tables  []query.TableChoice
	Picked  []query.TableChoice // the tables the builder offers (of Source when set)
	Table   *query.Table        // the table the builder shows fields of
	Error   string
	Saved   string
	Form    url.Values
}

func (q *queryPages) admin(w http.ResponseWriter, r *http.Request, v *visit) error {
	return q.showAdmin(w, r, v, adminData{Saved: r.URL.Query().Get("saved"), Form: r.URL.Query()}, http.StatusOK)
}

func (q *queryPages) showAdmin(w http.ResponseWriter, r *http.Request, v *visit, data adminData, status int) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	defs, err := q.svc.List(r.Context(), t)
	if err != nil {
		return err
	}
	for _, d := range defs {
		data.Queries = append(data.Queries, queryLink{Key: d.Key, Title: d.Title.In(v.lang), Builtin: d.Builtin})
	}
	if data.Tables, err = q.svc.TableChoices(r.Context(), t); err != nil {
		return err
	}
	if data.Sources, err = q.svc.Sources(r.Context(), t); err != nil {
		return err
	}
	picked := data.Tables // the builder's choice of tables: the tenant's, or the source's
	data.Source = data.Form.Get("source")
	var cat *query.Catalogue
	if data.Source != "" {
		cat, err = q.svc.SourceCatalogue(r.Context(), t, data.Source)
		if err != nil {
			if fault.CodeOf(err) == fault.Internal {
				return err
			}
			if data.Error == "" {
				data.Error = fault.MessageOf(err)
			}
			cat = query.NewCatalogue()
		}
		picked = nil
		for _, tb := range cat.Tables() {
			picked = append(picked, query.TableChoice{Name: tb.Name, Allowed: true, Label: query.Label{En: tb.Name}})
		}
	}
	data.Picked = picked
	if name := data.Form.Get("table"); name != "" {
		if cat == nil {
			if cat, err = q.svc.Catalogue(r.Context(), t); err != nil {
				return err
			}
		}
		if tb, ok := cat.Table(name); ok {
			data.Table = tb
		} else if data.Error == "" && data.Source != "" {
			data.Error = fault.MessageOf(fault.Errorf(fault.Invalid, "data source %q has no table %q in its schema", data.Source, name))
		} else if data.Error == "" {
			data.Error = fault.MessageOf(fault.Errorf(fault.Invalid, "table %q is not queryable: allow it first", name))
		}
	}
	q.s.render(w, r, v, status, "query_admin", "queries.admin_title", data)
	return nil
}

func (q *queryPages) fail(w http.ResponseWriter, r *http.Request, v *visit, err error, form url.Values) error {
	if fault.CodeOf(err) == fault.Internal {
		return err
	}
	return q.showAdmin(w, r, v, adminData{Error: fault.MessageOf(err), Form: form}, fault.HTTPStatus(fault.CodeOf(err)))
}

// build makes a definition from the builder form — no SQL: the table, the fields to show,
// the fields to search by (the condition type follows the field's type) and the owner field.
func (q *queryPages) build(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return fault.Errorf(fault.Invalid, "form: %v", err)
	}
	form := r.PostForm
	var cat *query.Catalogue
	if src := form.Get("source"); src != "" {
		// The source's catalogue names what the query may read there.
		cat, err = q.svc.SourceCatalogue(r.Context(), t, src)
		if err != nil {
			return q.fail(w, r, v, err, form)
		}
	} else if cat, err = q.svc.Catalogue(r.Context(), t); err != nil {
		return err
	}
	d, err := buildDefinition(cat, form)
	if err != nil {
		return q.fail(w, r, v, err, form)
	}
	if err := q.svc.Save(r.Context(), t, d, v.user.Username); err != nil {
		return q.fail(w, r, v, err, form)
	}
	http.Redirect(w, r, "/admin/queries?saved="+url.QueryEscape(d.Key), http.StatusSeeOther)
	return nil
}

func buildDefinition(cat *query.Catalogue, form url.Values) (*query.Definition, error) {
	tb, ok := cat.Table(form.Get("table"))
	if !ok {
		return nil, fault.Errorf(fault.Invalid, "choose a queryable table")
	}
	size, _ := strconv.Atoi(form.Get("page_size"))
	d := &query.Definition{Key: strings.TrimSpace(form.Get("key")),
		Title:  query.Label{En: strings.TrimSpace(form.Get("title_en")), Zh: strings.TrimSpace(form.Get("title_zh"))},
		Source: query.Source{Table: tb.Name, External: form.Get("source")}, OwnerField: form.Get("owner_field"), PageSize: size,
		Batch: []string{query.BatchCSV, query.BatchXLSX}}
	if form.Get("batch_delete") == "1" { // checked when the query is saved: needs an id column
		if d.Source.External != "" {
			return nil, fault.Errorf(fault.Invalid, "batch delete is for the tenant's own data objects, not rows of data source %q", d.Source.External)
		}
		d.Batch = append(d.Batch, query.BatchDelete)
	}
	for _, name := range form["column"] {
		f, ok := tb.Field(name)
		if !ok {
			return nil, fault.Errorf(fault.Invalid, "table %q has no field %q", tb.Name, name)
		}
		c := query.Column{Key: f.Name, Label: query.Label{En: labelOf(form, "label_"+f.Name, f.Name)}, Field: f.Name, Sortable: true}
		if f.Name == d.OwnerField {
			c.Format = query.FormatUser
		}
		if (f.Kind == query.KindInt || f.Kind == query.KindNumber) && f.Name != d.OwnerField && form.Get("total_"+f.Name) != "" {
			c.Total = true
		}
		d.Columns = append(d.Columns, c)
		if d.OrderBy == nil && f.Kind == query.KindTime {
			d.OrderBy = []query.Order{{Column: f.Name, Desc: true}}
		}
	}
	for _, name := range form["condition"] {
		f, ok := tb.Field(name)
		if !ok {
			return nil, fault.Errorf(fault.Invalid, "table %q has no field %q", tb.Name, name)
		}
		c := query.Condition{Key: f.Name, Label: query.Label{En: labelOf(form, "label_"+f.Name, f.Name)}, Field: f.Name}
		switch {
		case f.Name == d.OwnerField:
			c.Type = query.CondAgent
			c.Multi = true
		case f.Kind == query.KindText:
			c.Type, c.Match = query.CondText, query.MatchContains
		case f.Kind == query.KindInt || f.Kind == query.KindNumber:
			c.Type = query.CondNumberRange
		case f.Kind == query.KindTime || f.Kind == query.KindDate:
			c.Type, c.Default = query.CondDateRange, form.Get("default_preset")
		default:
			return nil, fault.Errorf(fault.Invalid, "field %q (%s) cannot be a search condition", f.Name, f.Type)
		}
		d.Conditions = append(d.Conditions, c)
	}
	return d, nil
}

func labelOf(form url.Values, key, fallback string) string {
	if s := strings.TrimSpace(form.Get(key)); s != "" {
		return s
	}
	return fallback
}

func (q *queryPages) importForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	d, err := query.Import([]byte(r.PostFormValue("definition")))
	if err == nil {
		err = q.svc.Save(r.Context(), t, d, v.user.Username)
	}
	if err != nil {
		return q.fail(w, r, v, err, url.Values{"definition": {r.PostFormValue("definition")}})
	}
	http.Redirect(w, r, "/admin/queries?saved="+url.QueryEscape(d.Key), http.StatusSeeOther)
	return nil
}

func (q *queryPages) allowForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	name := r.PostFormValue("table")
	err = q.svc.AllowTable(r.Context(), t, name, query.Label{En: name}, r.PostFormValue("allow") == "1", v.user.Username)
	if err != nil {
		return q.fail(w, r, v, err, url.Values{})
	}
	http.Redirect(w, r, "/admin/queries", http.StatusSeeOther)
	return nil
}

func (q *queryPages) deleteForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	if err := q.svc.Delete(r.Context(), t, r.PathValue("key")); err != nil {
		return q.fail(w, r, v, err, url.Values{})
	}
	http.Redirect(w, r, "/admin/queries", http.StatusSeeOther)
	return nil
}
