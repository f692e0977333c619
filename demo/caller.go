package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Limits of the simulated caller.
const (
	maxRing     = 90 * time.Second // a caller waits this long for an answer (queue included)
	maxTalk     = 2 * time.Minute  // and hangs up after this long if the agent does not
	maxInFlight = 50               // calls open at once
)

// CallerOptions describe the simulated caller (a trunk calling the demo number).
type CallerOptions struct {
	Server  string        // ctid's SIP address, host:port (UDP)
	DID     string        // the number called
	Every   time.Duration // one new call this often
	Count   int           // stop after this many calls; 0: until the context ends
	Numbers func() string // the caller number of the next call ("" = withheld)
	// MaxInFlight bounds the calls open at once (default 50).
	MaxInFlight int
	// HangUpAfter makes the caller hang up this long after the answer (0: wait for the agent,
	// at most maxTalk).
	HangUpAfter time.Duration
	Logger      *slog.Logger
	Progress    func(CallerStats) // optional: called after each call ends
}

// CallerStats counts the caller's calls.
type CallerStats struct {
	Placed, Answered, Failed, Busy int64
}

// Caller is a simulated trunk placing calls to a DID.
type Caller struct {
	opts   CallerOptions
	log    *slog.Logger
	ua     *sipgo.UserAgent
	client *sipgo.Client
	dcc    *sipgo.DialogClientCache
	dsc    *sipgo.DialogServerCache // the customers agents call (click-to-dial)
	srv    *sipgo.Server
	conn   net.PacketConn

	placed, answered, failed, busy atomic.Int64
}

// NewCaller binds the caller's socket on 127.0.0.1 (the demo trunk's allowed source).
func NewCaller(o CallerOptions) (*Caller, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("caller: %w", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	quiet := slog.New(slog.DiscardHandler)
	c := &Caller{opts: o, log: o.Logger.With("component", "demo-caller"), conn: conn}
	if c.ua, err = sipgo.NewUA(sipgo.WithUserAgent("ctid-demo-caller"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet))); err != nil {
		conn.Close()
		return nil, err
	}
	if c.client, err = sipgo.NewClient(c.ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(port),
		sipgo.WithClientLogger(quiet)); err != nil {
		return nil, err
	}
	if c.srv, err = sipgo.NewServer(c.ua, sipgo.WithServerLogger(quiet)); err != nil {
		return nil, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{User: "demo-caller", Host: "127.0.0.1", Port: port}}
	c.dcc = sipgo.NewDialogClientCache(c.client, contact)
	c.dsc = sipgo.NewDialogServerCache(c.client, contact)
	c.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := c.dcc.ReadBye(req, tx); err == nil {
			return
		}
		if err := c.dsc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call Does Not Exist", nil))
		}
	})
	c.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = c.dsc.ReadAck(req, tx) })
	c.srv.OnInvite(c.onInvite)
	return c, nil
}

// Addr is the caller's SIP address (host:port): the demo trunk sends agents' outbound calls there.
func (c *Caller) Addr() string { return c.conn.LocalAddr().String() }

// customerAnswer is how long a called customer lets the phone ring.
const customerAnswer = 2 * time.Second

// onInvite plays the customers agents call out to (the demo trunk's outbound side): ring,
// answer, and talk until the agent hangs up (at most maxTalk). A re-INVITE is accepted.
func (c *Caller) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To().Params.Has("tag") {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	d, err := c.dsc.ReadInvite(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, err.Error(), nil))
		return
	}
	_ = d.Respond(180, "Ringing", nil)
	select {
	case <-time.After(customerAnswer):
	case <-tx.Done():
		return // the agent gave up
	}
	if err := d.Respond(200, "OK", demoSDP(0), sip.NewHeader("Content-Type", "application/sdp")); err != nil {
		return
	}
	select {
	case <-time.After(maxTalk):
		ctx, cancel := context.WithTimeout(context.Background(), sipTimeout)
		defer cancel()
		_ = d.Bye(ctx)
	case <-d.Context().Done():
	}
}

// Stats are the counts so far.
func (c *Caller) Stats() CallerStats {
	return CallerStats{Placed: c.placed.Load(), Answered: c.answered.Load(), Failed: c.failed.Load(), Busy: c.busy.Load()}
}

// Run places calls until ctx ends or Count calls were placed, then waits for open calls.
func (c *Caller) Run(ctx context.Context) error {
	go func() { _ = c.srv.ServeUDP(c.conn) }()
	defer func() {
		c.ua.Close()
		c.conn.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	limit := c.opts.MaxInFlight
	if limit <= 0 {
		limit = maxInFlight
	}
	sem := make(chan struct{}, limit)
	t := time.NewTicker(c.opts.Every)
	defer t.Stop()
	for n := 0; c.opts.Count == 0 || n < c.opts.Count; n++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.call(ctx, c.opts.Numbers())
			if c.opts.Progress != nil {
				c.opts.Progress(c.Stats())
			}
		}()
		if c.opts.Count != 0 && n+1 == c.opts.Count {
			break
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// Call places one call from number and returns once it is over (for tests).
func (c *Caller) Call(ctx context.Context, number string) error {
	go func() { _ = c.srv.ServeUDP(c.conn) }()
	return c.call(ctx, number)
}

// Serve answers calls to the caller (agents' outbound calls) without placing any; Close stops it.
func (c *Caller) Serve() {
	go func() { _ = c.srv.ServeUDP(c.conn) }()
}

// Close releases the caller's socket (after Call; Run closes by itself).
func (c *Caller) Close() {
	c.ua.Close()
	c.conn.Close()
}

func (c *Caller) call(ctx context.Context, number string) error {
	c.placed.Add(1)
	host, port, err := net.SplitHostPort(c.opts.Server)
	if err != nil {
		c.failed.Add(1)
		return fmt.Errorf("caller: server %q: %w", c.opts.Server, err)
	}
	pn, _ := strconv.Atoi(port)
	user, fromHost := number, "127.0.0.1"
	if number == "" {
		user, fromHost = "anonymous", "anonymous.invalid"
	}
	from := &sip.FromHeader{DisplayName: "", Address: sip.Uri{User: user, Host: fromHost}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	ringCtx, cancel := context.WithTimeout(ctx, maxRing)
	defer cancel()
	sess, err := c.dcc.Invite(ringCtx, sip.Uri{User: c.opts.DID, Host: host, Port: pn}, demoSDP(0),
		sip.NewHeader("Content-Type", "application/sdp"), from)
	if err != nil {
		c.failed.Add(1)
		return fmt.Errorf("invite: %w", err)
	}
	defer sess.Close()
	if err := sess.WaitAnswer(ringCtx, sipgo.AnswerOptions{}); err != nil {
		var re *sipgo.ErrDialogResponse
		if errors.As(err, &re) && (re.Res.StatusCode == 486 || re.Res.StatusCode == 480) {
			c.busy.Add(1)
		} else {
			c.failed.Add(1)
		}
		return fmt.Errorf("call from %q not answered: %w", number, err)
	}
	if err := sess.Ack(ctx); err != nil {
		c.failed.Add(1)
		return err
	}
	c.answered.Add(1)
	talk := maxTalk
	if c.opts.HangUpAfter > 0 {
		talk = c.opts.HangUpAfter
	}
	select {
	case <-sess.Context().Done(): // the agent hung up
	case <-time.After(talk):
		byeCtx, cancel := context.WithTimeout(context.Background(), sipTimeout)
		defer cancel()
		_ = sess.Bye(byeCtx)
	case <-ctx.Done():
		byeCtx, cancel := context.WithTimeout(context.Background(), sipTimeout)
		defer cancel()
		_ = sess.Bye(byeCtx)
	}
	return nil
}

// NumberMix draws caller numbers: mostly known customers, some shared by two customers (the
// agent gets a picker), some unknown, a few withheld.
func NumberMix(known, shared []string) func() string {
	return func() string {
		r := rand.IntN(100)
		switch {
		case r < 60 && len(known) > 0:
			return known[rand.IntN(len(known))]
		case r < 80 && len(shared) > 0:
			return shared[rand.IntN(len(shared))]
		case r < 95:
			return fmt.Sprintf("+86139%08d", rand.IntN(100000000))
		}
		return ""
	}
}
