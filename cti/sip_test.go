package cti

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/db/dbtest"
)

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testService struct {
	*Service
	logs   *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

// startService runs a Service on ephemeral loopback ports until the test ends.
func startService(tb testing.TB, pool *pgxpool.Pool, cfg Config) *testService {
	tb.Helper()
	if cfg.UDPAddr == "" && cfg.TCPAddr == "" {
		cfg.UDPAddr, cfg.TCPAddr = "127.0.0.1:0", "127.0.0.1:0"
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(cfg, pool, logger, prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testService{Service: s, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-ts.done:
		tb.Fatalf("service stopped: %v", err)
	case <-time.After(20 * time.Second):
		tb.Fatal("service did not start")
	}
	tb.Cleanup(func() { ts.stop(tb) })
	return ts
}

func (ts *testService) stop(tb testing.TB) {
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok && err != nil {
			tb.Errorf("service Run: %v", err)
		}
		if ok {
			close(ts.done)
		}
	case <-time.After(20 * time.Second):
		tb.Error("service did not stop")
	}
	if testing.Verbose() {
		tb.Logf("service log:\n%s", ts.logs.String())
	}
}

func uriOf(tb testing.TB, user, addr string) sip.Uri {
	tb.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return sip.Uri{User: user, Host: host, Port: p}
}

func newClient(tb testing.TB) *sipgo.Client {
	tb.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-phone"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger(tb))),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger(tb))))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(testLogger(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ua.Close() })
	return c
}

func TestOptionsOverUDPAndTCP(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	s := startService(t, pool, Config{})
	c := newClient(t)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			req := sip.NewRequest(sip.OPTIONS, uriOf(t, "", s.Addr(network)))
			req.SetTransport(strings.ToUpper(network))
			res, err := c.Do(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || res.GetHeader("Allow") == nil {
				t.Fatalf("OPTIONS over %s: %d, Allow %v", network, res.StatusCode, res.GetHeader("Allow"))
			}
		})
	}
}

// rawUDP is a bare socket for sending what no SIP stack would.
type rawUDP struct {
	tb   testing.TB
	conn *net.UDPConn
}

func dialRaw(tb testing.TB, addr string) *rawUDP {
	tb.Helper()
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawUDP{tb: tb, conn: conn}
}

func (r *rawUDP) send(b []byte) {
	if _, err := r.conn.Write(b); err != nil {
		r.tb.Fatal(err)
	}
}

// read returns the next datagram, or "" when none comes within wait.
func (r *rawUDP) read(wait time.Duration) string {
	buf := make([]byte, 65535)
	r.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := r.conn.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// request builds a request whose Via leads back to this socket; drop names headers to omit.
func (r *rawUDP) request(method, branch string, drop ...string) []byte {
	local := r.conn.LocalAddr().String()
	headers := []string{
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + branch + ";rport",
		"From: <sip:probe@127.0.0.1>;tag=" + branch,
		"To: <sip:ctid@127.0.0.1>",
		"Call-ID: " + branch + "@test",
		"CSeq: 1 " + method,
		"Max-Forwards: 70",
		"Content-Length: 0",
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:ctid@%s SIP/2.0\r\n", method, r.conn.RemoteAddr())
	for _, h := range headers {
		name, _, _ := strings.Cut(h, ":")
		skip := false
		for _, d := range drop {
			skip = skip || d == name
		}
		if !skip {
			b.WriteString(h + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// probe sends OPTIONS and waits for its 200: the listener is alive and has handled
// everything sent before (UDP input is read and parsed in order).
func (r *rawUDP) probe(branch string) {
	r.tb.Helper()
	r.send(r.request("OPTIONS", branch))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got := r.read(time.Until(deadline))
		if strings.HasPrefix(got, "SIP/2.0 200") && strings.Contains(got, branch) {
			return
		}
	}
	r.tb.Fatal("no 200 to OPTIONS: listener dead or blocked")
}

func TestMalformedRequestsGet400(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	s := startService(t, pool, Config{})
	raw := dialRaw(t, s.Addr("udp"))
	for _, tc := range []struct {
		drop   string
		reason string
	}{
		{"From", "Missing From"},
		{"To", "Missing To"},
		{"Call-ID", "Missing Call-ID"},
		{"CSeq", ""}, // sipgo cannot make a transaction: it answers 400 itself
	} {
		t.Run("no "+tc.drop, func(t *testing.T) {
			raw.send(raw.request("OPTIONS", "no"+strings.ReplaceAll(tc.drop, "-", ""), tc.drop))
			got := raw.read(5 * time.Second)
			if !strings.HasPrefix(got, "SIP/2.0 400") || !strings.Contains(got, tc.reason) {
				t.Fatalf("response = %q, want 400 %s", firstLine(got), tc.reason)
			}
		})
	}
	raw.probe("alive1")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

func TestTortureAndGarbageNeitherCrashNorFloodTheLog(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	// A high source rate: this test is about parsing and logging, not the rate limit.
	s := startService(t, pool, Config{SourceRate: 1e6, SourceBurst: 1e6})
	raw := dialRaw(t, s.Addr("udp"))
	files, err := filepath.Glob("testdata/torture/*/*.dat")
	if err != nil || len(files) < 40 {
		t.Fatalf("torture files: %d, %v", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw.send(b)
	}
	raw.probe("after-torture")
	before := s.logs.Len()
	// A few thousand hostile datagrams of 2 KB each: sipgo alone logs every one in full.
	junk := bytes.Repeat([]byte("INVITE \x00\xff garbage ;;; <<<>>> "), 64)
	const hostile = 3000
	for i := 0; i < hostile; i++ {
		raw.send(junk)
	}
	raw.probe("after-junk")
	logged := s.logs.Len() - before
	if logged > 8<<10 {
		t.Fatalf("%d hostile datagrams wrote %d bytes of log; want it truncated and rate-limited", hostile, logged)
	}
	if strings.Contains(s.logs.String(), "level=ERROR") {
		t.Errorf("bad input logged as ERROR:\n%s", truncate(s.logs.String()))
	}
	t.Logf("%d hostile datagrams: %d bytes of log", hostile, logged)
}

func TestSizeAndRateLimits(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	s := startService(t, pool, Config{MaxMessageSize: 1200, SourceRate: 1, SourceBurst: 20})
	raw := dialRaw(t, s.Addr("udp"))
	big := raw.request("OPTIONS", "big")
	big = bytes.Replace(big, []byte("Max-Forwards: 70\r\n"), []byte("Max-Forwards: 70\r\nX-Pad: "+strings.Repeat("x", 1300)+"\r\n"), 1)
	raw.send(big)
	if got := raw.read(500 * time.Millisecond); got != "" {
		t.Fatalf("oversized datagram answered: %q", firstLine(got))
	}
	// The burst is answered, then the source is dropped.
	answered := 0
	for i := 0; i < 40; i++ {
		raw.send(raw.request("OPTIONS", fmt.Sprintf("r%d", i)))
	}
	for raw.read(time.Second) != "" {
		answered++
	}
	if answered < 15 || answered > 21 {
		t.Fatalf("%d of 40 rapid OPTIONS answered, want about the burst of 20 (one was the oversized one)", answered)
	}
	// Another source is not affected by the first one's flood... all loopback sources share one IP,
	// so the limit is per address: prove that waiting refills the bucket instead.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		raw.send(raw.request("OPTIONS", "refill"))
		if strings.Contains(raw.read(500*time.Millisecond), "refill") {
			return
		}
	}
	t.Fatal("source never allowed again after its rate refilled")
}
