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
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
)

// BenchmarkSIPp drives ctid with SIPp (Debian package sip-tester): SIPp as the trunk (uac)
// and one SIPp uas as the phones of CTIDTEST_BENCH_AGENTS (default 1200) registered agents, at
// rising call rates (each call talks 1 s, so a rate needs more agents than calls/s). It prints
// the highest rate without failed calls, the call setup latency (INVITE → 180 at the
// trunk) and the process RSS after each step. Each step runs CTIDTEST_BENCH_SECONDS (default 20;
// make bench-sip uses 60) at the rates of CTIDTEST_BENCH_RATES (default 100,200,400,600,800,1000).
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
	scenarios, err := filepath.Abs("testdata/sipp")
	if err != nil {
		b.Fatal(err)
	}
	uasPort := freeUDPPort(b)
	uas := exec.Command(sippBin, "-sf", filepath.Join(scenarios, "agent_uas.xml"), "-i", "127.0.0.1",
		"-p", strconv.Itoa(uasPort), "-t", "u1", "-nostdin")
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
	best := 0
	var bestP50, bestP99 float64
	for _, rate := range rates {
		calls := rate * seconds
		stat := filepath.Join(dir, fmt.Sprintf("stat_%d.csv", rate))
		uac := exec.Command(sippBin, s.Addr("udp"), "-sf", filepath.Join(scenarios, "trunk_uac.xml"), "-s", testDID,
			"-i", "127.0.0.1", "-t", "u1", "-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls), "-l", strconv.Itoa(rate*5),
			"-nostdin", "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-stf", stat, "-trace_err",
			"-timeout", strconv.Itoa(seconds+60), "-timeout_error")
		uac.Dir = dir
		out, err := uac.CombinedOutput()
		failed := sippFailed(stat)
		setup := sippRTD(b, dir, 1)
		p50, p99 := quantile(setup, 0.5), quantile(setup, 0.99)
		cond := fmt.Sprintf("%d s at %d calls/s, %d agents, SIPp uac+uas and ctid on the same cores", seconds, rate, agents)
		figure(fmt.Sprintf("sipp_step_%d_failed", rate), float64(failed), "calls", cond)
		figure(fmt.Sprintf("sipp_step_%d_setup_p50", rate), p50, "ms", "INVITE → 180 at the trunk; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_setup_p99", rate), p99, "ms", "INVITE → 180 at the trunk; "+cond)
		figure(fmt.Sprintf("sipp_step_%d_rss", rate), float64(rssKiB())/1024, "MiB", "ctid test process after the step")
		// Heap after a collection, once the transactions of the step have timed out (32 s).
		var active dto.Metric
		_ = s.m.activeCalls.Write(&active)
		time.Sleep(sip.Timer_H + time.Second)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		figure(fmt.Sprintf("sipp_step_%d_heap", rate), float64(ms.HeapInuse)/(1<<20), "MiB", "in use after GC, 33 s after the step")
		figure(fmt.Sprintf("sipp_step_%d_active_calls", rate), active.GetGauge().GetValue(), "calls", "left after the step")
		if err != nil || failed > 0 {
			errs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
			var errText string
			for _, f := range errs {
				eb, _ := os.ReadFile(f)
				errText += tail(string(eb), 12)
			}
			msg := fmt.Sprintf("rate %d: sipp %v, %d failed; output:\n%s\nerrors:\n%s", rate, err, failed, tail(string(out), 5), errText)
			if _, isTest := b.(*testing.T); isTest {
				b.Fatal(msg)
			}
			b.Log(msg)
			break
		}
		best, bestP50, bestP99 = rate, p50, p99
		removeRTT(dir)
	}
	figure("sipp_max_rate_zero_failures", float64(best), "calls/s", fmt.Sprintf("%d s steps, %d agents, 1 s talk", seconds, agents))
	figure("sipp_setup_p50_at_max", bestP50, "ms", "INVITE → 180 at the trunk")
	figure("sipp_setup_p99_at_max", bestP99, "ms", "INVITE → 180 at the trunk")
	return pool
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

// sippFailed reads the FailedCall(C) total of a SIPp statistics file (its last row).
func sippFailed(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return -1
	}
	head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	for i, h := range head {
		if h == "FailedCall(C)" && i < len(last) {
			n, _ := strconv.Atoi(last[i])
			return n
		}
	}
	return -1
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

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
