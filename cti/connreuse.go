package cti

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Phones on TLS or TCP are reached over the connection they registered (or called) on: they
// need not accept connections on their Contact, and are often behind NAT.

// connOf splits a binding source "tls:192.0.2.1:5061" into network and address when it is a
// connection-oriented one, else "".
func connOf(source string) (network, addr string) {
	network, addr, ok := strings.Cut(source, ":")
	if !ok || (network != "tls" && network != "tcp") {
		return "", ""
	}
	return network, addr
}

// phoneConn is the connection of the agent's phone for an in-dialog request going to it
// (from the trunk of an inbound call, or from the far end of an agent's outbound call);
// "" when the request goes elsewhere or the phone is on UDP.
func (c *call) phoneConn(req *sip.Request) (network, addr string) {
	tag, _ := req.From().Params.Get("tag")
	c.mu.Lock()
	defer c.mu.Unlock()
	fromCaller := tag == c.callerTag
	switch outbound := c.cdr.Direction == Outbound; {
	case fromCaller && !outbound && c.answered != nil:
		return connOf(c.answered.source)
	case !fromCaller && outbound:
		return connOf(c.agentSource)
	}
	return "", ""
}
