package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo/sip"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/db/dbtest"
	"github.com/ctid/ctid/web/browsertest"
)

// runCLIEnv makes the test binary run ctid's command line instead of the tests, so that a
// test can signal a real ctid process.
const runCLIEnv = "CTIDTEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runCLIEnv) == "1" {
		os.Unsetenv(runCLIEnv)
		os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	dbtest.Main(m)
}

// postgresOn lists the pids of processes whose command line names dataDir.
func postgresOn(t *testing.T, dataDir string) []string {
	t.Helper()
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.Contains(string(b), "postgres") && strings.Contains(string(b), dataDir) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeDemoInBrowser boots the whole service as `make run` does — its own PostgreSQL, the
// demo tenant — signs the demo agent in with a real browser, and checks that closing leaves
// no PostgreSQL process behind.
func TestServeDemoInBrowser(t *testing.T) {
	base, err := dbtest.MakeReachableTempDir("ctid-serve-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	cfg := defaultConfig()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Database.DataDir = filepath.Join(base, "pg")
	cfg.Demo.Enabled = true
	app, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			app.Close()
		}
	}()
	url := "http://" + app.HTTPAddr()
	if code, body := get(t, url+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if _, body := get(t, url+"/metrics"); !strings.Contains(body, "ctid_build_info{") || !strings.Contains(body, "go_goroutines") {
		t.Fatal("metrics lack ctid_build_info or Go runtime metrics")
	}

	ctx := browsertest.New(t)
	err = chromedp.Do(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#tenant"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#username"), "agent1"),
		chromedp.SendKeys(chromedp.CSS("#password"), demoPassword),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
	)
	if err != nil {
		t.Fatalf("log in in the browser: %v", err)
	}
	welcome, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#welcome")))
	if err != nil || !strings.Contains(welcome, "Wang Fang") {
		t.Fatalf("landing page: %q %v", welcome, err)
	}
	roles, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#roles")))
	if roles != "Agent" {
		t.Fatalf("roles shown: %q", roles)
	}
	if len(postgresOn(t, cfg.Database.DataDir)) == 0 {
		t.Fatal("no PostgreSQL process found for the data directory while serving")
	}
	app.Close()
	closed = true
	if pids := postgresOn(t, cfg.Database.DataDir); len(pids) > 0 {
		t.Fatalf("PostgreSQL processes left after Close: %v", pids)
	}
}

// TestInterruptStopsPostgres runs `ctid serve` as a process, interrupts it as ctrl-C does, and
// checks that it exits cleanly and leaves no PostgreSQL behind.
func TestInterruptStopsPostgres(t *testing.T) {
	base, err := dbtest.MakeReachableTempDir("ctid-sigint-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	dataDir := filepath.Join(base, "pg")
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), runCLIEnv+"=1", "CTID_HTTP_ADDR=127.0.0.1:0", "CTID_SIP_LISTEN=127.0.0.1:0", "CTID_DATABASE_DATA_DIR="+dataDir,
		"CTID_LOG_FORMAT=json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait for the "ctid serving" log line: everything is up.
	sc := bufio.NewScanner(stderr)
	var url string
	for sc.Scan() {
		var rec struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ctid serving" {
			url = rec.URL
			break
		}
	}
	if url == "" {
		t.Fatal("ctid did not start")
	}
	go io.Copy(io.Discard, stderr)
	if code, _ := get(t, url+"/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	if len(postgresOn(t, dataDir)) == 0 {
		t.Fatal("no PostgreSQL running for the data directory")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ctid did not exit cleanly on SIGINT: %v", err)
	}
	if pids := postgresOn(t, dataDir); len(pids) > 0 {
		t.Fatalf("PostgreSQL processes left after SIGINT: %v", pids)
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestAdminCommands(t *testing.T) {
	_, url := dbtest.NewDatabase(t)
	t.Setenv("CTID_DATABASE_URL", url)

	if code, out, errOut := runCLI(t, "migrate"); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate: %d %s %s", code, out, errOut)
	}
	for _, bad := range []string{"../x", "a;drop", "Acme", ""} {
		code, _, errOut := runCLI(t, "tenant", "create", "--code", bad, "--name", "X")
		if code == 0 || !strings.Contains(errOut, "tenant code") {
			t.Errorf("code %q: exit %d, %q", bad, code, errOut)
		}
	}
	if code, out, errOut := runCLI(t, "tenant", "create", "--code", "acme", "--name", "Acme", "--region", "GB", "--tz", "Europe/London"); code != 0 || !strings.Contains(out, "schema t_acme") {
		t.Fatalf("tenant create: %d %s %s", code, out, errOut)
	}
	code, _, errOut := runCLI(t, "tenant", "create", "--code", "acme", "--name", "Again")
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate tenant: %d %s", code, errOut)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("agent-password\n"), 0o600)
	code, out, errOut := runCLI(t, "user", "add", "--tenant", "acme", "--username", "a1", "--role", "agent", "--team", "t1", "--extension", "1001", "--password-file", pw, "--sip-password-file", pw)
	if code != 0 || !strings.Contains(out, "added user a1 to tenant acme") {
		t.Fatalf("user add: %d %s %s", code, out, errOut)
	}
	pool, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var hasHA1 bool
	if err := pool.QueryRow(context.Background(), `SELECT sip_ha1_sha256 IS NOT NULL FROM platform.users WHERE username = 'a1'`).Scan(&hasHA1); err != nil || !hasHA1 {
		t.Fatalf("SIP password not stored as HA1: %v", err)
	}
	code, _, errOut = runCLI(t, "user", "add", "--tenant", "acme", "--username", "a2", "--role", "wizard", "--password-file", pw)
	if code != 1 || !strings.Contains(errOut, `unknown role "wizard"`) {
		t.Fatalf("bad role: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "user", "add", "--tenant", "acme"); code != 2 || !strings.Contains(errOut, "required") {
		t.Fatalf("missing flags: %d %s", code, errOut)
	}
}

func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"migrate", "--help"}, {"tenant", "create", "--help"}, {"user", "add", "--help"}, {"import", "--help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "ctid ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "serve", "--no-such-flag"); code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("unknown flag: %d %q", code, errOut)
	}
}

func TestImportCommand(t *testing.T) {
	_, url := dbtest.NewDatabase(t)
	t.Setenv("CTID_DATABASE_URL", url)
	if code, _, errOut := runCLI(t, "tenant", "create", "--code", "acme", "--name", "Acme"); code != 0 {
		t.Fatal(errOut)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte("name,phones,company\nLi Lei,13812345678,Acme Ltd\nHan Meimei,13900001111,\n"), 0o644)
	code, out, errOut := runCLI(t, "import", "--tenant", "acme", good)
	if code != 0 || !strings.Contains(out, "imported 2") {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("name,phones,email\nWang,13700000000,not-an-email\n"), 0o644)
	code, _, errOut = runCLI(t, "import", "--tenant", "acme", bad)
	if code == 0 || !strings.Contains(errOut, "row 2") {
		t.Fatalf("bad row: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "import", "--tenant", "acme"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Fatalf("no file: %d %q", code, errOut)
	}
	// a CSV saved by Chinese Excel is GBK; a bad row names its Chinese column, decoded
	raw, err := simplifiedchinese.GBK.NewEncoder().String("姓名,电话,邮箱\n王五,13600000000,不是邮件\n")
	if err != nil {
		t.Fatal(err)
	}
	gbk := filepath.Join(dir, "gbk.csv")
	os.WriteFile(gbk, []byte(raw), 0o644)
	code, _, errOut = runCLI(t, "import", "--tenant", "acme", gbk)
	if code == 0 || !strings.Contains(errOut, `row 2, column 邮箱: "不是邮件" is not an e-mail address`) {
		t.Fatalf("GBK file: exit %d, %q", code, errOut)
	}
}
