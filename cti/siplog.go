package cti

import (
	"context"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// Limits on what sipgo may log about bad input: it logs each unparseable datagram in full at
// ERROR, which lets anyone who can send UDP fill the disk.
const (
	maxLogValue       = 160              // bytes of one logged string value
	logWindow         = 10 * time.Second // rate window per message text
	logPerWindow      = 5                // records per message text per window
	maxLoggedMessages = 1000             // distinct message texts tracked before the table is reset
)

// inputErrors are sipgo's messages about input it could not read: the sender's problem, so
// they are logged as warnings, not errors.
var inputErrors = map[string]bool{
	"failed to parse":                    true,
	"Read filter error":                  true,
	"Server tx failed to handle request": true,
}

// quietHandler wraps the handler given to sipgo: string values are truncated, warnings and
// errors are rate-limited per message text (the next one that passes says how many were
// suppressed), and sipgo's bad-input errors become warnings.
type quietHandler struct {
	next  slog.Handler
	limit *logLimit
}

type logLimit struct {
	mu   sync.Mutex
	now  func() time.Time
	seen map[string]*logCount
}

type logCount struct {
	start      time.Time
	n          int
	suppressed int
}

func newQuietLogger(l *slog.Logger) *slog.Logger {
	return slog.New(&quietHandler{next: l.Handler(), limit: &logLimit{now: time.Now, seen: map[string]*logCount{}}})
}

func (h *quietHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	if level >= slog.LevelError && inputErrors[r.Message] {
		level = slog.LevelWarn
	}
	var suppressed int
	if level >= slog.LevelWarn {
		ok, n := h.limit.allow(r.Message)
		if !ok {
			return nil
		}
		suppressed = n
	}
	if !h.next.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(r.Time, level, truncate(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(truncateAttr(a))
		return true
	})
	if suppressed > 0 {
		out.AddAttrs(slog.Int("suppressed", suppressed))
	}
	return h.next.Handle(ctx, out)
}

func (h *quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	t := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		t[i] = truncateAttr(a)
	}
	return &quietHandler{next: h.next.WithAttrs(t), limit: h.limit}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{next: h.next.WithGroup(name), limit: h.limit}
}

func (l *logLimit) allow(msg string) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.seen[msg]
	if c == nil {
		if len(l.seen) >= maxLoggedMessages {
			l.seen = map[string]*logCount{}
		}
		c = &logCount{start: now}
		l.seen[msg] = c
	}
	if now.Sub(c.start) > logWindow {
		c.start, c.n = now, 0
	}
	if c.n >= logPerWindow {
		c.suppressed++
		return false, 0
	}
	c.n++
	n := c.suppressed
	c.suppressed = 0
	return true, n
}

func truncateAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, truncate(v.String()))
	case slog.KindGroup:
		g := v.Group()
		t := make([]any, len(g))
		for i, x := range g {
			t[i] = truncateAttr(x)
		}
		return slog.Group(a.Key, t...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, truncate(err.Error()))
		}
		return slog.String(a.Key, truncate(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func truncate(s string) string {
	if len(s) <= maxLogValue {
		return s
	}
	cut := maxLogValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(truncated)"
}
