package web

import (
	"net/http"

	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// External read-only data sources of the query engine (config admins). The URL is shown
// back with its password masked.

func (q *queryPages) apiSources(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	list, err := q.svc.Sources(r.Context(), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list, "total": len(list)})
	return nil
}

func (q *queryPages) apiPutSource(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	var in query.SourceInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Key == "" {
		in.Key = r.PathValue("key")
	}
	if in.Key != r.PathValue("key") {
		return fault.Errorf(fault.Invalid, "the source's key %q differs from the path's %q", in.Key, r.PathValue("key"))
	}
	src, err := q.svc.PutSource(r.Context(), t, in, actorOf(v))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, src)
	return nil
}

func (q *queryPages) apiDeleteSource(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	if err := q.svc.DeleteSource(r.Context(), t, r.PathValue("key"), actorOf(v)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiSourceTables is an external source's catalogue: the tables and columns a query on it
// may name.
func (q *queryPages) apiSourceTables(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "queries")
	if err != nil {
		return err
	}
	cat, err := q.svc.SourceCatalogue(r.Context(), t, r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": cat.Tables()})
	return nil
}
