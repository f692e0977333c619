package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

// maxImportUpload bounds an uploaded import file (pages and API).
const maxImportUpload = 200 << 20

// EnableObjects adds the pages and API of data objects, fields, code tables and records
// (customers and any other object); cmd/ctid calls it after New.
func (s *Server) EnableObjects(store *dataobject.Store) {
	o := &objectPages{s: s, store: store}
	s.mux.HandleFunc("GET /records/{object}", s.page(account.PermViewRecords, o.notWorkOrders(o.listPage)))
	s.mux.HandleFunc("GET /records/{object}/export", s.page(account.PermViewRecords, o.notWorkOrders(o.exportPage)))
	s.mux.HandleFunc("GET /records/{object}/new", s.page(account.PermViewRecords, o.notWorkOrders(o.newPage)))
	s.mux.HandleFunc("POST /records/{object}/new", s.page(account.PermViewRecords, o.notWorkOrders(o.createForm)))
	s.mux.HandleFunc("GET /records/{object}/{id}", s.page(account.PermViewRecords, o.notWorkOrders(o.recordPage)))
	s.mux.HandleFunc("POST /records/{object}/{id}", s.page(account.PermViewRecords, o.notWorkOrders(o.updateForm)))
	s.mux.HandleFunc("POST /records/{object}/{id}/delete", s.page(account.PermViewRecords, o.notWorkOrders(o.deleteForm)))
	o.adminRoutes()
	o.importRoutes()

	s.mux.HandleFunc("GET /api/v1/objects", s.api(account.PermViewRecords, tenantList(o.store.Objects)))
	s.mux.HandleFunc("POST /api/v1/objects", s.api(account.PermConfigure, o.apiCreateObject))
	s.mux.HandleFunc("GET /api/v1/objects/{object}", s.api(account.PermViewRecords, tenantRead(o.store.Object, "object")))
	s.mux.HandleFunc("PUT /api/v1/objects/{object}", s.api(account.PermConfigure, o.apiUpdateObject))
	s.mux.HandleFunc("POST /api/v1/objects/{object}/fields", s.api(account.PermConfigure, o.apiAddField))
	s.mux.HandleFunc("PUT /api/v1/objects/{object}/fields/{field}", s.api(account.PermConfigure, o.apiUpdateField))
	s.mux.HandleFunc("POST /api/v1/objects/{object}/fields/{field}/hide", s.api(account.PermConfigure, o.apiHideField))
	s.mux.HandleFunc("POST /api/v1/objects/{object}/fields/{field}/unhide", s.api(account.PermConfigure, o.apiUnhideField))
	s.mux.HandleFunc("POST /api/v1/objects/{object}/fields/{field}/rename", s.api(account.PermConfigure, o.apiRenameField))
	s.mux.HandleFunc("GET /api/v1/code-tables", s.api(account.PermViewRecords, tenantList(o.store.CodeTables)))
	s.mux.HandleFunc("POST /api/v1/code-tables", s.api(account.PermConfigure, o.apiCreateCodeTable))
	s.mux.HandleFunc("GET /api/v1/code-tables/{table}", s.api(account.PermViewRecords, tenantRead(o.store.CodeTable, "table")))
	s.mux.HandleFunc("PUT /api/v1/code-tables/{table}/codes/{code}", s.api(account.PermConfigure, o.apiPutCode))
	s.mux.HandleFunc("GET /api/v1/records/{object}", s.api(account.PermViewRecords, o.notWorkOrders(o.apiList)))
	s.mux.HandleFunc("POST /api/v1/records/{object}", s.api(account.PermViewRecords, o.notWorkOrders(o.apiCreate)))
	s.mux.HandleFunc("GET /api/v1/records/{object}/export", s.api(account.PermViewRecords, o.notWorkOrders(o.apiExport)))
	s.mux.HandleFunc("POST /api/v1/records/{object}/import", s.api(account.PermViewRecords, o.notWorkOrders(o.apiImport)))
	s.mux.HandleFunc("GET /api/v1/records/{object}/{id}", s.api(account.PermViewRecords, o.notWorkOrders(o.apiGet)))
	s.mux.HandleFunc("PATCH /api/v1/records/{object}/{id}", s.api(account.PermViewRecords, o.notWorkOrders(o.apiUpdate)))
	s.mux.HandleFunc("DELETE /api/v1/records/{object}/{id}", s.api(account.PermViewRecords, o.notWorkOrders(o.apiDelete)))
	s.mux.HandleFunc("GET /api/v1/records/{object}/{id}/history", s.api(account.PermViewRecords, o.notWorkOrders(o.apiHistory)))
	s.mux.HandleFunc("GET /api/v1/lookup", s.api(account.PermViewRecords, o.apiLookup))
}

type objectPages struct {
	s       *Server
	store   *dataobject.Store
	imports importJobs // the import page's background imports
}

// tenantList answers a GET with every item of the caller's tenant, as {"items", "total"}.
func tenantList[T any](list func(context.Context, *account.Tenant) ([]T, error)) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, v *visit) error {
		t, err := tenantOf(v, "records")
		if err != nil {
			return err
		}
		items, err := list(r.Context(), t)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": len(items)})
		return nil
	}
}

// tenantRead answers a GET with the item of the caller's tenant named by path value key.
func tenantRead[T any](get func(context.Context, *account.Tenant, string) (T, error), key string) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, v *visit) error {
		t, err := tenantOf(v, "records")
		if err != nil {
			return err
		}
		item, err := get(r.Context(), t, r.PathValue(key))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, item)
		return nil
	}
}

// canWrite: agents, admins and config admins create and edit records; QA, supervisors and
// team leads read them.
func canWrite(u *account.User) error {
	if u.Can(account.PermTakeCalls) || u.Can(account.PermManageUsers) || u.Can(account.PermConfigure) {
		return nil
	}
	return fault.Errorf(fault.Forbidden, "your roles may read records but not change them")
}

// canDelete: only admins and config admins delete records.
func canDelete(u *account.User) error {
	if u.Can(account.PermManageUsers) || u.Can(account.PermConfigure) {
		return nil
	}
	return fault.Errorf(fault.Forbidden, "your roles may not delete records")
}

// ownersFor is the row scope of lists: an agent's own records, a team lead's team's, all
// for the rest (nil).
func (o *objectPages) ownersFor(ctx context.Context, u *account.User) ([]int64, error) {
	switch account.ScopeOf(u.Roles) {
	case account.ScopeAll:
		return nil, nil
	case account.ScopeTeam:
		users, err := o.s.opts.Accounts.ListUsers(ctx, u.Tenant.ID)
		if err != nil {
			return nil, err
		}
		ids := []int64{u.ID}
		for _, m := range users {
			if u.TeamID != 0 && m.TeamID == u.TeamID && m.ID != u.ID {
				ids = append(ids, m.ID)
			}
		}
		return ids, nil
	case account.ScopeOwn:
		return []int64{u.ID}, nil
	}
	return []int64{}, nil
}

// listQueryOf reads q (search), page, size and f.<field> filters from the URL.
func (o *objectPages) listQueryOf(r *http.Request, v *visit) (dataobject.ListQuery, error) {
	qv := r.URL.Query()
	lq := dataobject.ListQuery{Search: qv.Get("q"), Filters: map[string]string{}}
	for name, dst := range map[string]*int{"page": &lq.Page, "size": &lq.PerPage} {
		if s := qv.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return lq, fault.Errorf(fault.Invalid, "%s %q is not a positive number", name, s)
			}
			*dst = n
		}
	}
	for k, vs := range qv {
		if len(k) > 2 && k[:2] == "f." && len(vs) > 0 && vs[0] != "" {
			lq.Filters[k[2:]] = vs[0]
		}
	}
	owners, err := o.ownersFor(r.Context(), v.user)
	lq.Owners = owners
	return lq, err
}

// recordJSON is a record as the API shows it.
type recordJSON struct {
	ID        int64          `json:"id"`
	Values    map[string]any `json:"values"`
	OwnerID   int64          `json:"owner_id,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

func toRecordJSON(r *dataobject.Record) recordJSON {
	return recordJSON{ID: r.ID, Values: r.Values, OwnerID: r.OwnerID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func (o *objectPages) apiList(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	lq, err := o.listQueryOf(r, v)
	if err != nil {
		return err
	}
	items, total, err := o.store.List(r.Context(), t, r.PathValue("object"), lq)
	if err != nil {
		return err
	}
	out := make([]recordJSON, len(items))
	for i, it := range items {
		out[i] = toRecordJSON(it)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "total": total})
	return nil
}

func (o *objectPages) apiGet(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	rec, err := o.store.Get(r.Context(), t, r.PathValue("object"), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRecordJSON(rec))
	return nil
}

func (o *objectPages) apiCreate(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	if err := canWrite(v.user); err != nil {
		return err
	}
	var values map[string]any
	if err := decodeJSON(r, &values); err != nil {
		return err
	}
	rec, err := o.store.Create(r.Context(), t, r.PathValue("object"), values, actorOf(v))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toRecordJSON(rec))
	return nil
}

func (o *objectPages) apiUpdate(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
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
	var values map[string]any
	if err := decodeJSON(r, &values); err != nil {
		return err
	}
	rec, err := o.store.Update(r.Context(), t, r.PathValue("object"), id, values, actorOf(v))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRecordJSON(rec))
	return nil
}

func (o *objectPages) apiDelete(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
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
	if err := o.store.Delete(r.Context(), t, r.PathValue("object"), id, actorOf(v)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (o *objectPages) apiHistory(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	id, err := parseID(r, "id")
	if err != nil {
		return err
	}
	h, err := o.store.History(r.Context(), t, r.PathValue("object"), id)
	if err != nil {
		return err
	}
	type entry struct {
		At      time.Time           `json:"at"`
		Action  string              `json:"action"`
		Actor   string              `json:"actor"`
		Changes []dataobject.Change `json:"changes"`
	}
	out := make([]entry, len(h))
	for i, e := range h {
		out[i] = entry{e.At, e.Action, e.Actor, e.Changes}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "total": len(out)})
	return nil
}

func (o *objectPages) apiExport(w http.ResponseWriter, r *http.Request, v *visit) error {
	return o.export(w, r, v)
}

func (o *objectPages) export(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	lq, err := o.listQueryOf(r, v)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "xlsx" {
		return fault.Errorf(fault.Invalid, "format must be csv or xlsx, not %q", format)
	}
	key := r.PathValue("object")
	if _, err := o.store.Object(r.Context(), t, key); err != nil {
		return err
	}
	ctype := "text/csv; charset=utf-8"
	if format == "xlsx" {
		ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, key, format))
	if err := o.store.Export(r.Context(), t, key, lq, format, v.lang, w); err != nil {
		// Headers are gone once rows stream; the log has the cause.
		o.s.logError(r, err)
	}
	return nil
}

// apiImport takes the file as the request body (Content-Type text/csv or the XLSX type, or
// ?format=), with ?skip_bad=1 and ?duplicates=update; it answers with the import report.
func (o *objectPages) apiImport(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	if err := canWrite(v.user); err != nil {
		return err
	}
	qv := r.URL.Query()
	format := qv.Get("format")
	if format == "" {
		format = "csv"
		if ct := r.Header.Get("Content-Type"); ct == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
			format = "xlsx"
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxImportUpload)
	rep, err := o.importBody(r.Context(), t, r.Body, dataobject.ImportOptions{Object: r.PathValue("object"), Format: format,
		SkipBad: qv.Get("skip_bad") == "1", Duplicates: dataobject.Duplicate(qv.Get("duplicates")), Actor: actorOf(v)})
	if rep == nil {
		return err
	}
	status := http.StatusOK
	if err != nil {
		status = fault.HTTPStatus(fault.CodeOf(err))
	}
	writeJSON(w, status, importReportJSON(rep, err))
	return nil
}

// importBody spools an upload to a temporary file first: XLSX needs random access, and a
// slow client must not hold the import's transaction open.
func (o *objectPages) importBody(ctx context.Context, t *account.Tenant, body io.Reader, opts dataobject.ImportOptions) (*dataobject.ImportReport, error) {
	f, err := os.CreateTemp("", "ctid-import-*")
	if err != nil {
		return nil, fmt.Errorf("spool import: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, body); err != nil {
		return nil, fault.Errorf(fault.Invalid, "read upload: %v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return o.store.Import(ctx, t, f, opts)
}

func importReportJSON(rep *dataobject.ImportReport, err error) map[string]any {
	errs := make([]map[string]any, len(rep.Errors))
	for i, e := range rep.Errors {
		errs[i] = map[string]any{"row": e.Row, "column": e.Column, "problem": e.Problem}
	}
	out := map[string]any{"rows": rep.Rows, "imported": rep.Imported, "updated": rep.Updated, "rejected": rep.Rejected,
		"committed": rep.Committed, "errors": errs, "seconds": rep.Elapsed.Seconds()}
	if err != nil {
		out["error"] = map[string]string{"code": string(fault.CodeOf(err)), "message": fault.MessageOf(err)}
	}
	return out
}

func (o *objectPages) apiLookup(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	res, err := o.store.Lookup(r.Context(), t, r.URL.Query().Get("number"))
	if err != nil {
		return err
	}
	type match struct {
		Object   string         `json:"object"`
		RecordID int64          `json:"record_id"`
		Field    string         `json:"field"`
		Number   string         `json:"number"`
		Reason   string         `json:"match_reason"`
		Rank     int            `json:"rank"`
		Record   map[string]any `json:"record"`
	}
	items := make([]match, len(res.Matches))
	for i, m := range res.Matches {
		items[i] = match{m.Object, m.RecordID, m.Field, m.Number, m.Reason, m.Rank, m.Record}
	}
	writeJSON(w, http.StatusOK, map[string]any{"caller": res.Caller.E164, "match_reason": res.Reason, "items": items, "total": res.Total})
	return nil
}

func (o *objectPages) apiCreateObject(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	var no dataobject.NewObject
	if err := decodeJSON(r, &no); err != nil {
		return err
	}
	obj, err := o.store.CreateObject(r.Context(), t, no)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, obj)
	return nil
}

func (o *objectPages) apiUpdateObject(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	var opts dataobject.ObjectOptions
	if err := decodeJSON(r, &opts); err != nil {
		return err
	}
	obj, err := o.store.UpdateObject(r.Context(), t, r.PathValue("object"), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, obj)
	return nil
}

func (o *objectPages) apiAddField(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	var nf dataobject.NewField
	if err := decodeJSON(r, &nf); err != nil {
		return err
	}
	f, err := o.store.AddField(r.Context(), t, r.PathValue("object"), nf)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, f)
	return nil
}

func (o *objectPages) apiUpdateField(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	var opts dataobject.FieldOptions
	if err := decodeJSON(r, &opts); err != nil {
		return err
	}
	f, err := o.store.UpdateField(r.Context(), t, r.PathValue("object"), r.PathValue("field"), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (o *objectPages) apiHideField(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	users, err := o.store.HideField(r.Context(), t, r.PathValue("object"), r.PathValue("field"), r.URL.Query().Get("force") == "1")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"used_by_queries": users})
	return nil
}

func (o *objectPages) apiUnhideField(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	if err := o.store.UnhideField(r.Context(), t, r.PathValue("object"), r.PathValue("field")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (o *objectPages) apiRenameField(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	var body struct {
		Key   string `json:"key"`
		Force bool   `json:"force"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	users, err := o.store.RenameField(r.Context(), t, r.PathValue("object"), r.PathValue("field"), body.Key, body.Force)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"used_by_queries": users})
	return nil
}

func (o *objectPages) apiCreateCodeTable(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	var body struct{ Key, NameEN, NameZH string }
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	ct, err := o.store.CreateCodeTable(r.Context(), t, body.Key, body.NameEN, body.NameZH)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ct)
	return nil
}

func (o *objectPages) apiPutCode(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "records")
	if err != nil {
		return err
	}
	var c dataobject.Code
	if err := decodeJSON(r, &c); err != nil {
		return err
	}
	c.Code = r.PathValue("code")
	if err := o.store.PutCode(r.Context(), t, r.PathValue("table"), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}
