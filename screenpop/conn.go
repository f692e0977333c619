package screenpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// WebSocket limits of one console connection.
const (
	writeWait      = 10 * time.Second        // one frame must be written within this
	pongWait       = 60 * time.Second        // a console that sends nothing (not even a pong) this long is gone
	pingPeriod     = pongWait * 9 / 10       // pings keep proxies and the pong deadline alive
	resumeWait     = 10 * time.Second        // the client's first frame (resume) must come within this
	maxClientFrame = 4096                    // bytes; clients send only small control frames
	popWait        = 1500 * time.Millisecond // a pop.offer waits this long for its payload
	maxUnacked     = 256                     // delivery times kept for ack latency
	recheckPeriod  = 30 * time.Second        // a read-only token's connection is checked again this often
	// socketBuffer caps the kernel's send buffer of a console socket, so a console that stops
	// reading fills its queue and is dropped instead of holding megabytes of memory.
	socketBuffer = 64 << 10
)

type follow int

const (
	followNone follow = iota // an agent: their own events
	followTeam               // a team lead: their team's agents too
	followAll                // supervisors and admins: every agent of the tenant
)

// out is one message on its way to a console.
type out struct {
	delivery
	replayed bool
	notice   bool // not a logged event (Hub.Notify): no seq, never a duplicate, not replayed
}

// conn is one console's WebSocket: one reader, one writer, a bounded send queue.
type conn struct {
	hub    *Hub
	ws     *websocket.Conn
	tenant *account.Tenant
	user   *account.User
	follow follow
	send   chan *out

	closeOnce sync.Once
	done      chan struct{}
	// feeds hands the writer the feed a subscribe frame opened (buffered: one feed).
	feeds chan feed
	// recheck, on a connection authenticated by a read-only token, is asked every
	// recheckPeriod whether the token still holds.
	recheck func(context.Context) error

	mu      sync.Mutex
	unacked map[int64]time.Time // seq → when written
	// What the console has: every message of the events up to replayed, and of the events after
	// it up to lastSeq; lastTypes are the types written for lastSeq (one event can make a
	// pop.offer and a pop.update).
	replayed  int64
	lastSeq   int64
	lastTypes []string
	feed      string // the feed subscribed to, "" for none
	ended     bool   // the writer is gone: a feed opened now is stopped at once
}

func (c *conn) wants(agentID, team int64) bool {
	switch {
	case agentID == c.user.ID:
		return true
	case c.follow == followAll:
		return true
	case c.follow == followTeam:
		return team != 0 && team == c.user.TeamID
	}
	return false
}

// enqueue is called by the hub with its lock held: it never blocks. A console whose queue is
// full is disconnected; it will reconnect and replay from its last seq.
func (c *conn) enqueue(o *out) {
	select {
	case c.send <- o:
	case <-c.done:
	default:
		c.hub.m.disconnects.WithLabelValues("slow").Inc()
		c.close()
	}
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.ws.Close()
	})
}

// writeBuffers are shared: an idle console holds no write buffer.
var writeBuffers sync.Pool

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096, WriteBufferPool: &writeBuffers}

// ServeWS upgrades an authenticated request to a console connection for user, and serves it
// until it closes. checkOrigin decides which pages may connect.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, user *account.User, checkOrigin func(*http.Request) bool) {
	c := &conn{hub: h, tenant: user.Tenant, user: user}
	switch {
	case user.Can(account.PermWatchFloor) && account.ScopeOf(user.Roles) == account.ScopeAll:
		c.follow = followAll
	case user.Has(account.RoleTeamLead):
		c.follow = followTeam
	}
	h.serveConn(w, r, c, checkOrigin)
}

// ServeFeedWS upgrades a request that a read-only token of tenant t authenticated (a TV link's)
// to a connection that may only subscribe to a feed. recheck is asked every 30 s whether the
// token still holds: a revoked one closes the connection.
func (h *Hub) ServeFeedWS(w http.ResponseWriter, r *http.Request, t *account.Tenant, checkOrigin func(*http.Request) bool, recheck func(context.Context) error) {
	h.serveConn(w, r, &conn{hub: h, tenant: t, recheck: recheck}, checkOrigin)
}

func (h *Hub) serveConn(w http.ResponseWriter, r *http.Request, c *conn, checkOrigin func(*http.Request) bool) {
	u := upgrader
	u.CheckOrigin = checkOrigin
	ws, err := u.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered with an HTTP error
	}
	c.ws, c.send, c.done, c.feeds = ws, make(chan *out, sendQueueSize), make(chan struct{}), make(chan feed, 1)
	defer c.close()
	ws.SetReadLimit(maxClientFrame)
	if tc, ok := ws.NetConn().(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(socketBuffer)
	}
	if err := c.serve(r.Context()); err != nil && !errors.Is(err, context.Canceled) {
		h.log.Debug("console connection ended", "tenant", c.tenant.Code, "user", c.username(), "err", err)
	}
}

func (c *conn) username() string {
	if c.user == nil {
		return "(read-only token)"
	}
	return c.user.Username
}

func (c *conn) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := c.hub
	current, err := h.currentSeq(ctx, c.tenant)
	if err != nil {
		return err
	}
	hello := map[string]any{"tenant": c.tenant.Code, "current_seq": current}
	if c.user != nil {
		hello["user_id"], hello["username"] = c.user.ID, c.user.Username
	} else {
		hello["feeds_only"] = true
	}
	if err := c.writeMessage(Message{Seq: current, Type: TypeHello, Time: time.Now(), Data: hello}); err != nil {
		return err
	}
	// The first client frame says where to resume, or which feed alone to get.
	_ = c.ws.SetReadDeadline(time.Now().Add(resumeWait))
	var first ClientMessage
	err = c.ws.ReadJSON(&first)
	switch {
	case err == nil && first.Type == ClientSubscribe:
		if err := c.subscribe(ctx, first.Feed); err != nil {
			c.writeError(err)
			return fmt.Errorf("subscribe to %q: %w", first.Feed, err)
		}
		go c.readLoop(ctx, cancel)
		return c.writeLoop(ctx)
	case err == nil && first.Type == ClientResume && first.LastSeq >= 0 && c.user == nil:
		c.writeError(fault.Errorf(fault.Forbidden, "a read-only token gets feeds only: send {\"type\":\"subscribe\",\"feed\":\"board\"}"))
		return errors.New("resume with a read-only token")
	case err != nil || first.Type != ClientResume || first.LastSeq < 0:
		c.writeError(fault.Errorf(fault.Invalid, "first frame must be {\"type\":\"resume\",\"last_seq\":N} or {\"type\":\"subscribe\",\"feed\":\"board\"}"))
		return errors.New("no resume frame")
	}
	start := first.LastSeq
	if start == 0 || start > current {
		if start, err = h.openCallStart(ctx, c.tenant, c.user.ID, current); err != nil {
			return err
		}
	}
	// Register before replaying: events after this point arrive live; the overlap with the
	// replay is skipped by seq.
	h.add(c)
	defer h.remove(c)
	go c.readLoop(ctx, cancel)
	upTo, err := h.replay(ctx, c, start)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.replayed = max(c.replayed, upTo)
	c.mu.Unlock()
	return c.writeLoop(ctx)
}

// writeLoop writes routed messages and feed frames until the connection ends.
func (c *conn) writeLoop(ctx context.Context) error {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	var check <-chan time.Time
	if c.recheck != nil {
		t := time.NewTicker(recheckPeriod)
		defer t.Stop()
		check = t.C
	}
	var frames <-chan []byte // the subscribed feed's, nil until a subscribe
	defer func() {
		c.mu.Lock()
		c.ended = true
		c.mu.Unlock()
		select {
		case f := <-c.feeds: // subscribed while the loop ended
			f.stop()
		default:
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return nil
		case f := <-c.feeds:
			frames = f.frames
			defer f.stop()
		case b, ok := <-frames:
			if !ok {
				// The feed fell behind or was rebuilt: close, the client reconnects for a snapshot.
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "resubscribe"), time.Now().Add(time.Second))
				return nil
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				return err
			}
		case o := <-c.send:
			if err := c.write(ctx, *o); err != nil {
				return err
			}
		case <-check:
			if err := c.recheck(ctx); err != nil {
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "revoked"), time.Now().Add(time.Second))
				return err
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return err
			}
		}
	}
}

func (c *conn) writeError(err error) {
	_ = c.writeMessage(Message{Type: TypeError, Time: time.Now(), Data: map[string]any{"message": fault.MessageOf(err)}})
}

// write sends one routed message, with its pop payload when it is a pop.offer, unless the
// console has it already.
func (c *conn) write(ctx context.Context, o out) error {
	if o.notice {
		if err := c.writeMessage(o.msg); err != nil {
			return err
		}
		c.hub.m.messages.WithLabelValues(o.msg.Type).Inc()
		return nil
	}
	c.mu.Lock()
	dup := o.msg.Seq <= c.replayed || o.msg.Seq < c.lastSeq ||
		(o.msg.Seq == c.lastSeq && slices.Contains(c.lastTypes, o.msg.Type))
	c.mu.Unlock()
	if dup {
		return nil
	}
	msg := o.msg
	if o.pop {
		data := map[string]any{}
		for k, v := range msg.Data.(map[string]any) {
			data[k] = v
		}
		pctx, cancel := context.WithTimeout(ctx, popWait)
		p, err := c.hub.builder.Get(pctx, c.tenant, msg.Data.(map[string]any)["call_id"].(string))
		cancel()
		if err != nil {
			c.hub.log.Warn("pop payload unavailable", "tenant", c.tenant.Code, "call", data["call_id"], "err", err)
			data["degraded"] = "pop payload unavailable"
		} else {
			data["pop"] = p
		}
		msg.Data = data
	}
	own := o.pop && o.delivery.agentID == c.user.ID
	now := time.Now()
	c.mu.Lock()
	if msg.Seq != c.lastSeq {
		c.lastSeq, c.lastTypes = msg.Seq, c.lastTypes[:0]
	}
	c.lastTypes = append(c.lastTypes, msg.Type)
	if c.unacked == nil {
		c.unacked = map[int64]time.Time{}
	}
	if own && len(c.unacked) < maxUnacked {
		c.unacked[msg.Seq] = now // before the write: the ack may come back at once
	}
	c.mu.Unlock()
	if err := c.writeMessage(msg); err != nil {
		return err
	}
	c.hub.m.messages.WithLabelValues(msg.Type).Inc()
	if !o.replayed {
		c.hub.m.deliverSeconds.WithLabelValues(msg.Type).Observe(time.Since(msg.Time).Seconds())
	}
	if own {
		c.hub.recordDelivery(ctx, c.tenant, c.user.ID, msg.Seq, now)
	}
	return nil
}

func (c *conn) writeMessage(m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// readLoop reads acks (and pongs) until the connection ends.
func (c *conn) readLoop(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	defer c.close()
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		var m ClientMessage
		if err := c.ws.ReadJSON(&m); err != nil {
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		if m.Type == ClientSubscribe {
			if err := c.subscribe(ctx, m.Feed); err != nil {
				c.enqueue(&out{notice: true, delivery: delivery{msg: Message{Type: TypeError, Time: time.Now(), Data: map[string]any{"message": fault.MessageOf(err)}}}})
			}
			continue
		}
		if m.Type != ClientAck {
			continue // a late resume or an unknown frame changes nothing
		}
		c.mu.Lock()
		sent, ok := c.unacked[m.Seq]
		delete(c.unacked, m.Seq)
		c.mu.Unlock()
		if ok {
			now := time.Now()
			c.hub.m.ackSeconds.Observe(now.Sub(sent).Seconds())
			c.hub.recordAck(context.Background(), c.tenant, c.user.ID, m.Seq, sent, now)
		}
	}
}

func (h *Hub) recordDelivery(ctx context.Context, t *account.Tenant, agentID, seq int64, at time.Time) {
	_, err := h.pool.Exec(ctx, `INSERT INTO `+quoted(t.Scope().Schema, "pop_deliveries")+` (seq, agent_id, delivered_at)
		VALUES ($1, $2, $3) ON CONFLICT (agent_id, seq) DO NOTHING`, seq, agentID, at)
	if err != nil {
		h.log.Warn("record pop delivery", "err", err)
	}
}

// recordAck may run before recordDelivery (the ack raced the insert): it inserts the row too.
func (h *Hub) recordAck(ctx context.Context, t *account.Tenant, agentID, seq int64, sent, at time.Time) {
	_, err := h.pool.Exec(ctx, `INSERT INTO `+quoted(t.Scope().Schema, "pop_deliveries")+` AS d (seq, agent_id, delivered_at, acked_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id, seq) DO UPDATE SET acked_at = coalesce(d.acked_at, EXCLUDED.acked_at)`,
		seq, agentID, sent, at)
	if err != nil {
		h.log.Warn("record pop ack", "err", err)
	}
}

func quoted(schema, table string) string { return pgx.Identifier{schema, table}.Sanitize() }
