package dataobject

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/xuri/excelize/v2"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Import limits.
const (
	importChunk        = 5000 // rows validated, checked against the database and copied together
	maxReportedErrors  = 1000 // the report lists this many bad rows; the count covers all
	progressEvery      = 250 * time.Millisecond
	maxImportColumns   = 500
	maxImportCellBytes = 64 << 10
)

// Duplicate says what an import does with a row whose phone number is already a record's.
type Duplicate string

const (
	DuplicateReport Duplicate = "report" // the row is bad (default)
	DuplicateUpdate Duplicate = "update" // the row updates the record that has the number
)

// ImportOptions control an import.
type ImportOptions struct {
	Object     string
	Format     string    // "csv" or "xlsx"; ImportFile takes it from the file name
	SkipBad    bool      // import the good rows; default: all or nothing
	Rejects    io.Writer // with SkipBad: the bad rows as CSV, with the problem in a last column
	Duplicates Duplicate
	Actor      account.Actor
	Progress   func(Progress) // called now and then from the importing goroutine
	// ExpectedRows is the number of data rows, for the ETA (0: ImportFile counts a CSV
	// file's lines, Import an XLSX sheet's rows).
	ExpectedRows int
}

// Progress of an import.
type Progress struct {
	Rows     int // rows read so far
	Total    int // rows in the file when known (0: unknown)
	Done     bool
	Elapsed  time.Duration
	Imported int
}

// RowsPerSecond is the import's speed so far.
func (p Progress) RowsPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Rows) / p.Elapsed.Seconds()
}

// ETA is the time left at the speed so far (0 when the total is unknown).
func (p Progress) ETA() time.Duration {
	rps := p.RowsPerSecond()
	if p.Total == 0 || rps == 0 || p.Rows >= p.Total {
		return 0
	}
	return time.Duration(float64(p.Total-p.Rows) / rps * float64(time.Second))
}

// RowError is one problem of one row: row numbers count the header as row 1, as a
// spreadsheet does.
type RowError struct {
	Row     int
	Column  string
	Problem string
}

func (e RowError) String() string {
	if e.Column == "" {
		return fmt.Sprintf("row %d: %s", e.Row, e.Problem)
	}
	return fmt.Sprintf("row %d, column %s: %s", e.Row, e.Column, e.Problem)
}

// ImportReport says what an import did.
type ImportReport struct {
	Rows      int        // data rows read
	Imported  int        // new records
	Updated   int        // existing records updated (DuplicateUpdate)
	Rejected  int        // bad rows
	Errors    []RowError // the first maxReportedErrors problems
	Committed bool       // false: nothing was written
	Elapsed   time.Duration
}

// ImportFile imports a .csv or .xlsx file.
func (s *Store) ImportFile(ctx context.Context, t *account.Tenant, path string, opts ImportOptions) (*ImportReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "open %s: %s", path, errors.Unwrap(err))
	}
	defer f.Close()
	if opts.Format == "" {
		opts.Format = strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	}
	if opts.Format == "csv" && opts.ExpectedRows == 0 {
		opts.ExpectedRows = countLines(f) - 1
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("rewind %s: %w", path, err)
		}
	}
	return s.Import(ctx, t, f, opts)
}

// countLines counts the lines of r (quoted line breaks make it an estimate).
func countLines(r io.Reader) int {
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		for _, b := range buf[:k] {
			if b == '\n' {
				n++
			}
		}
		if err != nil {
			return n
		}
	}
}

// rowReader yields the rows of a CSV file or of an XLSX file's first sheet.
type rowReader interface {
	Next() ([]string, error) // io.EOF after the last row
	Close() error
}

type csvRows struct{ r *csv.Reader }

func (c csvRows) Next() ([]string, error) { return c.r.Read() }
func (c csvRows) Close() error            { return nil }

type xlsxRows struct {
	f     *excelize.File
	sheet string
	rows  *excelize.Rows
}

func (x xlsxRows) Next() ([]string, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	return x.rows.Columns()
}

// dataRows is how many rows the sheet has after the header, for the progress's total and
// ETA: from the sheet's dimension when it has one (Excel writes it), else by reading the
// sheet through once (excelize's stream writer, which ctid's export uses, leaves it "A1").
// Blank rows count: it is an estimate, as a CSV file's line count is.
func (x xlsxRows) dataRows() int {
	if ref, err := x.f.GetSheetDimension(x.sheet); err == nil {
		if first, last, ok := strings.Cut(ref, ":"); ok {
			_, from, err1 := excelize.CellNameToCoordinates(first)
			_, to, err2 := excelize.CellNameToCoordinates(last)
			if err1 == nil && err2 == nil && to > from {
				return to - from
			}
		}
	}
	rows, err := x.f.Rows(x.sheet)
	if err != nil {
		return 0
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return max(n-1, 0)
}

func (x xlsxRows) Close() error {
	x.rows.Close()
	return x.f.Close()
}

func openRows(r io.Reader, format string) (rowReader, error) {
	switch format {
	case "csv":
		cr := csv.NewReader(newTextReader(r))
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
		return csvRows{cr}, nil
	case "xlsx":
		f, err := excelize.OpenReader(r)
		if err != nil {
			return nil, fault.Errorf(fault.Invalid, "not a readable XLSX file: %s", err)
		}
		sheets := f.GetSheetList()
		if len(sheets) == 0 {
			f.Close()
			return nil, fault.Errorf(fault.Invalid, "the XLSX file has no sheet")
		}
		rows, err := f.Rows(sheets[0])
		if err != nil {
			f.Close()
			return nil, fault.Errorf(fault.Invalid, "read sheet %q: %s", sheets[0], err)
		}
		return xlsxRows{f: f, sheet: sheets[0], rows: rows}, nil
	}
	return nil, fault.Errorf(fault.Invalid, "unknown import format %q: want csv or xlsx", format)
}

// Import reads a header row and records from r into object opts.Object. Every row is
// validated; by default one bad row means nothing is imported, and the report names row,
// column and problem of each. New records are written with COPY in one transaction.
func (s *Store) Import(ctx context.Context, t *account.Tenant, r io.Reader, opts ImportOptions) (*ImportReport, error) {
	if opts.Duplicates == "" {
		opts.Duplicates = DuplicateReport
	}
	if opts.Duplicates != DuplicateReport && opts.Duplicates != DuplicateUpdate {
		return nil, fault.Errorf(fault.Invalid, "duplicates must be report or update, not %q", opts.Duplicates)
	}
	rows, err := openRows(r, opts.Format)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if x, ok := rows.(xlsxRows); ok && opts.ExpectedRows == 0 {
		opts.ExpectedRows = x.dataRows()
	}
	im := &importer{s: s, t: t, loc: t.Location(), opts: opts, rows: rows, report: &ImportReport{}, start: time.Now(),
		codes: newCodeCache(), phoneReader: newPhoneReader(t.Region), seenPhones: map[string]int{}, seenUnique: map[string]int{}}
	if opts.Rejects != nil {
		im.rejects = csv.NewWriter(opts.Rejects)
	}
	err = s.inTenant(ctx, t, func(tx pgx.Tx) error {
		im.tx = tx
		if err := im.run(ctx); err != nil {
			return err
		}
		if im.report.Rejected > 0 && !opts.SkipBad {
			return errNothingImported
		}
		return nil
	})
	im.report.Elapsed = time.Since(im.start)
	if im.rejects != nil {
		im.rejects.Flush()
	}
	if errors.Is(err, errNothingImported) {
		im.report.Imported, im.report.Updated = 0, 0
		return im.report, fault.Errorf(fault.Invalid, "%d of %d rows are bad; nothing was imported. First: %s",
			im.report.Rejected, im.report.Rows, im.report.Errors[0])
	}
	if err != nil {
		im.report.Imported, im.report.Updated = 0, 0
		return im.report, wrapUnlessFault(err, "import into %q", opts.Object)
	}
	im.report.Committed = true
	s.metrics.importedRows.Add(float64(im.report.Imported + im.report.Updated))
	im.progress(true)
	return im.report, nil
}

var errNothingImported = errors.New("bad rows: nothing imported")

type importer struct {
	s       *Store
	t       *account.Tenant
	tx      pgx.Tx
	opts    ImportOptions
	rows    rowReader
	rejects *csv.Writer
	report  *ImportReport
	start   time.Time
	lastRep time.Time

	loc     *time.Location // the tenant's, for dates and times without a zone
	o       *Object
	header  []string
	columns []*Field // per file column; nil for ignored system columns
	codes   *codeCache
	// phoneReader normalises the file's numbers (on the workers: it is read-only)
	phoneReader *phoneReader
	sequence    string // of the object table's ids
	// hadPhones: the object had numbers matched against callers when the import began, so
	// the file's numbers are looked for among them
	hadPhones bool
	// first row of each phone key and unique value seen in the file
	seenPhones map[string]int
	seenUnique map[string]int
}

// pending is one validated row waiting for its chunk's database checks.
type pending struct {
	row    int
	cells  []string
	values map[*Field]any
	errs   []RowError
	update int64 // DuplicateUpdate: the record this row updates
	phones []rowPhone
}

// rowPhone is one number of a row, normalised once.
type rowPhone struct {
	field *Field
	phone Phone
}

// run maps the header, then imports the rows as a pipeline: one goroutine reads the file
// into chunks, workers on every core validate chunks and normalise their phone numbers
// (libphonenumber is the import's main cost in Go), and this goroutine, the only one that
// uses the transaction, checks each chunk against the file's earlier rows and the
// database and copies it, in file order, while the workers prepare the next chunks.
func (im *importer) run(ctx context.Context) error {
	o, err := loadObject(ctx, im.tx, im.opts.Object)
	if err != nil {
		return err
	}
	im.o = o
	if err := im.prepareDatabase(ctx); err != nil {
		return err
	}
	header, err := im.rows.Next()
	if err == io.EOF {
		return fault.Errorf(fault.Invalid, "the file is empty: want a header row naming the fields")
	}
	if err != nil {
		return fault.Errorf(fault.Invalid, "row 1: %s", err)
	}
	if err := im.mapHeader(header); err != nil {
		return err
	}
	if im.rejects != nil {
		if err := im.rejects.Write(append(append([]string{}, im.header...), "problem")); err != nil {
			return fmt.Errorf("write rejects: %w", err)
		}
	}
	// Workers read the code tables from the cache only: load them all now.
	for _, f := range im.o.Visible() {
		if f.Type == TypeCode {
			if _, err := im.codes.load(ctx, im.tx, f.CodeTable); err != nil {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait() // the reader and workers are gone before Import closes the file
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for c := range im.chunks(ctx, &wg) {
		select {
		case <-c.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.err != nil {
			return c.err
		}
		im.report.Rows += len(c.rows)
		if err := im.flush(ctx, c.rows); err != nil {
			return err
		}
		im.progress(false)
	}
	return ctx.Err()
}

// prepareDatabase reads, once, what every chunk's statements need.
func (im *importer) prepareDatabase(ctx context.Context) error {
	// The import's statements are many and short: compiling them (PostgreSQL's cost
	// estimates are those of tables growing in this transaction) costs more than it saves.
	if _, err := im.tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		return fmt.Errorf("import settings: %w", err)
	}
	if err := im.tx.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, 'id')`, im.o.Table).Scan(&im.sequence); err != nil {
		return fmt.Errorf("id sequence of %s: %w", im.o.Table, err)
	}
	err := im.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM phone_keys WHERE active AND object_id = $1)`, im.o.ID).Scan(&im.hadPhones)
	if err != nil {
		return fmt.Errorf("phones of %s: %w", im.o.Key, err)
	}
	return nil
}

// importChunksAhead is how many chunks may be read and prepared ahead of the one being
// written, beyond one per worker.
const importChunksAhead = 1

// chunk is a run of rows of the file on its way through the import pipeline.
type chunk struct {
	raw   []rawRow
	rows  []*pending // validated, phones normalised: set before ready is closed
	err   error      // the file cannot be read on: set before ready is closed
	ready chan struct{}
}

type rawRow struct {
	row   int
	cells []string
}

// chunks starts the reader and the workers; the channel yields the file's chunks in order,
// each to be used once its ready channel is closed. Everything stops when ctx is done.
func (im *importer) chunks(ctx context.Context, wg *sync.WaitGroup) <-chan *chunk {
	workers := runtime.GOMAXPROCS(0)
	ordered := make(chan *chunk, workers+importChunksAhead)
	work := make(chan *chunk, workers+importChunksAhead)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ordered)
		defer close(work)
		send := func(c *chunk) bool {
			select {
			case ordered <- c:
			case <-ctx.Done():
				return false
			}
			if c.err != nil {
				close(c.ready)
				return false
			}
			select {
			case work <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		c := &chunk{ready: make(chan struct{})}
		rowNum := 1
		for {
			cells, err := im.rows.Next()
			if err == io.EOF {
				break
			}
			rowNum++
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					c.err = fault.Errorf(fault.Invalid, "row %d: the file is not valid CSV: %s", rowNum, pe.Err)
				} else {
					c.err = fault.Errorf(fault.Invalid, "row %d: %s", rowNum, err)
				}
				send(c)
				return
			}
			if blank(cells) {
				continue
			}
			c.raw = append(c.raw, rawRow{rowNum, append([]string(nil), cells...)})
			if len(c.raw) == importChunk {
				if !send(c) {
					return
				}
				c = &chunk{ready: make(chan struct{})}
			}
		}
		if len(c.raw) > 0 {
			send(c)
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if ctx.Err() != nil { // the import has failed: drain the queue
					close(c.ready)
					continue
				}
				c.rows = make([]*pending, len(c.raw))
				for i, r := range c.raw {
					c.rows[i] = im.validate(r.row, r.cells)
				}
				c.raw = nil
				close(c.ready)
			}
		}()
	}
	return ordered
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// importIgnored are export columns that an import skips rather than refuses.
var importIgnored = map[string]bool{"id": true, "created_at": true, "updated_at": true, "created_by": true, "updated_by": true}

// mapHeader matches each header cell to a field by key or by label (English or Chinese).
func (im *importer) mapHeader(header []string) error {
	if len(header) > maxImportColumns {
		return fault.Errorf(fault.Invalid, "row 1: %d columns, at most %d", len(header), maxImportColumns)
	}
	byName := map[string]*Field{}
	for _, f := range im.o.Visible() {
		for _, n := range []string{f.Key, f.LabelEN, f.LabelZH} {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
				if _, taken := byName[n]; !taken {
					byName[n] = f
				}
			}
		}
	}
	used := map[*Field]string{}
	var problems []string
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // the byte-order mark Excel writes
		}
		h = strings.TrimSpace(h)
		im.header = append(im.header, h)
		f := byName[strings.ToLower(h)]
		switch {
		case f == nil && importIgnored[strings.ToLower(h)]:
		case f == nil:
			problems = append(problems, fmt.Sprintf("column %q matches no field of %q", h, im.o.Key))
		case used[f] != "":
			problems = append(problems, fmt.Sprintf("columns %q and %q are both field %q", used[f], h, f.Key))
		default:
			used[f] = h
		}
		im.columns = append(im.columns, f)
	}
	for _, f := range im.o.Visible() {
		if f.Required && used[f] == "" && f.Default == "" {
			problems = append(problems, fmt.Sprintf("required field %q (%s) has no column", f.Key, f.LabelEN))
		}
	}
	if len(problems) > 0 {
		return fault.Errorf(fault.Invalid, "row 1 (header): %s", strings.Join(problems, "; "))
	}
	return nil
}

// validate checks one row on its own and normalises its phone numbers; it runs on the
// pipeline's workers, so it reads only what is fixed during the import. Checks against
// earlier rows and the database follow per chunk, in order.
func (im *importer) validate(row int, cells []string) *pending {
	p := &pending{row: row, cells: cells, values: map[*Field]any{}}
	for i, f := range im.columns {
		if f == nil || i >= len(cells) {
			continue
		}
		cell := cells[i]
		if len(cell) > maxImportCellBytes {
			p.errs = append(p.errs, RowError{row, im.header[i], "cell is too long"})
			continue
		}
		v, err := parseValueIn(f, cell, im.loc)
		if err == nil && v != nil && f.Type == TypeCode {
			v, err = im.codes.resolveLoaded(f, v)
		}
		if err != nil {
			p.errs = append(p.errs, RowError{row, im.header[i], fault.MessageOf(err)})
			continue
		}
		if v != nil {
			p.values[f] = v
		}
	}
	for _, f := range im.o.Visible() {
		if _, ok := p.values[f]; ok {
			continue
		}
		if f.Default != "" {
			if v, err := parseValueIn(f, f.Default, im.loc); err == nil && v != nil {
				p.values[f] = v
				continue
			}
		}
		if f.Required {
			p.errs = append(p.errs, RowError{row, im.columnOf(f), "is required"})
		}
	}
	for _, f := range im.o.Visible() {
		if f.Type == TypePhone {
			for _, raw := range phoneValues(p.values[f]) {
				p.phones = append(p.phones, rowPhone{field: f, phone: im.phoneReader.Normalize(raw)})
			}
		}
	}
	return p
}

// checkFile finds, in file order, phone numbers and unique values that an earlier row of
// the file already had.
func (im *importer) checkFile(chunk []*pending) {
	for _, p := range chunk {
		for _, rp := range p.phones {
			k := phoneKey(rp.phone)
			if k == "" {
				continue
			}
			if first, ok := im.seenPhones[k]; ok && first != p.row {
				p.errs = append(p.errs, RowError{p.row, im.columnOf(rp.field), fmt.Sprintf("phone %s is also in row %d", rp.phone.Raw, first)})
			} else {
				im.seenPhones[k] = p.row
			}
		}
		for _, f := range im.o.Visible() {
			v, ok := p.values[f]
			if !ok || !f.Unique {
				continue
			}
			k := f.Key + "\x00" + fmt.Sprint(v)
			if first, ok := im.seenUnique[k]; ok {
				p.errs = append(p.errs, RowError{p.row, im.columnOf(f), fmt.Sprintf("value %v is also in row %d", v, first)})
			} else {
				im.seenUnique[k] = p.row
			}
		}
	}
}

// phoneKey identifies a number for duplicate checks: its E.164 form, else its stripped digits.
func phoneKey(p Phone) string {
	if p.E164 != "" {
		return p.E164
	}
	return p.Stripped
}

func (im *importer) columnOf(f *Field) string {
	for i, g := range im.columns {
		if g == f {
			return im.header[i]
		}
	}
	return f.Key
}

// flush runs the database checks of a chunk and writes its good rows, unless an earlier
// bad row already means nothing will be imported.
func (im *importer) flush(ctx context.Context, chunk []*pending) error {
	if len(chunk) == 0 {
		return nil
	}
	im.checkFile(chunk)
	if err := im.checkExisting(ctx, chunk); err != nil {
		return err
	}
	var inserts []*pending
	for _, p := range chunk {
		if len(p.errs) > 0 {
			if err := im.reject(p); err != nil {
				return err
			}
			continue
		}
		if im.report.Rejected > 0 && !im.opts.SkipBad {
			continue // validating only: the import will be rolled back
		}
		if p.update != 0 {
			values := map[string]any{}
			for f, v := range p.values {
				values[f.Key] = v
			}
			if _, err := updateRecord(ctx, im.tx, im.s, im.t, im.o, p.update, values, im.opts.Actor, im.codes, false); err != nil {
				if fault.CodeOf(err) == fault.Internal {
					return err
				}
				p.errs = append(p.errs, RowError{p.row, "", fault.MessageOf(err)})
				if err := im.reject(p); err != nil {
					return err
				}
				continue
			}
			im.report.Updated++
			continue
		}
		inserts = append(inserts, p)
	}
	if len(inserts) == 0 || (im.report.Rejected > 0 && !im.opts.SkipBad) {
		return nil
	}
	return im.copyRows(ctx, inserts)
}

func (im *importer) reject(p *pending) error {
	im.report.Rejected++
	for _, e := range p.errs {
		if len(im.report.Errors) < maxReportedErrors {
			im.report.Errors = append(im.report.Errors, e)
		}
	}
	if im.rejects != nil && im.opts.SkipBad {
		problems := make([]string, len(p.errs))
		for i, e := range p.errs {
			problems[i] = e.String()
		}
		if err := im.rejects.Write(append(p.cells, strings.Join(problems, "; "))); err != nil {
			return fmt.Errorf("write rejects: %w", err)
		}
	}
	return nil
}

// checkExisting finds, for a chunk, phone numbers already on records, unique values already
// taken and references to records that do not exist.
func (im *importer) checkExisting(ctx context.Context, chunk []*pending) error {
	var e164s, nationals, stripped []string
	for _, p := range chunk {
		for _, rp := range p.phones {
			if rp.phone.E164 != "" {
				e164s = append(e164s, rp.phone.E164)
				nationals = append(nationals, rp.phone.National)
			} else if rp.phone.Stripped != "" {
				stripped = append(stripped, rp.phone.Stripped)
			}
		}
	}
	owners := map[string]int64{}
	// Only numbers the object had before the import can be on its records: numbers that
	// earlier rows of the file added are the file's own duplicates, which checkFile reports.
	// So an object without numbers at the start (a first import) needs no lookups. (A
	// record that another session saves while the import runs is not looked for; no
	// check could promise that, as the check and that save would race anyway.)
	if im.hadPhones && len(e164s)+len(stripped) > 0 {
		// Numbers of fields matched against callers: those have indexes (partial, on
		// active). One index probe per number, whatever the planner believes of a table
		// that grows in this transaction (it has no statistics of the new rows): given the
		// arrays whole, it scanned all the object's keys for every chunk. "object_id + 0"
		// keeps it from intersecting each probe with every key of the object.
		rows, err := im.tx.Query(ctx, existingPhonesSQL, im.o.ID, e164s, nationals, stripped)
		if err != nil {
			return fmt.Errorf("check phone duplicates: %w", err)
		}
		for rows.Next() {
			var k string
			var id int64
			if err := rows.Scan(&k, &id); err != nil {
				rows.Close()
				return err
			}
			owners[k] = id
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, p := range chunk {
		for _, rp := range p.phones {
			id, ok := owners[phoneKey(rp.phone)]
			f, raw := rp.field, rp.phone.Raw
			switch {
			case !ok:
			case im.opts.Duplicates == DuplicateUpdate && (p.update == 0 || p.update == id):
				p.update = id
			case im.opts.Duplicates == DuplicateUpdate:
				p.errs = append(p.errs, RowError{p.row, im.columnOf(f), fmt.Sprintf("phones belong to two %s records (%d and %d)", im.o.Key, p.update, id)})
			default:
				p.errs = append(p.errs, RowError{p.row, im.columnOf(f), fmt.Sprintf("phone %s already belongs to %s record %d", raw, im.o.Key, id)})
			}
		}
	}
	if err := im.checkReferences(ctx, chunk); err != nil {
		return err
	}
	return im.checkUnique(ctx, chunk)
}

// existingPhonesSQL finds which of the E.164 numbers $2 (with their national numbers $3)
// and stripped keys $4 (of numbers without E.164) are on active records of object $1, with
// one such record each. An E.164 number is found through its national number's index (the
// one Lookup reads): an E.164 number is "+", the country code and the national number, so
// no index of its own is kept up to date for every key written.
const existingPhonesSQL = `SELECT key, id FROM (
	SELECT k.key, (SELECT p.record_id FROM phone_keys p
		WHERE p.active AND p.national = k.nat AND p.e164 = k.key AND p.object_id + 0 = $1 LIMIT 1) AS id
	FROM unnest($2::text[], $3::text[]) AS k(key, nat)
	UNION ALL
	SELECT k.key, (SELECT p.record_id FROM phone_keys p
		WHERE p.active AND p.stripped = k.key AND p.e164 IS NULL AND p.object_id + 0 = $1 LIMIT 1)
	FROM unnest($4::text[]) AS k(key)) AS found
WHERE id IS NOT NULL`

// checkReferences finds references to records that do not exist, with one query per
// reference field and chunk.
func (im *importer) checkReferences(ctx context.Context, chunk []*pending) error {
	for _, f := range im.o.Visible() {
		if f.Type != TypeReference {
			continue
		}
		var ids []int64
		for _, p := range chunk {
			if v, ok := p.values[f]; ok {
				ids = append(ids, v.(int64))
			}
		}
		if len(ids) == 0 {
			continue
		}
		ref, err := loadObject(ctx, im.tx, f.RefObject)
		if err != nil {
			return err
		}
		rows, err := im.tx.Query(ctx, "SELECT id FROM "+ident(ref.Table)+" WHERE id = ANY($1) AND deleted_at IS NULL", ids)
		if err != nil {
			return fmt.Errorf("check references of %q: %w", f.Key, err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("check references of %q: %w", f.Key, err)
		}
		exists := make(map[int64]bool, len(found))
		for _, id := range found {
			exists[id] = true
		}
		for _, p := range chunk {
			if v, ok := p.values[f]; ok && !exists[v.(int64)] {
				p.errs = append(p.errs, RowError{p.row, im.columnOf(f), fmt.Sprintf("%s record %d does not exist", ref.Key, v.(int64))})
			}
		}
	}
	return nil
}

func (im *importer) checkUnique(ctx context.Context, chunk []*pending) error {
	for _, f := range im.o.Visible() {
		if !f.Unique {
			continue
		}
		var vals []string
		for _, p := range chunk {
			if v, ok := p.values[f]; ok {
				vals = append(vals, fmt.Sprint(v))
			}
		}
		if len(vals) == 0 {
			continue
		}
		rows, err := im.tx.Query(ctx, "SELECT "+ident(f.Key)+"::text, id FROM "+ident(im.o.Table)+
			" WHERE deleted_at IS NULL AND "+ident(f.Key)+"::text = ANY($1)", vals)
		if err != nil {
			return fmt.Errorf("check unique %q: %w", f.Key, err)
		}
		taken := map[string]int64{}
		for rows.Next() {
			var v string
			var id int64
			if err := rows.Scan(&v, &id); err != nil {
				rows.Close()
				return err
			}
			taken[v] = id
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range chunk {
			if v, ok := p.values[f]; ok {
				if id, dup := taken[fmt.Sprint(v)]; dup && id != p.update {
					p.errs = append(p.errs, RowError{p.row, im.columnOf(f), fmt.Sprintf("value %v is already %s record %d's", v, im.o.Key, id)})
				}
			}
		}
	}
	return nil
}

// copyRows writes new records and their phone keys with COPY.
func (im *importer) copyRows(ctx context.Context, ps []*pending) error {
	rows, err := im.tx.Query(ctx, `SELECT nextval($1::regclass) FROM generate_series(1, $2)`, im.sequence, len(ps))
	if err != nil {
		return fmt.Errorf("reserve ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("reserve ids: %w", err)
	}
	fields := im.o.Visible()
	cols := []string{"id", "created_by", "updated_by", "owner_id"}
	for _, f := range fields {
		cols = append(cols, f.Key)
	}
	var actor *int64
	if im.opts.Actor.UserID != 0 {
		actor = &im.opts.Actor.UserID
	}
	now := time.Now()
	records := make([][]any, len(ps))
	var keys [][]any
	for i, p := range ps {
		row := make([]any, 0, len(cols))
		row = append(row, ids[i], actor, actor, actor)
		for _, f := range fields {
			v, err := copyValue(f, p.values[f])
			if err != nil {
				return fmt.Errorf("row %d: %w", p.row, err)
			}
			row = append(row, v)
		}
		for _, rp := range p.phones {
			keys = append(keys, phoneKeyRowOf(im.o, rp.field, ids[i], rp.phone, now))
		}
		records[i] = row
	}
	if _, err := im.tx.CopyFrom(ctx, pgx.Identifier{im.o.Table}, cols, pgx.CopyFromRows(records)); err != nil {
		return fmt.Errorf("copy records: %w", err)
	}
	if len(keys) > 0 {
		if _, err := im.tx.CopyFrom(ctx, pgx.Identifier{"phone_keys"}, phoneKeyColumns, pgx.CopyFromRows(keys)); err != nil {
			return fmt.Errorf("copy phone keys: %w", err)
		}
	}
	im.report.Imported += len(ps)
	return nil
}

// copyValue converts a parsed value to what COPY's binary format takes for f's column.
func copyValue(f *Field, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch f.Type {
	case TypeDecimal:
		var n pgtype.Numeric
		if err := n.Scan(v.(string)); err != nil {
			return nil, err
		}
		return n, nil
	case TypeDate:
		return time.Parse("2006-01-02", v.(string))
	}
	return v, nil
}

func (im *importer) progress(done bool) {
	if im.opts.Progress == nil {
		return
	}
	now := time.Now()
	if !done && now.Sub(im.lastRep) < progressEvery {
		return
	}
	im.lastRep = now
	im.opts.Progress(Progress{Rows: im.report.Rows, Total: max(im.opts.ExpectedRows, im.report.Rows), Done: done, Elapsed: now.Sub(im.start), Imported: im.report.Imported + im.report.Updated})
}
