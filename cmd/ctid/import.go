package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ctid/ctid/dataobject"
)

// progressEvery limits how often the import prints its progress.
const progressEvery = time.Second

func cmdImport(ctx context.Context, args []string, e env) error {
	fs := newFlags("import", "Import records from a CSV or XLSX file into a data object. The header row names fields\n"+
		"(by key or label, English or Chinese). Every row is checked first; by default a file with a bad row\n"+
		"imports nothing and the report names row, column and problem.", e)
	configPath := fs.String("config", "", "configuration file (YAML)")
	tenant := fs.String("tenant", "", "tenant code (required)")
	object := fs.String("object", "customer", "data object key")
	skipBad := fs.Bool("skip-bad", false, "import the good rows and skip the bad ones")
	rejects := fs.String("rejects", "", "with --skip-bad: write the bad rows (and their problem) to this CSV file")
	update := fs.Bool("update-duplicates", false, "a row whose phone number belongs to an existing record updates it (default: reported as bad)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() != 1 || *tenant == "" {
		return &usageError{"usage: ctid import --tenant CODE [--object KEY] FILE.csv|FILE.xlsx"}
	}
	path := fs.Arg(0)
	a, err := adminApp(ctx, *configPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	t, err := a.Accounts.TenantByCode(ctx, *tenant)
	if err != nil {
		return err
	}
	opts := dataobject.ImportOptions{Object: *object, SkipBad: *skipBad, Actor: cliActor(), Duplicates: dataobject.DuplicateReport}
	if *update {
		opts.Duplicates = dataobject.DuplicateUpdate
	}
	if *rejects != "" {
		f, err := os.Create(*rejects)
		if err != nil {
			return &usageError{fmt.Sprintf("--rejects: %v", err)}
		}
		defer f.Close()
		opts.Rejects = f
	}
	var last time.Time
	opts.Progress = func(p dataobject.Progress) {
		if !p.Done && time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		line := fmt.Sprintf("\r%d rows, %.0f rows/s", p.Rows, p.RowsPerSecond())
		if p.Total > 0 {
			line = fmt.Sprintf("\r%d/%d rows, %.0f rows/s, ETA %s", p.Rows, p.Total, p.RowsPerSecond(), p.ETA().Round(time.Second))
		}
		fmt.Fprint(e.stderr, line+"   ")
	}
	objects := dataobject.New(a.Pool, a.log, nil, dataobject.Options{})
	rep, err := objects.ImportFile(ctx, t, path, opts)
	fmt.Fprintln(e.stderr)
	if rep != nil {
		for _, re := range rep.Errors {
			fmt.Fprintln(e.stderr, re.String())
		}
		if rep.Rejected > len(rep.Errors) {
			fmt.Fprintf(e.stderr, "… and %d more bad rows\n", rep.Rejected-len(rep.Errors))
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "imported %d, updated %d, rejected %d of %d rows into %s/%s in %s\n",
		rep.Imported, rep.Updated, rep.Rejected, rep.Rows, t.Code, *object, rep.Elapsed.Round(time.Millisecond))
	return nil
}
