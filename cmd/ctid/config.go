package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ctid/ctid/cti"
)

// Config is ctid's whole configuration. Every key is documented in configs/ctid.example.yaml
// and can be overridden by an environment variable: database.url → CTID_DATABASE_URL.
type Config struct {
	HTTP struct {
		Addr       string
		PublicURL  string
		TLSCert    string
		TLSKey     string
		SessionTTL time.Duration
	}
	Database struct {
		URL     string
		DataDir string
		Port    int
		Name    string
	}
	Log struct {
		Level  string
		Format string
	}
	Security struct {
		LoginMaxFailures int
		LoginWindow      time.Duration
		LoginLockout     time.Duration
	}
	SIP struct {
		Listen  string // UDP and TCP
		TLSAddr string
		TLSCert string
		TLSKey  string
		Host    string
		// Per source IP: messages per second and burst before ctid drops (UDP) or closes (TCP).
		SourceRate  int
		SourceBurst int
		// Digest challenges offered to phones, in order, comma-separated.
		DigestAlgorithms string
	}
	Demo struct {
		Enabled   bool
		Traffic   bool
		CallEvery time.Duration
	}
}

// ConfigError is a bad configuration: ctid exits with status 2 and starts nothing.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return "config: " + e.msg }

func configErrorf(format string, args ...any) error {
	return &ConfigError{msg: fmt.Sprintf(format, args...)}
}

// setting is one configuration key, bound to its field of a Config.
type setting struct {
	key string
	set func(string) error
}

func stringSetting(key string, p *string) setting {
	return setting{key, func(v string) error { *p = v; return nil }}
}

func enumSetting(key string, p *string, allowed ...string) setting {
	return setting{key, func(v string) error {
		for _, a := range allowed {
			if v == a {
				*p = v
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
	}}
}

func intSetting(key string, p *int, lo, hi int) setting {
	return setting{key, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		*p = n
		return nil
	}}
}

func durationSetting(key string, p *time.Duration, lo time.Duration) setting {
	return setting{key, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo {
			return fmt.Errorf("want a duration of at least %s such as 15m or 12h", lo)
		}
		*p = d
		return nil
	}}
}

func boolSetting(key string, p *bool) setting {
	return setting{key, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*p = b
		return nil
	}}
}

func (c *Config) settings() []setting {
	return []setting{
		stringSetting("http.addr", &c.HTTP.Addr),
		stringSetting("http.public_url", &c.HTTP.PublicURL),
		stringSetting("http.tls_cert", &c.HTTP.TLSCert),
		stringSetting("http.tls_key", &c.HTTP.TLSKey),
		durationSetting("http.session_ttl", &c.HTTP.SessionTTL, time.Minute),
		stringSetting("database.url", &c.Database.URL),
		stringSetting("database.data_dir", &c.Database.DataDir),
		intSetting("database.port", &c.Database.Port, 0, 65535),
		stringSetting("database.name", &c.Database.Name),
		enumSetting("log.level", &c.Log.Level, "debug", "info", "warn", "error"),
		enumSetting("log.format", &c.Log.Format, "text", "json"),
		intSetting("security.login_max_failures", &c.Security.LoginMaxFailures, 1, 1000),
		durationSetting("security.login_window", &c.Security.LoginWindow, time.Second),
		durationSetting("security.login_lockout", &c.Security.LoginLockout, time.Second),
		stringSetting("sip.listen", &c.SIP.Listen),
		stringSetting("sip.tls_addr", &c.SIP.TLSAddr),
		stringSetting("sip.tls_cert", &c.SIP.TLSCert),
		stringSetting("sip.tls_key", &c.SIP.TLSKey),
		stringSetting("sip.host", &c.SIP.Host),
		intSetting("sip.source_rate", &c.SIP.SourceRate, 1, 1_000_000),
		intSetting("sip.source_burst", &c.SIP.SourceBurst, 1, 1_000_000),
		setting{"sip.digest_algorithms", func(v string) error {
			if err := cti.CheckDigestAlgorithms(splitList(v)); err != nil {
				return err
			}
			c.SIP.DigestAlgorithms = v
			return nil
		}},
		boolSetting("demo.enabled", &c.Demo.Enabled),
		boolSetting("demo.traffic", &c.Demo.Traffic),
		durationSetting("demo.call_every", &c.Demo.CallEvery, 100*time.Millisecond),
	}
}

// defaultConfig is the configuration with no file and no environment.
func defaultConfig() *Config {
	c := &Config{}
	c.HTTP.Addr = "127.0.0.1:8080"
	c.HTTP.SessionTTL = 12 * time.Hour
	c.Database.DataDir = "./data/pg"
	c.Database.Name = "ctid"
	c.SIP.Listen = "127.0.0.1:5060"
	c.SIP.SourceRate, c.SIP.SourceBurst = 200, 400
	c.SIP.DigestAlgorithms = "SHA-256,MD5"
	c.Log.Level = "info"
	c.Log.Format = "text"
	c.Demo.CallEvery = 15 * time.Second
	c.Security.LoginMaxFailures = 5
	c.Security.LoginWindow = 15 * time.Minute
	c.Security.LoginLockout = 15 * time.Minute
	return c
}

// splitList splits a comma-separated value, trimming spaces.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// envName is the environment variable that overrides key.
func envName(key string) string {
	return "CTID_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// LoadConfig reads the defaults, then the YAML file at path (when not empty), then CTID_*
// environment variables. Any unknown key or bad value is a *ConfigError naming the key.
func LoadConfig(path string, environ []string) (*Config, error) {
	c := defaultConfig()
	byKey := map[string]setting{}
	byEnv := map[string]setting{}
	for _, s := range c.settings() {
		byKey[s.key] = s
		byEnv[envName(s.key)] = s
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, configErrorf("read %s: %v", path, errors.Unwrap(err))
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, configErrorf("%s is not valid YAML: %v", path, err)
		}
		if len(doc.Content) > 0 {
			if err := applyNode(path, "", doc.Content[0], byKey); err != nil {
				return nil, err
			}
		}
	}
	var names []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CTID_") {
			continue
		}
		s, ok := byEnv[name]
		if !ok {
			names = append(names, name)
			continue
		}
		if err := s.set(value); err != nil {
			return nil, configErrorf("environment %s (key %s): bad value %q: %v", name, s.key, value, err)
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		return nil, configErrorf("unknown environment variable %s: no such configuration key", strings.Join(names, ", "))
	}
	return c, c.validate()
}

func applyNode(path, prefix string, n *yaml.Node, byKey map[string]setting) error {
	if n.Kind != yaml.MappingNode {
		if prefix == "" && n.Kind == yaml.ScalarNode && n.Value == "" {
			return nil // empty file
		}
		return configErrorf("%s line %d: key %q: want a mapping of keys", path, n.Line, strings.TrimSuffix(prefix, "."))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		switch v.Kind {
		case yaml.MappingNode:
			if _, leaf := byKey[key]; leaf {
				return configErrorf("%s line %d: key %q takes a single value, not a mapping", path, v.Line, key)
			}
			if err := applyNode(path, key+".", v, byKey); err != nil {
				return err
			}
		case yaml.ScalarNode:
			s, ok := byKey[key]
			if !ok {
				return configErrorf("%s line %d: unknown key %q", path, k.Line, key)
			}
			value := v.Value
			if v.Tag == "!!null" {
				value = ""
			}
			if err := s.set(value); err != nil {
				return configErrorf("%s line %d: key %q: bad value %q: %v", path, v.Line, key, value, err)
			}
		default:
			return configErrorf("%s line %d: key %q: want a single value", path, v.Line, key)
		}
	}
	return nil
}

func (c *Config) validate() error {
	if _, port, err := net.SplitHostPort(c.HTTP.Addr); err != nil || port == "" {
		return configErrorf("key \"http.addr\": bad value %q: want host:port such as 127.0.0.1:8080", c.HTTP.Addr)
	}
	if c.HTTP.PublicURL != "" {
		u, err := url.Parse(c.HTTP.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return configErrorf("key \"http.public_url\": bad value %q: want an http(s) URL such as https://ctid.example.com", c.HTTP.PublicURL)
		}
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		return configErrorf("keys \"http.tls_cert\" and \"http.tls_key\": set both or neither")
	}
	if _, _, err := net.SplitHostPort(c.SIP.Listen); err != nil {
		return configErrorf("key \"sip.listen\": bad value %q: want host:port such as 127.0.0.1:5060", c.SIP.Listen)
	}
	if c.SIP.TLSAddr != "" && (c.SIP.TLSCert == "" || c.SIP.TLSKey == "") {
		return configErrorf("key \"sip.tls_addr\": needs sip.tls_cert and sip.tls_key")
	}
	if c.Database.URL == "" && c.Database.DataDir == "" {
		return configErrorf("key \"database.data_dir\": empty, and no database.url: one of them is needed")
	}
	if c.Database.Name == "" {
		return configErrorf("key \"database.name\": empty")
	}
	return nil
}
