// Package screenpop delivers screen pops and agent events to consoles over WebSocket: the hub,
// per-console delivery with replay on reconnect, and the pop payload built once per call.
// docs/screenpop.md describes the protocol.
package screenpop

import (
	"time"
)

// Message types the server sends.
const (
	TypeHello        = "hello"       // first message of a connection: who you are, the current seq
	TypePopOffer     = "pop.offer"   // a call rings your phone: the pop
	TypePopUpdate    = "pop.update"  // the call was answered or ended
	TypePopRetract   = "pop.retract" // the call rang out to another agent or the caller hung up
	TypeAgentState   = "agent.state" // an agent's state changed (yours, or your team's when following)
	TypeWorkAssigned = "workorder.assigned"
	TypeError        = "error"
)

// Message types the client sends.
const (
	ClientResume = "resume" // {last_seq}: replay what I missed after last_seq, then go live
	ClientAck    = "ack"    // {seq}: I showed this message
	// ClientSubscribe {feed}: send me this feed's frames too (FeedBoard: the live wallboard).
	// As the first frame instead of resume, the connection gets that feed only.
	ClientSubscribe = "subscribe"
)

// Message is one server frame: {seq, type, time, data}. seq is the tenant event's sequence
// number (hello carries the current one); a console keeps the last seq it saw and resumes from it.
type Message struct {
	Seq  int64     `json:"seq"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Data any       `json:"data"`
}

// ClientMessage is one client frame.
type ClientMessage struct {
	Type    string `json:"type"`
	LastSeq int64  `json:"last_seq,omitempty"`
	Seq     int64  `json:"seq,omitempty"`
	Feed    string `json:"feed,omitempty"`
}
