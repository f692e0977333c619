package cti

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Defaults of the limits on SIP input.
const (
	defaultMaxMessageSize = 16 << 10 // bytes of one datagram (or one TCP read)
	defaultSourceRate     = 200      // messages per second from one IP address
	defaultSourceBurst    = 400
	guardSweepEvery       = time.Minute // forget sources idle this long
)

// guard drops SIP input before it is parsed: datagrams over the size limit, and messages
// from a source address that exceeds its rate (a token bucket per IP). Dropped UDP input
// is silently ignored; a TCP connection over its limit is closed (a stream cannot skip bytes).
type guard struct {
	maxSize int
	rate    float64
	burst   float64
	m       *metrics
	now     func() time.Time

	mu        sync.Mutex
	sources   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

var (
	errTooBig      = errors.New("message over the size limit")
	errRateLimited = errors.New("source over its rate limit")
)

func newGuard(maxSize int, rate float64, burst int, m *metrics) *guard {
	return &guard{maxSize: maxSize, rate: rate, burst: float64(burst), m: m, now: time.Now,
		sources: map[string]*bucket{}}
}

// filter is sipgo's transport read filter.
func (g *guard) filter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	stream := p.Transport != "UDP" && p.Transport != "udp"
	if len(data) > g.maxSize {
		g.m.sipDropped.WithLabelValues("size").Inc()
		if stream {
			return nil, errTooBig
		}
		return nil, nil
	}
	if !g.allow(hostOf(p.RemoteAddr)) {
		g.m.sipDropped.WithLabelValues("rate").Inc()
		if stream {
			return nil, errRateLimited
		}
		return nil, nil
	}
	return data, nil
}

func hostOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP.String()
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (g *guard) allow(source string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.lastSweep) > guardSweepEvery {
		for k, b := range g.sources {
			if now.Sub(b.last) > guardSweepEvery {
				delete(g.sources, k)
			}
		}
		g.lastSweep = now
	}
	b := g.sources[source]
	if b == nil {
		b = &bucket{tokens: g.burst, last: now}
		g.sources[source] = b
	}
	b.tokens = min(g.burst, b.tokens+now.Sub(b.last).Seconds()*g.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
