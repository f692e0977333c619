package cti

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"
)

const benchPoolConns = 16

// figure prints one benchmark figure as "name: value unit (conditions)".
func figure(name string, value float64, unit, conditions string) {
	fmt.Fprintf(os.Stdout, "%s: %.1f %s (%s)\n", name, value, unit, conditions)
}

// BenchmarkRegisterDigest measures REGISTER with digest (challenge and answer: two
// transactions each) from several phones at once.
func BenchmarkRegisterDigest(b *testing.B) {
	pool := sipTenantFixture(b)
	const phones = 20
	for i := 0; i < phones; i++ {
		mustAgent(b, pool, "acme", "agent"+strconv.Itoa(i), strconv.Itoa(2000+i), "bench-password")
	}
	s := startService(b, pool, Config{SourceRate: 1e6, SourceBurst: 1e6})
	parties := make([]*party, phones)
	for i := range parties {
		parties[i] = newParty(b, strconv.Itoa(2000+i))
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ext := strconv.Itoa(2000 + i)
			for next.Add(1) <= int64(b.N) {
				req := registerReq(b, s, ext, "", "<sip:"+ext+"@"+p.addr+">")
				if res := register(b, p.client, req, ext, "bench-password"); res.StatusCode != 200 {
					b.Errorf("register: %d", res.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "registers/s")
	figure("sip_register_digest", rate, "REGISTER/s", fmt.Sprintf("%d phones, 401+200 each, sipgo clients in the same process, n=%d", phones, b.N))
}

// BenchmarkInboundCalls measures calls from a trunk through a queue to agent phones that
// answer at once; the trunk hangs up right after the answer.
func BenchmarkInboundCalls(b *testing.B) {
	fixture := sipTenantFixture(b)
	ctx := context.Background()
	// ctid's pool should have more than pgxpool's default of max(4, CPUs) connections: calls
	// wait on the event log's commits and on lookups at once.
	cfg := fixture.Config().Copy()
	cfg.MaxConns = benchPoolConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := SaveTrunk(ctx, pool, Trunk{Tenant: "acme", Name: "carrier", Source: netip.MustParsePrefix("127.0.0.1/32")}); err != nil {
		b.Fatal(err)
	}
	if err := SaveQueue(ctx, pool, "acme", Queue{Name: "sales"}); err != nil {
		b.Fatal(err)
	}
	if err := SaveDID(ctx, pool, "acme", DID{Number: testDID, Queue: "sales"}); err != nil {
		b.Fatal(err)
	}
	const agents, callers = 50, 25
	s := startService(b, pool, Config{SourceRate: 1e6, SourceBurst: 1e6})
	for i := 0; i < agents; i++ {
		ext := strconv.Itoa(3000 + i)
		u := mustAgent(b, pool, "acme", "agent"+ext, ext, "bench-password")
		if err := SetQueueMember(ctx, pool, "acme", "sales", u.ID, 1); err != nil {
			b.Fatal(err)
		}
		p := newParty(b, ext)
		p.invites = make(chan *sipgo.DialogServerSession, 1<<16)
		p.byes = make(chan *sip.Request, 1<<16)
		p.registerAt(s, ext, "bench-password")
		if _, err := s.Agents().Set(ctx, "acme", u.ID, Change{To: Ready, Who: ByAgent}); err != nil {
			b.Fatal(err)
		}
	}
	trunks := make([]*party, callers)
	for i := range trunks {
		trunks[i] = newParty(b, "trunk"+strconv.Itoa(i))
	}
	var next, failed atomic.Int64
	var mu sync.Mutex
	var setup []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, tr := range trunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				sess := tr.dial(cctx, s, testDID)
				err := sess.WaitAnswer(cctx, sipgo.AnswerOptions{})
				if err == nil {
					d := time.Since(t0)
					if err = sess.Ack(cctx); err == nil {
						err = sess.Bye(cctx)
					}
					mu.Lock()
					setup = append(setup, d)
					mu.Unlock()
				}
				if err != nil {
					failed.Add(1)
				}
				sess.Close()
				cancel()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "calls/s")
	sort.Slice(setup, func(i, j int) bool { return setup[i] < setup[j] })
	cond := fmt.Sprintf("%d agents, %d concurrent callers, pool %d conns, answer at once, BYE after ACK, sipgo parties in-process, n=%d, failed=%d", agents, callers, benchPoolConns, b.N, failed.Load())
	figure("sip_inbound_calls", rate, "calls/s", cond)
	if len(setup) > 0 {
		figure("sip_call_answer_p50", float64(setup[len(setup)/2].Microseconds())/1000, "ms", "INVITE sent → 200 received at the trunk")
		figure("sip_call_answer_p99", float64(setup[len(setup)*99/100].Microseconds())/1000, "ms", "INVITE sent → 200 received at the trunk")
	}
	if failed.Load() > 0 {
		b.Errorf("%d of %d calls failed", failed.Load(), b.N)
	}
}
