package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

// The pages where a config admin defines data objects and their fields without the API:
// the catalogue as a table, an object's options, fields and real table columns, and one
// field's options, key and visibility. Every change goes through the dataobject package,
// which validates keys and quotes identifiers; its errors are shown in the form and nothing
// changes.

func (o *objectPages) adminRoutes() {
	s := o.s
	s.mux.HandleFunc("GET /admin/objects", s.page(account.PermConfigure, o.adminPage))
	s.mux.HandleFunc("POST /admin/objects", s.page(account.PermConfigure, o.createObjectForm))
	s.mux.HandleFunc("GET /admin/objects/{object}", s.page(account.PermConfigure, o.objectAdminPage))
	s.mux.HandleFunc("POST /admin/objects/{object}", s.page(account.PermConfigure, o.updateObjectForm))
	s.mux.HandleFunc("POST /admin/objects/{object}/fields", s.page(account.PermConfigure, o.addFieldForm))
	s.mux.HandleFunc("GET /admin/objects/{object}/fields/{field}", s.page(account.PermConfigure, o.fieldAdminPage))
	s.mux.HandleFunc("POST /admin/objects/{object}/fields/{field}", s.page(account.PermConfigure, o.updateFieldForm))
	s.mux.HandleFunc("POST /admin/objects/{object}/fields/{field}/rename", s.page(account.PermConfigure, o.renameFieldForm))
	s.mux.HandleFunc("POST /admin/objects/{object}/fields/{field}/hide", s.page(account.PermConfigure, o.hideFieldForm))
	s.mux.HandleFunc("POST /admin/objects/{object}/fields/{field}/unhide", s.page(account.PermConfigure, o.unhideFieldForm))
	s.mux.HandleFunc("GET /admin/code-tables", s.page(account.PermConfigure, o.codeTablesPage))
	s.mux.HandleFunc("POST /admin/code-tables", s.page(account.PermConfigure, o.createCodeTableForm))
	s.mux.HandleFunc("GET /admin/code-tables/{table}", s.page(account.PermConfigure, o.codeTablePage))
	s.mux.HandleFunc("POST /admin/code-tables/{table}", s.page(account.PermConfigure, o.renameCodeTableForm))
	s.mux.HandleFunc("POST /admin/code-tables/{table}/codes", s.page(account.PermConfigure, o.putCodeForm))
}

// formProblem is how an admin form answers a refused change: the package's message shown
// in the form, with the status of its code. Other errors are the error page's.
func formProblem(err error) (status int, message string, ok bool) {
	return refusal(err, fault.Invalid, fault.Conflict, fault.NotFound)
}

// formRefused ends an admin form's post that failed with err: the page again (again, with
// the refusal's status and message) when formProblem shows err, else err for the error page.
func formRefused(err error, again func(status int, msg string) error) error {
	if status, msg, ok := formProblem(err); ok {
		return again(status, msg)
	}
	return err
}

func checked(r *http.Request, name string) bool { return r.PostFormValue(name) == "1" }

// formInt reads a whole number from the form; empty is 0.
func formInt(r *http.Request, name, what string) (int, error) {
	s := strings.TrimSpace(r.PostFormValue(name))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fault.Errorf(fault.Invalid, "%s %q is not a whole number", what, s)
	}
	return n, nil
}

type objectsAdminData struct {
	Objects    []*dataobject.Object
	LogObjects []*dataobject.Object // operation-log objects, for the linked-log picker
	Kinds      []dataobject.Kind
	New        dataobject.NewObject
	Error      string
}

func (o *objectPages) adminPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return o.renderObjects(w, r, v, http.StatusOK, objectsAdminData{New: dataobject.NewObject{Kind: dataobject.KindBaseData, EditColumns: 2, SaveMode: dataobject.SaveOnce}})
}

func (o *objectPages) renderObjects(w http.ResponseWriter, r *http.Request, v *visit, status int, d objectsAdminData) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	if d.Objects, err = o.store.Objects(r.Context(), t); err != nil {
		return err
	}
	d.LogObjects = logObjects(d.Objects)
	d.Kinds = dataobject.Kinds
	o.s.render(w, r, v, status, "objects_admin", "objects.title", d)
	return nil
}

func logObjects(objs []*dataobject.Object) []*dataobject.Object {
	var out []*dataobject.Object
	for _, ob := range objs {
		if ob.Kind == dataobject.KindOperationLog {
			out = append(out, ob)
		}
	}
	return out
}

func (o *objectPages) createObjectForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	no := dataobject.NewObject{Key: strings.TrimSpace(r.PostFormValue("key")), Kind: dataobject.Kind(r.PostFormValue("kind")),
		NameEN: r.PostFormValue("name_en"), NameZH: r.PostFormValue("name_zh"), IsDefault: checked(r, "is_default"),
		LogObject: r.PostFormValue("log_object"), SaveMode: dataobject.SaveMode(r.PostFormValue("save_mode")),
		Audit: checked(r, "audit"), Partitioned: checked(r, "partitioned")}
	no.EditColumns, err = formInt(r, "edit_columns", "edit-page columns")
	if err == nil {
		_, err = o.store.CreateObject(r.Context(), t, no, actorOf(v))
	}
	if status, msg, ok := formProblem(err); ok {
		return o.renderObjects(w, r, v, status, objectsAdminData{New: no, Error: msg})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/objects/"+url.PathEscape(no.Key)+"?saved=1", http.StatusSeeOther)
	return nil
}

type objectAdminData struct {
	Object     *dataobject.Object
	Columns    []dataobject.Column // the real table's
	LogObjects []*dataobject.Object
	Objects    []*dataobject.Object // reference targets
	CodeTables []*dataobject.CodeTable
	FieldTypes []dataobject.FieldType
	NewField   dataobject.NewField
	Error      string
	Saved      bool
}

func (o *objectPages) objectAdminPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return o.renderObject(w, r, v, http.StatusOK, objectAdminData{Saved: r.URL.Query().Get("saved") == "1",
		NewField: dataobject.NewField{Type: dataobject.TypeText, InList: true}})
}

func (o *objectPages) renderObject(w http.ResponseWriter, r *http.Request, v *visit, status int, d objectAdminData) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	ctx := r.Context()
	if d.Object, err = o.store.Object(ctx, t, r.PathValue("object")); err != nil {
		return err
	}
	if d.Columns, err = o.store.TableColumns(ctx, t, d.Object.Key); err != nil {
		return err
	}
	if d.Objects, err = o.store.Objects(ctx, t); err != nil {
		return err
	}
	if d.CodeTables, err = o.store.CodeTables(ctx, t); err != nil {
		return err
	}
	d.LogObjects = logObjects(d.Objects)
	d.FieldTypes = dataobject.FieldTypes
	o.s.render(w, r, v, status, "object_admin", "objects.title", d)
	return nil
}

func (o *objectPages) updateObjectForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	key := r.PathValue("object")
	opts := dataobject.ObjectOptions{NameEN: r.PostFormValue("name_en"), NameZH: r.PostFormValue("name_zh"),
		IsDefault: checked(r, "is_default"), LogObject: r.PostFormValue("log_object"),
		SaveMode: dataobject.SaveMode(r.PostFormValue("save_mode")), Audit: checked(r, "audit")}
	opts.EditColumns, err = formInt(r, "edit_columns", "edit-page columns")
	if err == nil {
		_, err = o.store.UpdateObject(r.Context(), t, key, opts, actorOf(v))
	}
	if status, msg, ok := formProblem(err); ok {
		return o.renderObject(w, r, v, status, objectAdminData{Error: msg, NewField: dataobject.NewField{Type: dataobject.TypeText, InList: true}})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/objects/"+url.PathEscape(key)+"?saved=1", http.StatusSeeOther)
	return nil
}

// newFieldOf reads the add-field form. Inputs that belong to other types (the page shows
// them all when scripts are off) are dropped, so a leftover max length on a date field is
// not an error.
func newFieldOf(r *http.Request) (dataobject.NewField, error) {
	nf := dataobject.NewField{Key: strings.TrimSpace(r.PostFormValue("key")), Type: dataobject.FieldType(r.PostFormValue("type")),
		LabelEN: r.PostFormValue("label_en"), LabelZH: r.PostFormValue("label_zh"), Required: checked(r, "required"),
		Unique: checked(r, "unique"), Default: strings.TrimSpace(r.PostFormValue("default")), Searchable: checked(r, "searchable"),
		InList: checked(r, "in_list")}
	var err error
	if nf.Position, err = formInt(r, "position", "position"); err != nil {
		return nf, err
	}
	switch nf.Type {
	case dataobject.TypeText:
		if nf.MaxLength, err = formInt(r, "max_length", "max length"); err != nil {
			return nf, err
		}
	case dataobject.TypeCode:
		nf.CodeTable, nf.Multi = r.PostFormValue("code_table"), checked(r, "multi")
	case dataobject.TypePhone:
		nf.Multi, nf.MatchCaller = checked(r, "multi"), checked(r, "match_caller")
	case dataobject.TypeReference:
		nf.RefObject = r.PostFormValue("ref_object")
	}
	return nf, nil
}

func (o *objectPages) addFieldForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	key := r.PathValue("object")
	nf, err := newFieldOf(r)
	if err == nil {
		_, err = o.store.AddField(r.Context(), t, key, nf, actorOf(v))
	}
	if status, msg, ok := formProblem(err); ok {
		return o.renderObject(w, r, v, status, objectAdminData{NewField: nf, Error: msg})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/objects/"+url.PathEscape(key)+"?saved=1#fields", http.StatusSeeOther)
	return nil
}

type fieldAdminData struct {
	Object *dataobject.Object
	Field  *dataobject.Field
	UsedBy []string // saved queries that use the field
	NewKey string
	Error  string
	Saved  bool
}

func (o *objectPages) fieldAdminPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	return o.renderField(w, r, v, http.StatusOK, fieldAdminData{Saved: r.URL.Query().Get("saved") == "1"})
}

func (o *objectPages) renderField(w http.ResponseWriter, r *http.Request, v *visit, status int, d fieldAdminData) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	ctx := r.Context()
	if d.Object, err = o.store.Object(ctx, t, r.PathValue("object")); err != nil {
		return err
	}
	if d.Field = d.Object.Field(r.PathValue("field")); d.Field == nil {
		return fault.Errorf(fault.NotFound, "object %q has no field %q", d.Object.Key, r.PathValue("field"))
	}
	if d.UsedBy, err = o.store.FieldUsers(ctx, t, d.Object.Key, d.Field.Key); err != nil {
		return err
	}
	o.s.render(w, r, v, status, "field_admin", "objects.field", d)
	return nil
}

func fieldURL(object, field string) string {
	return "/admin/objects/" + url.PathEscape(object) + "/fields/" + url.PathEscape(field)
}

func (o *objectPages) updateFieldForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	opts := dataobject.FieldOptions{LabelEN: r.PostFormValue("label_en"), LabelZH: r.PostFormValue("label_zh"),
		Required: checked(r, "required"), Unique: checked(r, "unique"), Default: strings.TrimSpace(r.PostFormValue("default")),
		Searchable: checked(r, "searchable"), InList: checked(r, "in_list"), MatchCaller: checked(r, "match_caller")}
	if opts.MaxLength, err = formInt(r, "max_length", "max length"); err == nil {
		opts.Position, err = formInt(r, "position", "position")
	}
	if err == nil {
		_, err = o.store.UpdateField(r.Context(), t, r.PathValue("object"), r.PathValue("field"), opts, actorOf(v))
	}
	return o.fieldDone(w, r, v, r.PathValue("field"), "", err)
}

// fieldDone answers a change of a field: back to its page, or the page with the problem.
func (o *objectPages) fieldDone(w http.ResponseWriter, r *http.Request, v *visit, field, newKey string, err error) error {
	if status, msg, ok := formProblem(err); ok {
		return o.renderField(w, r, v, status, fieldAdminData{Error: msg, NewKey: newKey})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fieldURL(r.PathValue("object"), field)+"?saved=1", http.StatusSeeOther)
	return nil
}

func (o *objectPages) renameFieldForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	newKey := strings.TrimSpace(r.PostFormValue("key"))
	_, err = o.store.RenameField(r.Context(), t, r.PathValue("object"), r.PathValue("field"), newKey, checked(r, "force"), actorOf(v))
	return o.fieldDone(w, r, v, newKey, newKey, err)
}

func (o *objectPages) hideFieldForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	_, err = o.store.HideField(r.Context(), t, r.PathValue("object"), r.PathValue("field"), checked(r, "force"), actorOf(v))
	return o.fieldDone(w, r, v, r.PathValue("field"), "", err)
}

func (o *objectPages) unhideFieldForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "data objects")
	if err != nil {
		return err
	}
	err = o.store.UnhideField(r.Context(), t, r.PathValue("object"), r.PathValue("field"), actorOf(v))
	return o.fieldDone(w, r, v, r.PathValue("field"), "", err)
}
