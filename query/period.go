package query

import (
	"strconv"
	"strings"
	"time"

	"github.com/ctid/ctid/fault"
)

// Date presets of a date-range condition. Weeks start on Monday (ISO 8601, as in China).
const (
	PresetToday     = "today"
	PresetYesterday = "yesterday"
	PresetThisWeek  = "this_week"
	PresetLastWeek  = "last_week"
	PresetThisMonth = "this_month"
	PresetLastMonth = "last_month"
	PresetCustom    = "custom" // the form's <key>_from and <key>_to
	// "last_N_days" (N from 1 to maxLastDays): today and the N−1 days before it.
	maxLastDays = 366
)

// Presets lists the fixed presets in the order the form offers them.
var Presets = []string{PresetToday, PresetYesterday, PresetThisWeek, PresetLastWeek, PresetThisMonth,
	PresetLastMonth, "last_7_days", "last_30_days", PresetCustom}

// Preset is a parsed preset name.
type Preset struct {
	Name string
	Days int // for last_N_days
}

// ParsePreset reads a preset name; an unknown one is an error naming the known ones.
func ParsePreset(s string) (Preset, error) {
	switch s {
	case PresetToday, PresetYesterday, PresetThisWeek, PresetLastWeek, PresetThisMonth, PresetLastMonth, PresetCustom:
		return Preset{Name: s}, nil
	}
	if rest, ok := strings.CutPrefix(s, "last_"); ok {
		if num, ok := strings.CutSuffix(rest, "_days"); ok {
			n, err := strconv.Atoi(num)
			if err == nil && n >= 1 && n <= maxLastDays && strconv.Itoa(n) == num {
				return Preset{Name: "last_days", Days: n}, nil
			}
		}
	}
	return Preset{}, fault.Errorf(fault.Invalid, "unknown date preset %q: want today, yesterday, this_week, last_week, "+
		"this_month, last_month, last_N_days (N 1–%d) or custom", s, maxLastDays)
}

// Range is a half-open interval of instants [From, To).
type Range struct {
	From, To time.Time
}

// midnight is the start of t's day in loc. Days are built with time.Date, so a DST change
// inside the range moves no boundary off midnight.
func midnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func addDays(day time.Time, n int) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d+n, 0, 0, 0, 0, day.Location())
}

// Range computes the preset's interval around now in the tenant's time zone loc.
func (p Preset) Range(now time.Time, loc *time.Location) Range {
	today := midnight(now, loc)
	// Monday of this week: Go's Sunday is 0.
	monday := addDays(today, -((int(today.Weekday()) + 6) % 7))
	y, m, _ := today.Date()
	firstOfMonth := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	switch p.Name {
	case PresetToday:
		return Range{today, addDays(today, 1)}
	case PresetYesterday:
		return Range{addDays(today, -1), today}
	case PresetThisWeek:
		return Range{monday, addDays(monday, 7)}
	case PresetLastWeek:
		return Range{addDays(monday, -7), monday}
	case PresetThisMonth:
		return Range{firstOfMonth, time.Date(y, m+1, 1, 0, 0, 0, 0, loc)}
	case PresetLastMonth:
		return Range{time.Date(y, m-1, 1, 0, 0, 0, 0, loc), firstOfMonth}
	case "last_days":
		return Range{addDays(today, 1-p.Days), addDays(today, 1)}
	}
	return Range{}
}

// parseDay reads a form date or date-time ("2024-03-01", "2024-03-01T08:30") in loc. A bare
// date as the end of a range means the whole day (endOfRange).
func parseDay(s string, loc *time.Location, endOfRange bool) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		return time.Time{}, err
	}
	if endOfRange {
		return addDays(t, 1), nil
	}
	return t, nil
}
