package query

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

func TestPresetRanges(t *testing.T) {
	sh := mustLoc(t, "Asia/Shanghai")
	ny := mustLoc(t, "America/New_York")
	lon := mustLoc(t, "Europe/London")
	at := func(loc *time.Location, s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name     string
		loc      *time.Location
		now      string // local time
		preset   string
		from, to string // local times
		hours    float64
	}{
		// Friday 1 March 2024 (leap year) in Shanghai.
		{"sh today", sh, "2024-03-01 10:00", "today", "2024-03-01 00:00", "2024-03-02 00:00", 24},
		{"sh yesterday across month end", sh, "2024-03-01 10:00", "yesterday", "2024-02-29 00:00", "2024-03-01 00:00", 24},
		{"sh this week spans months", sh, "2024-03-01 10:00", "this_week", "2024-02-26 00:00", "2024-03-04 00:00", 168},
		{"sh last week", sh, "2024-03-01 10:00", "last_week", "2024-02-19 00:00", "2024-02-26 00:00", 168},
		{"sh this month", sh, "2024-03-01 10:00", "this_month", "2024-03-01 00:00", "2024-04-01 00:00", 31 * 24},
		{"sh last month leap February", sh, "2024-03-01 10:00", "last_month", "2024-02-01 00:00", "2024-03-01 00:00", 29 * 24},
		{"sh last 7 days", sh, "2024-03-01 10:00", "last_7_days", "2024-02-24 00:00", "2024-03-02 00:00", 7 * 24},
		// 01:30 on 1 March in Shanghai is still 29 February in UTC: the tenant's day counts.
		{"sh just after local midnight", sh, "2024-03-01 01:30", "today", "2024-03-01 00:00", "2024-03-02 00:00", 24},
		{"sh this month just after midnight", sh, "2024-03-01 00:00", "this_month", "2024-03-01 00:00", "2024-04-01 00:00", 31 * 24},
		{"sh last month in January", sh, "2024-01-15 09:00", "last_month", "2023-12-01 00:00", "2024-01-01 00:00", 31 * 24},
		// Sunday: the week started the Monday before.
		{"sh this week on Sunday", sh, "2024-03-03 23:59", "this_week", "2024-02-26 00:00", "2024-03-04 00:00", 168},
		{"sh this week on Monday", sh, "2024-03-04 00:00", "this_week", "2024-03-04 00:00", "2024-03-11 00:00", 168},
		{"sh year end last week", sh, "2025-01-01 08:00", "last_week", "2024-12-23 00:00", "2024-12-30 00:00", 168},
		// New York: DST starts Sunday 10 March 2024 at 02:00 (the day has 23 hours).
		{"ny today DST start", ny, "2024-03-10 12:00", "today", "2024-03-10 00:00", "2024-03-11 00:00", 23},
		{"ny this week across DST", ny, "2024-03-10 12:00", "this_week", "2024-03-04 00:00", "2024-03-11 00:00", 167},
		{"ny last 7 days across DST", ny, "2024-03-11 09:00", "last_7_days", "2024-03-05 00:00", "2024-03-12 00:00", 167},
		{"ny this month with DST", ny, "2024-03-31 23:00", "this_month", "2024-03-01 00:00", "2024-04-01 00:00", 31*24 - 1},
		{"ny November DST end", ny, "2024-11-03 12:00", "today", "2024-11-03 00:00", "2024-11-04 00:00", 25},
		{"london last month October", lon, "2024-11-02 10:00", "last_month", "2024-10-01 00:00", "2024-11-01 00:00", 31*24 + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePreset(tc.preset)
			if err != nil {
				t.Fatal(err)
			}
			r := p.Range(at(tc.loc, tc.now), tc.loc)
			if want := at(tc.loc, tc.from); !r.From.Equal(want) {
				t.Errorf("from = %s, want %s", r.From, want)
			}
			if want := at(tc.loc, tc.to); !r.To.Equal(want) {
				t.Errorf("to = %s, want %s", r.To, want)
			}
			if got := r.To.Sub(r.From).Hours(); got != tc.hours {
				t.Errorf("length = %v h, want %v h", got, tc.hours)
			}
		})
	}
}

func TestParsePresetRefusesUnknown(t *testing.T) {
	for _, s := range []string{"", "tomorrow", "last_0_days", "last_367_days", "last_07_days", "last_x_days", "TODAY", "today; DROP TABLE x"} {
		if _, err := ParsePreset(s); err == nil {
			t.Errorf("ParsePreset(%q) accepted", s)
		}
	}
	for _, s := range []string{"last_1_days", "last_366_days", "custom"} {
		if _, err := ParsePreset(s); err != nil {
			t.Errorf("ParsePreset(%q): %v", s, err)
		}
	}
}
