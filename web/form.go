package web

import (
	"net/http"
	"slices"

	"github.com/ctid/ctid/fault"
)

// pageForm finishes a page's form post the way the work-order and QA pages do: a refusal the
// user can correct (a fault whose code is among shown) re-renders the page with its message
// and the fault's HTTP status, any other error goes to the server's error page, and success
// redirects (303: post, redirect, get).
type pageForm struct {
	w     http.ResponseWriter
	r     *http.Request
	shown []fault.Code
	// again re-renders the page with the refusal's status and message.
	again func(status int, msg string) error
}

// postedForm parses r's form (a malformed body is Invalid) for a handler that re-renders its
// page with again on the refusals shown.
func postedForm(w http.ResponseWriter, r *http.Request, again func(status int, msg string) error, shown ...fault.Code) (*pageForm, error) {
	if err := r.ParseForm(); err != nil {
		return nil, fault.Errorf(fault.Invalid, "form: %v", err)
	}
	return &pageForm{w: w, r: r, shown: shown, again: again}, nil
}

// fail ends the post with err: the page again for a refusal it shows, else err itself.
func (f *pageForm) fail(err error) error {
	if status, msg, ok := refusal(err, f.shown...); ok {
		return f.again(status, msg)
	}
	return err
}

// refusal tells whether err is a refusal a form shows (its fault code is among shown) and,
// if so, the status and message to show it with.
func refusal(err error, shown ...fault.Code) (status int, message string, ok bool) {
	if code := fault.CodeOf(err); slices.Contains(shown, code) {
		return fault.HTTPStatus(code), fault.MessageOf(err), true
	}
	return 0, "", false
}

// redirect ends a post that succeeded.
func (f *pageForm) redirect(url string) error {
	http.Redirect(f.w, f.r, url, http.StatusSeeOther)
	return nil
}
