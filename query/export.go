package query

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Export formats.
const (
	ExportCSV  = "csv"
	ExportXLSX = "xlsx"
)

// progressEvery is how often (in rows) an export reports progress.
const progressEvery = 10_000

// sheetWriter writes one row at a time: CSV or an XLSX stream.
type sheetWriter interface {
	header([]string) error
	row([]any) error
	close() error
}

// Export streams every matching row of d, in the run's order and scope, to w as CSV or XLSX.
// Rows go from the database to w one at a time (XLSX rows through excelize's stream writer,
// which spills to a temporary file), so memory stays flat for a million rows. progress, when
// not nil, is called every progressEvery rows and at the end.
func (s *Service) Export(ctx context.Context, t *account.Tenant, env *Env, d *Definition, req Request, format, lang string,
	w io.Writer, progress func(rows int64)) (n int64, err error) {
	start := time.Now()
	defer func() {
		s.m.observe("export", start, err)
		s.m.exportRows.Add(float64(n))
	}()
	var sw sheetWriter
	switch format {
	case ExportCSV:
		sw = newCSVWriter(w)
	case ExportXLSX:
		sw, err = newXLSXWriter(w)
		if err != nil {
			return 0, err
		}
	default:
		return 0, fault.Errorf(fault.Invalid, "unknown export format %q: want csv or xlsx", format)
	}
	if env.Loc == nil {
		env.Loc = t.Location()
	}
	// An export of statistics counts every event committed before it, as a page run does.
	if err := s.catchUp(ctx, t, d); err != nil {
		return 0, fmt.Errorf("export %s: %w", d.Key, err)
	}
	err = s.readOnly(ctx, t, d, exportTimeout, func(tx pgx.Tx) error {
		p, err := plan(ctx, tx, d, env, req)
		if err != nil {
			return err
		}
		var head []string
		var cols []int
		for i, c := range p.Columns {
			if !c.Hidden {
				head = append(head, c.Label.In(lang))
				cols = append(cols, i)
			}
		}
		if err := sw.header(head); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, p.ExportSQL, p.ExportArgs...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out := make([]any, len(cols))
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return err
			}
			for j, i := range cols {
				out[j] = cell(p.Columns[i], normalise(vals[i]), env, format)
			}
			if err := sw.row(out); err != nil {
				return fmt.Errorf("write export row: %w", err)
			}
			n++
			if n >= maxExportRows {
				return fault.Errorf(fault.Invalid, "export stopped at %d rows: narrow the conditions", maxExportRows)
			}
			if progress != nil && n%progressEvery == 0 {
				progress(n)
			}
		}
		return rows.Err()
	})
	if err != nil {
		if x, ok := sw.(*xlsxWriter); ok {
			x.file.Close() // removes its temporary files
		}
		return n, runError(d, err)
	}
	if err := sw.close(); err != nil {
		return n, fmt.Errorf("finish export: %w", err)
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}

// cell is the value written for a column: text as people read it, except that XLSX keeps
// plain numbers as numbers so spreadsheets can sum them.
func cell(c OutColumn, v any, env *Env, format string) any {
	if format == ExportXLSX {
		switch c.Format {
		case FormatNumber, FormatDecimal, FormatPercent:
			if f, ok := toFloat(v); ok {
				return f
			}
		}
	}
	return Format(c, v, env)
}

type csvWriter struct {
	w    *csv.Writer
	line []string
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: csv.NewWriter(w)} }

func (c *csvWriter) header(h []string) error {
	// A byte-order mark makes spreadsheet programs read the UTF-8 (Chinese labels) right.
	if err := c.w.Write(append([]string{"\ufeff" + first(h)}, h[min(1, len(h)):]...)); err != nil {
		return err
	}
	return nil
}

func (c *csvWriter) row(vals []any) error {
	c.line = c.line[:0]
	for _, v := range vals {
		s, _ := v.(string)
		c.line = append(c.line, s)
	}
	return c.w.Write(c.line)
}

func (c *csvWriter) close() error {
	c.w.Flush()
	return c.w.Error()
}

type xlsxWriter struct {
	out  io.Writer
	file *excelize.File
	sw   *excelize.StreamWriter
	next int
}

func newXLSXWriter(w io.Writer) (*xlsxWriter, error) {
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("xlsx stream: %w", err)
	}
	return &xlsxWriter{out: w, file: f, sw: sw, next: 1}, nil
}

func (x *xlsxWriter) header(h []string) error {
	vals := make([]any, len(h))
	for i, s := range h {
		vals[i] = s
	}
	return x.row(vals)
}

func (x *xlsxWriter) row(vals []any) error {
	cellName, err := excelize.CoordinatesToCellName(1, x.next)
	if err != nil {
		return err
	}
	x.next++
	return x.sw.SetRow(cellName, vals)
}

func (x *xlsxWriter) close() error {
	defer x.file.Close()
	if err := x.sw.Flush(); err != nil {
		return err
	}
	return x.file.Write(x.out)
}
