package web

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/query"
)

// Export jobs: a large export started from the result page runs in the background into a
// file while the page polls its progress (rows written so far, then done) and downloads the
// file at the end. Jobs are package query's ExportJobs: their state is in the database, so
// any ctid process shows it and a restart marks the jobs it cut short as failed (the page
// shows the error). Only the user who started a job sees it. The direct streamed download
// (GET .../export) stays for API users and pages without scripts.

const exportPoll = 500 * time.Millisecond

// exportView is a job as the progress endpoint shows it.
type exportView struct {
	ID          string `json:"id"`
	Query       string `json:"query"`
	Format      string `json:"format"`
	Status      string `json:"status"`
	Rows        int64  `json:"rows"`
	Size        int64  `json:"size,omitempty"`
	Done        bool   `json:"done"`
	Error       string `json:"error,omitempty"`
	ProgressURL string `json:"progress_url"`
	DownloadURL string `json:"download_url,omitempty"` // once done without error
	PollMillis  int    `json:"poll_ms"`
}

func viewOf(job *query.ExportJob) exportView {
	base := "/api/v1/exports/" + job.ID
	v := exportView{ID: job.ID, Query: job.Query, Format: job.Format, Status: job.Status, Rows: job.Rows, Size: job.Size,
		Done: job.Done(), Error: job.Error, ProgressURL: base, PollMillis: int(exportPoll / time.Millisecond)}
	if job.Status == query.JobDone {
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
	job, err := q.svc.ExportJobs().Start(r.Context(), query.StartExport{Tenant: t, User: v.user, Env: env, Def: d, Req: req,
		Format: format, Lang: v.lang})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, viewOf(job))
	return nil
}

func (q *queryPages) apiExportProgress(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "exports")
	if err != nil {
		return err
	}
	job, err := q.svc.ExportJobs().Get(r.Context(), t, v.user, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOf(job))
	return nil
}

func (q *queryPages) apiExportFile(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, err := tenantOf(v, "exports")
	if err != nil {
		return err
	}
	f, job, err := q.svc.ExportJobs().Open(r.Context(), t, v.user, r.PathValue("id"))
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", exportType(job.Format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, job.FileName))
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
