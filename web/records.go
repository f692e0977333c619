package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

// The pages of records: a list with search and paging, a record's form with its history,
// and the data-object catalogue for config admins.

type recordField struct {
	Field   *dataobject.Field
	Label   string
	Value   string
	Options []dataobject.Code // code fields
	Input   string            // HTML input type
}

type listPageData struct {
	Object   *dataobject.Object
	Columns  []recordField
	Rows     []listRow
	Total    int
	Query    string
	Page     int
	Pages    int
	PrevURL  string
	NextURL  string
	CSVURL   string
	XLSXURL  string
	CanWrite bool
}

type listRow struct {
	ID    int64
	Cells []string
}

func cellText(v any, loc *time.Location) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []string:
		return strings.Join(x, "; ")
	case time.Time:
		return x.In(loc).Format("2006-01-02 15:04")
	case bool:
		if x {
			return "✓"
		}
		return ""
	}
	return fmt.Sprint(v)
}

func (o *objectPages) listPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	obj, err := o.store.Object(r.Context(), t, r.PathValue("object"))
	if err != nil {
		return err
	}
	lq, err := o.listQueryOf(r, v)
	if err != nil {
		return err
	}
	items, total, err := o.store.List(r.Context(), t, obj.Key, lq)
	if err != nil {
		return err
	}
	d := listPageData{Object: obj, Total: total, Query: lq.Search, Page: max(lq.Page, 1), CanWrite: canWrite(v.user) == nil}
	per := lq.PerPage
	if per == 0 {
		per = dataobject.DefaultPerPage
	}
	d.Pages = max(1, (total+per-1)/per)
	for _, f := range obj.Visible() {
		if f.InList {
			d.Columns = append(d.Columns, recordField{Field: f, Label: f.Label(v.lang)})
		}
	}
	for _, it := range items {
		row := listRow{ID: it.ID}
		for _, c := range d.Columns {
			row.Cells = append(row.Cells, cellText(it.Values[c.Field.Key], t.Location()))
		}
		d.Rows = append(d.Rows, row)
	}
	link := func(page int, extra url.Values) string {
		q := url.Values{}
		for k, vs := range r.URL.Query() {
			q[k] = vs
		}
		q.Set("page", strconv.Itoa(page))
		for k, vs := range extra {
			q[k] = vs
		}
		return "?" + q.Encode()
	}
	if d.Page > 1 {
		d.PrevURL = link(d.Page-1, nil)
	}
	if d.Page < d.Pages {
		d.NextURL = link(d.Page+1, nil)
	}
	q := r.URL.Query()
	q.Del("page")
	q.Set("format", "csv")
	d.CSVURL = "/records/" + obj.Key + "/export?" + q.Encode()
	q.Set("format", "xlsx")
	d.XLSXURL = "/records/" + obj.Key + "/export?" + q.Encode()
	o.s.render(w, r, v, http.StatusOK, "records_list", "records.title", d)
	return nil
}

func (o *objectPages) exportPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return o.export(w, r, v)
}

type recordPageData struct {
	Object  *dataobject.Object
	Record  *dataobject.Record
	Rows    [][]recordField // the edit form, EditColumns fields per row
	History []dataobject.HistoryEntry
	Error   string
	Problem map[string]string // field key → problem
	Saved   bool
	Action  string
	Write   bool
	Delete  bool
}

// formRows lays out the visible fields in edit-page order, cols per row.
func (o *objectPages) formRows(r *http.Request, v *visit, obj *dataobject.Object, values map[string]any) ([][]recordField, error) {
	t := v.user.Tenant
	var rows [][]recordField
	var row []recordField
	for _, f := range obj.Visible() {
		ff := recordField{Field: f, Label: f.Label(v.lang), Value: cellText(values[f.Key], t.Location()), Input: "text"}
		switch f.Type {
		case dataobject.TypeInteger, dataobject.TypeReference:
			ff.Input = "number"
		case dataobject.TypeDate:
			ff.Input = "date"
		case dataobject.TypeEmail:
			ff.Input = "email"
		case dataobject.TypeLongText:
			ff.Input = "textarea"
		case dataobject.TypeBoolean:
			ff.Input = "checkbox"
			if b, _ := values[f.Key].(bool); b {
				ff.Value = "yes"
			}
		case dataobject.TypeDateTime:
			ff.Input = "datetime-local"
			if tm, ok := values[f.Key].(time.Time); ok {
				ff.Value = tm.In(t.Location()).Format("2006-01-02T15:04")
			}
		case dataobject.TypeCode:
			ff.Input = "select"
			ct, err := o.store.CodeTable(r.Context(), t, f.CodeTable)
			if err != nil {
				return nil, err
			}
			for _, c := range ct.Codes {
				if c.Enabled {
					ff.Options = append(ff.Options, c)
				}
			}
			if f.Multi {
				ff.Input = "text"
			}
		}
		row = append(row, ff)
		if len(row) == obj.EditColumns {
			rows = append(rows, row)
			row = nil
		}
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	return rows, nil
}

// formValues reads the posted form into record values; every visible field is sent, so
// an emptied field is cleared.
func formValues(r *http.Request, obj *dataobject.Object) map[string]any {
	values := map[string]any{}
	for _, f := range obj.Visible() {
		switch f.Type {
		case dataobject.TypeBoolean:
			values[f.Key] = r.PostFormValue(f.Key) == "yes"
		case dataobject.TypeDateTime:
			values[f.Key] = strings.Replace(r.PostFormValue(f.Key), "T", " ", 1)
		default:
			values[f.Key] = r.PostFormValue(f.Key)
		}
	}
	return values
}

func (o *objectPages) showRecord(w http.ResponseWriter, r *http.Request, v *visit, obj *dataobject.Object, rec *dataobject.Record,
	values map[string]any, status int, formErr error, saved bool) error {
	t := v.user.Tenant
	d := recordPageData{Object: obj, Record: rec, Saved: saved, Problem: map[string]string{},
		Write: canWrite(v.user) == nil, Delete: canDelete(v.user) == nil}
	if formErr != nil {
		d.Error = fault.MessageOf(formErr)
		if ve, ok := formErr.(*dataobject.ValidationError); ok {
			for _, fe := range ve.Fields {
				d.Problem[fe.Field] = fe.Problem
			}
		}
	}
	var err error
	if d.Rows, err = o.formRows(r, v, obj, values); err != nil {
		return err
	}
	for _, row := range d.Rows {
		for i := range row {
			row[i].Label = strings.TrimSpace(row[i].Label)
		}
	}
	if rec != nil {
		d.Action = fmt.Sprintf("/records/%s/%d", obj.Key, rec.ID)
		if d.History, err = o.store.History(r.Context(), t, obj.Key, rec.ID); err != nil {
			return err
		}
	} else {
		d.Action = "/records/" + obj.Key + "/new"
	}
	o.s.render(w, r, v, status, "records_form", "records.record", d)
	return nil
}

func (o *objectPages) loadPage(r *http.Request, v *visit) (*account.Tenant, *dataobject.Object, error) {
	t, err := tenantOf(v, "records")
	if err != nil {
		return nil, nil, err
	}
	obj, err := o.store.Object(r.Context(), t, r.PathValue("object"))
	return t, obj, err
}

func (o *objectPages) recordPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	rec, err := o.store.Get(r.Context(), t, obj.Key, id)
	if err != nil {
		return err
	}
	return o.showRecord(w, r, v, obj, rec, rec.Values, http.StatusOK, nil, r.URL.Query().Get("saved") == "1")
}

func (o *objectPages) newPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	_, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	values := map[string]any{}
	for _, f := range obj.Visible() {
		if f.Default != "" {
			values[f.Key] = f.Default
		}
	}
	return o.showRecord(w, r, v, obj, nil, values, http.StatusOK, nil, false)
}

func (o *objectPages) createForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	if err := canWrite(v.user); err != nil {
		return err
	}
	values := formValues(r, obj)
	rec, err := o.store.Create(r.Context(), t, obj.Key, values, actorOf(v))
	if fault.CodeOf(err) == fault.Invalid {
		return o.showRecord(w, r, v, obj, nil, values, http.StatusBadRequest, err, false)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/records/%s/%d?saved=1", obj.Key, rec.ID), http.StatusSeeOther)
	return nil
}

func (o *objectPages) updateForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	if err := canWrite(v.user); err != nil {
		return err
	}
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	values := formValues(r, obj)
	_, err = o.store.Update(r.Context(), t, obj.Key, id, values, actorOf(v))
	if fault.CodeOf(err) == fault.Invalid {
		rec, gerr := o.store.Get(r.Context(), t, obj.Key, id)
		if gerr != nil {
			return gerr
		}
		return o.showRecord(w, r, v, obj, rec, values, http.StatusBadRequest, err, false)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/records/%s/%d?saved=1", obj.Key, id), http.StatusSeeOther)
	return nil
}

func (o *objectPages) deleteForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	if err := canDelete(v.user); err != nil {
		return err
	}
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	if err := o.store.Delete(r.Context(), t, obj.Key, id, actorOf(v)); err != nil {
		return err
	}
	http.Redirect(w, r, "/records/"+obj.Key, http.StatusSeeOther)
	return nil
}
