package query

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/fault"
)

// maxBatchIDs is how many row ids a batch request may name.
const maxBatchIDs = 10_000

// Matching compiles a statement that selects the id of every row d matches for the viewer in
// env: the same conditions (defaults included), soft-delete filter and row scope as a run,
// so a user can only ever select rows they could see. With only, it selects just those of
// the given ids that match: ids outside the user's scope or the conditions are left out,
// whatever the request names. It reads the catalogue in tx, whose search_path is the
// tenant's schema, so the caller can run the statement in the same transaction (as a
// subquery of its UPDATE). The query must offer batch delete.
func Matching(ctx context.Context, tx pgx.Tx, d *Definition, env *Env, req Request, only []int64) (sql string, args []any, applied map[string][]string, err error) {
	if !d.Offers(BatchDelete) {
		return "", nil, nil, fault.Errorf(fault.Forbidden, "query %q does not offer batch delete", d.Key)
	}
	if len(only) > maxBatchIDs {
		return "", nil, nil, fault.Errorf(fault.Invalid, "a batch names %d rows; at most %d: select all matching rows instead", len(only), maxBatchIDs)
	}
	cat, err := LoadCatalogue(ctx, tx)
	if err != nil {
		return "", nil, nil, err
	}
	p, err := Compile(d, cat, env, req)
	if err != nil {
		return "", nil, nil, err
	}
	if p.matchSQL == "" {
		return "", nil, nil, invalid(d, "table %q has no whole-number %q field to select rows by", d.Source.Table, idField)
	}
	sql, args = p.matchSQL, p.matchArgs
	if only != nil {
		args = append(append([]any(nil), args...), only)
		sql = "SELECT m." + qi(idField) + " FROM (" + sql + ") AS m WHERE m." + qi(idField) + " = ANY($" + strconv.Itoa(len(args)) + ")"
	}
	return sql, args, p.Applied, nil
}
