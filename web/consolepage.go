package web

import (
	"net/http"
	"strings"
)

// consoleKeys are the messages the console's script shows, handed to it as JSON.
var consoleKeys = []string{
	"console.state.logged_out", "console.state.ready", "console.state.not_ready", "console.state.reserved",
	"console.state.ringing", "console.state.on_call", "console.state.wrap_up",
	"console.waiting", "console.ringing", "console.connected", "console.reconnecting", "console.retracted",
	"console.ended", "console.answered", "console.caller", "console.queue", "console.did", "console.withheld",
	"console.customer", "console.pick", "console.picked", "console.new_customer", "console.recent_calls",
	"console.no_recent", "console.match_reason", "console.draft", "console.degraded", "console.name", "console.phone",
	"console.company", "console.level", "console.more_matches", "console.call_id", "console.save_customer",
	"console.wo_title", "console.wo_save", "console.wo_saved", "console.wo_open", "console.wo_none", "console.callbacks",
	"console.no_callbacks", "console.assigned",
}

type consoleData struct {
	Reasons  []reasonJSON
	Messages map[string]string
}

// consolePage is the agent console: state buttons, the live pop panel and the call's context.
// The live part is web/static/console.js, a WebSocket client of /ws.
func (s *Server) consolePage(w http.ResponseWriter, r *http.Request, v *visit) error {
	d := consoleData{Messages: map[string]string{}}
	for _, k := range consoleKeys {
		d.Messages[strings.TrimPrefix(k, "console.")] = tr(v.lang, k)
	}
	var err error
	if d.Reasons, err = s.notReadyReasons(r.Context(), v.user.Tenant, v.lang); err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "console", "console.title", d)
	return nil
}
