package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/demo"
)

// silenceWAV is a mono 16-bit PCM WAV file of seconds of silence.
func silenceWAV(rate, seconds int) []byte {
	n := rate * seconds * 2
	b := make([]byte, 44+n)
	le := binary.LittleEndian
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	le.PutUint32(b[16:], 16)
	le.PutUint16(b[20:], 1) // PCM
	le.PutUint16(b[22:], 1) // mono
	le.PutUint32(b[24:], uint32(rate))
	le.PutUint32(b[28:], uint32(rate*2))
	le.PutUint16(b[32:], 2)
	le.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	le.PutUint32(b[40:], uint32(n))
	return b
}

// freePort finds a port free for both UDP and TCP on 127.0.0.1 (baresip listens on both).
func freePort(t *testing.T) string {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			c.Close()
			return strconv.Itoa(port)
		}
	}
	t.Fatal("no port free for UDP and TCP")
	return ""
}

// TestE2EBaresip (make e2e, CTIDTEST_E2E=1) uses Debian's baresip as a real softphone for the
// demo agent: it registers with digest to ctid, auto-answers the queue's call from a SIP
// trunk, and the call leaves one answered CDR.
func TestE2EBaresip(t *testing.T) {
	if os.Getenv("CTIDTEST_E2E") == "" {
		t.Skip("end-to-end test: run with CTIDTEST_E2E=1 (make e2e)")
	}
	bin, err := exec.LookPath("baresip")
	if err != nil {
		t.Fatal("CTIDTEST_E2E is set but baresip is not installed (Debian package baresip-core)")
	}
	// baresip 1.0 (Debian 12) gives up on a SHA-256 challenge: offer MD5 alone.
	app := startTestApp(t, func(c *Config) { c.SIP.DigestAlgorithms = "MD5" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agent, err := app.Accounts.Login(ctx, "demo", "agent1", demoPassword, "test")
	if err != nil {
		t.Fatal(err)
	}
	sipAddr := app.CTI.Addr("udp")

	dir := t.TempDir()
	// The phone's microphone: silence, 8 kHz like the call's PCMU (ausine only does 48 kHz).
	wav := filepath.Join(dir, "silence.wav")
	if err := os.WriteFile(wav, silenceWAV(8000, 10), 0o600); err != nil {
		t.Fatal(err)
	}
	config := strings.Join([]string{
		"sip_listen 127.0.0.1:" + freePort(t), // baresip 1.0 cannot pick a port itself
		"audio_player aufile,/dev/null",
		"audio_source aufile," + wav,
		"audio_alert aufile,/dev/null",
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module account.so",
		"module menu.so",
		"",
	}, "\n")
	account := fmt.Sprintf("<sip:1001@%s>;auth_pass=%s;outbound=\"sip:%s\";answermode=auto;regint=300\n",
		demo.Domain, demo.Password, sipAddr)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account), 0o600); err != nil {
		t.Fatal(err)
	}
	phone := exec.CommandContext(ctx, bin, "-4", "-f", dir)
	out := &strings.Builder{}
	phone.Stdout, phone.Stderr = out, out
	if err := phone.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = phone.Process.Kill()
		_ = phone.Wait()
		if t.Failed() {
			t.Logf("config:\n%s\naccounts:\n%s\nbaresip said:\n%s", config, account, out.String())
		}
	}()

	// Registered: ctid keeps the binding in the tenant's sip_bindings.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var n int
		_ = app.Pool.QueryRow(ctx, `SELECT count(*) FROM t_demo.sip_bindings`).Scan(&n)
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("baresip did not register with ctid")
		}
	}
	if _, err := app.CTI.Agents().Set(ctx, "demo", agent.ID, cti.Change{To: cti.Ready, Who: cti.ByAgent}); err != nil {
		t.Fatal(err)
	}
	known, _ := demo.Numbers()
	caller, err := demo.NewCaller(demo.CallerOptions{Server: sipAddr, DID: demo.DID, HangUpAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	if err := caller.Call(ctx, known[0]); err != nil {
		t.Fatalf("call to baresip: %v", err)
	}
	if st := caller.Stats(); st.Answered != 1 {
		t.Fatalf("caller stats %+v", st)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var result, hangup string
		var agentID int64
		err := app.Pool.QueryRow(ctx, `SELECT result, hangup_by, coalesce(agent_id, 0) FROM t_demo.cdrs ORDER BY offered_at DESC LIMIT 1`).Scan(&result, &hangup, &agentID)
		if err == nil {
			if result != "answered" || hangup != "caller" || agentID != agent.ID {
				t.Fatalf("CDR: result %s, hangup by %s, agent %d", result, hangup, agentID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CDR: %v", err)
		}
	}
}
