package web_test

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctid/ctid/account"
)

// benchAgents is how many agents save work orders at once.
const benchAgents = 100

// BenchmarkWorkOrderSave saves work orders through POST /api/v1/workorders (bearer tokens,
// the default object: audit trail on, operation log linked, monthly partitions, save once per
// call) from 100 agents at once, each saving again as soon as the last save returned
// (saturation: the figures are the server's capacity), and prints p50/p99 latency and saves/s.
func BenchmarkWorkOrderSave(b *testing.B) { benchWorkOrderSave(b, 0) }

// BenchmarkWorkOrderSavePaced is the same with each of the 100 agents saving once every
// benchPace (an offered load of 100/benchPace saves/s, below capacity): the latency an agent
// sees on a busy floor.
func BenchmarkWorkOrderSavePaced(b *testing.B) { benchWorkOrderSave(b, benchPace) }

// benchPace is how often each agent saves in the paced benchmark.
const benchPace = time.Second

func benchWorkOrderSave(b *testing.B, pace time.Duration) {
	f := newWOFixture(b)
	ctx := b.Context()
	tokens := make([]string, benchAgents)
	for i := range tokens {
		u, err := f.accounts.AddUser(ctx, account.NewUser{TenantCode: "acme", Username: fmt.Sprintf("bench%03d", i),
			Password: "password-bench", Roles: []string{"agent"}, Team: "north"}, account.CLI)
		if err != nil {
			b.Fatal(err)
		}
		if tokens[i], _, err = f.accounts.CreateToken(ctx, u.ID, "bench", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchAgents}}
	save := func(agent int, callID string) (time.Duration, error) {
		body := fmt.Sprintf(`{"call_id": %q, "values": {"subject": "Bench work order", "type": "inquiry",
			"description": "The caller asked about the bill of last month.", "caller_number": "+8613800138000"}}`, callID)
		req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/api/v1/workorders", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[agent])
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := client.Do(req)
		d := time.Since(t0)
		if err != nil {
			return d, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return d, fmt.Errorf("status %s", resp.Status)
		}
		return d, nil
	}
	// Warm up: every agent's connection (HTTP and database pool) exists before timing.
	var warm sync.WaitGroup
	for a := range benchAgents {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if _, err := save(a, fmt.Sprintf("warm-%d-%d", b.N, a)); err != nil {
				b.Error(err)
			}
		}()
	}
	warm.Wait()
	per := max(1, b.N/benchAgents)
	lat := make([][]time.Duration, benchAgents)
	var wg sync.WaitGroup
	var failed sync.Once
	b.ResetTimer()
	start := time.Now()
	for a := range benchAgents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start.Add(pace * time.Duration(a) / benchAgents) // agents spread over one pace
			for i := range per {
				if pace > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(pace)
				}
				d, err := save(a, fmt.Sprintf("bench-%d-%d-%d", b.N, a, i))
				if err != nil {
					failed.Do(func() { b.Errorf("save: %v", err) })
					return
				}
				lat[a] = append(lat[a], d)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	cond := fmt.Sprintf("%d agents, %d saves, audit trail + operation log, partitioned, GOMAXPROCS=%d", benchAgents, len(all), runtime.GOMAXPROCS(0))
	name := "workorder_save"
	if pace > 0 {
		name, cond = "workorder_save_paced", cond+fmt.Sprintf(", each agent every %s", pace)
	}
	fmt.Printf("%s_p50: %.2f ms (%s)\n", name, ms(all[len(all)/2]), cond)
	fmt.Printf("%s_p99: %.2f ms (%s)\n", name, ms(all[len(all)*99/100]), cond)
	fmt.Printf("%s_rate: %.0f saves/s (%s)\n", name, float64(len(all))/elapsed.Seconds(), cond)
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
}
