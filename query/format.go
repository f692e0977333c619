package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// normalise turns driver values into plain Go values for templates, JSON and exports.
func normalise(v any) any {
	switch x := v.(type) {
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return nil
		}
		return f.Float64
	case [16]byte:
		return fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// Format shows value v of column c for people: numbers grouped, durations as h:mm:ss,
// times in the tenant's zone, user ids as names.
func Format(c OutColumn, v any, env *Env) string {
	if v == nil {
		return ""
	}
	switch c.Format {
	case FormatNumber:
		if f, ok := toFloat(v); ok {
			return groupDigits(strconv.FormatFloat(math.Round(f), 'f', 0, 64))
		}
	case FormatDecimal:
		if f, ok := toFloat(v); ok {
			return strconv.FormatFloat(f, 'f', 2, 64)
		}
	case FormatPercent:
		if f, ok := toFloat(v); ok {
			return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
		}
	case FormatDuration:
		if f, ok := toFloat(v); ok {
			return FormatSeconds(f)
		}
	case FormatUser:
		if id, ok := v.(int64); ok {
			if n := env.NameOf(id); n != "" {
				return n
			}
			return strconv.FormatInt(id, 10)
		}
	}
	switch x := v.(type) {
	case time.Time:
		loc := env.Loc
		if loc == nil {
			loc = time.UTC
		}
		if c.Format == FormatDate {
			return x.In(loc).Format("2006-01-02")
		}
		return x.In(loc).Format("2006-01-02 15:04:05")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []string:
		return strings.Join(x, ", ")
	}
	return fmt.Sprint(v)
}

// FormatSeconds shows a duration in seconds as h:mm:ss (m:ss under an hour).
func FormatSeconds(f float64) string {
	neg := f < 0
	s := int64(math.Round(math.Abs(f)))
	h, m, sec := s/3600, (s%3600)/60, s%60
	out := fmt.Sprintf("%d:%02d", m, sec)
	if h > 0 {
		out = fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	if neg {
		out = "-" + out
	}
	return out
}

func groupDigits(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
