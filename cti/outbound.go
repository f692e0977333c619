package cti

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// outboundRingLimit is how long an outbound call may ring at the far end.
const outboundRingLimit = 120 * time.Second

// outbound sends an agent's call to an external number out through the tenant's outbound
// trunk, after digest authentication of the agent (407).
func (s *Service) outbound(req *sip.Request, tx sip.ServerTransaction, t *sipTenant, start time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	ext := req.From().Address.User
	user, ok := s.reg.authenticate(ctx, req, tx, t, ext, true)
	if !ok {
		return
	}
	trunk, err := outboundTrunk(ctx, s.pool, t.Code)
	if err != nil {
		s.respondErr(tx, req, err)
		return
	}
	var target sip.Uri
	if err := sip.ParseUri(trunk.OutboundURI, &target); err != nil {
		s.respond(tx, req, 503, "Outbound trunk misconfigured")
		return
	}
	number := req.Recipient.User
	if number == "" {
		s.respond(tx, req, 404, "No number to dial")
		return
	}
	target.User = number
	c := &call{id: newCallID(), tenant: t.Code, sipCallID: req.CallID().Value(), started: time.Now(),
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	c.callerTag, _ = req.From().Params.Get("tag")
	c.agentSource = strings.ToLower(req.Transport()) + ":" + req.Source()
	c.cdr = CDR{CallID: c.id, OfferedAt: c.started, Direction: Outbound, Source: "sip", CallerRaw: ext,
		CalleeRaw: number, CalleeE164: e164(number, t.Region), AgentID: user.ID, AgentExtension: ext,
		SIPCallIDs: []string{c.sipCallID}}
	s.calls.add(c)
	s.m.activeCalls.Inc()
	tx.OnCancel(func(*sip.Request) {
		if c.cancel() {
			c.stop()
		}
	})
	s.event(c, CallOffered, user.ID, map[string]string{"caller": ext, "callee": number, "callee_e164": c.cdr.CalleeE164,
		"direction": string(Outbound), "source": "sip", "instance": s.instance, "trunk": trunk.Name})
	if trunk.CallerID != "" {
		req.RemoveHeader("P-Asserted-Identity")
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+trunk.CallerID+"@"+target.Host+">"))
	}
	l := &leg{contact: target}
	if err := s.startLeg(c, req, l); err != nil {
		s.log.Warn("outbound call", "trunk", trunk.Name, "error", err)
		s.respond(tx, req, 503, "Trunk unreachable")
		s.endCall(c, Failed, HangupSystem, 503)
		return
	}
	out := make(chan legOutcome, 1)
	go s.runLeg(c, req, tx, l, outboundRingLimit, c.done, start, out)
	o := <-out
	if o.answered {
		return
	}
	select {
	case <-c.done:
		s.endCall(c, Abandoned, HangupCaller, 487)
		return
	default:
	}
	code := o.code
	if code == 0 {
		code = 408
	}
	s.respond(tx, req, code, "Call Failed")
	result := Failed
	switch o.why {
	case "busy", "declined":
		result = Busy
	case "timeout":
		result = NoAnswer
	}
	s.endCall(c, result, HangupSystem, code)
}
