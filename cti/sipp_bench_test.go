package cti

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// BenchmarkSIPp drives ctid with SIPp (Debian package sip-tester): SIPp as the trunk (uac)
// and one SIPp uas as the phones of CTIDTEST_BENCH_AGENTS (default 1200) registered agents, at
// rising call rates (each call talks 1 s, so a rate needs more agents than calls/s). A step
// passes when every call succeeded and neither SIPp side counted a failed call or an
// unexpected, out-of-call or dead-call message. It prints per step the failures, the call
// setup latency (INVITE → 180 at the trunk) and the RSS, then the highest passing rate, then
// the RSS and heap after two identical runs at that rate (memory must not grow). Each step
// runs CTIDTEST_BENCH_SECONDS (default 20; make bench-sip uses 60) at the rates of
// CTIDTEST_BENCH_RATES (default 100,200,400,600,800,1000). CTIDTEST_BENCH_MEMORY=0 leaves
// out the memory runs; CTIDTEST_BENCH_CPUPROFILE=file profiles ctid during each step;
// CTIDTEST_BENCH_DIR=dir keeps SIPp's files (statistics, error logs) in dir.
// Run it alone: go test -run '^$' -bench SIPp -benchtime 1x ./cti
func BenchmarkSIPp(b *testing.B) {
	sippBin, err := exec.LookPath("sipp")
	if err != nil {
		b.Skip("sipp not installed (Debian package sip-tester)")
	}
	var rates []int
	for _, f := range strings.Split(envString("CTIDTEST_BENCH_RATES", "100,200,400,600,800,1000"), ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			b.Fatalf("CTIDTEST_BENCH_RATES: %q is not a rate", f)
		}
		rates = append(rates, r)
	}
	runSIPp(b, sippBin, envInt("CTIDTEST_BENCH_AGENTS", 1200), envInt("CTIDTEST_BENCH_SECONDS", 20), rates)
}

// TestE2ESIPp is the SIPp part of make e2e (CTIDTEST_E2E=1): a few calls from a SIPp trunk to
// SIPp agent phones through ctid, every one answered, with one CDR each.
func TestE2ESIPp(t *testing.T) {
	if os.Getenv("CTIDTEST_E2E") == "" {
		t.Skip("end-to-end test: run with CTIDTEST_E2E=1 (make e2e)")
	}
	sippBin, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatal("CTIDTEST_E2E is set but sipp is not installed (Debian package sip-tester)")
	}
	pool := runSIPp(t, sippBin, 20, 2, []int{5})
	// The CDR is written just after the BYE's 200 went back to SIPp: wait for the last ones.
	var n int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM t_acme.cdrs WHERE result = 'answered' AND hangup_by = 'caller'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= 10 {
			break
		}
	}
	if n != 10 {
		t.Fatalf("%d answered CDRs, want one for each of the 10 SIPp calls", n)
	}
}

// runSIPp sets up tenant acme with agents registered at a SIPp uas and runs a SIPp uac at
// each rate for the given seconds; a step with failed calls fails tb when it is a test.
func runSIPp(b testing.TB, sippBin string, agents, seconds int, rates []int) *pgxpool.Pool {
	fixture := sipTenantFixture(b)
	ctx := context.Background()
	cfg := fixture.Config().Copy()
	cfg.MaxConns = benchPoolConns
	statements := &statementCounter{}
	cfg.ConnConfig.Tracer = statements
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(SaveTrunk(ctx, pool, Trunk{Tenant: "acme", Name: "sipp", Source: netip.MustParsePrefix("127.0.0.1/32")}))
	must(SaveQueue(ctx, pool, "acme", Queue{Name: "sales"}))
	must(SaveDID(ctx, pool, "acme", DID{Number: testDID, Queue: "sales"}))
	s := startService(b, pool, Config{UDPAddr: "127.0.0.1:0", SourceRate: 1e6, SourceBurst: 1e6})

	dir := b.TempDir()
	if d := os.Getenv("CTIDTEST_BENCH_DIR"); d != "" {
		dir = d // SIPp's statistics and error logs stay there for a look
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	scenarios, err := filepath.Abs("testdata/sipp")
	if err != nil {
		b.Fatal(err)
	}
	uasPort := freeUDPPort(b)
	uasStat := filepath.Join(dir, "uas_stat.csv")
	uas := exec.Command(sippBin, "-sf", filepath.Join(scenarios, "agent_uas.xml"), "-i", "127.0.0.1",
		"-p", strconv.Itoa(uasPort), "-t", "u1", "-nostdin", "-buff_size", strconv.Itoa(sippSocketBuffer),
		"-trace_stat", "-stf", uasStat, "-fd", "1", "-trace_err")
	uas.Dir = dir
	if err := uas.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { uas.Process.Kill(); uas.Wait() })

	// Each call holds its agent for 1 s of talk, so a rate needs more agents than calls/s.
	ids := benchAgents(b, pool, agents)
	phone := newParty(b, "registrar-client")
	for i, id := range ids {
		ext := strconv.Itoa(10000 + i)
		must(SetQueueMember(ctx, pool, "acme", "sales", id, 1))
		req := registerReq(b, s, ext, "3600", fmt.Sprintf("<sip:%s@127.0.0.1:%d>", ext, uasPort))
		if res := register(b, phone.client, req, ext, "bench-password"); res.StatusCode != 200 {
			b.Fatalf("register %s: %d", ext, res.StatusCode)
		}
		if _, err := s.Agents().Set(ctx, "acme", id, Change{To: Ready, Who: ByAgent}); err != nil {
			b.Fatal(err)
		}
	}
	_, isTest := b.(*testing.T)
	// step runs the trunk at rate for the given seconds and reads what both SIPp sides say.
	step := func(name string, rate int) sippStep {
		uasBefore := sippStats(uasStat)
		calls := rate * seconds
		stat := filepath.Join(dir, "stat_"+name+".csv")
		uac := exec.Command(sippBin, s.Addr("udp"), "-sf", filepath.Join(scenarios, "trunk_uac.xml"), "-s", testDID,
			"-i", "127.0.0.1", "-t", "u1", "-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls), "-l", strconv.Itoa(rate*5),
			"-nostdin", "-buff_size", strconv.Itoa(sippSocketBuffer), "-trace_rtt", "-rtt_freq", "1",
			"-trace_stat", "-stf", stat, "-fd", "1", "-trace_err",
			"-timeout", strconv.Itoa(seconds+60), "-timeout_error")
		uac.Dir = dir
		_, ctidPort, _ := net.SplitHostPort(s.Addr("udp"))
		ctidPortN, _ := strconv.Atoi(ctidPort)
		drops0 := udpDrops(ctidPortN)
		stopProfile := startStepProfile(b, name)
		cpu0, pgCPU0, stmts0 := processCPU(), postgresCPU(), statements.snapshot()
		out, err := uac.CombinedOutput()
		stopProfile()
		// The agents' side ends its calls when the BYE passed: wait until ctid has no call left
		// and the uas has written its counters of the last second.
		s.waitNoCalls(b, sippDrain)
		st := sippStep{rate: rate, calls: calls, err: err, out: string(out), cpu: processCPU() - cpu0,
			ctidDrops: udpDrops(ctidPortN) - drops0}
		// The last CDRs and agent states are written just after the calls ended.
		time.Sleep(2 * time.Second)
		st.pgCPU = postgresCPU() - pgCPU0
		st.statements = statements.snapshot().minus(stmts0)
		trunk, phones := sippStats(stat), sippStats(uasStat).minus(uasBefore)
		st.succeeded = trunk["SuccessfulCall(C)"]
		st.failed = trunk["FailedCall(C)"] + phones["FailedCall(C)"]
		for _, k := range []string{"OutOfCallMsgs(C)", "DeadCallMsgs(C)", "FailedUnexpectedMessage(C)"} {
			st.unexpected += trunk[k] + phones[k]
		}
		st.retransmissions = trunk["Retransmissions(C)"] + phones["Retransmissions(C)"]
		if trunk == nil {
			st.failed = -1 // no statistics: nothing can be claimed
		}
		if os.Getenv("CTIDTEST_BENCH_DIR") != "" {
			keepDiagnosis(b, pool, s, dir, name)
		}
		setup := sippRTD(b, dir, 1)
		st.p50, st.p99 = quantile(setup, 0.5), quantile(setup, 0.99)
		removeRTT(dir)
		return st
	}
	best := 0
	var bestP50, bestP99 float64
	for _, rate := range rates {
		st := step(strconv.Itoa(rate), rate)
		cond := fmt.Sprintf("%d s at %d calls/s, %d agents, SIPp uac+uas and ctid on the same cores", seconds, rate, agents)
		figure(fmt.Sprintf("sipp_step_%d_failed", rate), float64(st.failed), "calls", "trunk and phones; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_unexpected", rate), float64(st.unexpected), "messages", "unexpected, out-of-call and dead-call messages at trunk and phones; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_retransmissions", rate), float64(st.retransmissions), "messages", "SIPp retransmitted (a sign of loss or delay); "+cond)
		figure(fmt.Sprintf("sipp_step_%d_ctid_udp_drops", rate), float64(st.ctidDrops), "datagrams",
			"dropped by the kernel at ctid's UDP socket, its receive buffer full (/proc/net/udp); "+cond)
		figure(fmt.Sprintf("sipp_step_%d_setup_p50", rate), st.p50, "ms", "INVITE → 180 at the trunk; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_setup_p99", rate), st.p99, "ms", "INVITE → 180 at the trunk; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_cpu_per_call", rate), float64(st.cpu.Microseconds())/1000/float64(max(st.calls, 1)), "ms",
			"CPU time of the ctid test process (user+system) per call; PostgreSQL and SIPp not included; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_postgres_cpu_per_call", rate), float64(st.pgCPU.Microseconds())/1000/float64(max(st.calls, 1)), "ms",
			"CPU time of the PostgreSQL server processes (user+system) per call; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_statements_per_call", rate), float64(st.statements.total())/float64(max(st.calls, 1)), "statements",
			"SQL statements ctid sent (BEGIN and COMMIT included, each query of a batch counted) per call; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_transactions_per_call", rate), float64(st.statements["commit"]+st.statements[implicitTransaction])/float64(max(st.calls, 1)), "commits",
			"transactions ctid committed per call (COMMITs and batches sent outside a transaction); "+cond)
		if os.Getenv("CTIDTEST_BENCH_DEBUG") != "" {
			b.Logf("statements of the %d calls at %d/s:\n%s", st.calls, rate, st.statements)
		}
		figure(fmt.Sprintf("sipp_step_%d_rss", rate), float64(rssKiB())/1024, "MiB", "ctid test process after the step")
		if !st.clean() {
			msg := st.String(dir)
			if isTest {
				b.Fatal(msg)
			}
			b.Log(msg)
			break
		}
		best, bestP50, bestP99 = rate, st.p50, st.p99
	}
	figure("sipp_max_rate_zero_failures", float64(best), "calls/s", fmt.Sprintf("%d s steps at %v calls/s, %d agents, 1 s talk; no failed call and no unexpected message at trunk or phones", seconds, rates, agents))
	figure("sipp_setup_p50_at_max", bestP50, "ms", "INVITE → 180 at the trunk")
	figure("sipp_setup_p99_at_max", bestP99, "ms", "INVITE → 180 at the trunk")
	if isTest || best == 0 || os.Getenv("CTIDTEST_BENCH_MEMORY") == "0" {
		return pool
	}
	// Memory: two identical runs at the best rate; after each, once the transactions of the
	// run have timed out (Timer H), the heap after a collection and the RSS once the runtime
	// has returned freed memory to the system (else RSS shows pages it keeps for reuse).
	var heaps, rsss []float64
	for run := 1; run <= 2; run++ {
		st := step(fmt.Sprintf("memory%d", run), best)
		time.Sleep(sip.Timer_H + time.Second)
		debug.FreeOSMemory() // a collection, then freed memory returned to the system
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap, rss := float64(ms.HeapInuse)/(1<<20), float64(rssKiB())/1024
		heaps, rsss = append(heaps, heap), append(rsss, rss)
		cond := fmt.Sprintf("run %d of 2 identical runs, %d s at %d calls/s, %d failed, %d unexpected", run, seconds, best, st.failed, st.unexpected)
		figure(fmt.Sprintf("sipp_memory_run%d_rss", run), rss, "MiB", "ctid test process, Timer H after the run, freed memory returned; "+cond)
		figure(fmt.Sprintf("sipp_memory_run%d_heap", run), heap, "MiB", "in use after GC, Timer H after the run; "+cond)
		if !st.clean() {
			b.Log(st.String(dir))
		}
	}
	figure("sipp_memory_rss_growth", rsss[1]-rsss[0], "MiB", "RSS after run 2 minus after run 1")
	figure("sipp_memory_heap_growth", heaps[1]-heaps[0], "MiB", "heap in use after GC, run 2 minus run 1")
	return pool
}

// sippSocketBuffer is the socket buffer SIPp asks for (its default, 64 KiB, drops
// datagrams of its own at a few hundred calls/s: that would be SIPp's failure, not ctid's).
const sippSocketBuffer = 4 << 20

// sippDrain bounds the wait for ctid's calls to end after a SIPp run.
const sippDrain = 60 * time.Second

// sippStep is what one SIPp run reported.
type sippStep struct {
	rate, calls     int
	succeeded       int
	failed          int // failed calls at the trunk and the phones; -1: no statistics
	unexpected      int // unexpected, out-of-call and dead-call messages
	retransmissions int
	p50, p99        float64
	cpu             time.Duration // CPU time of this process during the run
	pgCPU           time.Duration // CPU time of the PostgreSQL server during the run
	ctidDrops       int           // datagrams the kernel dropped at ctid's full UDP socket
	statements      statementCounts
	err             error // SIPp's exit: non-zero when a call failed or the run timed out
	out             string
}

// clean is a step without a failed call or an unexpected message, every call completed.
func (st sippStep) clean() bool {
	return st.err == nil && st.failed == 0 && st.unexpected == 0 && st.succeeded == st.calls
}

func (st sippStep) String(dir string) string {
	errs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
	var errText string
	for _, f := range errs {
		eb, _ := os.ReadFile(f)
		errText += filepath.Base(f) + ": " + tailBytes(string(eb), 1500) + "\n"
	}
	return fmt.Sprintf("rate %d: sipp %v, %d of %d calls succeeded, %d failed, %d unexpected messages; output:\n%s\nerrors:\n%s",
		st.rate, st.err, st.succeeded, st.calls, st.failed, st.unexpected, tail(st.out, 5), errText)
}

// waitNoCalls waits until ctid has no active call, at most limit.
func (s *testService) waitNoCalls(tb testing.TB, limit time.Duration) {
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		var active dto.Metric
		if err := s.m.activeCalls.Write(&active); err != nil {
			tb.Fatal(err)
		}
		if active.GetGauge().GetValue() == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Logf("%v calls still active %v after the SIPp run", active.GetGauge().GetValue(), limit)
			return
		}
	}
}

// benchAgents adds n agents (extensions 10000…) with SIP password "bench-password" straight
// in SQL: AddUser's argon2id would take minutes for a thousand.
func benchAgents(b testing.TB, pool *pgxpool.Pool, n int) []int64 {
	ctx := context.Background()
	var ids []int64
	for i := 0; i < n; i++ {
		ext := strconv.Itoa(10000 + i)
		var id int64
		err := pool.QueryRow(ctx, `INSERT INTO platform.users (tenant_id, username, password_hash, roles, extension,
			sip_ha1_md5, sip_ha1_sha256, sip_realm)
			SELECT id, $1, 'not-a-login', '{agent}', $2, $3, $4, sip_domain FROM platform.tenants WHERE code = 'acme'
			RETURNING id`, "bench"+ext, ext, ha1(md5Alg, ext, testDomain, "bench-password"),
			ha1(sha256Alg, ext, testDomain, "bench-password")).Scan(&id)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func freeUDPPort(tb testing.TB) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sippCounts are the columns of the last row of a SIPp statistics file, by header name.
type sippCounts map[string]int

// sippStats reads a SIPp statistics file; nil when there is none yet.
func sippStats(path string) sippCounts {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return nil
	}
	head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	out := sippCounts{}
	for i, h := range head {
		if i < len(last) {
			if n, err := strconv.Atoi(strings.TrimSpace(last[i])); err == nil {
				out[h] = n
			}
		}
	}
	return out
}

// minus is c less an earlier reading (the uas runs through every step).
func (c sippCounts) minus(before sippCounts) sippCounts {
	out := sippCounts{}
	for k, v := range c {
		out[k] = v - before[k]
	}
	return out
}

// sippRTD reads the response times (ms) of rtd n from SIPp's *_rtt.csv files in dir.
func sippRTD(tb testing.TB, dir string, n int) []float64 {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	var out []float64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if os.Getenv("CTIDTEST_BENCH_DEBUG") != "" {
			tb.Logf("%s:\n%s", f, tail(string(b[:min(len(b), 300)]), 5))
		}
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Split(line, ";")
			// date_ms;response_time_ms;rtd_no
			if len(fields) < 3 || strings.TrimSpace(fields[2]) != strconv.Itoa(n) {
				continue
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64); err == nil {
				out = append(out, v)
			}
		}
	}
	sort.Float64s(out)
	return out
}

func removeRTT(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	for _, f := range files {
		os.Remove(f)
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*q))]
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	return 0
}

func tailBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// postgresCPU is the user and system CPU time the PostgreSQL server of this test binary has
// used: its postmaster (with the backends it reaped) and its live children.
func postgresCPU() time.Duration {
	type proc struct {
		ppid        int
		comm        string
		own, reaped int64 // clock ticks
	}
	procs := map[int]proc{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime(14) stime(15) cutime(16) cstime(17)
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+1:])
		if len(f) < 15 {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		ppid, _ := strconv.Atoi(f[1])
		procs[pid] = proc{ppid: ppid, comm: s[open+1 : close], own: n(11) + n(12), reaped: n(13) + n(14)}
	}
	var ticks int64
	for pid, p := range procs {
		if p.ppid != os.Getpid() || p.comm != "postgres" {
			continue
		}
		ticks += p.own + p.reaped
		for _, c := range procs {
			if c.ppid == pid {
				ticks += c.own
			}
		}
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clockTicks
}

// statementCounter is a pgx tracer counting the statements ctid sends, by their first words.
type statementCounter struct {
	mu     sync.Mutex
	counts statementCounts
}

// statementCounts are statements by kind (their first words).
type statementCounts map[string]int

func (c *statementCounter) add(sql string, n int) {
	kind := strings.Join(strings.Fields(sql), " ")
	kind = strings.ToLower(kind[:min(len(kind), 60)])
	c.mu.Lock()
	if c.counts == nil {
		c.counts = statementCounts{}
	}
	c.counts[kind] += n
	c.mu.Unlock()
}

func (c *statementCounter) snapshot() statementCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := statementCounts{}
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	c.add(data.SQL, 1)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCounter) TraceBatchStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	if conn.PgConn().TxStatus() == 'I' {
		c.add(implicitTransaction, 1) // a batch outside a transaction is one of its own
	}
	return ctx
}

// implicitTransaction counts the batches sent outside a transaction (each is one).
const implicitTransaction = "(batch in its own transaction)"

func (c *statementCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	c.add(data.SQL, 1)
}

func (c *statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c statementCounts) minus(before statementCounts) statementCounts {
	out := statementCounts{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (c statementCounts) total() int {
	n := 0
	for k, v := range c {
		if k != implicitTransaction {
			n += v
		}
	}
	return n
}

func (c statementCounts) String() string {
	kinds := make([]string, 0, len(c))
	for k := range c {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return c[kinds[i]] > c[kinds[j]] })
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%8d  %s\n", c[k], k)
	}
	return b.String()
}

// startStepProfile writes a CPU profile of ctid during one SIPp run to the file
// CTIDTEST_BENCH_CPUPROFILE names (with the step's name added), when it is set: unlike
// go test -cpuprofile, it leaves out registering the agents and the waits between steps.
func startStepProfile(tb testing.TB, step string) func() {
	path := os.Getenv("CTIDTEST_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + step)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// keepDiagnosis writes ctid's log and the calls whose SIP Call-ID ctid routed more than once
// (with their events) to dir, for a look at what went wrong in a step.
func keepDiagnosis(tb testing.TB, pool *pgxpool.Pool, s *testService, dir, step string) {
	ctx := context.Background()
	var out strings.Builder
	rows, err := pool.Query(ctx, `SELECT c.sip_call_ids[1], e.call_id, e.seq, e.at, e.type, coalesce(e.agent_id, 0), e.data::text
		FROM t_acme.cdrs c JOIN t_acme.events e ON e.call_id = c.call_id
		WHERE c.sip_call_ids[1] IN (SELECT sip_call_ids[1] FROM t_acme.cdrs GROUP BY 1 HAVING count(*) > 1 LIMIT 20)
		ORDER BY 1, e.seq`)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var sipID, callID, typ, data string
		var seq, agent int64
		var at time.Time
		if err := rows.Scan(&sipID, &callID, &seq, &at, &typ, &agent, &data); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&out, "%s %s %d %s %s agent=%d %s\n", sipID, callID, seq, at.Format("15:04:05.000"), typ, agent, data)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "repeated_calls_"+step+".txt"), []byte(out.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	// What ctid dropped, by reason (stray responses: matching no transaction any more).
	dropped := make(chan prometheus.Metric, 16)
	s.m.sipDropped.Collect(dropped)
	close(dropped)
	var counts strings.Builder
	for m := range dropped {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			tb.Fatal(err)
		}
		for _, l := range d.GetLabel() {
			fmt.Fprintf(&counts, "%s=%s ", l.GetName(), l.GetValue())
		}
		fmt.Fprintf(&counts, "%v\n", d.GetCounter().GetValue())
	}
	if err := os.WriteFile(filepath.Join(dir, "ctid_dropped_"+step+".txt"), []byte(counts.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ctid_"+step+".log"), []byte(s.logs.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// udpDrops is the count of datagrams the kernel dropped at the IPv4 UDP socket bound to port
// (its receive buffer was full), from /proc/net/udp.
func udpDrops(port int) int {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || !strings.HasSuffix(f[1], want) {
			continue
		}
		d, _ := strconv.Atoi(f[len(f)-1])
		n += d
	}
	return n
}
