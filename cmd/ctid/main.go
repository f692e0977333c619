// Command ctid is the call-centre CTI and screen-pop service. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // tenant time zones must resolve on machines without tzdata

	"github.com/emiago/sipgo/sip"

	"github.com/ctid/ctid/fault"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// sipgo logs a few rare messages through its package logger: keep them quiet and short.
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `ctid — call-centre CTI and screen-pop service

Usage:
  ctid [serve] [--config FILE] [--demo]   run the service (the default)
  ctid migrate [--config FILE]            apply database migrations and exit
  ctid tenant create --code CODE --name NAME [--region CN] [--tz Asia/Shanghai]
  ctid user add --tenant CODE --username NAME --role ROLE [--role ROLE...] [--team T]
                [--extension EXT] [--display-name NAME] [--password-file FILE]
  ctid import --tenant CODE [--object customer] [--skip-bad] [--rejects FILE] FILE.csv|.xlsx
  ctid rollup rebuild --tenant CODE       recompute a tenant's statistics rollups
  ctid version                            print the version

Every command takes --config FILE (default: none; see configs/ctid.example.yaml) and reads
CTID_* environment variables. "ctid COMMAND --help" describes one command.
`

// cli runs one command and returns the process exit status: 0 ok, 1 failed, 2 bad usage or
// configuration (nothing was started).
func cli(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if len(args) > 0 && (cmd == "tenant" || cmd == "user" || cmd == "rollup") {
		cmd, args = cmd+" "+args[0], args[1:]
	}
	var run func(ctx context.Context, args []string, e env) error
	switch cmd {
	case "serve":
		run = cmdServe
	case "migrate":
		run = cmdMigrate
	case "tenant create":
		run = cmdTenantCreate
	case "user add":
		run = cmdUserAdd
	case "import":
		run = cmdImport
	case "rollup rebuild":
		run = cmdRollupRebuild
	case "version":
		fmt.Fprintln(stdout, "ctid", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ctid: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, args, env{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()})
	var ce *ConfigError
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, "ctid:", err)
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ctid %s: %v\n", cmd, err)
		return 2
	case fault.CodeOf(err) == fault.Invalid || fault.CodeOf(err) == fault.Conflict || fault.CodeOf(err) == fault.NotFound:
		fmt.Fprintf(stderr, "ctid %s: %v\n", cmd, err)
		return 1
	default:
		fmt.Fprintf(stderr, "ctid %s: %v\n", cmd, err)
		return 1
	}
}

// env is what a command reads and writes besides its flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// newFlags makes a flag set that prints its help to e.stdout and returns errors instead of exiting.
func newFlags(name, summary string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fs.SetOutput(e.stdout)
		fmt.Fprintf(e.stdout, "Usage: ctid %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; a flag error is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
