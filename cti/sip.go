package cti

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ctid/ctid/fault"
)

// allowed is the Allow header ctid sends.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE"

// routes registers the SIP handlers.
func (s *Service) routes() {
	s.server.OnOptions(s.guarded(s.onOptions))
	s.server.OnRegister(s.guarded(s.reg.onRegister))
	s.server.OnInvite(s.guarded(s.onInvite))
	s.server.OnAck(s.guarded(s.onInDialog))
	s.server.OnBye(s.guarded(s.onInDialog))
	s.server.OnInfo(s.guarded(s.onInDialog))
	s.server.OnUpdate(s.guarded(s.onInDialog))
	s.server.OnCancel(s.guarded(s.onCancel))
	s.server.OnNoRoute(s.guarded(s.onUnsupported))
}

// guarded counts a request and answers 400 when it lacks what every request needs; only
// well-formed requests reach h.
func (s *Service) guarded(h func(*sip.Request, sip.ServerTransaction)) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		s.m.sipRequests.WithLabelValues(methodLabel(req.Method)).Inc()
		if problem := malformed(req); problem != "" {
			if req.Method != sip.ACK {
				s.respond(tx, req, 400, problem)
			}
			return
		}
		h(req, tx)
	}
}

// methodLabel keeps the metric's label set small: unknown methods count as "other".
func methodLabel(m sip.RequestMethod) string {
	switch m {
	case sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.OPTIONS, sip.REGISTER, sip.INFO, sip.UPDATE,
		sip.PRACK, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER, sip.MESSAGE, sip.PUBLISH:
		return string(m)
	}
	return "other"
}

// malformed names what a request lacks, "" when it has what RFC 3261 §8.1.1 requires.
func malformed(req *sip.Request) string {
	switch {
	case req.From() == nil:
		return "Missing From header"
	case req.To() == nil:
		return "Missing To header"
	case req.CallID() == nil || strings.TrimSpace(req.CallID().Value()) == "":
		return "Missing Call-ID header"
	case req.CSeq() == nil:
		return "Missing CSeq header"
	case req.CSeq().MethodName != req.Method:
		return "CSeq method does not match the request"
	case req.Via() == nil:
		return "Missing Via header"
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return "Content-Length does not match the body"
	}
	return ""
}

// respond answers req with a response built from it.
func (s *Service) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	s.send(tx, req, res)
}

func (s *Service) send(tx sip.ServerTransaction, req *sip.Request, res *sip.Response) {
	s.m.sipResponses.WithLabelValues(methodLabel(req.Method), strconv.Itoa(res.StatusCode)).Inc()
	if err := tx.Respond(res); err != nil {
		s.log.Debug("send sip response", "code", res.StatusCode, "method", req.Method, "error", err)
	}
}

// onOptions answers keep-alive probes of PBXs and load balancers.
func (s *Service) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 200, "OK", sip.NewHeader("Allow", allowed), sip.NewHeader("Accept", "application/sdp"))
}

func (s *Service) onUnsupported(req *sip.Request, tx sip.ServerTransaction) {
	if req.Method == sip.ACK {
		return // an ACK matching no dialog of ours: nothing to answer
	}
	s.respond(tx, req, 405, "Method Not Allowed", sip.NewHeader("Allow", allowed))
}

// onStrayResponse sees responses that match no transaction (late retransmissions, or
// input crafted to look like responses). sipgo would log each one at INFO.
func (s *Service) onStrayResponse(res *sip.Response) {
	s.m.sipDropped.WithLabelValues("stray_response").Inc()
}

// handlerTimeout bounds the database work of one SIP request.
const handlerTimeout = 5 * time.Second

// respondErr answers with the SIP status of err's fault code; internal errors are logged.
func (s *Service) respondErr(tx sip.ServerTransaction, req *sip.Request, err error) {
	code := fault.CodeOf(err)
	if code == fault.Internal {
		s.log.Error("sip request failed", "method", req.Method, "call_id", req.CallID().Value(), "error", err)
	}
	status := fault.SIPStatus(code)
	reason := "Server Internal Error"
	if code != fault.Internal {
		reason = truncate(fault.MessageOf(err))
	}
	s.respond(tx, req, status, reason)
}

func asFault(err error, target **fault.Error) bool { return errors.As(err, target) }
