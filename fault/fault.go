// Package fault is ctid's one error type for what users see: a code that says what kind of
// failure it is, and a message that names the problem. One table maps codes to HTTP and SIP
// statuses; only Internal is logged as an error.
package fault

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies a failure for the person or system that caused it.
type Code string

const (
	Invalid      Code = "invalid"      // the input is wrong; the message names what
	Unauthorized Code = "unauthorized" // who you are is unknown or not proven
	Forbidden    Code = "forbidden"    // you are known but may not do this
	NotFound     Code = "not_found"    // what you asked for does not exist (for you)
	Conflict     Code = "conflict"     // it collides with what exists or changed meanwhile
	TooMany      Code = "too_many"     // rate or lockout limits
	Unavailable  Code = "unavailable"  // a dependency is down; try again
	Internal     Code = "internal"     // our fault; logged, details hidden
)

// Error is a failure with a code and a message fit to show a user.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf is the code of the first *Error in err's chain, Internal when there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf is the message to show for err: an *Error's own, or a generic one for the rest,
// whose details (SQL, paths) are for the log only.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

var statuses = map[Code]struct{ http, sip int }{
	Invalid:      {http.StatusBadRequest, 400},
	Unauthorized: {http.StatusUnauthorized, 401},
	Forbidden:    {http.StatusForbidden, 403},
	NotFound:     {http.StatusNotFound, 404},
	Conflict:     {http.StatusConflict, 409},
	TooMany:      {http.StatusTooManyRequests, 503},
	Unavailable:  {http.StatusServiceUnavailable, 503},
	Internal:     {http.StatusInternalServerError, 500},
}

// HTTPStatus is the HTTP status for code.
func HTTPStatus(code Code) int {
	if s, ok := statuses[code]; ok {
		return s.http
	}
	return http.StatusInternalServerError
}

// SIPStatus is the SIP response status for code.
func SIPStatus(code Code) int {
	if s, ok := statuses[code]; ok {
		return s.sip
	}
	return 500
}
