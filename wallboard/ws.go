package wallboard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ctid/ctid/account"
)

// WebSocket limits of one board.
const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = pongWait * 9 / 10
	maxClientFrame = 512 // boards send nothing but pongs
	socketBuffer   = 256 << 10
	recheckPeriod  = 30 * time.Second // a TV link's token is checked again this often
)

var upgrader = websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 8192}

// ServeWS upgrades the request to a board connection of tenant t for viewer v: a snapshot,
// then an update frame per change, until either side closes. A board that stops reading is
// disconnected; on reconnect it gets a fresh snapshot. checkOrigin decides which pages may
// connect. recheck, when set, is asked every 30 s whether the board may stay (a TV link that
// was revoked is closed).
func (s *Service) ServeWS(w http.ResponseWriter, r *http.Request, t *account.Tenant, v Viewer, checkOrigin func(*http.Request) bool, recheck func(context.Context) error) {
	watch, err := s.Watch(r.Context(), t, v)
	if err != nil {
		s.log.Warn("start a board", "tenant", t.Code, "err", err)
		http.Error(w, "the wallboard is not available", http.StatusServiceUnavailable)
		return
	}
	defer watch.Close()
	u := upgrader
	u.CheckOrigin = checkOrigin
	ws, err := u.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered with an HTTP error
	}
	defer ws.Close()
	ws.SetReadLimit(maxClientFrame)
	if tc, ok := ws.NetConn().(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(socketBuffer)
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_ = ws.SetReadDeadline(time.Now().Add(pongWait))
		ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(pongWait)) })
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}()
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	check := time.NewTicker(recheckPeriod)
	defer check.Stop()
	for {
		select {
		case <-check.C:
			if recheck == nil {
				continue
			}
			if err := recheck(r.Context()); err != nil {
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "revoked"), time.Now().Add(time.Second))
				return
			}
		case <-gone:
			return
		case <-r.Context().Done():
			return
		case b, ok := <-watch.Frames:
			if !ok {
				// Fell behind or the floor was rebuilt: close so the page reconnects for a snapshot.
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "resync"), time.Now().Add(time.Second))
				return
			}
			_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
				if !errors.Is(err, net.ErrClosed) {
					s.log.Debug("board write", "err", err)
				}
				return
			}
		case <-ping.C:
			_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}
