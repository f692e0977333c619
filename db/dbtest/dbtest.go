// Package dbtest gives tests a real PostgreSQL: one embedded cluster per test binary, started
// by the same launcher ctid uses, and a fresh migrated database per test.
package dbtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
)

const template = "ctid_template"

var (
	cluster  *db.Cluster
	baseDir  string
	counter  atomic.Int64
	tmplOnce sync.Once
	tmplErr  error
)

// Main starts the cluster, runs the tests and stops it: call it from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	// A directory of our own per test binary: `go test ./...` runs binaries in parallel.
	// Mode 0755 so that the postgres user can reach the data directory when tests run as root.
	baseDir, err = MakeReachableTempDir("ctid-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		return 1
	}
	defer os.RemoveAll(baseDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cluster, err = db.StartCluster(ctx, db.ClusterOptions{DataDir: filepath.Join(baseDir, "pg"), Database: "postgres"})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbtest: start PostgreSQL:", err)
		return 1
	}
	defer cluster.Stop()
	return m.Run()
}

// MakeReachableTempDir makes a temporary directory that every user may traverse.
func MakeReachableTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}

// Cluster is the test binary's running cluster.
func Cluster() *db.Cluster { return cluster }

// BaseDir is a directory owned by this test binary, reachable by the postgres user.
func BaseDir() string { return baseDir }

func makeTemplate() error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cluster.ConnString("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+template); err != nil {
		return err
	}
	pool, err := db.Open(ctx, cluster.ConnString(template))
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = db.Migrate(ctx, pool)
	return err
}

// NewDatabase creates a fresh database with the platform schema migrated, and returns a pool
// on it and its connection string. Both are dropped when the test ends.
func NewDatabase(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	tmplOnce.Do(func() { tmplErr = makeTemplate() })
	if tmplErr != nil {
		tb.Fatalf("dbtest: template database: %v", tmplErr)
	}
	ctx := context.Background()
	name := fmt.Sprintf("t%d_%s", counter.Add(1), sanitize(tb.Name()))
	conn, err := pgx.Connect(ctx, cluster.ConnString("postgres"))
	if err != nil {
		tb.Fatalf("dbtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+template); err != nil {
		tb.Fatalf("dbtest: create database: %v", err)
	}
	url := cluster.ConnString(name)
	pool, err := db.Open(ctx, url)
	if err != nil {
		tb.Fatalf("dbtest: open: %v", err)
	}
	tb.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(ctx, cluster.ConnString("postgres"))
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return pool, url
}

func sanitize(name string) string {
	name = strings.ToLower(name)
	var b strings.Builder
	for _, r := range name {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}
