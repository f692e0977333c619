package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Timeouts of the embedded server's life cycle.
const (
	startTimeout = 60 * time.Second // initdb of a fresh cluster plus crash recovery
	stopTimeout  = 30 * time.Second // fast shutdown; after it, immediate shutdown
	// maxSocketPath is the longest Unix socket path the kernel accepts (sun_path is 108 bytes with NUL).
	maxSocketPath = 107
	superuser     = "ctid"
	// socketPort names the socket file (.s.PGSQL.<port>) when no TCP port is configured.
	socketPort = 5432
)

// ClusterOptions configure the embedded PostgreSQL server.
type ClusterOptions struct {
	DataDir  string // cluster directory; created and initialised when empty
	Port     int    // TCP port on 127.0.0.1; 0 means Unix socket only
	Database string // database created when missing
	// Durable false turns fsync off: for throwaway test clusters only.
	Durable bool
	// Attach lets an admin command (migrate, tenant create) use the server of a running
	// `ctid serve` on the same data directory instead of refusing.
	Attach bool
	Logger *slog.Logger
}

// Cluster is a PostgreSQL server that ctid started and owns.
type Cluster struct {
	opts      ClusterOptions
	binDir    string
	socketDir string
	runAs     *syscall.Credential // nil: run as ourselves
	lock      *os.File
	cmd       *exec.Cmd
	attached  bool // the server belongs to another ctid process
	exited    chan struct{}
	logFile   *os.File
	log       *slog.Logger
}

// StartCluster finds the PostgreSQL binaries, initialises the data directory when it is
// empty, starts the server and creates the database. The caller must Stop it.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Database == "" {
		opts.Database = "ctid"
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", opts.DataDir, err)
	}
	opts.DataDir = dataDir
	binDir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, binDir: binDir, log: opts.Logger.With("component", "postgres")}
	if os.Geteuid() == 0 {
		if c.runAs, err = postgresCredential(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return nil, fmt.Errorf("create parent of data directory: %w", err)
	}
	if err := c.acquireLock(); err != nil {
		if errors.Is(err, errInUse) && opts.Attach {
			return c.attach(ctx)
		}
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		c.releaseLock()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	dir := c.opts.DataDir
	if err := c.checkReachable(); err != nil {
		return err
	}
	initialised, err := c.prepareDataDir()
	if err != nil {
		return err
	}
	if !initialised {
		if err := c.initdb(ctx); err != nil {
			return err
		}
	}
	if err := c.stopLeftover(); err != nil {
		return err
	}
	c.socketDir = socketDir(dir, c.port())
	if c.socketDir != dir {
		if err := os.MkdirAll(c.socketDir, 0o700); err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
		if err := c.chown(c.socketDir); err != nil {
			return err
		}
	}
	return c.run(ctx)
}

// socketDir is where the server's socket lives: the data directory, unless that makes the
// socket path too long for the kernel; then a short directory derived from the data directory.
func socketDir(dataDir string, port int) string {
	if len(filepath.Join(dataDir, ".s.PGSQL."+strconv.Itoa(port))) <= maxSocketPath {
		return dataDir
	}
	sum := sha256.Sum256([]byte(dataDir))
	return filepath.Join(os.TempDir(), "ctid-pg-"+hex.EncodeToString(sum[:6]))
}

// attach uses the server that another ctid process runs on the data directory.
func (c *Cluster) attach(ctx context.Context) (*Cluster, error) {
	c.socketDir = socketDir(c.opts.DataDir, c.port())
	c.attached = true
	if err := c.createDatabase(ctx); err != nil {
		return nil, fmt.Errorf("attach to the running server on %s: %w", c.opts.DataDir, err)
	}
	return c, nil
}

// port is the server's port: the TCP port when one is configured, else the number that names the socket.
func (c *Cluster) port() int {
	if c.opts.Port != 0 {
		return c.opts.Port
	}
	return socketPort
}

// FindBinaries returns the directory of the newest PostgreSQL server binaries (version 13 or
// later): the one holding `postgres` on PATH first, then /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	var candidates []string
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	versionOf := func(d string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return v
	}
	// newest first
	for i := 1; i < len(dirs); i++ {
		for j := i; j > 0 && versionOf(dirs[j]) > versionOf(dirs[j-1]); j-- {
			dirs[j], dirs[j-1] = dirs[j-1], dirs[j]
		}
	}
	candidates = append(candidates, dirs...)
	var tooOld []string
	for _, d := range candidates {
		if !isExecutable(filepath.Join(d, "postgres")) || !isExecutable(filepath.Join(d, "initdb")) {
			continue
		}
		major, err := serverMajorVersion(filepath.Join(d, "postgres"))
		if err != nil {
			continue
		}
		if major < 13 {
			tooOld = append(tooOld, fmt.Sprintf("%s (version %d)", d, major))
			continue
		}
		return d, nil
	}
	msg := "no PostgreSQL server binaries (postgres, initdb; version 13 or later) found on PATH or under /usr/lib/postgresql/*/bin"
	if len(tooOld) > 0 {
		msg += "; too old: " + strings.Join(tooOld, ", ")
	}
	return "", errors.New(msg + ". Install them (Debian/Ubuntu: apt-get install postgresql) or point ctid at a server with database.url / CTID_DATABASE_URL")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// serverMajorVersion runs `postgres --version`, which prints e.g. "postgres (PostgreSQL) 15.18 (Debian ...)".
func serverMajorVersion(postgres string) (int, error) {
	out, err := exec.Command(postgres, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", postgres, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return 0, fmt.Errorf("%s --version: unexpected output %q", postgres, out)
	}
	major, err := strconv.Atoi(strings.SplitN(fields[2], ".", 2)[0])
	if err != nil {
		return 0, fmt.Errorf("%s --version: unexpected output %q", postgres, out)
	}
	return major, nil
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("ctid runs as root and PostgreSQL refuses to: it starts the server as the 'postgres' system user, " +
			"which does not exist here (it comes with Debian's postgresql package; or create it: useradd --system postgres)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// checkReachable makes sure the server's user can traverse every parent of the data directory.
// A clone in a private temporary directory (mode 0700, owned by root) is the usual trap.
func (c *Cluster) checkReachable() error {
	if c.runAs == nil {
		return nil
	}
	for dir := filepath.Dir(c.opts.DataDir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("data directory parent %s: %w", dir, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		ok := mode&0o001 != 0 ||
			(st.Gid == c.runAs.Gid && mode&0o010 != 0) ||
			(st.Uid == c.runAs.Uid && mode&0o100 != 0)
		if !ok {
			return fmt.Errorf("ctid runs as root, so it runs PostgreSQL as the 'postgres' user, which cannot reach the data directory %s: "+
				"its parent %s has mode %04o and is owned by uid %d. Put database.data_dir (CTID_DATABASE_DATA_DIR) under a directory "+
				"every user can traverse (e.g. /var/lib/ctid/pg), run `chmod o+x %s`, or set database.url",
				c.opts.DataDir, dir, mode, st.Uid, dir)
		}
		if dir == "/" {
			return nil
		}
	}
}

// prepareDataDir creates the data directory and reports whether it already holds a cluster.
func (c *Cluster) prepareDataDir() (bool, error) {
	dir := c.opts.DataDir
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return true, c.chown(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read data directory: %w", err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("data directory %s is not empty and holds no PostgreSQL cluster (no PG_VERSION); "+
			"empty it or choose another database.data_dir", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create data directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, fmt.Errorf("data directory mode: %w", err)
	}
	return false, c.chown(dir)
}

func (c *Cluster) chown(dir string) error {
	if c.runAs == nil {
		return nil
	}
	uid, gid := int(c.runAs.Uid), int(c.runAs.Gid)
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("give %s to the postgres user: %w", dir, err)
	}
	return nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Own process group: a terminal's ctrl-C reaches ctid, which stops the server last.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.runAs}
	cmd.Dir = "/"
	return cmd
}

func (c *Cluster) initdb(ctx context.Context) error {
	c.log.Info("initialising PostgreSQL cluster", "dir", c.opts.DataDir)
	// Local (socket) connections are trusted: the socket lives in the 0700 data directory, so only
	// the server's own user and root reach it. TCP, when configured, stays on loopback.
	cmd := c.command(ctx, "initdb", "-D", c.opts.DataDir, "-U", superuser, "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=trust", "--no-instructions")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb %s: %w: %s", c.opts.DataDir, err, lastLines(string(out), 5))
	}
	return nil
}

// stopLeftover stops a server left running by a ctid that was killed (SIGKILL) before it
// could stop it. We hold the directory lock, so no live ctid owns that server.
func (c *Cluster) stopLeftover() error {
	pid, err := postmasterPID(c.opts.DataDir)
	if err != nil || pid == 0 || !processAlive(pid) {
		return nil // no pid file, or a stale one that postgres itself will replace
	}
	c.log.Warn("stopping PostgreSQL server left running by an earlier ctid", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGINT) // fast shutdown
	if waitGone(pid, stopTimeout) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	if waitGone(pid, stopTimeout) {
		return nil
	}
	return fmt.Errorf("PostgreSQL server pid %d on %s did not stop", pid, c.opts.DataDir)
}

func postmasterPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !processAlive(pid) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (c *Cluster) run(ctx context.Context) error {
	logPath := filepath.Join(c.opts.DataDir, "ctid-postgres.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	c.logFile = lf
	listen := ""
	if c.opts.Port != 0 {
		listen = "127.0.0.1"
	}
	args := []string{"-D", c.opts.DataDir,
		"-c", "listen_addresses=" + listen,
		"-c", "port=" + strconv.Itoa(c.port()),
		"-c", "unix_socket_directories=" + c.socketDir,
		"-c", "unix_socket_permissions=0700",
		"-c", "max_connections=200",
	}
	if !c.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	// The server must outlive ctx: it is stopped by Stop, after everything using it.
	cmd := c.command(context.WithoutCancel(ctx), "postgres", args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	c.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	if err := c.waitReady(ctx); err != nil {
		c.stopServer()
		lf.Close()
		return err
	}
	c.log.Info("PostgreSQL ready", "dir", c.opts.DataDir, "socket", c.socketDir, "pid", cmd.Process.Pid)
	return c.createDatabase(ctx)
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited while starting: %s", lastLines(readFile(c.logFile.Name()), 5))
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections within %s: %v", startTimeout, lastErr)
		case <-time.After(50 * time.Millisecond):
		}
		conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		lastErr = err
	}
}

func (c *Cluster) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("connect to embedded server: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", c.opts.Database).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %q: %w", c.opts.Database, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{c.opts.Database}.Sanitize()); err != nil {
		return fmt.Errorf("create database %q: %w", c.opts.Database, err)
	}
	return nil
}

// ConnString is the libpq keyword/value connection string for database dbname on this cluster.
func (c *Cluster) ConnString(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.socketDir, c.port(), superuser, dbname)
}

// URL is the connection string of the cluster's configured database.
func (c *Cluster) URL() string { return c.ConnString(c.opts.Database) }

// PID is the server's process id (0 when attached to another process's server).
func (c *Cluster) PID() int {
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Stop shuts the server down (fast shutdown, then immediate) and releases the data directory.
func (c *Cluster) Stop() error {
	err := c.stopServer()
	if c.logFile != nil {
		c.logFile.Close()
	}
	c.releaseLock()
	return err
}

func (c *Cluster) stopServer() error {
	if c.attached || c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown: roll back sessions, checkpoint, exit
	select {
	case <-c.exited:
		c.log.Info("PostgreSQL stopped")
		return nil
	case <-time.After(stopTimeout):
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
		return errors.New("postgres needed an immediate shutdown")
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		return errors.New("postgres did not stop; killed")
	}
}

var errInUse = errors.New("cannot start PostgreSQL")

// acquireLock takes an exclusive lock beside the data directory for as long as this process
// runs. The kernel drops it when the process dies, even by SIGKILL, so a lock we cannot take
// means another live ctid uses the directory.
func (c *Cluster) acquireLock() error {
	path := c.opts.DataDir + ".lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: data directory %s is in use by another ctid process (pid %s); "+
				"stop it first or give this one another database.data_dir", errInUse, c.opts.DataDir, strings.TrimSpace(string(owner)))
		}
		return fmt.Errorf("lock data directory: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	c.lock = f
	return nil
}

func (c *Cluster) releaseLock() {
	if c.lock != nil {
		_ = syscall.Flock(int(c.lock.Fd()), syscall.LOCK_UN)
		c.lock.Close()
		c.lock = nil
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
