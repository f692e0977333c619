// Package dataobject owns data objects (数据对象) and their fields, code tables (编码),
// records such as customers, phone normalisation, caller matching, and import/export.
//
// A data object is a real table obj_<key> in the tenant's schema; the catalogue tables
// (data_objects, data_fields) describe it and are written in the same transaction as the DDL.
package dataobject

import (
	"context"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db"
)

// Defaults of caller matching.
const (
	DefaultLastDigits  = 8          // last-N-digit matching, the weakest rule
	DefaultLookupLimit = 10         // matches returned by Lookup
	minLastDigits      = lookupTail // fewer digits would match half the city (and phone_keys_tail is keyed by 6)
)

// FieldUsage names the saved queries that use field (a column) of an object's table; the
// query package provides it (query.FieldUsers) so that renaming or hiding a field never breaks
// a query silently. tx is scoped to the tenant.
type FieldUsage func(ctx context.Context, tx pgx.Tx, table, field string) ([]string, error)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	LastDigits  int // N of last-N-digit caller matching (default 8)
	LookupLimit int // matches returned by Lookup (default 10)
	FieldUsage  FieldUsage
}

// Store reads and writes data objects, code tables and records of every tenant.
type Store struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	metrics *metrics
	opts    Options
	lookups lookupCache
	readers sync.Map // region → *phoneReader, for callers' numbers
}

// New makes a Store on pool. reg receives the package's metrics (nil: not registered).
func New(pool *pgxpool.Pool, logger *slog.Logger, reg prometheus.Registerer, opts Options) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.LastDigits <= 0 {
		opts.LastDigits = DefaultLastDigits
	}
	opts.LastDigits = max(opts.LastDigits, minLastDigits)
	if opts.LookupLimit <= 0 {
		opts.LookupLimit = DefaultLookupLimit
	}
	return &Store{pool: pool, log: logger.With("component", "dataobject"), metrics: newMetrics(reg), opts: opts}
}

// phoneReader returns the Store's reader of region's numbers, built once per region: a
// caller's number is read by the region's phone plan, not libphonenumber, when it can be.
func (s *Store) phoneReader(region string) *phoneReader {
	if r, ok := s.readers.Load(region); ok {
		return r.(*phoneReader)
	}
	r, _ := s.readers.LoadOrStore(region, newPhoneReader(region))
	return r.(*phoneReader)
}

// inTenant runs fn in a transaction scoped to t's schema.
func (s *Store) inTenant(ctx context.Context, t *account.Tenant, fn func(pgx.Tx) error) error {
	return db.InTenant(ctx, s.pool, t.Scope(), fn)
}

type metrics struct {
	lookups            *prometheus.CounterVec
	lookupSeconds      prometheus.Histogram
	importedRows       prometheus.Counter
	catalogueListening prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_dataobject_lookups_total",
			Help: "Caller lookups by best match reason (none when nothing matched).",
		}, []string{"reason"}),
		lookupSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ctid_dataobject_lookup_seconds",
			Help:    "Time to match a caller number to records.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .05, .25},
		}),
		importedRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ctid_dataobject_imported_rows_total",
			Help: "Records written by imports.",
		}),
		catalogueListening: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ctid_dataobject_catalogue_listening",
			Help: "1 while catalogue changes made by other processes reach this one's lookups at once (0: within 5 s).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.lookups, m.lookupSeconds, m.importedRows, m.catalogueListening)
	}
	return m
}
