package cti

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// party is a SIP endpoint of a test: a trunk or an agent phone, on its own loopback port.
type party struct {
	tb     testing.TB
	user   string
	addr   string
	client *sipgo.Client
	srv    *sipgo.Server
	dsc    *sipgo.DialogServerCache
	dcc    *sipgo.DialogClientCache

	mu     sync.Mutex
	answer func(d *sipgo.DialogServerSession, tx sip.ServerTransaction) // what the phone does with an INVITE

	invites   chan *sipgo.DialogServerSession // INVITEs received (new calls)
	reinvites chan *sip.Request
	byes      chan *sip.Request
	acks      chan *sip.Request // ACKs received, when the test reads them (never blocks the phone)
}

func newParty(tb testing.TB, user string) *party {
	tb.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-"+user),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger(tb))),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger(tb))))
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(testLogger(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(addr.Port),
		sipgo.WithClientLogger(testLogger(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{User: user, Host: "127.0.0.1", Port: addr.Port}}
	p := &party{tb: tb, user: user, addr: addr.String(), client: client, srv: srv,
		dsc: sipgo.NewDialogServerCache(client, contact), dcc: sipgo.NewDialogClientCache(client, contact),
		invites: make(chan *sipgo.DialogServerSession, 10), reinvites: make(chan *sip.Request, 10), byes: make(chan *sip.Request, 10),
		acks: make(chan *sip.Request, 10)}
	p.answer = ringThenAnswer(0)
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = p.dsc.ReadAck(req, tx)
		select {
		case p.acks <- req:
		default:
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dsc.ReadBye(req, tx); err != nil {
			if err := p.dcc.ReadBye(req, tx); err != nil {
				tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
				return
			}
		}
		p.byes <- req
	})
	go srv.ServeUDP(conn)
	tb.Cleanup(func() { ua.Close(); conn.Close() })
	return p
}

func (p *party) setAnswer(f func(d *sipgo.DialogServerSession, tx sip.ServerTransaction)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = f
}

func (p *party) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To().Params.Has("tag") { // re-INVITE inside the dialog: accept it
		p.reinvites <- req
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	d, err := p.dsc.ReadInvite(req, tx)
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 400, err.Error(), nil))
		return
	}
	p.invites <- d
	p.mu.Lock()
	answer := p.answer
	p.mu.Unlock()
	answer(d, tx)
}

// ringThenAnswer rings, then answers after delay.
func ringThenAnswer(delay time.Duration) func(*sipgo.DialogServerSession, sip.ServerTransaction) {
	return func(d *sipgo.DialogServerSession, tx sip.ServerTransaction) {
		d.Respond(180, "Ringing", nil)
		select {
		case <-time.After(delay):
		case <-tx.Done():
			return
		}
		d.Respond(200, "OK", []byte("v=0\r\n"), sip.NewHeader("Content-Type", "application/sdp"))
		<-tx.Done()
	}
}

// ringForever rings until the INVITE is cancelled.
func ringForever(d *sipgo.DialogServerSession, tx sip.ServerTransaction) {
	d.Respond(180, "Ringing", nil)
	<-tx.Done()
}

func busy(d *sipgo.DialogServerSession, tx sip.ServerTransaction) {
	d.Respond(486, "Busy Here", nil)
}

// registerAt registers the party's contact as ext at ctid.
func (p *party) registerAt(s *testService, ext, password string) {
	p.tb.Helper()
	req := registerReq(p.tb, s, ext, "", "<sip:"+ext+"@"+p.addr+">")
	if res := register(p.tb, p.client, req, ext, password); res.StatusCode != 200 {
		p.tb.Fatalf("register %s: %d", ext, res.StatusCode)
	}
}

// dial calls number at ctid as a trunk and returns the session (not yet answered).
func (p *party) dial(ctx context.Context, s *testService, number string) *sipgo.DialogClientSession {
	p.tb.Helper()
	host, port, _ := net.SplitHostPort(s.Addr("udp"))
	pn, _ := strconv.Atoi(port)
	sess, err := p.dcc.Invite(ctx, sip.Uri{User: number, Host: host, Port: pn}, []byte("v=0\r\n"),
		sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		p.tb.Fatal(err)
	}
	return sess
}

// recv waits for a value on ch.
func recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		tb.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
