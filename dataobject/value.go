package dataobject

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/fault"
)

// Values come from forms and CSV cells (strings) and from JSON (numbers, booleans, lists);
// parseValue turns either into the Go value stored in the field's column, or nil for empty.

var (
	decimalRE = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
	// listSepRE splits several phones or codes typed into one cell.
	listSepRE = regexp.MustCompile(`[;,/、，；|\n]+`)
)

const (
	maxDecimalDigits = 40
	maxMultiValues   = 20
	maxPhoneLength   = 64
)

var (
	dateLayouts     = []string{"2006-01-02", "2006/01/02", "2006/1/2", "2006-1-2", "20060102"}
	dateTimeLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04",
		"2006/01/02 15:04:05", "2006/01/02 15:04", "2006/1/2 15:04:05", "2006/1/2 15:04"}
)

func parseValue(f *Field, v any) (any, error) { return parseValueIn(f, v, time.UTC) }

// parseValueIn reads v for field f; times without a zone are in loc.
func parseValueIn(f *Field, v any, loc *time.Location) (any, error) {
	if v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, nil
		}
		v = s
	}
	switch f.Type {
	case TypeText, TypeLongText, TypeEmail:
		s, ok := v.(string)
		if !ok {
			return nil, fault.Errorf(fault.Invalid, "want text, not %s", jsonKind(v))
		}
		if f.MaxLength > 0 && utf8.RuneCountInString(s) > f.MaxLength {
			return nil, fault.Errorf(fault.Invalid, "too long: %d characters, at most %d", utf8.RuneCountInString(s), f.MaxLength)
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return nil, fault.Errorf(fault.Invalid, "not valid UTF-8 text")
		}
		if f.Type == TypeEmail {
			a, err := mail.ParseAddress(s)
			if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@'):], ".") {
				return nil, fault.Errorf(fault.Invalid, "%q is not an e-mail address", s)
			}
		}
		return s, nil
	case TypeInteger, TypeReference:
		n, err := toInt(v)
		if err != nil {
			return nil, err
		}
		if f.Type == TypeReference && n <= 0 {
			return nil, fault.Errorf(fault.Invalid, "%d is not a record id", n)
		}
		return n, nil
	case TypeDecimal:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fault.Errorf(fault.Invalid, "not a number")
			}
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case int:
			return strconv.Itoa(x), nil
		case json.Number:
			v = string(x)
		}
		s, ok := v.(string)
		if !ok || !decimalRE.MatchString(s) || len(s) > maxDecimalDigits {
			return nil, fault.Errorf(fault.Invalid, "%v is not a decimal number", v)
		}
		return s, nil
	case TypeDate:
		switch x := v.(type) {
		case time.Time:
			return x.Format("2006-01-02"), nil
		case string:
			for _, l := range dateLayouts {
				if d, err := time.Parse(l, x); err == nil {
					return d.Format("2006-01-02"), nil
				}
			}
			return nil, fault.Errorf(fault.Invalid, "%q is not a date: want YYYY-MM-DD", x)
		}
		return nil, fault.Errorf(fault.Invalid, "want a date, not %s", jsonKind(v))
	case TypeDateTime:
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case string:
			for _, l := range dateTimeLayouts {
				if d, err := time.ParseInLocation(l, x, loc); err == nil {
					return d, nil
				}
			}
			return nil, fault.Errorf(fault.Invalid, "%q is not a date and time: want YYYY-MM-DD HH:MM[:SS]", x)
		}
		return nil, fault.Errorf(fault.Invalid, "want a date and time, not %s", jsonKind(v))
	case TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(x) {
			case "true", "t", "yes", "y", "1", "on", "是", "真":
				return true, nil
			case "false", "f", "no", "n", "0", "off", "否", "假":
				return false, nil
			}
			return nil, fault.Errorf(fault.Invalid, "%q is not yes or no", x)
		}
		return nil, fault.Errorf(fault.Invalid, "want true or false, not %s", jsonKind(v))
	case TypePhone, TypeCode:
		list, err := toStrings(v, f.Multi)
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			if f.Type == TypePhone && utf8.RuneCountInString(s) > maxPhoneLength {
				return nil, fault.Errorf(fault.Invalid, "phone number %q is too long", s)
			}
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				return nil, fault.Errorf(fault.Invalid, "not valid UTF-8 text")
			}
		}
		if len(list) == 0 {
			return nil, nil
		}
		if !f.Multi {
			return list[0], nil
		}
		return list, nil
	}
	return nil, fault.Errorf(fault.Internal, "field %q has unknown type %q", f.Key, f.Type)
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, fault.Errorf(fault.Invalid, "%v is not a whole number", x)
		}
		return int64(x), nil
	case json.Number:
		v = string(x)
	}
	s, ok := v.(string)
	if !ok {
		return 0, fault.Errorf(fault.Invalid, "want a whole number, not %s", jsonKind(v))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fault.Errorf(fault.Invalid, "%q is not a whole number", s)
	}
	return n, nil
}

// toStrings reads one value, or several (a list, or a cell with separators) when multi.
func toStrings(v any, multi bool) ([]string, error) {
	var parts []string
	switch x := v.(type) {
	case string:
		if multi {
			parts = listSepRE.Split(x, -1)
		} else {
			parts = []string{x}
		}
	case []string:
		parts = x
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fault.Errorf(fault.Invalid, "want a list of text, found %s", jsonKind(e))
			}
			parts = append(parts, s)
		}
	default:
		return nil, fault.Errorf(fault.Invalid, "want text, not %s", jsonKind(v))
	}
	if len(parts) > 1 && !multi {
		return nil, fault.Errorf(fault.Invalid, "holds one value, not %d", len(parts))
	}
	out := make([]string, 0, len(parts))
	seen := map[string]bool{}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) > maxMultiValues {
		return nil, fault.Errorf(fault.Invalid, "too many values: %d, at most %d", len(out), maxMultiValues)
	}
	return out, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "text"
	case bool:
		return "true/false"
	case float64, int, int64, json.Number:
		return "a number"
	case []any, []string:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// checkCodes verifies that the codes in v (a string or []string) exist and are enabled in
// f's code table.
func checkCodes(ctx context.Context, tx pgx.Tx, f *Field, v any) error {
	var list []string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		list = []string{x}
	case []string:
		list = x
	}
	rows, err := tx.Query(ctx, `SELECT code FROM codes WHERE table_key = $1 AND code = ANY($2) AND enabled`, f.CodeTable, list)
	if err != nil {
		return fmt.Errorf("check codes of %q: %w", f.Key, err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("check codes of %q: %w", f.Key, err)
	}
	have := map[string]bool{}
	for _, c := range found {
		have[c] = true
	}
	for _, c := range list {
		if !have[c] {
			return fault.Errorf(fault.Invalid, "%q is not an enabled code of %q", c, f.CodeTable)
		}
	}
	return nil
}
