package web

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

type queryJSON struct {
	Key         string      `json:"key"`
	Title       query.Label `json:"title"`
	Description query.Label `json:"description"`
	Builtin     bool        `json:"builtin"`
}

func (q *queryPages) apiList(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	defs, err := q.svc.List(r.Context(), t)
	if err != nil {
		return err
	}
	items := []queryJSON{}
	for _, d := range defs {
		items = append(items, queryJSON{Key: d.Key, Title: d.Title, Description: d.Description, Builtin: d.Builtin})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": len(items)})
	return nil
}

// apiGet returns the definition: the same JSON that PUT and the admin page's import accept.
func (q *queryPages) apiGet(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	d, err := q.svc.Get(r.Context(), t, r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func readDefinition(r *http.Request) (*query.Definition, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "request body: %v", err)
	}
	return query.Import(b)
}

func (q *queryPages) apiSave(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	d, err := readDefinition(r)
	if err != nil {
		return err
	}
	if d.Key != r.PathValue("key") {
		return fault.Errorf(fault.Invalid, "the definition's key %q differs from the path's %q", d.Key, r.PathValue("key"))
	}
	if err := q.svc.Save(r.Context(), t, d, v.user.Username); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (q *queryPages) apiDelete(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	if err := q.svc.Delete(r.Context(), t, r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// runJSON is a page of results: rows as objects by column key, with formatted text beside.
type runJSON struct {
	Columns []query.OutColumn   `json:"columns"`
	Rows    []map[string]any    `json:"rows"`
	Text    []map[string]string `json:"text"`
	Total   int64               `json:"total"`
	Totals  map[string]any      `json:"totals,omitempty"`
	Next    string              `json:"next,omitempty"`
	Applied map[string][]string `json:"applied"`
}

func (q *queryPages) apiRun(w http.ResponseWriter, r *http.Request, v *visit) error {
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
	req, err := requestOf(r)
	if err != nil {
		return err
	}
	res, err := q.svc.Run(r.Context(), t, env, d, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRunJSON(res, env))
	return nil
}

func toRunJSON(res *query.Result, env *query.Env) runJSON {
	out := runJSON{Columns: res.Columns, Rows: []map[string]any{}, Text: []map[string]string{}, Total: res.Total,
		Totals: res.Totals, Next: res.Next, Applied: res.Applied}
	for _, row := range res.Rows {
		obj, text := map[string]any{}, map[string]string{}
		for i, c := range res.Columns {
			obj[c.Key] = row[i]
			text[c.Key] = query.Format(c, row[i], env)
		}
		out.Rows = append(out.Rows, obj)
		out.Text = append(out.Text, text)
	}
	return out
}

func (q *queryPages) apiExport(w http.ResponseWriter, r *http.Request, v *visit) error {
	return q.streamExport(w, r, v)
}

// apiPreview runs an unsaved definition (first page) and shows PostgreSQL's plan: the
// editor's preview and EXPLAIN. Body: {"definition": {...}, "values": {...}, "sort": ""}.
func (q *queryPages) apiPreview(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	var body struct {
		Definition json.RawMessage     `json:"definition"`
		Values     map[string][]string `json:"values"`
		Sort       string              `json:"sort"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	d, err := query.Import(body.Definition)
	if err != nil {
		return err
	}
	env, err := q.env(r, v)
	if err != nil {
		return err
	}
	req := query.Request{Values: body.Values, Sort: body.Sort, PageSize: 10}
	res, err := q.svc.Run(r.Context(), t, env, d, req)
	if err != nil {
		return err
	}
	plan, err := q.svc.Explain(r.Context(), t, env, d, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": toRunJSON(res, env), "explain": plan})
	return nil
}

func (q *queryPages) apiTables(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	cat, err := q.svc.Catalogue(r.Context(), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": cat.Tables()})
	return nil
}
