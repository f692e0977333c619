package dataobject

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// Export writes every record of object key that q selects (paging ignored) to w as CSV or
// XLSX, with a header of field labels in lang. Rows stream from a cursor: the CSV is written
// as it is read; excelize's stream writer keeps large sheets in a temporary file, not memory.
func (s *Store) Export(ctx context.Context, t *account.Tenant, key string, q ListQuery, format, lang string, w io.Writer) error {
	if format != "csv" && format != "xlsx" {
		return fault.Errorf(fault.Invalid, "unknown export format %q: want csv or xlsx", format)
	}
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, key)
		if err != nil {
			return err
		}
		var args []any
		where, err := q.where(ctx, tx, o, t.Location(), &args)
		if err != nil {
			return err
		}
		fields := o.Visible()
		header := []string{"id"}
		for _, f := range fields {
			header = append(header, f.Label(lang))
		}
		sink, err := newSheetSink(format, w)
		if err != nil {
			return err
		}
		if err := sink.row(header); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT "+selectList(o)+" FROM "+ident(o.Table)+" WHERE "+where+" ORDER BY id", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		loc := t.Location()
		cells := make([]string, len(header))
		for rows.Next() {
			r, err := scanRecord(o, rows)
			if err != nil {
				return err
			}
			cells[0] = strconv.FormatInt(r.ID, 10)
			for i, f := range fields {
				cells[i+1] = formatCell(r.Values[f.Key], loc)
			}
			if err := sink.row(cells); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return sink.close()
	})
	return wrapUnlessFault(err, "export %s", key)
}

// formatCell writes a value as an import reads it back.
func formatCell(v any, loc *time.Location) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []string:
		return strings.Join(x, "; ")
	case time.Time:
		return x.In(loc).Format("2006-01-02 15:04:05")
	case bool:
		if x {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(v)
}

type sheetSink struct {
	csv  *csv.Writer
	xlsx *excelize.File
	sw   *excelize.StreamWriter
	w    io.Writer
	n    int
	vals []any
}

// exportSheet is the name of the exported sheet.
const exportSheet = "Sheet1"

func newSheetSink(format string, w io.Writer) (*sheetSink, error) {
	if format == "csv" {
		// The byte-order mark makes Excel read the UTF-8 (Chinese) text right.
		if _, err := io.WriteString(w, "\ufeff"); err != nil {
			return nil, err
		}
		return &sheetSink{csv: csv.NewWriter(w)}, nil
	}
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter(exportSheet)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &sheetSink{xlsx: f, sw: sw, w: w}, nil
}

func (s *sheetSink) row(cells []string) error {
	if s.csv != nil {
		return s.csv.Write(cells)
	}
	s.n++
	s.vals = s.vals[:0]
	for _, c := range cells {
		s.vals = append(s.vals, c)
	}
	cell, err := excelize.CoordinatesToCellName(1, s.n)
	if err != nil {
		return err
	}
	return s.sw.SetRow(cell, s.vals)
}

func (s *sheetSink) close() error {
	if s.csv != nil {
		s.csv.Flush()
		return s.csv.Error()
	}
	defer s.xlsx.Close()
	if err := s.sw.Flush(); err != nil {
		return err
	}
	return s.xlsx.Write(s.w)
}
