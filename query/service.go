package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Time limits of query runs (statement_timeout of the reader transaction).
const (
	runTimeout    = 15 * time.Second
	exportTimeout = 15 * time.Minute
	maxExportRows = 5_000_000
)

// Service stores definitions and runs them for a tenant's users.
type Service struct {
	pool    *pgxpool.Pool
	readers *db.Readers
	log     *slog.Logger
	m       *metrics
	rollups *Rollups
	sources *sourcePools
	exports *ExportJobs
}

// New builds the query service on the platform pool (definitions, allow-list) and the
// tenants' reader pools (every run).
func New(pool *pgxpool.Pool, readers *db.Readers, logger *slog.Logger, reg prometheus.Registerer) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{pool: pool, readers: readers, log: logger.With("component", "query"), m: newMetrics(reg),
		rollups: NewRollups(pool, logger, reg), sources: &sourcePools{pools: map[string]*pgxpool.Pool{}}}
	s.exports = newExportJobs(s, pool, logger, reg)
	return s
}

// Rollups is the statistics rollup worker (run it: go s.Rollups().Run(ctx, accounts.ListTenants)).
func (s *Service) Rollups() *Rollups { return s.rollups }

// catchUp brings the rollups up to date before a run of a query that reads them, so its
// numbers include every event committed before the run.
func (s *Service) catchUp(ctx context.Context, t *account.Tenant, d *Definition) error {
	if d.IsSQL() || d.Source.External != "" || !rollupSources[d.Source.Table] {
		return nil
	}
	_, err := s.rollups.CatchUp(ctx, t, catchUpBatches)
	return err
}

type metrics struct {
	runs       *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	exportRows prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_query_runs_total", Help: "Query runs by kind (page, export, explain) and result (ok, refused, error).",
		}, []string{"kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ctid_query_run_seconds", Help: "Query run latency by kind.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
		}, []string{"kind"}),
		exportRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ctid_query_export_rows_total", Help: "Rows written by query exports.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.duration, m.exportRows)
	}
	return m
}

func (m *metrics) observe(kind string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case fault.CodeOf(err) == fault.Internal:
		result = "error"
	default:
		result = "refused"
	}
	m.runs.WithLabelValues(kind, result).Inc()
	m.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

// Result is one page of a run.
type Result struct {
	Columns []OutColumn    `json:"columns"`
	Rows    [][]any        `json:"rows"`
	Total   int64          `json:"total"`
	Totals  map[string]any `json:"totals,omitempty"`
	Offset  int            `json:"offset"`
	Size    int            `json:"page_size"`
	Next    string         `json:"next,omitempty"` // token of the next page; "" on the last
	Applied url.Values     `json:"applied"`
	Keyset  bool           `json:"keyset"`
}

// plan compiles d inside the reader transaction tx: the catalogue and, for SQL text, the
// result's columns are read there, as the tenant's reader sees them.
func plan(ctx context.Context, tx pgx.Tx, d *Definition, env *Env, req Request) (*Plan, error) {
	if !d.IsSQL() {
		cat, err := loadCatalogue(ctx, tx, d.Source.External == "")
		if err != nil {
			return nil, err
		}
		return Compile(d, cat, env, req)
	}
	p := &Plan{Applied: url.Values{}}
	inner, err := BindSQL(d, env, req, p)
	if err != nil {
		return nil, err
	}
	outputs, err := describe(ctx, tx, inner)
	if err != nil {
		return nil, err
	}
	if err := CompileSQL(d, inner, outputs, env, req, p); err != nil {
		return nil, err
	}
	return p, nil
}

// describe runs a SQL-text query for no rows to learn its result's column names.
func describe(ctx context.Context, tx pgx.Tx, inner *SQLInner) ([]string, error) {
	rows, err := tx.Query(ctx, "SELECT * FROM "+inner.SQL+" AS q LIMIT 0", inner.Args...)
	if err != nil {
		return nil, sqlTextError(err)
	}
	fields := rows.FieldDescriptions()
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, sqlTextError(err)
	}
	names := make([]string, 0, len(fields))
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.Name] {
			return nil, fault.Errorf(fault.Invalid, "SQL text returns two columns named %q: name them apart with AS", f.Name)
		}
		seen[f.Name] = true
		names = append(names, f.Name)
	}
	return names, nil
}

// sqlTextError shows a SQL-text query's database error to its author (it names their SQL);
// a refused permission is Forbidden: another schema or the platform tables.
func sqlTextError(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch pg.Code {
	case "42501":
		return fault.Errorf(fault.Forbidden, "SQL text: %s", pg.Message)
	case "57014":
		return fault.Errorf(fault.Unavailable, "SQL text: the query took longer than its time limit")
	case "25006":
		return fault.Errorf(fault.Forbidden, "SQL text: queries may only read (%s)", pg.Message)
	}
	return fault.Errorf(fault.Invalid, "SQL text: %s", pg.Message)
}

// runError maps a database error of a compiled query.
func runError(d *Definition, err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		if d.IsSQL() {
			return sqlTextError(err)
		}
		if pg.Code == "57014" {
			return fault.Errorf(fault.Unavailable, "query %q took longer than its time limit: narrow the conditions", d.Key)
		}
	}
	if fault.CodeOf(err) != fault.Internal {
		return err
	}
	return fmt.Errorf("run query %q: %w", d.Key, err)
}

// Run runs one page of d for the viewer in env, as tenant t's reader.
func (s *Service) Run(ctx context.Context, t *account.Tenant, env *Env, d *Definition, req Request) (res *Result, err error) {
	start := time.Now()
	defer func() { s.m.observe("page", start, err) }()
	if env.Loc == nil {
		env.Loc = t.Location()
	}
	if err := s.catchUp(ctx, t, d); err != nil {
		return nil, err
	}
	err = s.readOnly(ctx, t, d, runTimeout, func(tx pgx.Tx) error {
		p, err := plan(ctx, tx, d, env, req)
		if err != nil {
			return err
		}
		res, err = readPage(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, runError(d, err)
	}
	return res, nil
}

func readPage(ctx context.Context, tx pgx.Tx, p *Plan) (*Result, error) {
	res := &Result{Columns: p.Columns, Rows: [][]any{}, Offset: p.Offset, Size: p.Size, Applied: p.Applied, Keyset: p.keyset != nil}
	rows, err := tx.Query(ctx, p.SQL, p.pageArgs()...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n := len(p.Columns)
	var lastKeys []any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		if len(res.Rows) == p.Size {
			res.Next = "more" // replaced below
			break
		}
		row := make([]any, n)
		for i := range n {
			row[i] = normalise(vals[i])
		}
		res.Rows = append(res.Rows, row)
		lastKeys = vals[n:]
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if res.Next != "" {
		tok := token{Sig: p.sortSig}
		if p.keyset != nil {
			for _, v := range lastKeys {
				s, ok := keyString(v)
				if !ok {
					return nil, fmt.Errorf("page token: cannot encode key value %T", v)
				}
				tok.Keys = append(tok.Keys, s)
			}
		} else {
			tok.Offset = p.Offset + p.Size
		}
		res.Next = tok.encode()
	}
	vals := make([]any, 1+len(p.totalKey))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := tx.QueryRow(ctx, p.SummarySQL, p.summaryArgs()...).Scan(ptrs...); err != nil {
		return nil, err
	}
	if f, ok := toFloat(normalise(vals[0])); ok {
		res.Total = int64(f)
	}
	if len(p.totalKey) > 0 {
		res.Totals = map[string]any{}
		for i, k := range p.totalKey {
			res.Totals[k] = normalise(vals[i+1])
		}
	}
	return res, nil
}

// Explain shows PostgreSQL's plan of one page of d (without running it).
func (s *Service) Explain(ctx context.Context, t *account.Tenant, env *Env, d *Definition, req Request) (out string, err error) {
	start := time.Now()
	defer func() { s.m.observe("explain", start, err) }()
	if env.Loc == nil {
		env.Loc = t.Location()
	}
	err = s.readOnly(ctx, t, d, runTimeout, func(tx pgx.Tx) error {
		p, err := plan(ctx, tx, d, env, req)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "EXPLAIN "+p.SQL, p.Args...)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, l := range lines {
			out += l + "\n"
		}
		return nil
	})
	if err != nil {
		return "", runError(d, err)
	}
	return out, nil
}

// Catalogue is tenant t's catalogue as its reader sees it (for the query builder).
func (s *Service) Catalogue(ctx context.Context, t *account.Tenant) (cat *Catalogue, err error) {
	err = s.readers.ReadOnly(ctx, t.Scope(), runTimeout, func(tx pgx.Tx) error {
		cat, err = LoadCatalogue(ctx, tx)
		return err
	})
	return cat, err
}

// Options lists the choices of a drop-down condition whose options come from a code table.
func (s *Service) Options(ctx context.Context, t *account.Tenant, cond Condition) ([]Option, error) {
	if cond.OptionsFrom == nil {
		return cond.Options, nil
	}
	src := cond.OptionsFrom
	var out []Option
	err := s.readers.ReadOnly(ctx, t.Scope(), runTimeout, func(tx pgx.Tx) error {
		cat, err := LoadCatalogue(ctx, tx)
		if err != nil {
			return err
		}
		tb, ok := cat.Table(src.Table)
		if !ok {
			return fault.Errorf(fault.Invalid, "condition %q: options table %q is not queryable", cond.Key, src.Table)
		}
		cols := []string{src.Value, src.LabelEn, src.LabelZh}
		if src.LabelZh == "" {
			cols[2] = src.LabelEn
		}
		for _, c := range cols {
			if _, ok := tb.Field(c); !ok {
				return fault.Errorf(fault.Invalid, "condition %q: options table %q has no field %q", cond.Key, src.Table, c)
			}
		}
		rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s::text, %s::text, %s::text FROM %s ORDER BY 1 LIMIT %d",
			qi(cols[0]), qi(cols[1]), qi(cols[2]), qi(tb.Name), maxChoiceValues))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o Option
			if err := rows.Scan(&o.Value, &o.Label.En, &o.Label.Zh); err != nil {
				return err
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	if err != nil && fault.CodeOf(err) == fault.Internal {
		return nil, fmt.Errorf("options of condition %q: %w", cond.Key, err)
	}
	return out, err
}
