package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// Batch delete from a query's result: the selected rows, or every row matching the search,
// of a data object that allows it (customers, base data), for the roles that may delete its
// records. The rows are chosen again in the delete's transaction with the run's conditions
// and the user's row scope, so ids outside either are never deleted; a confirmation step
// shows how many rows will go; one audit-log entry records who, which query, the filter,
// the count and the ids.

// EnableQueryBatchDelete adds batch delete to the query pages and API (after EnableQueries).
func (s *Server) EnableQueryBatchDelete(objects *dataobject.Store) {
	q := s.queries
	if q == nil {
		panic("web: EnableQueryBatchDelete before EnableQueries")
	}
	q.objects = objects
	s.mux.HandleFunc("POST /queries/{key}/delete", s.page(account.PermViewRecords, q.batchDeleteForm))
	s.mux.HandleFunc("POST /api/v1/queries/{key}/delete", s.api(account.PermViewRecords, q.apiBatchDelete))
}

// batchObject is the data object whose records d's batch delete marks deleted, or an error
// saying why the user may not batch-delete through d.
func (q *queryPages) batchObject(ctx context.Context, t *account.Tenant, d *query.Definition, u *account.User) (*dataobject.Object, error) {
	if q.objects == nil || !d.Offers(query.BatchDelete) {
		return nil, fault.Errorf(fault.Forbidden, "query %q does not offer batch delete", d.Key)
	}
	if err := canDelete(u); err != nil {
		return nil, err
	}
	obj, err := q.objects.ObjectOfTable(ctx, t, d.Source.Table)
	if fault.CodeOf(err) == fault.NotFound {
		return nil, fault.Errorf(fault.Forbidden, "query %q reads table %q, which is not a data object's: its rows cannot be deleted", d.Key, d.Source.Table)
	}
	if err != nil {
		return nil, err
	}
	if !dataobject.AllowsBatchDelete(obj.Kind) {
		return nil, fault.Errorf(fault.Forbidden, "records of %s object %q cannot be deleted in a batch", obj.Kind, obj.Key)
	}
	return obj, nil
}

// batchRequest is what to delete: the search (condition values) and either the chosen ids
// or every matching row.
type batchRequest struct {
	Values  url.Values
	IDs     []int64
	All     bool
	Confirm bool
}

type batchResult struct {
	Count   int     `json:"count"`
	IDs     []int64 `json:"ids"`
	Deleted bool    `json:"deleted"`
}

// batchDelete counts (dry run) or deletes the rows of br as v's user.
func (q *queryPages) batchDelete(r *http.Request, v *visit, br batchRequest) (*query.Definition, *batchResult, error) {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return nil, nil, err
	}
	d, err := q.svc.Get(r.Context(), t, r.PathValue("key"))
	if err != nil {
		return d, nil, err
	}
	obj, err := q.batchObject(r.Context(), t, d, v.user)
	if err != nil {
		return d, nil, err
	}
	if !br.All && len(br.IDs) == 0 {
		return d, nil, fault.Errorf(fault.Invalid, "select the rows to delete, or choose all matching rows")
	}
	env, err := q.env(r, v)
	if err != nil {
		return d, nil, err
	}
	req := query.Request{Values: br.Values}
	if req.Values == nil {
		req.Values = url.Values{}
	}
	var only []int64
	if !br.All {
		only = br.IDs
	}
	var applied url.Values
	ids, err := q.objects.DeleteMany(r.Context(), t, obj.Key, dataobject.BatchDelete{
		Select: func(ctx context.Context, tx pgx.Tx) (string, []any, error) {
			sql, args, a, err := query.Matching(ctx, tx, d, env, req, only)
			applied = a
			return sql, args, err
		},
		Actor: actorOf(v), Target: "query:" + d.Key, DryRun: !br.Confirm,
		// filter points at the conditions in force, which Select fills in before the audit entry is written.
		Detail: map[string]any{"query": d.Key, "filter": &applied, "all_matching": br.All},
	})
	if err != nil {
		return d, nil, err
	}
	if ids == nil {
		ids = []int64{}
	}
	return d, &batchResult{Count: len(ids), IDs: ids, Deleted: br.Confirm}, nil
}

// deleteData is the confirmation page and, once confirmed, the outcome.
type deleteData struct {
	Key, Title     string
	Count          int
	Done           bool
	All            bool
	IDs            []int64
	Action, Back   string
	Error          string
	NothingMatches bool
}

// batchDeleteForm: the first POST (from the result page: checked rows, or "all") shows how many
// rows will be deleted; the confirmation POST deletes them.
func (q *queryPages) batchDeleteForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := r.ParseForm(); err != nil {
		return fault.Errorf(fault.Invalid, "form: %v", err)
	}
	values, err := requestOf(r) // the search is in the URL, as on the result page
	if err != nil {
		return err
	}
	br := batchRequest{Values: values.Values, All: r.PostFormValue("all") == "1", Confirm: r.PostFormValue("confirm") == "1"}
	for _, s := range r.PostForm["id"] {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return fault.Errorf(fault.Invalid, "row id %q is not a record id", s)
		}
		br.IDs = append(br.IDs, id)
	}
	d, res, err := q.batchDelete(r, v, br)
	if err != nil {
		return err
	}
	back := "/queries/" + d.Key + "?" + values.Values.Encode()
	data := deleteData{Key: d.Key, Title: d.Title.In(v.lang), Count: res.Count, Done: res.Deleted, All: br.All, IDs: br.IDs,
		Action: r.URL.RequestURI(), Back: back, NothingMatches: res.Count == 0}
	q.s.render(w, r, v, http.StatusOK, "query_delete", "queries.delete.title", data)
	return nil
}

// apiBatchDelete: POST {"values": {...}, "ids": [...] | "all": true, "confirm": false|true}.
// Without confirm it only counts ({"count", "ids", "deleted": false}); with it, it deletes.
func (q *queryPages) apiBatchDelete(w http.ResponseWriter, r *http.Request, v *visit) error {
	var body struct {
		Values  map[string][]string `json:"values"`
		IDs     []int64             `json:"ids"`
		All     bool                `json:"all"`
		Confirm bool                `json:"confirm"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.All && len(body.IDs) > 0 {
		return fault.Errorf(fault.Invalid, "name ids or all, not both")
	}
	_, res, err := q.batchDelete(r, v, batchRequest{Values: body.Values, IDs: body.IDs, All: body.All, Confirm: body.Confirm})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
