package query

import "context"

// SetBeforeCommit makes r run fn just before each rollup batch commits (a crash there is an
// error that rolls the batch back).
func SetBeforeCommit(r *Rollups, fn func(context.Context) error) { r.beforeCommit = fn }

// SetExportDir makes j write its job files in dir.
func SetExportDir(j *ExportJobs, dir string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.dir = dir
}

// HoldExportJobs makes the jobs j starts from now on wait on ch (nil: not) before exporting.
func HoldExportJobs(j *ExportJobs, ch chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.hold = ch
}

// CrashExportRunner ends j's runner-lock session as the death of its process would, and
// records nothing: its running jobs stay "running" in the database, their files on disk.
func CrashExportRunner(j *ExportJobs) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lockConn.Close(context.Background())
}
