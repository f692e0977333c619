package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ctid.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	const example = "../../configs/ctid.example.yaml"
	c, err := LoadConfig(example, nil)
	if err != nil {
		t.Fatalf("example config does not load: %v", err)
	}
	if d := defaultConfig(); *c != *d {
		t.Errorf("example values differ from the defaults:\n%+v\n%+v", *c, *d)
	}
	b, _ := os.ReadFile(example)
	var doc map[string]map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.settings() {
		section, name, _ := strings.Cut(s.key, ".")
		if _, ok := doc[section][name]; !ok {
			t.Errorf("key %s is not in %s", s.key, example)
		}
	}
}

func TestConfigLayers(t *testing.T) {
	p := writeConfig(t, "http:\n  addr: 127.0.0.1:9000\nlog:\n  level: debug\n")
	c, err := LoadConfig(p, []string{"CTID_LOG_LEVEL=warn", "CTID_DATABASE_URL=postgres://x@y/z", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:9000" || c.Log.Level != "warn" || c.Database.URL != "postgres://x@y/z" {
		t.Fatalf("got %+v", c)
	}
	if c.Security.LoginLockout != 15*time.Minute {
		t.Fatalf("default lost: %v", c.Security.LoginLockout)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown key", "http:\n  adr: 1\n", nil, `unknown key "http.adr"`},
		{"unknown section", "sip2:\n  x: 1\n", nil, `unknown key "sip2.x"`},
		{"bad duration", "http:\n  session_ttl: soon\n", nil, `key "http.session_ttl": bad value "soon"`},
		{"bad enum", "log:\n  level: loud\n", nil, `key "log.level": bad value "loud": want one of debug, info, warn, error`},
		{"bad port", "database:\n  port: 70000\n", nil, `key "database.port"`},
		{"mapping for a value", "log:\n  level:\n    x: 1\n", nil, `key "log.level" takes a single value`},
		{"list", "log:\n  level: [a, b]\n", nil, `key "log.level": want a single value`},
		{"bad addr", "http:\n  addr: nowhere\n", nil, `key "http.addr"`},
		{"env bad value", "", []string{"CTID_DATABASE_PORT=abc"}, `CTID_DATABASE_PORT (key database.port): bad value "abc"`},
		{"env unknown", "", []string{"CTID_NOPE=1"}, `unknown environment variable CTID_NOPE`},
		{"not yaml", "http: [\n", nil, "not valid YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tc.file), tc.env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a ConfigError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// The command exits 2 on a bad config, names the key, and starts nothing (no data directory).
func TestCommandExitsTwoOnBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ file, key string }{
		{"http:\n  bogus: 1\n", "http.bogus"},
		{"database:\n  data_dir: " + filepath.Join(dir, "pg") + "\n  port: x\n", "database.port"},
	} {
		var stdout, stderr bytes.Buffer
		code := cli([]string{"serve", "--config", writeConfig(t, tc.file)}, nil, &stdout, &stderr)
		if code != 2 {
			t.Errorf("exit %d, want 2; stderr %q", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.key) {
			t.Errorf("stderr %q does not name %s", stderr.String(), tc.key)
		}
		if _, err := os.Stat(filepath.Join(dir, "pg")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("something was started: data directory exists")
		}
	}
}
