package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/fault"
)

// The import page: a user who may write records uploads a CSV or XLSX file; the import runs
// in the background while the page polls a small JSON progress endpoint (rows done, rows/s,
// ETA), then shows the report (row, column, problem per bad row) and offers the rejects file.

const (
	importJobTTL  = time.Hour              // a finished import's report and rejects stay this long
	maxImportTime = 2 * time.Hour          // an import still running then is cancelled (and rolled back)
	rejectsBOM    = "\ufeff"               // so Excel opens the rejects file as UTF-8
	importPoll    = 500 * time.Millisecond // how often the page asks for progress
)

// importJob is one import started from the page.
type importJob struct {
	id       string
	tenantID int64
	userID   int64
	object   string
	fileName string
	skipBad  bool
	upload   string // the spooled file, removed when the import ends
	rejects  string // path of the rejects file ("" without skipBad)

	mu       sync.Mutex
	progress dataobject.Progress
	report   *dataobject.ImportReport
	err      error
	done     bool
	finished time.Time
}

// importJobs holds the page's imports while they run and for importJobTTL after.
type importJobs struct {
	mu   sync.Mutex
	jobs map[string]*importJob
}

// add registers job unless its user already has an import running, and forgets finished
// jobs past their time (removing their rejects files).
func (ij *importJobs) add(job *importJob) error {
	ij.mu.Lock()
	defer ij.mu.Unlock()
	if ij.jobs == nil {
		ij.jobs = map[string]*importJob{}
	}
	for id, j := range ij.jobs {
		j.mu.Lock()
		running, expired := !j.done, j.done && time.Since(j.finished) > importJobTTL
		j.mu.Unlock()
		if running && j.userID == job.userID && j.tenantID == job.tenantID {
			return fault.Errorf(fault.Conflict, "your import of %s is still running; wait for it to finish", j.fileName)
		}
		if expired {
			if j.rejects != "" {
				_ = os.Remove(j.rejects)
			}
			delete(ij.jobs, id)
		}
	}
	ij.jobs[job.id] = job
	return nil
}

// get finds a job of v's user; another user's job is not found.
func (ij *importJobs) get(id string, v *visit) (*importJob, error) {
	ij.mu.Lock()
	job := ij.jobs[id]
	ij.mu.Unlock()
	if job == nil || v.user.Tenant == nil || job.tenantID != v.user.Tenant.ID || job.userID != v.user.ID {
		return nil, fault.Errorf(fault.NotFound, "import %q does not exist (reports are kept for %s)", id, importJobTTL)
	}
	return job, nil
}

func (o *objectPages) importRoutes() {
	s := o.s
	s.mux.HandleFunc("GET /records/{object}/import", s.page(account.PermViewRecords, o.notWorkOrders(o.importPage)))
	s.mux.Handle("POST /records/{object}/import", o.limitUpload(s.page(account.PermViewRecords, o.notWorkOrders(o.startImportForm))))
	s.mux.HandleFunc("GET /records/{object}/import/{job}", s.page(account.PermViewRecords, o.importJobPage))
	s.mux.HandleFunc("GET /records/{object}/import/{job}/progress", s.api(account.PermViewRecords, o.apiImportProgress))
	s.mux.HandleFunc("GET /records/{object}/import/{job}/rejects", s.page(account.PermViewRecords, o.importRejects))
}

// limitUpload refuses an upload larger than maxImportUpload: by its declared length with a
// message saying so, and by what is read otherwise.
func (o *objectPages) limitUpload(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxImportUpload {
			o.s.renderError(w, r, &visit{lang: o.s.langOf(r, nil)},
				fault.Errorf(fault.Invalid, "the file is too large: at most %d MB", maxImportUpload>>20))
			return
		}
		http.MaxBytesHandler(next, maxImportUpload).ServeHTTP(w, r)
	})
}

type importPageData struct {
	Object  *dataobject.Object
	SkipBad bool
	Update  bool
	Error   string
	Job     *importJobView
}

// importJobView is a job as the page and the progress endpoint show it.
type importJobView struct {
	ID            string   `json:"id"`
	File          string   `json:"file"`
	Rows          int      `json:"rows"`
	Total         int      `json:"total"`
	RowsPerSecond float64  `json:"rows_per_second"`
	ETASeconds    float64  `json:"eta_seconds"`
	Percent       int      `json:"percent"`
	Done          bool     `json:"done"`
	Report        any      `json:"report,omitempty"` // importReportJSON when done
	Errors        []string `json:"-"`
	Imported      int      `json:"-"`
	Updated       int      `json:"-"`
	Rejected      int      `json:"-"`
	Committed     bool     `json:"-"`
	Error         string   `json:"-"`
	More          int      `json:"-"` // bad rows beyond those listed
	RejectsURL    string   `json:"rejects_url,omitempty"`
	ProgressURL   string   `json:"-"`
	PollMillis    int      `json:"-"`
}

func (job *importJob) view() *importJobView {
	job.mu.Lock()
	defer job.mu.Unlock()
	base := "/records/" + job.object + "/import/" + job.id
	p := job.progress
	jv := &importJobView{ID: job.id, File: job.fileName, Rows: p.Rows, Total: p.Total, RowsPerSecond: p.RowsPerSecond(),
		ETASeconds: p.ETA().Seconds(), Done: job.done, ProgressURL: base + "/progress", PollMillis: int(importPoll / time.Millisecond)}
	if p.Total > 0 {
		jv.Percent = min(100, p.Rows*100/p.Total)
	}
	if !job.done {
		return jv
	}
	jv.Percent = 100
	if job.err != nil {
		jv.Error = fault.MessageOf(job.err)
	}
	if rep := job.report; rep != nil {
		jv.Rows, jv.Imported, jv.Updated, jv.Rejected, jv.Committed = rep.Rows, rep.Imported, rep.Updated, rep.Rejected, rep.Committed
		for _, e := range rep.Errors {
			jv.Errors = append(jv.Errors, e.String())
		}
		jv.More = rep.Rejected - len(rep.Errors)
		jv.Report = importReportJSON(rep, job.err)
		if job.rejects != "" && rep.Committed && rep.Rejected > 0 {
			jv.RejectsURL = base + "/rejects"
		}
	} else if job.err != nil {
		jv.Report = map[string]any{"error": map[string]string{"code": string(fault.CodeOf(job.err)), "message": jv.Error}}
	}
	return jv
}

func (o *objectPages) importPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	_, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	if err := canWrite(v.user); err != nil {
		return err
	}
	o.s.render(w, r, v, http.StatusOK, "records_import", "import.title", importPageData{Object: obj})
	return nil
}

func (o *objectPages) startImportForm(w http.ResponseWriter, r *http.Request, v *visit) error {
	t, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	if err := canWrite(v.user); err != nil {
		return err
	}
	d := importPageData{Object: obj, SkipBad: checked(r, "skip_bad"), Update: checked(r, "update_duplicates")}
	job, err := o.spoolImport(r, v, obj, d)
	if err == nil {
		err = o.imports.add(job)
		if err != nil {
			_ = os.Remove(job.upload)
		}
	}
	if err != nil {
		if code := fault.CodeOf(err); code == fault.Invalid || code == fault.Conflict {
			d.Error = fault.MessageOf(err)
			o.s.render(w, r, v, fault.HTTPStatus(code), "records_import", "import.title", d)
			return nil
		}
		return err
	}
	o.runImport(job, t, v, d)
	http.Redirect(w, r, "/records/"+obj.Key+"/import/"+job.id, http.StatusSeeOther)
	return nil
}

// spoolImport copies the upload to a file of its own: the request's multipart files go
// when the request ends, and the import outlives it.
func (o *objectPages) spoolImport(r *http.Request, v *visit, obj *dataobject.Object, d importPageData) (*importJob, error) {
	file, hdr, err := r.FormFile("file")
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "choose a CSV or XLSX file to import")
	}
	defer file.Close()
	ext := strings.ToLower(filepath.Ext(hdr.Filename))
	if ext != ".csv" && ext != ".xlsx" {
		return nil, fault.Errorf(fault.Invalid, "file %q is neither .csv nor .xlsx", hdr.Filename)
	}
	id, err := newJobID()
	if err != nil {
		return nil, err
	}
	job := &importJob{id: id, tenantID: v.user.Tenant.ID, userID: v.user.ID, object: obj.Key, fileName: hdr.Filename, skipBad: d.SkipBad}
	dir := os.TempDir()
	job.upload = filepath.Join(dir, "ctid-import-"+id+ext)
	upload, err := os.Create(job.upload)
	if err != nil {
		return nil, fmt.Errorf("spool import: %w", err)
	}
	_, err = io.Copy(upload, file)
	if cerr := upload.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(upload.Name())
		return nil, fault.Errorf(fault.Invalid, "read upload %q: %v", hdr.Filename, err)
	}
	if d.SkipBad {
		job.rejects = filepath.Join(dir, "ctid-rejects-"+id+".csv")
	}
	return job, nil
}

func newJobID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("import id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// runImport starts the import in the background. It is not tied to the request (which ends
// with the redirect) but to maxImportTime; the import is one transaction, so one cut short
// by a stopping process writes nothing.
func (o *objectPages) runImport(job *importJob, t *account.Tenant, v *visit, d importPageData) {
	opts := dataobject.ImportOptions{Object: job.object, SkipBad: d.SkipBad, Actor: actorOf(v), Duplicates: dataobject.DuplicateReport,
		Progress: func(p dataobject.Progress) {
			job.mu.Lock()
			job.progress = p
			job.mu.Unlock()
		}}
	if d.Update {
		opts.Duplicates = dataobject.DuplicateUpdate
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), maxImportTime)
		defer cancel()
		defer os.Remove(job.upload)
		rep, err := o.importWithRejects(ctx, t, job.upload, job.rejects, opts)
		if err != nil && fault.CodeOf(err) == fault.Internal {
			o.s.log.Error("import from the page", "tenant", t.Code, "object", job.object, "file", job.fileName, "err", err)
		}
		job.mu.Lock()
		job.report, job.err, job.done, job.finished = rep, err, true, time.Now()
		job.mu.Unlock()
	}()
}

func (o *objectPages) importWithRejects(ctx context.Context, t *account.Tenant, upload, rejects string, opts dataobject.ImportOptions) (*dataobject.ImportReport, error) {
	if rejects != "" {
		f, err := os.Create(rejects)
		if err != nil {
			return nil, fmt.Errorf("rejects file: %w", err)
		}
		defer f.Close()
		if _, err := io.WriteString(f, rejectsBOM); err != nil {
			return nil, fmt.Errorf("rejects file: %w", err)
		}
		opts.Rejects = f
	}
	return o.store.ImportFile(ctx, t, upload, opts)
}

func (o *objectPages) importJobPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	job, err := o.imports.get(r.PathValue("job"), v)
	if err != nil {
		return err
	}
	_, obj, err := o.loadPage(r, v)
	if err != nil {
		return err
	}
	o.s.render(w, r, v, http.StatusOK, "records_import", "import.title", importPageData{Object: obj, Job: job.view()})
	return nil
}

func (o *objectPages) apiImportProgress(w http.ResponseWriter, r *http.Request, v *visit) error {
	job, err := o.imports.get(r.PathValue("job"), v)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, job.view())
	return nil
}

func (o *objectPages) importRejects(w http.ResponseWriter, r *http.Request, v *visit) error {
	job, err := o.imports.get(r.PathValue("job"), v)
	if err != nil {
		return err
	}
	if job.view().RejectsURL == "" {
		return fault.Errorf(fault.NotFound, "import %q has no rejected rows", job.id)
	}
	f, err := os.Open(job.rejects)
	if err != nil {
		return fmt.Errorf("open rejects of import %s: %w", job.id, err)
	}
	defer f.Close()
	name := strings.TrimSuffix(job.fileName, filepath.Ext(job.fileName)) + "-rejects.csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(name))
	_, err = io.Copy(w, f)
	return err
}
