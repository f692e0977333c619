package cti

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/nyaruka/phonenumbers"
)

// Timers of proxied transactions.
const (
	legFinalWait  = 32 * time.Second // after CANCEL, how long a leg may take to send its final response
	inDialogLimit = 32 * time.Second // a forwarded in-dialog transaction (BYE, re-INVITE)
)

// viaBranchPrefix marks the branches ctid makes (RFC 3261 magic cookie, then ours).
const viaBranchPrefix = "z9hG4bK-ctid-"

// isOurs reports whether u points at this ctid.
func (s *Service) isOurs(u sip.Uri) bool {
	for _, network := range []string{"udp", "tcp", "tls"} {
		host, port := s.hostPort(network)
		if port != 0 && u.Host == host && (u.Port == port || (u.Port == 0 && port == 5060)) {
			return true
		}
	}
	return false
}

// looped reports whether req already passed this ctid (a Via of ours).
func (s *Service) looped(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Via") {
		if v, ok := h.(*sip.ViaHeader); ok {
			if b, _ := v.Params.Get("branch"); strings.HasPrefix(b, viaBranchPrefix) && s.isOurs(sip.Uri{Host: v.Host, Port: v.Port}) {
				return true
			}
		}
	}
	return false
}

// forwardOpts prepares a request ctid forwards: its own Via on top, Max-Forwards down, and
// (for dialog-creating INVITEs) a Record-Route so the dialog's requests pass through ctid.
// recordRouteFrom is the network the request came in on ("" for no Record-Route): when it
// differs from the outgoing one (a phone on TLS, a trunk on UDP), ctid record-routes twice
// (RFC 5658), so each side's route set starts with ctid's address on its own transport.
func (s *Service) forwardOpts(recordRouteFrom string) []sipgo.ClientRequestOption {
	return []sipgo.ClientRequestOption{func(c *sipgo.Client, r *sip.Request) error {
		network := strings.ToLower(r.Transport())
		host, port := s.hostPort(network)
		via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: r.Transport(), Host: host, Port: port,
			Params: sip.NewParams()}
		via.Params.Add("branch", viaBranchPrefix+sip.GenerateTagN(16))
		if top := r.Via(); top != nil && top.Params.Has("rport") {
			h, p, err := net.SplitHostPort(r.Source())
			if err == nil {
				top.Params.Add("rport", p)
				top.Params.Add("received", h)
			}
		}
		r.PrependHeader(via)
		if recordRouteFrom != "" {
			if recordRouteFrom != network {
				h, p := s.hostPort(recordRouteFrom)
				r.PrependHeader(recordRoute(h, p, recordRouteFrom))
			}
			r.PrependHeader(recordRoute(host, port, network))
		}
		if mf := r.MaxForwards(); mf != nil {
			mf.Dec()
		}
		return nil
	}}
}

func recordRoute(host string, port int, network string) *sip.RecordRouteHeader {
	rr := &sip.RecordRouteHeader{Address: sip.Uri{Host: host, Port: port, UriParams: sip.NewParams()}}
	rr.Address.UriParams.Add("transport", network)
	rr.Address.UriParams.Add("lr", "")
	return rr
}

// destination is the host:port and transport to send to for uri.
func destination(u sip.Uri) (string, string) {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	transport := "UDP"
	if t, ok := u.UriParams.Get("transport"); ok && t != "" {
		transport = strings.ToUpper(t)
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(port)), transport
}

// onInvite routes a new call (or forwards a re-INVITE inside a dialog).
func (s *Service) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to.Params.Has("tag") {
		s.forwardInDialog(req, tx)
		return
	}
	if s.looped(req) {
		s.respond(tx, req, 482, "Loop Detected")
		return
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() <= 0 {
		s.respond(tx, req, 483, "Too Many Hops")
		return
	}
	start := time.Now()
	s.respond(tx, req, 100, "Trying")
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	// An INVITE from one of our tenants' domains is an agent's own call out.
	if t, err := s.reg.dir.tenantByDomain(ctx, req.From().Address.Host); err == nil {
		s.outbound(req, tx, t, start)
		return
	}
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		s.respond(tx, req, 400, "Unreadable source address")
		return
	}
	trunk, err := s.trunkBySource(ctx, src.Addr().Unmap())
	if err != nil {
		s.respondErr(tx, req, err)
		return
	}
	if !s.trunkAuthenticated(ctx, req, tx, trunk, src.Addr().Unmap()) {
		return
	}
	number := req.Recipient.User
	did, err := s.didByNumber(ctx, trunk.Tenant, number)
	if err != nil {
		s.respondErr(tx, req, err)
		return
	}
	c := s.newInboundCall(req, &sipTenant{ID: trunk.tenantID, Code: trunk.Tenant, Region: trunk.region}, did)
	// The caller's CANCEL: sipgo answers it (200, then 487 to the INVITE); we stop the offers.
	tx.OnCancel(func(*sip.Request) {
		if c.cancel() {
			c.stop()
		}
	})
	s.event(c, CallOffered, 0, map[string]string{"caller": c.cdr.CallerRaw, "caller_e164": c.cdr.CallerE164,
		"callee": number, "did": did.Number, "direction": string(Inbound), "source": "sip", "instance": s.instance, "trunk": trunk.Name})
	switch {
	case did.Queue != "":
		s.serveQueue(c, req, tx, did.Queue, start)
	default:
		s.serveExtension(c, req, tx, did.Extension, start)
	}
}

func (s *Service) newInboundCall(req *sip.Request, t *sipTenant, did *DID) *call {
	caller := req.From().Address.User
	c := &call{id: newCallID(), tenant: t.Code, sipCallID: req.CallID().Value(), started: time.Now(),
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	c.callerTag, _ = req.From().Params.Get("tag")
	c.cdr = CDR{CallID: c.id, OfferedAt: c.started, Direction: Inbound, Source: "sip", CallerRaw: caller,
		CallerE164: e164(caller, t.Region), CalleeRaw: req.Recipient.User, CalleeE164: e164(req.Recipient.User, t.Region),
		DID: did.Number, SIPCallIDs: []string{c.sipCallID}}
	c.didPriority = did.Priority
	s.calls.add(c)
	s.m.activeCalls.Inc()
	return c
}

// e164 normalises a number with the tenant's region; "" when it is no phone number.
func e164(number, region string) string {
	if number == "" || len(number) > 32 {
		return ""
	}
	n, err := phonenumbers.Parse(number, region)
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return ""
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

// relay sends a response of an agent leg back to the caller, without ctid's Via.
func (s *Service) relay(callerReq *sip.Request, callerTx sip.ServerTransaction, res *sip.Response) error {
	out := res.Clone()
	out.RemoveHeader("Via")
	out.SetDestination(callerReq.Source())
	s.m.sipResponses.WithLabelValues(string(sip.INVITE), strconv.Itoa(out.StatusCode)).Inc()
	return callerTx.Respond(out)
}

// legOutcome is how an offer to one agent ended.
type legOutcome struct {
	leg      *leg
	answered bool
	code     int    // final SIP status from the phone, 0 when none
	why      string // timeout, busy, declined, error, cancelled
}

// startLeg sends the caller's INVITE on to one contact of an agent.
func (s *Service) startLeg(c *call, callerReq *sip.Request, l *leg) error {
	r := callerReq.Clone()
	r.Recipient = l.contact
	r.RemoveHeader("Route")
	r.RemoveHeader("Proxy-Authorization") // the agent's credentials are for ctid only
	dst, transport := destination(l.contact)
	if network, addr := connOf(l.source); network != "" {
		dst, transport = addr, strings.ToUpper(network) // the phone's own connection
	}
	r.SetDestination(dst)
	r.SetTransport(transport)
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	tx, err := s.client.TransactionRequest(ctx, r, s.forwardOpts(strings.ToLower(callerReq.Transport()))...)
	if err != nil {
		return err
	}
	l.req, l.tx = r, tx
	return nil
}

// runLeg follows one agent leg to its end: relays provisional responses, gives up after
// ringTimeout or when stop or the call's done closes (CANCEL), and hangs up a phone that
// answers too late (the 200 that crosses a CANCEL). It reports the outcome once the leg is
// settled.
func (s *Service) runLeg(c *call, callerReq *sip.Request, callerTx sip.ServerTransaction, l *leg,
	ringTimeout time.Duration, stop <-chan struct{}, start time.Time, out chan<- legOutcome) {
	timer := time.NewTimer(ringTimeout)
	defer timer.Stop()
	defer l.tx.Terminate()
	cancelled := false
	why := ""
	ringing := false
	var deadline <-chan time.Time
	done := c.done
	if done == stop {
		done = nil
	}
	sendCancel := func(reason string) {
		if cancelled {
			return
		}
		cancelled, why = true, reason
		s.cancelLeg(l)
		deadline = time.After(legFinalWait)
	}
	for {
		select {
		case res, ok := <-l.tx.Responses():
			if !ok {
				out <- legOutcome{leg: l, why: orDefault(why, "error")}
				return
			}
			switch {
			case res.StatusCode < 200:
				if res.StatusCode == 100 || cancelled {
					continue
				}
				// The caller hears ringing first; then the agent's Ringing state is written.
				if err := s.relay(callerReq, callerTx, res); err != nil {
					s.log.Debug("relay provisional", "call", c.id, "error", err)
				}
				if !ringing {
					ringing = true
					s.legRinging(c, l, start)
				}
			case res.StatusCode < 300:
				if !ringing {
					s.legRinging(c, l, start)
				}
				if !cancelled && c.claim(l) {
					// The answer is durable (agent On call, call.answered) before the caller hears it,
					// so a quick BYE always finds the call answered.
					s.answered(c, l)
					if err := s.relay(callerReq, callerTx, res); err != nil {
						// The caller's CANCEL won after all: the phone is up, hang it up.
						s.log.Info("caller gone as agent answered", "call", c.id, "error", err)
						s.hangUpLate(l, res)
						s.endCall(c, Abandoned, HangupCaller, 487)
					}
					out <- legOutcome{leg: l, answered: true, code: res.StatusCode}
					return
				}
				// Answered after we cancelled it, or another phone won: ACK, then BYE.
				s.hangUpLate(l, res)
				out <- legOutcome{leg: l, code: res.StatusCode, why: orDefault(why, "cancelled")}
				return
			default:
				reason := why
				if reason == "" {
					switch res.StatusCode {
					case 486, 600:
						reason = "busy"
					case 603:
						reason = "declined"
					case 408, 480:
						reason = "timeout"
					default:
						reason = "error"
					}
				}
				out <- legOutcome{leg: l, code: res.StatusCode, why: reason}
				return
			}
		case <-timer.C:
			sendCancel("timeout")
		case <-stop:
			stop = nil
			sendCancel("cancelled")
		case <-done:
			done = nil
			sendCancel("cancelled")
		case <-deadline:
			out <- legOutcome{leg: l, why: orDefault(why, "timeout")}
			return
		case <-l.tx.Done():
			out <- legOutcome{leg: l, why: orDefault(why, "error")}
			return
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// legRinging records that an agent's phone rings.
func (s *Service) legRinging(c *call, l *leg, start time.Time) {
	ctx := context.Background() // agent transitions bound their own rare database reads
	c.mu.Lock()
	first := c.cdr.RingingAt.IsZero()
	if first {
		c.cdr.RingingAt = time.Now()
	}
	c.mu.Unlock()
	if first && !start.IsZero() {
		s.m.setupLatency.Observe(time.Since(start).Seconds())
	}
	if l.agentID != 0 {
		s.setAgent(ctx, c.tenant, l.agentID, Change{To: Ringing, Who: BySystem, CallID: c.id, From: Reserved})
	}
	s.event(c, CallRinging, l.agentID, map[string]string{"extension": l.extension, "contact": l.contact.String()})
}

// cancelLeg sends CANCEL for a leg's INVITE (same Request-URI, Call-ID, From, To, CSeq
// number and top Via as the INVITE).
func (s *Service) cancelLeg(l *leg) {
	r := sip.NewRequest(sip.CANCEL, l.req.Recipient)
	r.AppendHeader(l.req.Via().Clone())
	r.AppendHeader(sip.HeaderClone(l.req.From()))
	r.AppendHeader(sip.HeaderClone(l.req.To()))
	r.AppendHeader(sip.HeaderClone(l.req.CallID()))
	r.AppendHeader(&sip.CSeqHeader{SeqNo: l.req.CSeq().SeqNo, MethodName: sip.CANCEL})
	r.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	r.AppendHeader(sip.NewHeader("Content-Length", "0"))
	r.SetDestination(l.req.Destination())
	r.SetTransport(l.req.Transport())
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		defer cancel()
		// The CANCEL's own transaction: its Via is the INVITE's, so no option may add another.
		tx, err := s.client.TransactionRequest(ctx, r, func(*sipgo.Client, *sip.Request) error { return nil })
		if err != nil {
			s.log.Debug("send CANCEL", "error", err)
			return
		}
		defer tx.Terminate()
		select {
		case <-tx.Responses():
		case <-tx.Done():
		case <-ctx.Done():
		}
	}()
}

// hangUpLate ends a dialog a phone set up by answering after ctid no longer wanted it:
// ACK the 200 (ending the INVITE transaction), then BYE.
func (s *Service) hangUpLate(l *leg, res *sip.Response) {
	target := l.contact
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	dst, transport := destination(target)
	build := func(method sip.RequestMethod, seq uint32) *sip.Request {
		r := sip.NewRequest(method, target)
		r.AppendHeader(sip.HeaderClone(l.req.From()))
		r.AppendHeader(sip.HeaderClone(res.To()))
		r.AppendHeader(sip.HeaderClone(l.req.CallID()))
		r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
		r.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
		r.AppendHeader(sip.NewHeader("Content-Length", "0"))
		r.SetDestination(dst)
		r.SetTransport(transport)
		return r
	}
	seq := l.req.CSeq().SeqNo
	if err := s.client.WriteRequest(build(sip.ACK, seq), s.forwardOpts("")...); err != nil {
		s.log.Warn("ACK late answer", "error", err)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), inDialogLimit)
		defer cancel()
		if _, err := s.client.Do(ctx, build(sip.BYE, seq+1), s.forwardOpts("")...); err != nil {
			s.log.Warn("BYE late answer", "error", err)
		}
	}()
}

// forwardInDialog passes a request of an established dialog (ACK, BYE, re-INVITE, INFO,
// UPDATE) on along its route, and ends the call when it is a BYE.
func (s *Service) forwardInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if s.onDialRequest(req, tx) {
		return // a dialog of click-to-dial: ctid is its other party, not a proxy
	}
	c := s.calls.get(req.CallID().Value())
	ours := false
	for rt := req.Route(); rt != nil && s.isOurs(rt.Address); rt = req.Route() {
		req.RemoveHeader("Route") // removes the top one only: ours (twice when ctid record-routed twice)
		ours = true
	}
	if !ours && c == nil {
		if req.Method != sip.ACK {
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		}
		return
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() <= 1 {
		if req.Method != sip.ACK {
			s.respond(tx, req, 483, "Too Many Hops")
		}
		return
	}
	next := req.Recipient
	if rt := req.Route(); rt != nil {
		next = rt.Address
	}
	dst, transport := destination(next)
	if req.Route() == nil && c != nil {
		if network, addr := c.phoneConn(req); network != "" {
			dst, transport = addr, strings.ToUpper(network) // the phone's own connection
		}
	}
	req.SetDestination(dst)
	req.SetTransport(transport)
	if req.Method == sip.ACK {
		if err := s.client.WriteRequest(req, s.forwardOpts("")...); err != nil {
			s.log.Debug("forward ACK", "error", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), inDialogLimit)
	defer cancel()
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	clTx, err := s.client.TransactionRequest(ctx2, req, s.forwardOpts("")...)
	if err != nil {
		s.respondUpstream(tx, req, 503, "Service Unavailable")
		if req.Method == sip.BYE && c != nil {
			s.endByBye(c, req, 0)
		}
		return
	}
	defer clTx.Terminate()
	final := 0
	for final == 0 {
		select {
		case res, ok := <-clTx.Responses():
			if !ok {
				final = 408
				break
			}
			out := res.Clone()
			out.RemoveHeader("Via")
			out.SetDestination(req.Source())
			s.send(tx, req, out)
			if res.StatusCode >= 200 {
				final = res.StatusCode
			}
		case <-clTx.Done():
			final = 408
			s.respondUpstream(tx, req, 408, "Request Timeout")
		case <-ctx.Done():
			final = 408
			s.respondUpstream(tx, req, 408, "Request Timeout")
		}
	}
	if req.Method == sip.BYE && c != nil {
		s.endByBye(c, req, final)
	}
}

// respondUpstream answers a request ctid was forwarding (forwarding put ctid's own Via on top
// of it and pointed it at the next hop): without that Via, back to where the request came from.
// Built like any response, it went to the next hop instead, carrying ctid's Via.
func (s *Service) respondUpstream(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if v := res.Via(); v != nil {
		if b, _ := v.Params.Get("branch"); strings.HasPrefix(b, viaBranchPrefix) && s.isOurs(sip.Uri{Host: v.Host, Port: v.Port}) {
			res.RemoveHeader("Via")
		}
	}
	res.SetDestination(req.Source())
	s.send(tx, req, res)
}

// endByBye ends an answered call after a BYE from either side.
func (s *Service) endByBye(c *call, bye *sip.Request, code int) {
	tag, _ := bye.From().Params.Get("tag")
	fromCaller := tag == c.callerTag
	c.mu.Lock()
	outbound := c.cdr.Direction == Outbound
	c.mu.Unlock()
	by := HangupAgent
	if fromCaller != outbound { // the caller of an outbound call is the agent
		by = HangupCaller
	}
	s.endCall(c, Answered, by, 200)
}

// onInDialog handles methods that only occur inside dialogs.
func (s *Service) onInDialog(req *sip.Request, tx sip.ServerTransaction) {
	s.forwardInDialog(req, tx)
}

// onCancel sees a CANCEL that matched no INVITE transaction of ours.
func (s *Service) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
}
