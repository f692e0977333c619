package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/query"
)

// Export jobs: a large export started from the result page runs in the background into a
// temporary file while the page polls its progress (rows written so far, then done) and
// downloads the file at the end. Jobs live in this server's memory: only the user who
// started one sees it, and its file is removed exportJobTTL after it ends. The direct
// streamed download (GET .../export) stays for API users and pages without scripts.

const (
	exportJobTTL     = time.Hour        // a finished export's file stays this long
	maxExportJobTime = 30 * time.Minute // an export still running then is cancelled
	exportPoll       = 500 * time.Millisecond
)

type exportJob struct {
	id       string
	tenantID int64
	userID   int64
	query    string
	format   string
	name     string // the download's file name
	path     string // the temporary file

	mu       sync.Mutex
	rows     int64
	done     bool
	err      error
	finished time.Time
}

// exportJobs holds the page's exports while they run and for exportJobTTL after.
type exportJobs struct {
	mu   sync.Mutex
	jobs map[string]*exportJob
}

func (ej *exportJobs) add(job *exportJob) error {
	ej.mu.Lock()
	defer ej.mu.Unlock()
	if ej.jobs == nil {
		ej.jobs = map[string]*exportJob{}
	}
	for _, j := range ej.jobs {
		j.mu.Lock()
		running := !j.done
		j.mu.Unlock()
		if running && j.userID == job.userID && j.tenantID == job.tenantID {
			return fault.Errorf(fault.Conflict, "your export of %q is still running; wait for it to finish", j.query)
		}
	}
	ej.jobs[job.id] = job
	return nil
}

// forget removes job and its file (exportJobTTL after it ended).
func (ej *exportJobs) forget(job *exportJob) {
	ej.mu.Lock()
	delete(ej.jobs, job.id)
	ej.mu.Unlock()
	_ = os.Remove(job.path)
}

// get finds a job of v's user; another user's job is not found.
func (ej *exportJobs) get(id string, v *visit) (*exportJob, error) {
	ej.mu.Lock()
	job := ej.jobs[id]
	ej.mu.Unlock()
	if job == nil || v.user.Tenant == nil || job.tenantID != v.user.Tenant.ID || job.userID != v.user.ID {
		return nil, fault.Errorf(fault.NotFound, "export %q does not exist (files are kept for %s)", id, exportJobTTL)
	}
	return job, nil
}

// exportView is a job as the progress endpoint shows it.
type exportView struct {
	ID          string `json:"id"`
	Query       string `json:"query"`
	Format      string `json:"format"`
	Rows        int64  `json:"rows"`
	Done        bool   `json:"done"`
	Error       string `json:"error,omitempty"`
	ProgressURL string `json:"progress_url"`
	DownloadURL string `json:"download_url,omitempty"` // once done without error
	PollMillis  int    `json:"poll_ms"`
}

func (job *exportJob) view() exportView {
	job.mu.Lock()
	defer job.mu.Unlock()
	base := "/api/v1/exports/" + job.id
	v := exportView{ID: job.id, Query: job.query, Format: job.format, Rows: job.rows, Done: job.done, ProgressURL: base,
		PollMillis: int(exportPoll / time.Millisecond)}
	if job.err != nil {
		v.Error = fault.MessageOf(job.err)
	} else if job.done {
		v.DownloadURL = base + "/file"
	}
	return v
}

func (q *queryPages) exportRoutes() {
	s := q.s
	s.mux.HandleFunc("POST /api/v1/queries/{key}/exports", s.api(account.PermViewRecords, q.apiStartExport))
	s.mux.HandleFunc("GET /api/v1/exports/{id}", s.api(account.PermViewRecords, q.apiExportProgress))
	s.mux.HandleFunc("GET /api/v1/exports/{id}/file", s.api(account.PermViewRecords, q.apiExportFile))
}

// apiStartExport starts an export job of the query with the search in the URL (as for the
// streamed export: format=csv|xlsx and condition values) and answers 202 with its progress.
func (q *queryPages) apiStartExport(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, d, format, err := q.exportable(r, v)
	if err != nil {
		return err
	}
	env, err := q.env(r, v)
	if err != nil {
		return err
	}
	req, err := requestOf(r)
	if err != nil {
		return err
	}
	id, err := newJobID()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "ctid-export-*."+format)
	if err != nil {
		return fmt.Errorf("export file: %w", err)
	}
	job := &exportJob{id: id, tenantID: t.ID, userID: v.user.ID, query: d.Key, format: format, path: f.Name(),
		name: fmt.Sprintf("%s-%s.%s", d.Key, time.Now().In(env.Loc).Format("20060102-1504"), format)}
	if err := q.exports.add(job); err != nil {
		f.Close()
		_ = os.Remove(f.Name())
		return err
	}
	lang := v.lang
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), maxExportJobTime)
		defer cancel()
		_, err := q.svc.Export(ctx, t, env, d, req, format, lang, f, func(n int64) {
			job.mu.Lock()
			job.rows = n
			job.mu.Unlock()
		})
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("export file: %w", cerr)
		}
		if err != nil && fault.CodeOf(err) == fault.Internal {
			q.s.log.Error("query export job", "tenant", t.Code, "query", d.Key, "err", err)
		}
		job.mu.Lock()
		job.done, job.err, job.finished = true, err, time.Now()
		job.mu.Unlock()
		time.AfterFunc(exportJobTTL, func() { q.exports.forget(job) })
	}()
	writeJSON(w, http.StatusAccepted, job.view())
	return nil
}

func (q *queryPages) apiExportProgress(w http.ResponseWriter, r *http.Request, v *visit) error {
	job, err := q.exports.get(r.PathValue("id"), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, job.view())
	return nil
}

func (q *queryPages) apiExportFile(w http.ResponseWriter, r *http.Request, v *visit) error {
	job, err := q.exports.get(r.PathValue("id"), v)
	if err != nil {
		return err
	}
	jv := job.view()
	switch {
	case !jv.Done:
		return fault.Errorf(fault.Conflict, "export %q is still running (%d rows so far)", job.id, jv.Rows)
	case jv.Error != "":
		return fault.Errorf(fault.Invalid, "export %q failed: %s", job.id, jv.Error)
	}
	f, err := os.Open(job.path)
	if err != nil {
		return fmt.Errorf("open export %s: %w", job.id, err)
	}
	defer f.Close()
	w.Header().Set("Content-Type", exportType(job.format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, job.name))
	w.Header().Set("Cache-Control", "no-store")
	_, err = io.Copy(w, f)
	return err
}

func exportType(format string) string {
	if format == query.ExportXLSX {
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}
