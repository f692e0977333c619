package query

import "context"

// SetBeforeCommit makes r run fn just before each rollup batch commits (a crash there is an
// error that rolls the batch back).
func SetBeforeCommit(r *Rollups, fn func(context.Context) error) { r.beforeCommit = fn }
