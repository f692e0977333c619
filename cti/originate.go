package cti

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/fault"
)

// Click-to-dial is third-party call control (RFC 3725, flow I): ctid calls the agent's phone
// with an INVITE without SDP; the phone answers with its offer; ctid sends that offer to the
// tenant's outbound trunk; the trunk's answer goes back to the phone in the ACK. The phone's
// 200 waits for that ACK, and phones give up after 32 s (64·T1) without it: so the far end
// may ring dialUnconfirmedLimit, unless it sends its answer early (SDP in 180/183, as
// carriers with ringback do), which ctid passes to the phone at once.

// Timers of a dial.
const (
	dialAgentRingLimit   = 30 * time.Second // the agent's phone rings this long
	dialUnconfirmedLimit = 28 * time.Second // the far end rings this long while the phone waits for its ACK
	dialKeep             = 15 * time.Minute // an ended dial answers status queries from memory this long
)

// DialState is where a click-to-dial call is.
type DialState string

const (
	DialRingingAgent  DialState = "ringing_agent"  // the agent's phone rings
	DialRingingNumber DialState = "ringing_number" // the agent answered; the number rings
	DialConnected     DialState = "connected"      // the number answered: they talk
	DialEnded         DialState = "ended"
)

// Why a dial ended, as DialStatus.Reason.
const (
	DialAgentNoAnswer    = "agent_no_answer"   // the agent's phone was not answered
	DialAgentDeclined    = "agent_declined"    // the agent's phone declined (or was busy)
	DialAgentUnreachable = "agent_unreachable" // the agent's phone failed or could not be reached
	DialBusy             = "busy"              // the number was busy or declined
	DialNoAnswer         = "no_answer"         // the number did not answer
	DialTrunkFailed      = "trunk_failed"      // the trunk refused or failed the call
	DialAgentHungUp      = "agent_hung_up"     // the agent hung up before the number answered
	DialCancelled        = "cancelled"         // the agent cancelled from the console
	DialHungUp           = "hung_up"           // an answered call ended normally
)

// DialStatus is what the console shows of a click-to-dial call.
type DialStatus struct {
	CallID  string
	AgentID int64
	Number  string
	State   DialState
	Result  Result // once ended: the CDR's result
	Reason  string // once ended: one of the Dial* reasons
	SIPCode int    // the final SIP status that ended it, 0 when none
	Started time.Time
}

// NoPhoneError says the agent's phone cannot be used for click-to-dial (no extension, not
// registered): the console falls back to a tel: link. Its fault code is Conflict.
type NoPhoneError struct{ err error }

func (e *NoPhoneError) Error() string { return e.err.Error() }
func (e *NoPhoneError) Unwrap() error { return e.err }

func noPhone(format string, args ...any) error {
	return &NoPhoneError{err: fault.Errorf(fault.Conflict, format, args...)}
}

// dial is one click-to-dial call in progress (or recently ended).
type dial struct {
	c        *call
	tenant   string
	agentID  int64
	ext      string
	reserved bool // the agent was Ready and is held (Reserved, Ringing) for this call
	agent    *uacLeg
	far      *uacLeg

	mu      sync.Mutex
	status  DialStatus
	endedAt time.Time
	why     string // set by a BYE or a cancel before the number answered
}

func (d *dial) snapshot() DialStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

func (d *dial) setState(st DialState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.status.State != DialEnded {
		d.status.State = st
	}
}

// stopWith ends the ringing of a dial for reason (a BYE or a cancel); false once connected.
func (d *dial) stopWith(reason string) bool {
	d.mu.Lock()
	if d.status.State == DialConnected || d.status.State == DialEnded {
		d.mu.Unlock()
		return false
	}
	if d.why == "" {
		d.why = reason
	}
	d.mu.Unlock()
	d.c.stop()
	return true
}

func (d *dial) stoppedWhy() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.why
}

// dials indexes click-to-dial calls: by the SIP Call-ID of either leg (in-dialog requests),
// by ctid's call id (status queries) and by agent (one dial at a time).
type dials struct {
	mu      sync.Mutex
	bySIP   map[string]*dial
	byID    map[string]*dial
	byAgent map[agentKey]*dial
}

func newDials() *dials {
	return &dials{bySIP: map[string]*dial{}, byID: map[string]*dial{}, byAgent: map[agentKey]*dial{}}
}

// add registers d unless its agent has a dial going already.
func (ds *dials) add(d *dial) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	k := agentKey{d.tenant, d.agentID}
	if ds.byAgent[k] != nil {
		return false
	}
	now := time.Now()
	for id, x := range ds.byID {
		x.mu.Lock()
		old := !x.endedAt.IsZero() && now.Sub(x.endedAt) > dialKeep
		x.mu.Unlock()
		if old {
			delete(ds.byID, id)
		}
	}
	ds.byAgent[k] = d
	ds.byID[d.c.id] = d
	return true
}

func (ds *dials) addLeg(d *dial, l *uacLeg) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.bySIP[l.req.CallID().Value()] = d
}

func (ds *dials) bySIPCallID(id string) *dial {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.bySIP[id]
}

func (ds *dials) get(callID string) *dial {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.byID[callID]
}

// ended forgets d's legs and frees its agent for the next dial; the status stays a while.
func (ds *dials) ended(d *dial) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, l := range []*uacLeg{d.agent, d.far} {
		if l != nil && l.req != nil && ds.bySIP[l.req.CallID().Value()] == d {
			delete(ds.bySIP, l.req.CallID().Value())
		}
	}
	if k := (agentKey{d.tenant, d.agentID}); ds.byAgent[k] == d {
		delete(ds.byAgent, k)
	}
}

// cleanNumber drops what people put in numbers for reading: spaces, dashes, dots, brackets.
func cleanNumber(n string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '\u00a0':
			return -1
		}
		return r
	}, strings.TrimSpace(n))
}

// agentExtension is the extension of an enabled user of the tenant.
func (s *Service) agentExtension(ctx context.Context, t *sipTenant, agentID int64) (string, error) {
	var ext *string
	var disabled bool
	err := s.pool.QueryRow(ctx, `SELECT extension, disabled FROM platform.users WHERE id = $1 AND tenant_id = $2`,
		agentID, t.ID).Scan(&ext, &disabled)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && disabled) {
		return "", fault.Errorf(fault.NotFound, "agent %d does not exist", agentID)
	}
	if err != nil {
		return "", fmt.Errorf("load agent %d: %w", agentID, err)
	}
	if ext == nil || *ext == "" {
		return "", nil
	}
	return *ext, nil
}

// Originate places a click-to-dial call for an agent: ctid rings the agent's registered phone
// (the phone shows the number), and when the agent answers, calls number through the tenant's
// outbound trunk and connects the two. It returns once the phone is being called; the call
// goes on in the background (DialStatus follows it) and ends with one outbound CDR. An agent
// whose phone cannot be used gets a *NoPhoneError; an agent on a call, a Conflict.
func (s *Service) Originate(ctx context.Context, tenant string, agentID int64, number string) (DialStatus, error) {
	number = cleanNumber(number)
	if !didRE.MatchString(number) {
		return DialStatus{}, fault.Errorf(fault.Invalid, "%q cannot be dialled: a number is 2–20 digits with an optional leading +", number)
	}
	t, err := s.reg.dir.tenantByCode(ctx, tenant)
	if err != nil {
		return DialStatus{}, err
	}
	ext, err := s.agentExtension(ctx, t, agentID)
	if err != nil {
		return DialStatus{}, err
	}
	if ext == "" {
		return DialStatus{}, noPhone("you have no extension, so ctid cannot call your phone")
	}
	if t.Domain == "" {
		return DialStatus{}, noPhone("your tenant has no SIP domain, so no phone is registered with ctid")
	}
	contacts := s.reg.contacts(tenant, ext)
	if len(contacts) == 0 {
		return DialStatus{}, noPhone("your phone (extension %s) is not registered with ctid", ext)
	}
	trunk, err := outboundTrunk(ctx, s.pool, tenant)
	if err != nil {
		return DialStatus{}, err
	}
	var farURI sip.Uri
	if err := sip.ParseUri(trunk.OutboundURI, &farURI); err != nil {
		return DialStatus{}, fault.Errorf(fault.Unavailable, "the outbound trunk %s is misconfigured", trunk.Name)
	}
	farURI.User = number
	st, err := s.agents.Status(ctx, tenant, agentID)
	if err != nil {
		return DialStatus{}, err
	}
	if busyState(st.State) {
		return DialStatus{}, fault.Errorf(fault.Conflict, "you are on a call (%s): finish it first", st.State)
	}

	c := &call{id: newCallID(), tenant: tenant, started: time.Now(), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	c.cdr = CDR{CallID: c.id, OfferedAt: c.started, Direction: Outbound, Source: "sip", CallerRaw: ext,
		CalleeRaw: number, CalleeE164: e164(number, t.Region), AgentID: agentID, AgentExtension: ext}
	d := &dial{c: c, tenant: tenant, agentID: agentID, ext: ext,
		status: DialStatus{CallID: c.id, AgentID: agentID, Number: number, State: DialRingingAgent, Started: c.started}}
	if !s.dials.add(d) {
		return DialStatus{}, fault.Errorf(fault.Conflict, "you are dialling a number already")
	}
	// The agent stays out of the ACD while ctid calls them: Ready → Reserved. An agent who is
	// Not ready (or in wrap-up) may dial and keeps that state, as with calls from the phone.
	if st.State == Ready {
		if s.setAgent(ctx, tenant, agentID, Change{To: Reserved, Who: BySystem, CallID: c.id, From: Ready}) {
			d.reserved = true
		} else if now, err := s.agents.Status(ctx, tenant, agentID); err != nil || busyState(now.State) {
			s.dials.ended(d)
			return DialStatus{}, fault.Errorf(fault.Conflict, "a call is being offered to you: take it first")
		}
	}
	s.m.activeCalls.Inc()
	s.event(c, CallOffered, agentID, map[string]string{"caller": ext, "callee": number, "callee_e164": c.cdr.CalleeE164,
		"direction": string(Outbound), "source": "sip", "instance": s.instance, "trunk": trunk.Name, "origin": "click_to_dial"})

	// The phone shows who it is about to call: the number, in From.
	from := sip.FromHeader{DisplayName: number, Address: sip.Uri{Scheme: "sip", User: number, Host: t.Domain}}
	to := sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: ext, Host: t.Domain}}
	b := contacts[len(contacts)-1]
	contact := b.Contact
	d.agent = &uacLeg{leg: leg{agentID: agentID, extension: ext, contact: contact, source: b.Source}}
	inv := s.newUACInvite(contact, from, to, nil)
	if network, addr := connOf(b.Source); network != "" {
		inv.SetDestination(addr) // a TLS or TCP phone: over the connection it registered on
		inv.SetTransport(strings.ToUpper(network))
	}
	if err := s.startUAC(d.agent, inv); err != nil {
		s.log.Warn("click-to-dial: call the agent's phone", "agent", agentID, "contact", contact.String(), "error", err)
		s.finishDial(d, Failed, HangupSystem, 0, DialAgentUnreachable)
		return DialStatus{}, &NoPhoneError{err: fault.Errorf(fault.Conflict, "your phone (extension %s) cannot be reached", ext)}
	}
	c.sipCallID = d.agent.req.CallID().Value()
	c.cdr.SIPCallIDs = []string{c.sipCallID}
	s.dials.addLeg(d, d.agent)
	// The status as the phone is being called: the dial may move on before the caller reads it.
	st0 := d.snapshot()
	go s.runDial(d, trunk, farURI)
	return st0, nil
}

// PhoneRegistered reports whether an extension of tenant has a registered phone (which
// click-to-dial can call).
func (s *Service) PhoneRegistered(tenant, ext string) bool { return s.reg.registered(tenant, ext) }

// busyState reports whether an agent in st is taken by a call.
func busyState(st AgentState) bool { return st == Reserved || st == Ringing || st == OnCall }

// runDial follows a dial from the agent's phone ringing to the number answering (or to the
// end); after that, BYEs end it (onDialRequest).
func (s *Service) runDial(d *dial, trunk *Trunk, farURI sip.Uri) {
	c := d.c
	ringing := false
	o := s.ringUAC(d.agent, dialAgentRingLimit, c.done, func(res *sip.Response) time.Duration {
		if !ringing {
			ringing = true
			s.legRinging(c, &d.agent.leg, time.Time{})
		}
		return 0
	})
	if o.res == nil {
		switch {
		case d.stoppedWhy() != "":
			s.finishDial(d, Abandoned, HangupAgent, o.code, d.stoppedWhy())
		case o.why == "timeout":
			s.finishDial(d, NoAnswer, HangupSystem, orCode(o.code, 408), DialAgentNoAnswer)
		case o.why == "busy" || o.why == "declined":
			s.finishDial(d, Rejected, HangupAgent, o.code, DialAgentDeclined)
		default:
			s.finishDial(d, Failed, HangupSystem, o.code, DialAgentUnreachable)
		}
		return
	}
	offer := o.res.Body()
	if len(offer) == 0 {
		// RFC 3264: an INVITE without SDP gets the offer in the 2xx. Without one, nothing to send on.
		s.ackUAC(d.agent, nil)
		s.byeUAC(d.agent)
		s.finishDial(d, Failed, HangupSystem, 488, DialAgentUnreachable)
		return
	}
	d.setState(DialRingingNumber)

	var extra []sip.Header
	callerID := trunk.CallerID
	if callerID == "" {
		callerID = d.ext
	} else {
		extra = append(extra, sip.NewHeader("P-Asserted-Identity", "<sip:"+trunk.CallerID+"@"+farURI.Host+">"))
	}
	host, _ := s.hostPort("udp")
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: callerID, Host: host}}
	to := sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: farURI.User, Host: farURI.Host}}
	far := &uacLeg{leg: leg{contact: farURI}}
	if err := s.startUAC(far, s.newUACInvite(farURI, from, to, offer, extra...)); err != nil {
		s.log.Warn("click-to-dial: call the trunk", "trunk", trunk.Name, "error", err)
		s.ackUAC(d.agent, nil)
		s.byeUAC(d.agent)
		s.finishDial(d, Failed, HangupSystem, 503, DialTrunkFailed)
		return
	}
	d.mu.Lock()
	d.far = far // in-dialog requests on other goroutines read it
	d.mu.Unlock()
	s.dials.addLeg(d, d.far)
	c.mu.Lock()
	c.cdr.SIPCallIDs = append(c.cdr.SIPCallIDs, d.far.req.CallID().Value())
	c.mu.Unlock()

	fo := s.ringUAC(d.far, dialUnconfirmedLimit, c.done, func(res *sip.Response) time.Duration {
		if len(res.Body()) == 0 || d.agent.confirmed() && isAcked(d.agent) {
			return 0
		}
		// Early media: the far end's answer, ahead of its 200. The phone gets it now and
		// stops waiting; the number may ring as long as any outbound call.
		s.ackUAC(d.agent, res.Body())
		return outboundRingLimit
	})
	if fo.res == nil {
		s.ackUAC(d.agent, nil) // (when not ACKed with early media already)
		s.byeUAC(d.agent)
		switch {
		case d.stoppedWhy() != "":
			s.finishDial(d, Abandoned, HangupAgent, orCode(fo.code, 487), d.stoppedWhy())
		case fo.why == "busy" || fo.why == "declined":
			s.finishDial(d, Busy, HangupSystem, fo.code, DialBusy)
		case fo.why == "timeout":
			s.finishDial(d, NoAnswer, HangupSystem, orCode(fo.code, 408), DialNoAnswer)
		default:
			s.finishDial(d, Failed, HangupSystem, orCode(fo.code, 503), DialTrunkFailed)
		}
		return
	}
	s.ackUAC(d.far, nil)
	s.ackUAC(d.agent, fo.res.Body())
	s.dialAnswered(d)
	// The agent may have hung up while the 200 was on its way: the far end is up, end it too.
	if d.stoppedWhy() != "" {
		s.byeUAC(d.far)
		s.byeUAC(d.agent)
		s.finishDial(d, Answered, HangupAgent, 200, DialHungUp)
	}
}

func isAcked(l *uacLeg) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

func orCode(code, d int) int {
	if code == 0 {
		return d
	}
	return code
}

// dialAnswered records that the number answered: the agent goes On call.
func (s *Service) dialAnswered(d *dial) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	c := d.c
	c.mu.Lock()
	c.cdr.AnsweredAt = time.Now()
	c.mu.Unlock()
	d.mu.Lock()
	if d.status.State != DialEnded && d.why == "" {
		d.status.State = DialConnected
	}
	d.mu.Unlock()
	if d.reserved {
		from := Ringing
		if st, err := s.agents.Status(ctx, d.tenant, d.agentID); err == nil && st.State == Reserved {
			// The phone answered without ringing first (auto-answer): Reserved → Ringing → On call.
			s.setAgent(ctx, d.tenant, d.agentID, Change{To: Ringing, Who: BySystem, CallID: c.id, From: Reserved})
		}
		if s.setAgent(ctx, d.tenant, d.agentID, Change{To: OnCall, Who: BySystem, CallID: c.id, From: from}) {
			c.mu.Lock()
			c.onCall = d.agentID
			c.mu.Unlock()
		}
	}
	s.event(c, CallAnswered, d.agentID, map[string]string{"extension": d.ext})
}

// finishDial ends a dial: its status, the agent's state (unless On call: endCall frees that),
// the CDR with call.ended, and its place in the index.
func (s *Service) finishDial(d *dial, result Result, hangupBy string, code int, reason string) {
	d.mu.Lock()
	if d.status.State == DialEnded {
		d.mu.Unlock()
		return
	}
	d.status.State, d.status.Result, d.status.Reason, d.status.SIPCode = DialEnded, result, reason, code
	d.endedAt = time.Now()
	d.mu.Unlock()
	c := d.c
	c.mu.Lock()
	onCall := c.onCall != 0
	c.mu.Unlock()
	if d.reserved && !onCall {
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		if st, err := s.agents.Status(ctx, d.tenant, d.agentID); err == nil && st.CallID == c.id && (st.State == Reserved || st.State == Ringing) {
			s.setAgent(ctx, d.tenant, d.agentID, Change{To: Ready, Who: BySystem, CallID: c.id, From: st.State})
		}
		cancel()
	}
	s.endCall(c, result, hangupBy, code)
	s.dials.ended(d)
}

// onDialRequest takes an in-dialog request of a click-to-dial leg (ctid is the other party
// of both dialogs): BYE ends the call, re-INVITE, UPDATE and INFO go on to the other leg. It
// reports false when req belongs to no dial.
func (s *Service) onDialRequest(req *sip.Request, tx sip.ServerTransaction) bool {
	d := s.dials.bySIPCallID(req.CallID().Value())
	if d == nil {
		return false
	}
	d.mu.Lock()
	from, other := d.agent, d.far
	d.mu.Unlock()
	if other != nil && req.CallID().Value() == other.req.CallID().Value() {
		from, other = d.far, d.agent
	}
	fromAgent := from == d.agent
	switch req.Method {
	case sip.ACK:
		return true // of a relayed re-INVITE's 2xx: ctid ACKed the other side itself
	case sip.BYE:
		s.respond(tx, req, 200, "OK")
		from.markByed()
		if fromAgent && d.stopWith(DialAgentHungUp) {
			return true // runDial cancels the number and ends the call
		}
		if other != nil && other.confirmed() {
			s.byeUAC(other)
		}
		by := HangupCaller // the far end of an outbound call
		if fromAgent {
			by = HangupAgent
		}
		s.finishDial(d, Answered, by, 200, DialHungUp)
		return true
	case sip.INVITE, sip.UPDATE, sip.INFO:
		if other == nil || !other.confirmed() || !isAcked(other) {
			s.respond(tx, req, 491, "Request Pending")
			return true
		}
		s.relayUAC(other, req, tx)
		return true
	}
	s.respond(tx, req, 405, "Method Not Allowed", sip.NewHeader("Allow", allowed))
	return true
}

// Dial is the status of one of an agent's click-to-dial calls: from memory while it goes on
// (and for a while after), else from its CDR. Another agent's call is NotFound.
func (s *Service) Dial(ctx context.Context, tenant string, agentID int64, callID string) (DialStatus, error) {
	if d := s.dials.get(callID); d != nil && d.tenant == tenant && d.agentID == agentID {
		return d.snapshot(), nil
	}
	if !callIDRE.MatchString(callID) {
		return DialStatus{}, fault.Errorf(fault.NotFound, "no call %q of yours", callID)
	}
	cdr, err := CDRByCallID(ctx, s.pool, tenant, callID)
	if err != nil {
		return DialStatus{}, err
	}
	if cdr.AgentID != agentID || cdr.Direction != Outbound {
		return DialStatus{}, fault.Errorf(fault.NotFound, "no call %q of yours", callID)
	}
	return DialStatus{CallID: cdr.CallID, AgentID: agentID, Number: cdr.CalleeRaw, State: DialEnded, Result: cdr.Result,
		SIPCode: cdr.SIPCause, Started: cdr.OfferedAt}, nil
}

// HangUpDial ends an agent's click-to-dial call: before the number answers it cancels the
// call; after, it hangs up both phones.
func (s *Service) HangUpDial(ctx context.Context, tenant string, agentID int64, callID string) (DialStatus, error) {
	d := s.dials.get(callID)
	if d == nil || d.tenant != tenant || d.agentID != agentID {
		return DialStatus{}, fault.Errorf(fault.NotFound, "no call %q of yours is going on", callID)
	}
	if !d.stopWith(DialCancelled) {
		d.mu.Lock()
		legs := []*uacLeg{d.agent, d.far}
		d.mu.Unlock()
		for _, l := range legs {
			if l != nil && l.confirmed() {
				s.byeUAC(l)
			}
		}
		s.finishDial(d, Answered, HangupAgent, 200, DialHungUp)
	}
	return d.snapshot(), nil
}
