// Package browsertest starts headless Chromium for page tests through chromedp.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// testTimeout bounds one browser test, start-up included.
const testTimeout = 90 * time.Second

// findChromium returns the Chromium binary, or "" when none is installed.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium for the test and returns a chromedp context on a new tab;
// it is closed when the test ends. Without Chromium the test is skipped loudly, except in CI
// (CI=true), where it fails: there every test runs.
func New(tb testing.TB) context.Context {
	tb.Helper()
	bin := findChromium()
	if bin == "" {
		msg := "Chromium is not installed: run `make deps-test` (Debian: apt-get install chromium)"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("SKIPPED — " + msg)
	}
	dir := tb.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1366, 768),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), testTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(tabCtx); err != nil {
		tb.Fatalf("start Chromium %s: %v", bin, err)
	}
	return tabCtx
}
