package cti

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// uacLeg is a dialog ctid opened itself, as the calling party (click-to-dial: one to the
// agent's phone, one to the trunk). Unlike a proxied leg, ctid keeps the dialog's state:
// its route set, remote target and CSeq, to send ACK, BYE and relayed requests in it.
type uacLeg struct {
	leg // the INVITE as sent (cancelLeg and hangUpLate work on it)

	mu     sync.Mutex
	res    *sip.Response // the 2xx that confirmed the dialog, nil before
	target sip.Uri       // the remote target: the 2xx's Contact
	routes []sip.Uri     // the route set: the 2xx's Record-Route, reversed
	cseq   uint32        // the last CSeq number ctid used in the dialog
	acked  bool
	byed   bool
}

// confirmed reports whether the dialog is up (a 2xx arrived).
func (l *uacLeg) confirmed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res != nil
}

// confirm takes the dialog's state from its 2xx.
func (l *uacLeg) confirm(res *sip.Response) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res = res
	l.target = l.contact
	if c := res.Contact(); c != nil {
		l.target = c.Address
	}
	l.routes = nil
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		if h, ok := rr[i].(*sip.RecordRouteHeader); ok {
			l.routes = append(l.routes, h.Address)
		}
	}
}

// contactHeader is ctid's Contact for dialogs it opens over network.
func (s *Service) contactHeader(network string) *sip.ContactHeader {
	host, port := s.hostPort(network)
	u := sip.Uri{Scheme: "sip", User: "ctid", Host: host, Port: port, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", network)
	return &sip.ContactHeader{Address: u}
}

// newUACInvite builds an INVITE ctid sends as the calling party, to target.
func (s *Service) newUACInvite(target sip.Uri, from sip.FromHeader, to sip.ToHeader, body []byte, extra ...sip.Header) *sip.Request {
	r := sip.NewRequest(sip.INVITE, target)
	from.Params = sip.NewParams()
	from.Params.Add("tag", sip.GenerateTagN(16))
	r.AppendHeader(&from)
	if to.Params == nil {
		to.Params = sip.NewParams()
	}
	r.AppendHeader(&to)
	callID := sip.CallIDHeader(newCallID())
	r.AppendHeader(&callID)
	r.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	r.AppendHeader(&mf)
	dst, transport := destination(target)
	r.SetDestination(dst)
	r.SetTransport(transport)
	r.AppendHeader(s.contactHeader(strings.ToLower(transport)))
	r.AppendHeader(sip.NewHeader("Allow", allowed))
	for _, h := range extra {
		r.AppendHeader(h)
	}
	if len(body) > 0 {
		r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	r.SetBody(body)
	return r
}

// startUAC sends l's INVITE.
func (s *Service) startUAC(l *uacLeg, req *sip.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	l.cseq = req.CSeq().SeqNo
	tx, err := s.client.TransactionRequest(ctx, req, s.forwardOpts("")...)
	if err != nil {
		return err
	}
	l.req, l.tx = req, tx
	return nil
}

// uacOutcome is how the INVITE of a uacLeg ended.
type uacOutcome struct {
	res  *sip.Response // the 2xx when answered
	code int           // final SIP status, 0 when none
	why  string        // timeout, busy, declined, error, cancelled; "" when answered
}

// ringUAC follows l's INVITE until a final response: it cancels after limit or when stop
// closes, and hangs up a 2xx that crosses the CANCEL. onProvisional sees each ringing or
// progress response and may return a new limit (counted from then), 0 to keep the old one.
func (s *Service) ringUAC(l *uacLeg, limit time.Duration, stop <-chan struct{}, onProvisional func(*sip.Response) time.Duration) uacOutcome {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	defer l.tx.Terminate()
	cancelled, why := false, ""
	var deadline <-chan time.Time
	sendCancel := func(reason string) {
		if cancelled {
			return
		}
		cancelled, why = true, reason
		s.cancelLeg(&l.leg)
		deadline = time.After(legFinalWait)
	}
	for {
		select {
		case res, ok := <-l.tx.Responses():
			if !ok {
				return uacOutcome{why: orDefault(why, "error")}
			}
			switch {
			case res.StatusCode < 200:
				if res.StatusCode == 100 || cancelled || onProvisional == nil {
					continue
				}
				if d := onProvisional(res); d > 0 {
					timer.Reset(d)
				}
			case res.StatusCode < 300:
				if cancelled {
					s.hangUpLate(&l.leg, res)
					return uacOutcome{code: res.StatusCode, why: why}
				}
				l.confirm(res)
				return uacOutcome{res: res, code: res.StatusCode}
			default:
				reason := why
				if reason == "" {
					reason = failureWhy(res.StatusCode)
				}
				return uacOutcome{code: res.StatusCode, why: reason}
			}
		case <-timer.C:
			sendCancel("timeout")
		case <-stop:
			stop = nil
			sendCancel("cancelled")
		case <-deadline:
			return uacOutcome{why: orDefault(why, "timeout")}
		case <-l.tx.Done():
			return uacOutcome{why: orDefault(why, "error")}
		}
	}
}

// failureWhy names a final failure status the way legs report it.
func failureWhy(code int) string {
	switch code {
	case 486, 600:
		return "busy"
	case 603:
		return "declined"
	case 408, 480:
		return "timeout"
	}
	return "error"
}

// inDialog builds a request of l's confirmed dialog; seq 0 takes the next CSeq number.
func (s *Service) inDialog(l *uacLeg, method sip.RequestMethod, seq uint32) *sip.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq == 0 {
		l.cseq++
		seq = l.cseq
	}
	r := sip.NewRequest(method, l.target)
	for _, rt := range l.routes {
		r.AppendHeader(&sip.RouteHeader{Address: rt})
	}
	r.AppendHeader(sip.HeaderClone(l.req.From()))
	r.AppendHeader(sip.HeaderClone(l.res.To()))
	r.AppendHeader(sip.HeaderClone(l.req.CallID()))
	r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	r.AppendHeader(&mf)
	next := l.target
	if len(l.routes) > 0 {
		next = l.routes[0]
	}
	dst, transport := destination(next)
	if network, addr := connOf(l.source); network != "" && len(l.routes) == 0 {
		dst, transport = addr, strings.ToUpper(network) // the phone's own connection
	}
	r.SetDestination(dst)
	r.SetTransport(transport)
	if method == sip.INVITE || method == sip.UPDATE {
		r.AppendHeader(s.contactHeader(strings.ToLower(transport)))
	}
	r.SetBody(nil) // Content-Length: 0, which stream transports need; a caller may set a body
	return r
}

// ackUAC sends the ACK of l's 2xx, with body (the answer, when the 2xx carried the offer).
func (s *Service) ackUAC(l *uacLeg, body []byte) {
	l.mu.Lock()
	if l.acked || l.res == nil {
		l.mu.Unlock()
		return
	}
	l.acked = true
	seq := l.req.CSeq().SeqNo
	l.mu.Unlock()
	ack := s.inDialog(l, sip.ACK, seq)
	if len(body) > 0 {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ack.SetBody(body)
	if err := s.client.WriteRequest(ack, s.forwardOpts("")...); err != nil {
		s.log.Warn("send ACK", "call_id", l.req.CallID().Value(), "error", err)
	}
}

// byeUAC ends l's dialog (once), in the background.
func (s *Service) byeUAC(l *uacLeg) {
	l.mu.Lock()
	if l.byed || l.res == nil {
		l.mu.Unlock()
		return
	}
	l.byed = true
	l.mu.Unlock()
	bye := s.inDialog(l, sip.BYE, 0)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), inDialogLimit)
		defer cancel()
		if _, err := s.client.Do(ctx, bye, s.forwardOpts("")...); err != nil {
			s.log.Warn("send BYE", "call_id", bye.CallID().Value(), "error", err)
		}
	}()
}

// markByed records that the far side ended l's dialog (ctid sends no BYE of its own).
func (l *uacLeg) markByed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byed = true
}

// relayUAC sends req (an in-dialog request that came from the other leg) on in l's dialog
// and answers tx with the result: re-INVITE (hold, codec change), UPDATE, INFO (DTMF).
func (s *Service) relayUAC(l *uacLeg, req *sip.Request, tx sip.ServerTransaction) {
	out := s.inDialog(l, req.Method, 0)
	if ct := req.GetHeader("Content-Type"); ct != nil {
		out.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
	}
	out.SetBody(req.Body())
	ctx, cancel := context.WithTimeout(context.Background(), inDialogLimit)
	defer cancel()
	res, err := s.client.Do(ctx, out, s.forwardOpts("")...)
	if err != nil {
		s.respond(tx, req, 408, "Request Timeout")
		return
	}
	if req.Method == sip.INVITE && res.IsSuccess() {
		ack := s.inDialog(l, sip.ACK, out.CSeq().SeqNo)
		ack.SetBody(nil)
		if err := s.client.WriteRequest(ack, s.forwardOpts("")...); err != nil {
			s.log.Warn("send ACK", "call_id", out.CallID().Value(), "error", err)
		}
	}
	back := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, res.Body())
	if ct := res.GetHeader("Content-Type"); ct != nil && len(res.Body()) > 0 {
		back.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
	}
	if req.Method == sip.INVITE && res.IsSuccess() {
		back.AppendHeader(s.contactHeader(strings.ToLower(req.Transport())))
	}
	s.send(tx, req, back)
}
