package db_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
)

func newDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(dbtest.BaseDir(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "pg")
}

func mustStart(t *testing.T, dir string) *db.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := db.StartCluster(ctx, db.ClusterOptions{DataDir: dir, Database: "ctid"})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	return c
}

func mustQueryInt(t *testing.T, url, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestLauncherStartStopRestart(t *testing.T) {
	dir := newDataDir(t)
	c := mustStart(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatalf("initdb did not run: %v", err)
	}
	url := c.URL()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	// No TCP listener unless configured.
	if got := mustQueryInt(t, url, "SELECT CASE WHEN current_setting('listen_addresses') = '' THEN 1 ELSE 0 END"); got != 1 {
		t.Errorf("server listens on TCP without a port configured")
	}
	pid := c.PID()
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("postgres pid %d still running after Stop", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid left behind after a clean stop: %v", err)
	}
	c = mustStart(t, dir)
	defer c.Stop()
	if got := mustQueryInt(t, c.URL(), "SELECT n FROM kept"); got != 42 {
		t.Fatalf("data after restart = %d, want 42", got)
	}
}

func TestLauncherLongDataDirUsesShortSocket(t *testing.T) {
	dir := newDataDir(t)
	deep := filepath.Join(filepath.Dir(dir), strings.Repeat("d", 60), strings.Repeat("e", 60), "pg")
	if err := os.MkdirAll(filepath.Dir(deep), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(filepath.Dir(deep)), filepath.Dir(deep)} {
		os.Chmod(p, 0o755)
	}
	c := mustStart(t, deep)
	defer c.Stop()
	if got := mustQueryInt(t, c.URL(), "SELECT 7"); got != 7 {
		t.Fatalf("query = %d", got)
	}
}

// startChild runs the test binary as a second process that starts a cluster on dir.
func startChild(t *testing.T, dir string) (cmd *exec.Cmd, pgPID int, stdin io.WriteCloser) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDataDirEnv+"="+dir)
	stdin, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		cmd.Process.Kill()
		t.Fatalf("child did not start a cluster: %q %v", line, err)
	}
	pgPID, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
	return cmd, pgPID, stdin
}

func TestLauncherAfterSIGKILL(t *testing.T) {
	dir := newDataDir(t)
	child, oldPID, _ := startChild(t, dir)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	// The server of the killed process is still running with its postmaster.pid.
	if syscall.Kill(oldPID, 0) != nil {
		t.Fatalf("expected the orphaned postgres %d to still run", oldPID)
	}
	c := mustStart(t, dir)
	defer c.Stop()
	if syscall.Kill(oldPID, 0) == nil && c.PID() != oldPID {
		t.Fatalf("old server %d still runs beside the new one %d", oldPID, c.PID())
	}
	if got := mustQueryInt(t, c.URL(), "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkpointer'"); got != 1 {
		t.Fatalf("checkpointers = %d, want exactly one server", got)
	}
}

func TestLauncherSecondProcessRefused(t *testing.T) {
	dir := newDataDir(t)
	child, pgPID, stdin := startChild(t, dir)
	defer func() {
		stdin.Close() // the child stops its cluster when stdin closes
		child.Wait()
		if syscall.Kill(pgPID, 0) == nil {
			t.Errorf("child's postgres %d survived its clean stop", pgPID)
		}
	}()
	_, err := db.StartCluster(context.Background(), db.ClusterOptions{DataDir: dir})
	if err == nil {
		t.Fatal("second StartCluster on a directory in use succeeded")
	}
	if !strings.Contains(err.Error(), "in use by another ctid process") {
		t.Fatalf("error does not say the directory is in use: %v", err)
	}
	if syscall.Kill(pgPID, 0) != nil {
		t.Fatalf("the first process's server died when the second was refused")
	}
	// An admin command may attach to the running server instead, and leaves it running.
	c, err := db.StartCluster(context.Background(), db.ClusterOptions{DataDir: dir, Attach: true})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if got := mustQueryInt(t, c.URL(), "SELECT 5"); got != 5 {
		t.Fatalf("attached query = %d", got)
	}
	c.Stop()
	if syscall.Kill(pgPID, 0) != nil {
		t.Fatalf("stopping an attached cluster stopped the other process's server")
	}
}

func TestLauncherRefusesForeignNonEmptyDir(t *testing.T) {
	dir := newDataDir(t)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	_, err := db.StartCluster(context.Background(), db.ClusterOptions{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("want a 'not empty' error, got %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
		t.Fatalf("existing file changed")
	}
}

func TestLauncherUnreachableDirAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	parent, err := os.MkdirTemp(dbtest.BaseDir(), "private")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o700)
	_, err = db.StartCluster(context.Background(), db.ClusterOptions{DataDir: filepath.Join(parent, "pg")})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the data directory") {
		t.Fatalf("want a clear reachability error, got %v", err)
	}
}
