package cti

import "time"

// Registrar defaults (Config overrides them).
const (
	defaultNonceTTL      = 5 * time.Minute
	defaultMinExpires    = 60
	defaultMaxExpires    = 3600
	defaultExpires       = 600
	defaultAuthFailLimit = 5
)
