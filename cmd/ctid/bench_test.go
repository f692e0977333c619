package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/demo"
	"github.com/ctid/ctid/screenpop"
)

// The benchmark `make bench-pop` runs:
//
//	go test ./cmd/ctid -run '^$' -bench BenchmarkPopLatency -benchtime 1x -timeout 60m
//
// ctid runs whole (SIP, ACD, event log, hub, WebSocket) on loopback with -pop-customers
// customers, -pop-agents agents whose phones (one SIP phone bank) answer at once, and as many
// connected consoles; a caller places -pop-rate calls/s for -pop-seconds from customers'
// numbers. Each console measures, for every pop.offer it receives, the time from the call's
// offer (ctid's INVITE received, the call.offered event time) to the frame read.
var (
	popCustomers = flag.Int("pop-customers", 1_000_000, "customers for BenchmarkPopLatency")
	popAgents    = flag.Int("pop-agents", 500, "agents, phones and consoles for BenchmarkPopLatency")
	popRate      = flag.Int("pop-rate", 100, "calls per second for BenchmarkPopLatency")
	popSeconds   = flag.Int("pop-seconds", 20, "seconds of calls for BenchmarkPopLatency")
)

func BenchmarkPopLatency(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, url := dbtest.NewDatabase(b)
	cfg := defaultConfig()
	cfg.HTTP.Addr, cfg.SIP.Listen, cfg.Database.URL = "127.0.0.1:0", "127.0.0.1:0", url
	cfg.Log.Level = "error"
	// Caller, phones and consoles all come from 127.0.0.1: no per-source limit here.
	cfg.SIP.SourceRate, cfg.SIP.SourceBurst = 1_000_000, 1_000_000
	app, err := Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	t, err := app.Accounts.CreateTenant(ctx, account.NewTenant{Code: "bench", Name: "Bench"}, account.CLI)
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(cti.SetSIPDomain(ctx, app.Pool, "bench", "bench.test"))
	must(cti.SaveTrunk(ctx, app.Pool, cti.Trunk{Tenant: "bench", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.1/32")}))
	must(cti.SaveQueue(ctx, app.Pool, "bench", cti.Queue{Name: "sales", RingTimeout: 15 * time.Second, MaxWait: time.Minute}))
	must(cti.SaveDID(ctx, app.Pool, "bench", cti.DID{Number: "5000", Queue: "sales"}))

	// Customers, through the COPY-based importer.
	start := time.Now()
	csvPath := filepath.Join(b.TempDir(), "customers.csv")
	must(writeBenchCustomers(csvPath, *popCustomers))
	rep, err := app.Objects.ImportFile(ctx, t, csvPath, dataobject.ImportOptions{Object: "customer", Actor: account.CLI})
	if err != nil || rep.Imported != *popCustomers {
		b.Fatalf("import: %v %+v", err, rep)
	}
	// Settle the freshly loaded tables as autovacuum would (statistics, visibility map), so
	// that its run does not land in the measured 20 s.
	_, err = app.Pool.Exec(ctx, "VACUUM (ANALYZE) t_bench.phone_keys, t_bench.obj_customer")
	must(err)
	fmt.Fprintf(os.Stderr, "setup: %d customers in %s\n", *popCustomers, time.Since(start).Round(time.Second))

	// Agents, their phones (one phone bank) and their consoles.
	bank := newPhoneBank(b, app.CTI.Addr("udp"), "bench.test")
	lat := &latencies{}
	var agents []int64
	for i := 0; i < *popAgents; i++ {
		ext := strconv.Itoa(20000 + i)
		u, err := app.Accounts.AddUser(ctx, account.NewUser{TenantCode: "bench", Username: "a" + ext, Password: "password-1",
			Roles: []string{"agent"}, Extension: ext}, account.CLI)
		must(err)
		must(cti.SetSIPPassword(ctx, app.Pool, u.ID, "sip-password-1"))
		must(cti.SetQueueMember(ctx, app.Pool, "bench", "sales", u.ID, 1))
		bank.register(ctx, ext, "sip-password-1")
		token, _, err := app.Accounts.WSToken(ctx, u.ID)
		must(err)
		connectConsole(b, ctx, "ws://"+app.HTTPAddr()+"/ws?token="+token, lat)
		_, err = app.CTI.Agents().Set(ctx, "bench", u.ID, cti.Change{To: cti.Ready, Who: cti.ByAgent})
		must(err)
		agents = append(agents, u.ID)
	}

	calls := *popRate * *popSeconds
	caller, err := demo.NewCaller(demo.CallerOptions{Server: app.CTI.Addr("udp"), DID: "5000",
		Every: time.Second / time.Duration(*popRate), Count: calls, MaxInFlight: 4 * *popRate,
		Numbers: func() string { return fmt.Sprintf("+86139%08d", rnd(*popCustomers)) }})
	must(err)
	b.ResetTimer()
	must(caller.Run(ctx))
	b.StopTimer()
	st := caller.Stats()
	got := lat.wait(calls, 30*time.Second)
	conds := fmt.Sprintf("%d calls/s for %d s, %d agents and consoles, %d customers, %d of %d calls answered, %d pops",
		*popRate, *popSeconds, *popAgents, *popCustomers, st.Answered, st.Placed, len(got))
	if len(got) == 0 {
		b.Fatalf("no pops (%s)", conds)
	}
	slices.Sort(got)
	// Where the time went: offer → first ring (ACD and the phone's 180), and queued calls.
	var ringP50, ringP99 float64
	var queued int
	err = app.Pool.QueryRow(ctx, `SELECT
			coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.at - o.at)), 0) * 1000,
			coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.at - o.at)), 0) * 1000,
			(SELECT count(*) FROM t_bench.events WHERE type = 'call.queued')
		FROM t_bench.events o JOIN LATERAL (SELECT min(at) AS at FROM t_bench.events r
			WHERE r.call_id = o.call_id AND r.type = 'call.ringing') r ON true
		WHERE o.type = 'call.offered'`).Scan(&ringP50, &ringP99, &queued)
	must(err)
	fmt.Printf("offer_to_ring_p50: %.1f ms (%s; %d calls queued)\n", ringP50, conds, queued)
	fmt.Printf("offer_to_ring_p99: %.1f ms (%s)\n", ringP99, conds)
	fmt.Printf("pop_latency_p50: %.1f ms (%s)\n", ms(got[len(got)/2]), conds)
	fmt.Printf("pop_latency_p99: %.1f ms (%s)\n", ms(got[len(got)*99/100]), conds)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var rndMu sync.Mutex
var rndState uint64 = 88172645463325252

// rnd is a small xorshift generator (deterministic across runs).
func rnd(n int) int {
	rndMu.Lock()
	defer rndMu.Unlock()
	rndState ^= rndState << 13
	rndState ^= rndState >> 7
	rndState ^= rndState << 17
	return int(rndState % uint64(n))
}

func writeBenchCustomers(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"name", "phones", "company"})
	for i := 0; i < n; i++ {
		_ = w.Write([]string{"Customer " + strconv.Itoa(i), fmt.Sprintf("139%08d", i), "Company " + strconv.Itoa(i%1000)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// latencies collects pop latencies from every console.
type latencies struct {
	mu  sync.Mutex
	d   []time.Duration
	got chan struct{}
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// wait returns the latencies once n arrived or timeout passed.
func (l *latencies) wait(n int, timeout time.Duration) []time.Duration {
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		k := len(l.d)
		l.mu.Unlock()
		if k >= n || time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			return slices.Clone(l.d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func connectConsole(b *testing.B, ctx context.Context, url string, lat *latencies) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	var hello screenpop.Message
	if err := ws.ReadJSON(&hello); err != nil {
		b.Fatal(err)
	}
	if err := ws.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientResume, LastSeq: hello.Seq}); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer ws.Close()
		for {
			var m struct {
				Type string `json:"type"`
				Data struct {
					Pop struct {
						Call struct {
							OfferedAt time.Time `json:"offered_at"`
						} `json:"call"`
					} `json:"pop"`
				} `json:"data"`
			}
			_, raw, err := ws.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now()
			if json.Unmarshal(raw, &m) == nil && m.Type == screenpop.TypePopOffer && !m.Data.Pop.Call.OfferedAt.IsZero() {
				lat.add(now.Sub(m.Data.Pop.Call.OfferedAt))
			}
		}
	}()
}

// phoneBank is many agent phones on one SIP socket: it registers each extension with
// digest, and answers every call at once and hangs up after a short talk.
type phoneBank struct {
	b      *testing.B
	server string
	domain string
	client *sipgo.Client
	dsc    *sipgo.DialogServerCache
	port   int
}

const benchTalk = time.Second

func newPhoneBank(b *testing.B, server, domain string) *phoneBank {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		b.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	client, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(port), sipgo.WithClientLogger(quiet))
	p := &phoneBank{b: b, server: server, domain: domain, client: client, port: port,
		dsc: sipgo.NewDialogServerCache(client, sip.ContactHeader{Address: sip.Uri{User: "bank", Host: "127.0.0.1", Port: port}})}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		d, err := p.dsc.ReadInvite(req, tx)
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
			return
		}
		_ = d.Respond(180, "Ringing", nil)
		if err := d.Respond(200, "OK", []byte("v=0\r\n"), sip.NewHeader("Content-Type", "application/sdp")); err != nil {
			return
		}
		select {
		case <-time.After(benchTalk):
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = d.Bye(ctx)
		case <-d.Context().Done():
		}
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dsc.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dsc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
		}
	})
	go srv.ServeUDP(conn)
	b.Cleanup(func() { ua.Close(); conn.Close() })
	return p
}

func (p *phoneBank) register(ctx context.Context, ext, password string) {
	aor := sip.Uri{User: ext, Host: p.domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: p.domain})
	req.SetDestination(p.server)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@127.0.0.1:%d>", ext, p.port)))
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	res, err := p.client.Do(ctx, req)
	if err == nil && res.StatusCode == 401 {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: ext, Password: password})
	}
	if err != nil || res.StatusCode != 200 {
		p.b.Fatalf("register %s: %v %v", ext, err, res)
	}
}
