package cti

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testLogger writes to the test log when -v, else nowhere.
func testLogger(tb testing.TB) *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustTenant(tb testing.TB, store *account.Store, code string) *account.Tenant {
	tb.Helper()
	t, err := store.CreateTenant(context.Background(), account.NewTenant{Code: code, Name: code}, account.CLI)
	if err != nil {
		tb.Fatalf("create tenant %s: %v", code, err)
	}
	return t
}

// runningLog starts an event log on pool, stopped when the test ends.
func runningLog(tb testing.TB, pool *pgxpool.Pool) (*EventLog, *metrics) {
	tb.Helper()
	m := newMetrics(prometheus.NewRegistry())
	l := NewEventLog(pool, testLogger(tb), m)
	ctx, cancel := context.WithCancel(context.Background())
	go l.Run(ctx)
	tb.Cleanup(func() { cancel(); l.Wait() })
	return l, m
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
