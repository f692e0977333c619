package wallboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/screenpop"
	"github.com/ctid/ctid/wallboard"
)

// Conditions of the wallboard benchmark (issue 9): a floor of 500 agents in 20 queues taking
// 100 calls/s, watched by 100 supervisors' boards.
const (
	benchAgents   = 500
	benchQueues   = 20
	benchCallRate = 100 // calls per second, 10 events each
	benchBoards   = 100
	benchQuiet    = 5 * time.Second  // traffic without boards: the CPU baseline
	benchWatched  = 10 * time.Second // traffic with the boards connected
)

func figure(name string, value float64, unit, conditions string) {
	fmt.Fprintf(os.Stdout, "%s: %.1f %s (%s)\n", name, value, unit, conditions)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWallboard measures, with the whole path real (event log on PostgreSQL, the floor,
// WebSocket frames read by 100 clients on loopback): the delay from an event's time to the
// first board frame that includes it (p50, p99), and the CPU the boards cost (process CPU with
// 100 boards minus without, per wall second; the 100 clients' reads run in this process too).
// Run with -benchtime 1x: it runs for a fixed time whatever b.N.
func BenchmarkWallboard(b *testing.B) {
	pool, _ := dbtest.NewDatabase(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	svc, err := cti.New(cti.Config{}, pool, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		b.Fatal(err)
	}
	go svc.Events().Run(ctx)
	accounts := account.NewStore(pool, account.LoginLimits{}, 0)
	boards := wallboard.New(wallboard.Options{Pool: pool, Events: svc.Events(), Accounts: accounts, Registerer: reg})
	go boards.Run(ctx)
	tenant, err := accounts.CreateTenant(ctx, account.NewTenant{Code: "acme", Name: "Acme"}, account.CLI)
	if err != nil {
		b.Fatal(err)
	}
	for q := range benchQueues {
		if err := cti.SaveQueue(ctx, pool, "acme", cti.Queue{Name: fmt.Sprintf("q%02d", q)}); err != nil {
			b.Fatal(err)
		}
	}
	// The agents are users of the tenant (queues take no one else), made in one statement:
	// AddUser would hash a login password for each.
	rows, err := pool.Query(ctx, `INSERT INTO platform.users (tenant_id, username, password_hash, roles)
		SELECT $1, 'agent' || n, 'x', '{agent}' FROM generate_series(1, $2) n ORDER BY n RETURNING id`, tenant.ID, benchAgents)
	if err != nil {
		b.Fatal(err)
	}
	agentIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(agentIDs) != benchAgents {
		b.Fatalf("agents: %d, %v", len(agentIDs), err)
	}
	for a := range benchAgents {
		if err := cti.SetQueueMember(ctx, pool, "acme", fmt.Sprintf("q%02d", a%benchQueues), agentIDs[a], 1); err != nil {
			b.Fatal(err)
		}
	}
	all := wallboard.Viewer{AllAgents: true}
	if _, err := boards.Snapshot(ctx, tenant, all); err != nil {
		b.Fatal(err)
	}

	var mu sync.Mutex
	at := map[int64]time.Time{}      // seq → event time
	var appendTook []time.Duration   // event time → Append returned (durable, published)
	durable := map[int64]time.Time{} // seq → Append returned
	recv := map[int64]time.Time{}    // seq → first frame that included it (board 0)
	appendEv := func(ev cti.Event) {
		ev.Tenant, ev.At = "acme", time.Now()
		out, err := svc.Events().Append(ctx, ev)
		if err != nil {
			if ctx.Err() == nil {
				b.Errorf("append: %v", err)
			}
			return
		}
		took := time.Since(ev.At)
		mu.Lock()
		at[out.Seq] = ev.At
		durable[out.Seq] = ev.At.Add(took)
		appendTook = append(appendTook, took)
		mu.Unlock()
	}
	call := func(n int) {
		id, agent := fmt.Sprintf("c%d", n), agentIDs[n%benchAgents]
		q := fmt.Sprintf("q%02d", n%benchAgents%benchQueues)
		state := func(from, to cti.AgentState) {
			appendEv(cti.Event{Type: cti.AgentStateSet, AgentID: agent, CallID: id, State: &cti.StateChange{From: from, To: to, Actor: "system"},
				Data: map[string]string{"from": string(from), "to": string(to)}})
		}
		start := time.Now()
		appendEv(cti.Event{Type: cti.CallOffered, CallID: id, Queue: q, Data: map[string]string{"caller": "+8613900000000"}})
		appendEv(cti.Event{Type: cti.CallQueued, CallID: id, Queue: q})
		state(cti.Ready, cti.Reserved)
		appendEv(cti.Event{Type: cti.CallRinging, CallID: id, Queue: q, AgentID: agent})
		state(cti.Reserved, cti.Ringing)
		appendEv(cti.Event{Type: cti.CallAnswered, CallID: id, Queue: q, AgentID: agent})
		state(cti.Ringing, cti.OnCall)
		now := time.Now()
		appendEv(cti.Event{Type: cti.CallEnded, CallID: id, Queue: q, AgentID: agent, CDR: &cti.CDR{CallID: id, OfferedAt: start,
			Direction: cti.Inbound, Queue: q, AgentID: agent, QueuedAt: start, RingingAt: start, AnsweredAt: start, EndedAt: now, Result: cti.Answered}})
		state(cti.OnCall, cti.WrapUp)
		state(cti.WrapUp, cti.Ready)
	}
	var calls sync.WaitGroup
	traffic := func(d time.Duration, from int) int {
		tick := time.NewTicker(time.Second / benchCallRate)
		defer tick.Stop()
		end := time.After(d)
		n := from
		for {
			select {
			case <-end:
				return n
			case <-tick.C:
				calls.Add(1)
				go func(n int) { defer calls.Done(); call(n) }(n)
				n++
			}
		}
	}

	b.ResetTimer()
	// Phase 1: traffic, no boards.
	cpu0, wall0 := cpuTime(), time.Now()
	n := traffic(benchQuiet, 0)
	quietCPU := float64(cpuTime()-cpu0) / float64(time.Since(wall0))

	// Phase 2: the same traffic, 100 boards connected.
	// The boards connect to the console hub's /ws as a supervisor and subscribe to the board
	// (the hub's own event routing and pops are not the boards' cost: it does not run here).
	sup, err := accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: "sup", Password: "password-1", Roles: []string{"supervisor"}}, account.CLI)
	if err != nil {
		b.Fatal(err)
	}
	hub := screenpop.NewHub(screenpop.Options{Events: svc.Events(), Accounts: accounts, Pool: pool, Registerer: reg, Feeds: boards.Feed})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub.ServeWS(w, r, sup, func(*http.Request) bool { return true })
	}))
	defer srv.Close()
	var readers sync.WaitGroup
	frames := make([]int, benchBoards)
	conns := make([]*websocket.Conn, benchBoards)
	for i := range conns {
		c := dialBoard(b, ctx, srv, "")
		conns[i] = c
		readers.Add(1)
		go func(i int) {
			defer readers.Done()
			var last int64
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				frames[i]++
				if i != 0 {
					continue
				}
				var fr struct {
					Seq int64 `json:"seq"`
				}
				if err := json.Unmarshal(msg, &fr); err != nil {
					continue
				}
				mu.Lock()
				for s := last + 1; s <= fr.Seq; s++ {
					if last > 0 { // seqs before the snapshot are not deliveries
						recv[s] = now
					}
				}
				mu.Unlock()
				last = max(last, fr.Seq)
			}
		}(i)
	}
	cpu1, wall1 := cpuTime(), time.Now()
	traffic(benchWatched, n)
	watchedCPU := float64(cpuTime()-cpu1) / float64(time.Since(wall1))
	calls.Wait()
	time.Sleep(200 * time.Millisecond) // the last frames of the run reach the boards
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	b.StopTimer()

	mu.Lock()
	var delays, boardPart []time.Duration
	for s, r := range recv {
		if t, ok := at[s]; ok {
			delays = append(delays, r.Sub(t))
			boardPart = append(boardPart, max(0, r.Sub(durable[s])))
		}
	}
	mu.Unlock()
	if len(delays) == 0 {
		b.Fatal("no event reached the boards")
	}
	pctOf := func(ds []time.Duration, p float64) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / float64(time.Millisecond)
	}
	pct := func(p float64) float64 { return pctOf(delays, p) }
	total := 0
	for _, f := range frames {
		total += f
	}
	cond := fmt.Sprintf("%d agents, %d queues, %d calls/s × 10 events, %d boards, %d events measured", benchAgents, benchQueues, benchCallRate, benchBoards, len(delays))
	figure("wallboard event→frame delay p50", pct(0.50), "ms", cond)
	figure("wallboard event→frame delay p99", pct(0.99), "ms", cond)
	figure("event log append (commit) p99", pctOf(appendTook, 0.99), "ms", "the part of the delay spent making the event durable; same run")
	figure("wallboard durable→frame delay p99", pctOf(boardPart, 0.99), "ms", "the boards' part: from Append returning to the frame read over /ws; same run")
	figure("wallboard frames per board", float64(total)/float64(benchBoards)/benchWatched.Seconds(), "frames/s", cond)
	figure("wallboard CPU without boards", quietCPU*100, "% of a core", "event log client, floor, traffic generator")
	figure("wallboard CPU per 100 boards", (watchedCPU-quietCPU)*100, "% of a core", "process CPU with 100 boards minus without; includes the 100 in-process clients' reads")
}
