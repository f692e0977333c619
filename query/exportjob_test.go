package query_test

import (
	"context"
	"encoding/csv"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// waitJob polls job id (as user u, through jobs) until ok says so.
func waitJob(t *testing.T, jobs *query.ExportJobs, tn *account.Tenant, u *account.User, id string, what string, ok func(*query.ExportJob) bool) *query.ExportJob {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		job, err := jobs.Get(context.Background(), tn, u, id)
		if err != nil {
			t.Fatalf("get export %s: %v", id, err)
		}
		if ok(job) {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %s: not %s in 20 s: %+v", id, what, job)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileGone(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// Export jobs are durable: another process on the same database shows a job's status and
// serves its file; a process that dies leaves its jobs running only until the next process
// starts (its first sweep marks them failed and removes their files), and a stopping process
// marks its own running jobs failed.
func TestExportJobsSurviveProcesses(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 25, "acme")
	ctx := context.Background()
	dir := t.TempDir()
	process := func() *query.ExportJobs {
		j := query.New(f.pool, nil, nil, prometheus.NewRegistry()).ExportJobs()
		query.SetExportDir(j, dir)
		return j
	}
	a := f.svc.ExportJobs() // the process that runs the exports
	query.SetExportDir(a, dir)
	b := process() // another ctid process on the same database
	in := query.StartExport{Tenant: f.acme, User: f.admin, Env: f.env(f.admin), Def: ticketsDef(),
		Req: query.Request{Values: url.Values{"period": {"last_7_days"}}}, Format: query.ExportCSV, Lang: "en"}

	// 1. A job held before it exports: running for everyone who asks, and one per user.
	hold := make(chan struct{})
	query.HoldExportJobs(a, hold)
	job1, err := a.Start(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, f.acme, f.admin, job1.ID); err != nil || got.Status != query.JobRunning || got.Query != "tickets" ||
		got.Params.Get("period") != "last_7_days" || got.Path != job1.Path || fileGone(t, job1.Path) {
		t.Fatalf("another process sees %+v (%v)", got, err)
	}
	if _, err := b.Get(ctx, f.acme, f.a1, job1.ID); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("another user reads the job: %v", err)
	}
	if _, err := a.Start(ctx, in); fault.CodeOf(err) != fault.Conflict || !strings.Contains(fault.MessageOf(err), `"tickets" is still running`) {
		t.Fatalf("a second export of the user: %v", err)
	}

	// 2. Process a dies. The job still says running in the database; a new process starts
	// and its first sweep marks it failed and removes its file.
	if err := query.CrashExportRunner(a); err != nil {
		t.Fatal(err)
	}
	var status string
	if err := f.pool.QueryRow(ctx, `SELECT status FROM platform.export_jobs WHERE id = $1`, job1.ID).Scan(&status); err != nil || status != "running" {
		t.Fatalf("after the crash the row is %q (%v)", status, err)
	}
	c := process()
	runCtx, stopC := context.WithCancel(ctx)
	cDone := make(chan error, 1)
	go func() { cDone <- c.Run(runCtx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := f.pool.QueryRow(ctx, `SELECT status FROM platform.export_jobs WHERE id = $1`, job1.ID).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == query.JobFailed && fileGone(t, job1.Path) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted process did not fail the dead job: %s, file gone %v", status, fileGone(t, job1.Path))
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := b.Get(ctx, f.acme, f.admin, job1.ID)
	if err != nil || !got.Done() || !strings.Contains(got.Error, "stopped before it finished") || got.FinishedAt == nil {
		t.Fatalf("the interrupted job = %+v (%v)", got, err)
	}
	if _, _, err := b.Open(ctx, f.acme, f.admin, job1.ID); fault.CodeOf(err) != fault.Invalid || !strings.Contains(fault.MessageOf(err), "failed") {
		t.Fatalf("download of the interrupted job: %v", err)
	}
	close(hold) // the dead process's goroutine, were it still there, records nothing more

	// 3. The user exports again (process a is back with a new runner lock); process b shows
	// the progress and serves the file.
	query.HoldExportJobs(a, nil)
	job2, err := a.Start(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	done := waitJob(t, b, f.acme, f.admin, job2.ID, "done", (*query.ExportJob).Done)
	if done.Status != query.JobDone || done.Rows != 25 || done.Size == 0 || done.Error != "" {
		t.Fatalf("finished job = %+v", done)
	}
	file, _, err := b.Open(ctx, f.acme, f.admin, job2.ID)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(file).ReadAll()
	file.Close()
	if err != nil || len(recs) != 26 {
		t.Fatalf("file from another process: %d records (%v)", len(recs), err)
	}

	// 4. Process a stops: its running job is marked failed by itself, its file removed, and
	// it starts no more jobs.
	query.HoldExportJobs(a, make(chan struct{}))
	in.User, in.Env = f.lead, f.env(f.lead)
	job3, err := a.Start(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	a.Stop()
	got, err = b.Get(ctx, f.acme, f.lead, job3.ID)
	if err != nil || got.Status != query.JobFailed || !strings.Contains(got.Error, "ctid was stopped") || !fileGone(t, job3.Path) {
		t.Fatalf("job of a stopped process = %+v (%v)", got, err)
	}
	if _, err := a.Start(ctx, in); fault.CodeOf(err) != fault.Unavailable {
		t.Fatalf("start on a stopped process: %v", err)
	}
	if !fileGone(t, job1.Path) || fileGone(t, job2.Path) {
		t.Fatalf("files: job1 gone %v, job2 gone %v", fileGone(t, job1.Path), fileGone(t, job2.Path))
	}
	stopC()
	if err := <-cDone; err != nil {
		t.Fatal(err)
	}
}

// The sweep forgets jobs that ended ExportJobTTL ago, with their files.
func TestExportJobsExpire(t *testing.T) {
	f := newFixture(t)
	f.seed(t, f.acme, 3, "acme")
	ctx := context.Background()
	j := f.svc.ExportJobs()
	query.SetExportDir(j, t.TempDir())
	t.Cleanup(j.Stop)
	job, err := j.Start(ctx, query.StartExport{Tenant: f.acme, User: f.admin, Env: f.env(f.admin), Def: ticketsDef(),
		Req: query.Request{Values: url.Values{"period": {"last_7_days"}}}, Format: query.ExportXLSX, Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, j, f.acme, f.admin, job.ID, "done", (*query.ExportJob).Done)
	if err := j.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Get(ctx, f.acme, f.admin, job.ID); err != nil || fileGone(t, job.Path) {
		t.Fatalf("a fresh job was swept: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE platform.export_jobs SET finished_at = now() - interval '61 minutes' WHERE id = $1`, job.ID); err != nil {
		t.Fatal(err)
	}
	if err := j.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Get(ctx, f.acme, f.admin, job.ID); fault.CodeOf(err) != fault.NotFound || !fileGone(t, job.Path) {
		t.Fatalf("an expired job: %v, file gone %v", err, fileGone(t, job.Path))
	}
}
