package query

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Export jobs: a large export started from a result page runs in the background into a file
// while the page polls its progress. A job's state is a row of platform.export_jobs (platform
// migration 0150_export_jobs.sql), so any ctid process on the database shows it and a restart
// does not lose it.
//
// A process that runs jobs holds a PostgreSQL advisory lock (exportLockClass, its runner id)
// on a connection of its own for as long as it lives; every job names its runner. A running
// job whose runner's lock is gone belongs to a process that died: the next sweep (at start,
// every exportSweepEvery, and whenever someone reads the job) marks it failed, and the process
// on the job's host removes its file. A stopping process cancels its jobs and marks them
// failed itself. Files of finished jobs are removed ExportJobTTL after they end.

// Limits and periods of export jobs.
const (
	ExportJobTTL     = time.Hour        // a finished export's file and state are kept this long
	MaxExportJobTime = 30 * time.Minute // an export still running then is cancelled
	exportSweepEvery = time.Minute
	// exportForgetAfter: rows of another host's jobs, whose files this process cannot
	// remove, are deleted this long after they ended.
	exportForgetAfter = 7 * 24 * time.Hour
	exportDBTimeout   = 5 * time.Second
	// exportLockClass is the first key of the runners' advisory locks ("ctex").
	exportLockClass = 0x63746578
)

// Export job statuses.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Messages of jobs that did not finish.
const (
	jobInterrupted = "the ctid process running this export stopped before it finished; start the export again"
	jobStopped     = "ctid was stopped before this export finished; start the export again"
)

// ExportJob is the state of one background export.
type ExportJob struct {
	ID         string     `json:"id"`
	TenantID   int64      `json:"-"`
	UserID     int64      `json:"user_id"`
	Query      string     `json:"query"`
	Params     url.Values `json:"params"`
	Format     string     `json:"format"`
	FileName   string     `json:"file_name"`
	Status     string     `json:"status"`
	Rows       int64      `json:"rows"`
	Path       string     `json:"-"`
	Size       int64      `json:"size"`
	Error      string     `json:"error,omitempty"`
	Host       string     `json:"host"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Done says whether the job has ended, well or not.
func (j *ExportJob) Done() bool { return j.Status != JobRunning }

// ExportJobs runs a process's export jobs and reads every job's state from the database.
type ExportJobs struct {
	svc  *Service
	pool *pgxpool.Pool
	log  *slog.Logger
	m    *exportJobMetrics
	dir  string // where job files go
	host string // this machine: only it can remove the files it wrote

	mu       sync.Mutex
	lockConn *pgx.Conn // holds this process's runner lock
	runner   int64
	cancels  map[string]context.CancelFunc
	stopping bool
	wg       sync.WaitGroup

	hold chan struct{} // tests: a job started while it is set waits on it before exporting
}

type exportJobMetrics struct {
	jobs *prometheus.CounterVec
}

func newExportJobs(svc *Service, pool *pgxpool.Pool, logger *slog.Logger, reg prometheus.Registerer) *ExportJobs {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	m := &exportJobMetrics{jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ctid_query_export_jobs_total", Help: "Background export jobs by how they ended (done, failed, interrupted).",
	}, []string{"result"})}
	if reg != nil {
		reg.MustRegister(m.jobs)
	}
	return &ExportJobs{svc: svc, pool: pool, log: logger.With("component", "query", "part", "export_jobs"), m: m,
		dir: os.TempDir(), host: host, cancels: map[string]context.CancelFunc{}}
}

// ExportJobs is the service's background exports (run their sweeper: go s.ExportJobs().Run(ctx)).
func (s *Service) ExportJobs() *ExportJobs { return s.exports }

// register makes sure this process holds its runner lock, and returns its runner id.
func (j *ExportJobs) register(ctx context.Context) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopping {
		return 0, fault.Errorf(fault.Unavailable, "ctid is stopping: start the export again in a moment")
	}
	if j.lockConn != nil {
		// A live session still holds the lock; a lost one (the database restarted) let it go.
		if err := j.lockConn.Ping(ctx); err == nil {
			return j.runner, nil
		}
		_ = j.lockConn.Close(ctx)
		j.lockConn = nil
	}
	conn, err := pgx.ConnectConfig(ctx, j.pool.Config().ConnConfig.Copy())
	if err != nil {
		return 0, fmt.Errorf("export runner connection: %w", err)
	}
	for range 5 {
		n, err := rand.Int(rand.Reader, big.NewInt(1<<31-1))
		if err != nil {
			conn.Close(ctx)
			return 0, fmt.Errorf("export runner id: %w", err)
		}
		id := n.Int64() + 1
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1::int4, $2::int4)`, exportLockClass, id).Scan(&ok); err != nil {
			conn.Close(ctx)
			return 0, fmt.Errorf("export runner lock: %w", err)
		}
		if ok {
			j.lockConn, j.runner = conn, id
			return id, nil
		}
	}
	conn.Close(ctx)
	return 0, errors.New("export runner lock: no free runner id in 5 tries")
}

// StartExport is what an export job runs: the query and search of the page.
type StartExport struct {
	Tenant *account.Tenant
	User   *account.User
	Env    *Env
	Def    *Definition
	Req    Request
	Format string
	Lang   string
}

// Start begins an export job of in. A user runs one job at a time.
func (j *ExportJobs) Start(ctx context.Context, in StartExport) (*ExportJob, error) {
	if in.Format != ExportCSV && in.Format != ExportXLSX {
		return nil, fault.Errorf(fault.Invalid, "unknown export format %q: want csv or xlsx", in.Format)
	}
	runner, err := j.register(ctx)
	if err != nil {
		return nil, err
	}
	// A job of this user left running by a dead process must not block the new one.
	if err := j.failDead(ctx, ""); err != nil {
		return nil, err
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("export id: %w", err)
	}
	id := hex.EncodeToString(b)
	loc := in.Env.Loc
	if loc == nil {
		loc = in.Tenant.Location()
	}
	name := fmt.Sprintf("%s-%s.%s", in.Def.Key, time.Now().In(loc).Format("20060102-1504"), in.Format)
	j.mu.Lock()
	dir := j.dir
	j.mu.Unlock()
	path := filepath.Join(dir, "ctid-export-"+id+"."+in.Format)
	params, err := json.Marshal(in.Req.Values)
	if err != nil {
		return nil, err
	}
	_, err = j.pool.Exec(ctx, `INSERT INTO platform.export_jobs (id, tenant_id, user_id, query_key, params, format, file_name,
			status, file_path, host, runner)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10)`,
		id, in.Tenant.ID, in.User.ID, in.Def.Key, params, in.Format, name, path, j.host, runner)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		var other string
		if err := j.pool.QueryRow(ctx, `SELECT query_key FROM platform.export_jobs WHERE tenant_id = $1 AND user_id = $2 AND status = 'running'`,
			in.Tenant.ID, in.User.ID).Scan(&other); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("running export: %w", err)
		}
		return nil, fault.Errorf(fault.Conflict, "your export of %q is still running; wait for it to finish", other)
	}
	if err != nil {
		return nil, fmt.Errorf("record export job: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		err = fmt.Errorf("export file: %w", err)
		j.finish(id, path, 0, err)
		return nil, err
	}
	jctx, cancel := context.WithTimeout(context.Background(), MaxExportJobTime)
	j.mu.Lock()
	if j.stopping {
		j.mu.Unlock()
		cancel()
		f.Close()
		j.finish(id, path, 0, errors.New(jobStopped))
		return nil, fault.Errorf(fault.Unavailable, "ctid is stopping: start the export again in a moment")
	}
	j.cancels[id] = cancel
	j.wg.Add(1)
	hold := j.hold
	j.mu.Unlock()
	go j.run(jctx, id, f, in, hold)
	return j.Get(ctx, in.Tenant, in.User, id)
}

// run writes the export into f and records its progress and end.
func (j *ExportJobs) run(ctx context.Context, id string, f *os.File, in StartExport, hold <-chan struct{}) {
	defer j.wg.Done()
	defer func() {
		j.mu.Lock()
		if cancel := j.cancels[id]; cancel != nil {
			cancel()
		}
		delete(j.cancels, id)
		j.mu.Unlock()
	}()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	n, err := j.svc.Export(ctx, in.Tenant, in.Env, in.Def, in.Req, in.Format, in.Lang, f, func(rows int64) { j.progress(id, rows) })
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("export file: %w", cerr)
	}
	if err != nil && fault.CodeOf(err) == fault.Internal && ctx.Err() == nil {
		j.log.Error("export job", "tenant", in.Tenant.Code, "query", in.Def.Key, "job", id, "err", err)
	}
	if err != nil && ctx.Err() != nil {
		j.mu.Lock()
		stopping := j.stopping
		j.mu.Unlock()
		switch {
		case stopping:
			err = errors.New(jobStopped)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = fault.Errorf(fault.Invalid, "the export took longer than %s and was stopped: narrow the conditions", MaxExportJobTime)
		}
	}
	j.finish(id, f.Name(), n, err)
}

// progress records rows written so far; a job that someone marked failed meanwhile (its
// runner lock was lost) is cancelled.
func (j *ExportJobs) progress(id string, rows int64) {
	ctx, cancel := context.WithTimeout(context.Background(), exportDBTimeout)
	defer cancel()
	tag, err := j.pool.Exec(ctx, `UPDATE platform.export_jobs SET rows = $2, updated_at = now() WHERE id = $1 AND status = 'running'`, id, rows)
	if err != nil {
		j.log.Warn("export job progress", "job", id, "err", err)
		return
	}
	if tag.RowsAffected() == 0 {
		j.mu.Lock()
		if cancel := j.cancels[id]; cancel != nil {
			cancel()
		}
		j.mu.Unlock()
	}
}

// finish records the end of job id (err nil: done) and removes the file of a failed job.
func (j *ExportJobs) finish(id, path string, rows int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), exportDBTimeout)
	defer cancel()
	status, msg, result, size := JobDone, "", "done", int64(0)
	if err == nil {
		st, serr := os.Stat(path)
		if serr != nil {
			err = fmt.Errorf("export file: %w", serr)
		} else {
			size = st.Size()
		}
	}
	if err != nil {
		status, msg, result = JobFailed, fault.MessageOf(err), "failed"
		if err.Error() == jobStopped {
			msg, result = jobStopped, "interrupted"
		}
	}
	tag, uerr := j.pool.Exec(ctx, `UPDATE platform.export_jobs SET status = $2, rows = $3, file_size = $4, error = $5,
			finished_at = now(), updated_at = now()
		WHERE id = $1 AND status = 'running'`, id, status, rows, size, msg)
	if uerr != nil {
		j.log.Error("export job end", "job", id, "status", status, "err", uerr)
	}
	if status == JobFailed || uerr != nil || tag.RowsAffected() == 0 {
		// A failed job has nothing to download; one failed by a sweep meanwhile neither.
		j.removeFile(path)
	}
	j.m.jobs.WithLabelValues(result).Inc()
}

func (j *ExportJobs) removeFile(path string) {
	if path == "" {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.log.Warn("remove export file", "path", path, "err", err)
	}
}

// runnerDead is true for a running job whose runner's advisory lock nobody holds: the
// process that ran it is gone.
var runnerDead = `status = 'running' AND NOT EXISTS (SELECT 1 FROM pg_locks l
	WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
	  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	  AND l.classid = ` + strconv.Itoa(exportLockClass) + `::bigint::oid AND l.objid = export_jobs.runner::oid)`

// failDead marks failed the running jobs of dead processes (only job id, when not ""), and
// removes their files on this host.
func (j *ExportJobs) failDead(ctx context.Context, id string) error {
	rows, err := j.pool.Query(ctx, `UPDATE platform.export_jobs SET status = 'failed', error = $1, finished_at = now(), updated_at = now()
		WHERE `+runnerDead+` AND ($2 = '' OR id = $2)
		RETURNING id, file_path, host`, jobInterrupted, id)
	if err != nil {
		return fmt.Errorf("fail interrupted exports: %w", err)
	}
	type dead struct{ id, path, host string }
	var list []dead
	for rows.Next() {
		var d dead
		if err := rows.Scan(&d.id, &d.path, &d.host); err != nil {
			rows.Close()
			return fmt.Errorf("fail interrupted exports: %w", err)
		}
		list = append(list, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("fail interrupted exports: %w", err)
	}
	for _, d := range list {
		j.log.Warn("export job interrupted: its process stopped", "job", d.id, "host", d.host)
		j.m.jobs.WithLabelValues("interrupted").Inc()
		if d.host == j.host {
			j.removeFile(d.path)
		}
	}
	return nil
}

// Sweep marks the jobs of dead processes failed and removes their files, removes files of
// failed jobs this host still has, and forgets jobs that ended ExportJobTTL ago (with their
// files). Run calls it at start and every exportSweepEvery.
func (j *ExportJobs) Sweep(ctx context.Context) error {
	if err := j.failDead(ctx, ""); err != nil {
		return err
	}
	rows, err := j.pool.Query(ctx, `SELECT file_path FROM platform.export_jobs WHERE host = $1 AND status = 'failed'`, j.host)
	if err != nil {
		return fmt.Errorf("failed exports: %w", err)
	}
	paths, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("failed exports: %w", err)
	}
	for _, p := range paths {
		j.removeFile(p)
	}
	rows, err = j.pool.Query(ctx, `DELETE FROM platform.export_jobs
		WHERE status <> 'running' AND (finished_at < now() - $2 * interval '1 second' AND host = $1 OR finished_at < now() - $3 * interval '1 second')
		RETURNING file_path, host`, j.host, ExportJobTTL.Seconds(), exportForgetAfter.Seconds())
	if err != nil {
		return fmt.Errorf("forget old exports: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var path, host string
		if err := rows.Scan(&path, &host); err != nil {
			return fmt.Errorf("forget old exports: %w", err)
		}
		if host == j.host {
			j.removeFile(path)
		}
	}
	return rows.Err()
}

// Run sweeps at start and every exportSweepEvery until ctx ends; then it stops this
// process's jobs (they are marked failed: ctid stopped) and lets go of its runner lock.
func (j *ExportJobs) Run(ctx context.Context) error {
	sweep := func() {
		sctx, cancel := context.WithTimeout(ctx, exportDBTimeout)
		defer cancel()
		if err := j.Sweep(sctx); err != nil && ctx.Err() == nil {
			j.log.Warn("export jobs sweep", "err", err)
		}
	}
	sweep()
	tick := time.NewTicker(exportSweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			j.Stop()
			return nil
		case <-tick.C:
			sweep()
		}
	}
}

// Stop cancels this process's running jobs, waits until each has recorded that it was
// stopped, and closes the runner lock. Jobs cannot start after it.
func (j *ExportJobs) Stop() {
	j.mu.Lock()
	j.stopping = true
	for _, cancel := range j.cancels {
		cancel()
	}
	j.mu.Unlock()
	j.wg.Wait()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.lockConn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), exportDBTimeout)
		defer cancel()
		_ = j.lockConn.Close(ctx)
		j.lockConn = nil
	}
}

const exportJobColumns = `id, tenant_id, user_id, query_key, params, format, file_name, status, rows, file_path,
	coalesce(file_size, 0), error, host, created_at, finished_at`

// Get loads job id of user u; another user's job, or one forgotten after ExportJobTTL, is
// NotFound. A running job whose process died is marked failed first.
func (j *ExportJobs) Get(ctx context.Context, t *account.Tenant, u *account.User, id string) (*ExportJob, error) {
	job, dead, err := j.get(ctx, t, u, id)
	if err != nil {
		return nil, err
	}
	if dead {
		if err := j.failDead(ctx, id); err != nil {
			return nil, err
		}
		if job, _, err = j.get(ctx, t, u, id); err != nil {
			return nil, err
		}
	}
	return job, nil
}

func (j *ExportJobs) get(ctx context.Context, t *account.Tenant, u *account.User, id string) (*ExportJob, bool, error) {
	job := &ExportJob{}
	var params []byte
	var dead bool
	err := j.pool.QueryRow(ctx, `SELECT `+exportJobColumns+`, `+runnerDead+` FROM platform.export_jobs
		WHERE id = $1 AND tenant_id = $2 AND user_id = $3`, id, t.ID, u.ID).
		Scan(&job.ID, &job.TenantID, &job.UserID, &job.Query, &params, &job.Format, &job.FileName, &job.Status, &job.Rows, &job.Path,
			&job.Size, &job.Error, &job.Host, &job.CreatedAt, &job.FinishedAt, &dead)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fault.Errorf(fault.NotFound, "export %q does not exist (files are kept for %s)", id, ExportJobTTL)
	}
	if err != nil {
		return nil, false, fmt.Errorf("load export %s: %w", id, err)
	}
	if err := json.Unmarshal(params, &job.Params); err != nil {
		return nil, false, fmt.Errorf("export %s params: %w", id, err)
	}
	return job, dead, nil
}

// Open opens the file of u's finished job id for download.
func (j *ExportJobs) Open(ctx context.Context, t *account.Tenant, u *account.User, id string) (*os.File, *ExportJob, error) {
	job, err := j.Get(ctx, t, u, id)
	if err != nil {
		return nil, nil, err
	}
	switch job.Status {
	case JobRunning:
		return nil, nil, fault.Errorf(fault.Conflict, "export %q is still running (%d rows so far)", id, job.Rows)
	case JobFailed:
		return nil, nil, fault.Errorf(fault.Invalid, "export %q failed: %s", id, job.Error)
	}
	f, err := os.Open(job.Path)
	if errors.Is(err, os.ErrNotExist) && job.Host != j.host {
		return nil, nil, fault.Errorf(fault.Unavailable, "the file of export %q is on ctid host %s: download it there", id, job.Host)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open export %s: %w", id, err)
	}
	return f, job, nil
}
