package screenpop_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/screenpop"
)

// The benchmark that `make bench-consoles` runs:
//
//	go test ./screenpop -run '^$' -bench BenchmarkIdleConsoles -benchtime 1x
//
// The consoles are opened by a second process (this test binary again), so the memory this
// process gains is the server's alone: hub, connection goroutines, buffers and queues.
var (
	benchIdle        = flag.Int("idle-consoles", 10_000, "idle consoles for BenchmarkIdleConsoles")
	benchSupervisors = flag.Int("supervisors", 100, "supervisor consoles for BenchmarkIdleConsoles")
	benchStates      = flag.Int("states", 20, "agent.state events timed by BenchmarkIdleConsoles")
)

// consoleChildEnv makes the test binary open consoles instead of running tests:
// "<ws url of the idle agent>|<ws url of the supervisor>|<idle count>|<supervisor count>".
const consoleChildEnv = "SCREENPOP_BENCH_CONSOLES"

func init() {
	if spec := os.Getenv(consoleChildEnv); spec != "" {
		os.Exit(runConsoleChild(spec))
	}
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// runConsoleChild opens the consoles, says "ready", then prints "<seq> <unix nanos>" for every
// agent.state a supervisor console reads, until its standard input closes.
func runConsoleChild(spec string) int {
	raiseFileLimit()
	parts := strings.Split(spec, "|")
	idle, _ := strconv.Atoi(parts[2])
	sups, _ := strconv.Atoi(parts[3])
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	open := func(url string, report bool) error {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return err
		}
		var hello screenpop.Message
		if err := ws.ReadJSON(&hello); err != nil {
			return err
		}
		if err := ws.WriteJSON(screenpop.ClientMessage{Type: screenpop.ClientResume, LastSeq: hello.Seq}); err != nil {
			return err
		}
		go func() {
			for {
				var m screenpop.Message
				if err := ws.ReadJSON(&m); err != nil {
					return
				}
				if report && m.Type == screenpop.TypeAgentState {
					now := time.Now().UnixNano()
					mu.Lock()
					fmt.Fprintf(out, "%d %d\n", m.Seq, now)
					out.Flush()
					mu.Unlock()
				}
			}
		}()
		return nil
	}
	for i := 0; i < idle; i++ {
		if err := open(parts[0], false); err != nil {
			fmt.Fprintln(os.Stderr, "idle console:", err)
			return 1
		}
	}
	for i := 0; i < sups; i++ {
		if err := open(parts[1], true); err != nil {
			fmt.Fprintln(os.Stderr, "supervisor console:", err)
			return 1
		}
	}
	mu.Lock()
	fmt.Fprintln(out, "ready")
	out.Flush()
	mu.Unlock()
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

func serverMemory() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func BenchmarkIdleConsoles(b *testing.B) {
	raiseFileLimit()
	f := newFixtureTB(b)
	ctx := context.Background()
	idleAgent, watched, sup := f.users["acme/a1"], f.users["acme/a2"], f.users["acme/sup"]
	wsURL := func(id int64) string {
		return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/?user=" + strconv.FormatInt(id, 10)
	}
	before := serverMemory()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d|%d", consoleChildEnv, wsURL(idleAgent.ID), wsURL(sup.ID), *benchIdle, *benchSupervisors))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = child.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	start := time.Now()
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("console process: %q", lines.Text())
	}
	opened := time.Since(start)
	conns := *benchIdle + *benchSupervisors
	perConn := float64(serverMemory()-before) / float64(conns) / 1024
	fmt.Printf("console_memory: %.1f KB per connection (%d idle agent consoles + %d supervisor consoles, server heap+stacks after GC; opened in %s)\n",
		perConn, *benchIdle, *benchSupervisors, opened.Round(time.Millisecond))

	// agent.state of an agent all supervisors follow: from durable (Append returned) to the last
	// supervisor console's read.
	recv := make(chan [2]int64, *benchSupervisors**benchStates)
	go func() {
		for lines.Scan() {
			var seq, at int64
			if _, err := fmt.Sscanf(lines.Text(), "%d %d", &seq, &at); err == nil {
				recv <- [2]int64{seq, at}
			}
		}
	}()
	var lasts []time.Duration
	to := []cti.AgentState{cti.Ready, cti.NotReady}
	for i := 0; i < *benchStates; i++ {
		from, next := to[(i+1)%2], to[i%2]
		ev, err := f.events.Append(ctx, cti.Event{Tenant: "acme", Type: cti.AgentStateSet, AgentID: watched.ID,
			Data:  map[string]string{"from": string(from), "to": string(next), "reason": "break"},
			State: &cti.StateChange{From: from, To: next, Reason: "break", Actor: "bench"}})
		if err != nil {
			b.Fatal(err)
		}
		sent := time.Now()
		var last int64
		for n := 0; n < *benchSupervisors; {
			select {
			case r := <-recv:
				if r[0] == ev.Seq {
					n++
					last = max(last, r[1])
				}
			case <-time.After(waitFor):
				b.Fatalf("agent.state %d reached %d of %d supervisors", ev.Seq, n, *benchSupervisors)
			}
		}
		lasts = append(lasts, time.Duration(last-sent.UnixNano()))
	}
	slices.Sort(lasts)
	fmt.Printf("state_to_supervisors_p50: %.2f ms (agent.state durable → read by the last of %d supervisor consoles, %d idle consoles open, %d events)\n",
		float64(lasts[len(lasts)/2])/1e6, *benchSupervisors, *benchIdle, len(lasts))
	fmt.Printf("state_to_supervisors_max: %.2f ms (same)\n", float64(lasts[len(lasts)-1])/1e6)
}
