// Package demo makes the demo tenant something a newcomer can watch: customers with realistic
// Chinese numbers, a queue of agents, simulated agent phones that register with digest and
// answer, and a caller that places calls to the demo number — all real SIP over loopback.
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Timing of a simulated phone.
const (
	registerExpires = 300 // seconds asked for in REGISTER
	reregisterEvery = 240 * time.Second
	sipTimeout      = 10 * time.Second // one request and its answer
)

// PhoneOptions describe a simulated agent phone.
type PhoneOptions struct {
	Server     string // ctid's SIP address, host:port (UDP)
	Domain     string // the tenant's SIP domain (digest realm)
	Extension  string
	Password   string
	AnswerMin  time.Duration // the phone rings this long at least before it answers …
	AnswerMax  time.Duration // … and at most
	TalkMin    time.Duration // then the agent talks this long at least …
	TalkMax    time.Duration // … and at most, and hangs up
	Logger     *slog.Logger
	OnAnswered func(callID string) // optional: told when the phone answered a call
}

// Phone is a simulated agent phone: a SIP UA on its own loopback port.
type Phone struct {
	opts   PhoneOptions
	log    *slog.Logger
	ua     *sipgo.UserAgent
	client *sipgo.Client
	srv    *sipgo.Server
	dsc    *sipgo.DialogServerCache
	conn   net.PacketConn
	addr   *net.UDPAddr
	wg     sync.WaitGroup
}

// NewPhone binds the phone's socket; Run registers it and answers calls.
func NewPhone(o PhoneOptions) (*Phone, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("phone %s: %w", o.Extension, err)
	}
	p := &Phone{opts: o, log: o.Logger.With("phone", o.Extension), conn: conn, addr: conn.LocalAddr().(*net.UDPAddr)}
	quiet := slog.New(slog.DiscardHandler)
	p.ua, err = sipgo.NewUA(sipgo.WithUserAgent("ctid-demo-phone"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		conn.Close()
		return nil, err
	}
	if p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(quiet)); err != nil {
		return nil, err
	}
	if p.client, err = sipgo.NewClient(p.ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(p.addr.Port),
		sipgo.WithClientLogger(quiet)); err != nil {
		return nil, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{User: o.Extension, Host: "127.0.0.1", Port: p.addr.Port}}
	p.dsc = sipgo.NewDialogServerCache(p.client, contact)
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dsc.ReadAck(req, tx) })
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dsc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call Does Not Exist", nil))
		}
	})
	p.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	return p, nil
}

// Run registers the phone (and keeps the registration fresh) and answers calls until ctx
// ends; then it unregisters.
func (p *Phone) Run(ctx context.Context) error {
	go func() { _ = p.srv.ServeUDP(p.conn) }()
	defer func() {
		p.wg.Wait()
		p.ua.Close()
		p.conn.Close()
	}()
	if err := p.register(ctx, registerExpires); err != nil {
		return err
	}
	p.log.Info("demo phone registered", "contact", p.addr.String())
	t := time.NewTicker(reregisterEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			uctx, cancel := context.WithTimeout(context.Background(), sipTimeout)
			defer cancel()
			_ = p.register(uctx, 0)
			return nil
		case <-t.C:
			if err := p.register(ctx, registerExpires); err != nil {
				p.log.Warn("demo phone re-register", "err", err)
			}
		}
	}
}

func (p *Phone) register(ctx context.Context, expires int) error {
	aor := sip.Uri{User: p.opts.Extension, Host: p.opts.Domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: p.opts.Domain})
	req.SetDestination(p.opts.Server)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Contact", "<sip:"+p.opts.Extension+"@"+p.addr.String()+">"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	ctx, cancel := context.WithTimeout(ctx, sipTimeout)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("register %s: %w", p.opts.Extension, err)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.opts.Extension, Password: p.opts.Password})
		if err != nil {
			return fmt.Errorf("register %s: %w", p.opts.Extension, err)
		}
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("register %s: %d %s", p.opts.Extension, res.StatusCode, res.Reason)
	}
	return nil
}

func between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo)
}

// onInvite rings, answers after a while, talks, and hangs up — unless the caller cancels.
func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To().Params.Has("tag") { // re-INVITE (hold): accept
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	d, err := p.dsc.ReadInvite(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, err.Error(), nil))
		return
	}
	p.wg.Add(1)
	defer p.wg.Done()
	_ = d.Respond(180, "Ringing", nil)
	select {
	case <-time.After(between(p.opts.AnswerMin, p.opts.AnswerMax)):
	case <-tx.Done():
		return // cancelled: rang out or the caller gave up
	}
	if err := d.Respond(200, "OK", demoSDP(p.addr.Port), sip.NewHeader("Content-Type", "application/sdp")); err != nil {
		return
	}
	if p.opts.OnAnswered != nil {
		p.opts.OnAnswered(req.CallID().Value())
	}
	select {
	case <-time.After(between(p.opts.TalkMin, p.opts.TalkMax)):
		ctx, cancel := context.WithTimeout(context.Background(), sipTimeout)
		defer cancel()
		_ = d.Bye(ctx)
	case <-d.Context().Done(): // the caller hung up
	}
}

// demoSDP is a minimal audio offer/answer: ctid never touches media, but SIP peers expect one.
func demoSDP(port int) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=ctid demo\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port+1) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}
