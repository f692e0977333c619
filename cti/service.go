package cti

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is what operators set for the SIP side. Zero values take the defaults.
type Config struct {
	UDPAddr string // e.g. "0.0.0.0:5060"; "" with TCPAddr "" too means DefaultAddr on both
	TCPAddr string
	// TLSAddr with a certificate and key adds SIP over TLS.
	TLSAddr, TLSCertFile, TLSKeyFile string
	// Host is the address ctid puts in Record-Route and Via; default: the UDP listener's.
	Host string

	MaxMessageSize int     // bytes; default 16 KiB
	SourceRate     float64 // messages per second per source IP; default 200
	SourceBurst    int     // default 400

	NonceTTL       time.Duration // digest nonce lifetime; default 5 minutes
	MinExpires     int           // REGISTER Expires bounds in seconds: default 60 …
	MaxExpires     int           // … 3600
	DefaultExpires int           // when the phone asks for none: 600
	AuthFailLimit  int           // failed digest answers per user and source before 403; default 5
	// DigestAlgorithms are the challenges offered, in order: default SHA-256 then MD5. Phones
	// that give up on a challenge they do not know (baresip 1.0, older hardware phones) need
	// MD5 alone.
	DigestAlgorithms []string
}

// CheckDigestAlgorithms says what is wrong with a list of digest algorithms.
func CheckDigestAlgorithms(algs []string) error {
	if len(algs) == 0 {
		return fmt.Errorf("no digest algorithm: want SHA-256, MD5 or both")
	}
	seen := map[string]bool{}
	for _, a := range algs {
		if a != sha256Alg && a != md5Alg {
			return fmt.Errorf("digest algorithm %q is not supported: want SHA-256 or MD5", a)
		}
		if seen[a] {
			return fmt.Errorf("digest algorithm %q is listed twice", a)
		}
		seen[a] = true
	}
	return nil
}

// DefaultAddr is where ctid listens for SIP when nothing is configured.
const DefaultAddr = "0.0.0.0:5060"

// udpReadBuffer is the kernel receive buffer asked for the UDP socket: bursts of INVITEs
// must not overflow the default (~200 KiB) while the stack is busy.
const udpReadBuffer = 4 << 20

func (c *Config) setDefaults() {
	if c.UDPAddr == "" && c.TCPAddr == "" {
		c.UDPAddr, c.TCPAddr = DefaultAddr, DefaultAddr
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = defaultMaxMessageSize
	}
	if c.SourceRate <= 0 {
		c.SourceRate = defaultSourceRate
	}
	if c.SourceBurst <= 0 {
		c.SourceBurst = defaultSourceBurst
	}
	if c.NonceTTL <= 0 {
		c.NonceTTL = defaultNonceTTL
	}
	if c.MinExpires <= 0 {
		c.MinExpires = defaultMinExpires
	}
	if c.MaxExpires <= 0 {
		c.MaxExpires = defaultMaxExpires
	}
	if c.DefaultExpires <= 0 {
		c.DefaultExpires = defaultExpires
	}
	if len(c.DigestAlgorithms) == 0 {
		c.DigestAlgorithms = []string{sha256Alg, md5Alg}
	}
	if c.AuthFailLimit <= 0 {
		c.AuthFailLimit = defaultAuthFailLimit
	}
}

// Service is ctid's SIP side: listeners, registrar, proxy and ACD, with the event log and
// agent states they drive. New builds it, Run serves until its context ends.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	log    *slog.Logger
	m      *metrics
	events *EventLog
	agents *Agents
	guard  *guard
	reg    *registrar
	calls  *calls
	acd    *acd
	dials  *dials                         // click-to-dial calls (originate.go)
	levels atomic.Pointer[CustomerLevels] // customer levels of callers for queues' level rules (levels.go)

	trunks   ttlCache[netip.Addr, *Trunk]
	dids     ttlCache[[2]string, *DID]
	queueCfg ttlCache[[2]string, queueConfig]

	ua     *sipgo.UserAgent
	server *sipgo.Server
	client *sipgo.Client

	// instanceID identifies this process among the ctid processes of the database (a row of
	// platform.ctid_instances made when Run starts; instance is its decimal form, as the
	// call.offered events of its calls record it). suspects are the dead owners of open
	// calls found by the last sweep (interrupted.go), under sweepMu.
	instanceID int32
	instance   string
	sweepMu    sync.Mutex
	suspects   map[string]bool

	ready chan struct{}
	mu    sync.Mutex
	addrs map[string]string // network → bound host:port
}

// New builds the SIP service on pool; nothing listens until Run.
func New(cfg Config, pool *pgxpool.Pool, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	cfg.setDefaults()
	logger = logger.With("component", "cti")
	m := newMetrics(reg)
	s := &Service{cfg: cfg, pool: pool, log: logger, m: m, ready: make(chan struct{}), addrs: map[string]string{}}
	s.events = NewEventLog(pool, logger, m)
	s.agents = NewAgents(pool, s.events, m)
	s.reg = newRegistrar(s)
	s.calls = &calls{m: map[string]*call{}}
	s.dials = newDials()
	s.acd = &acd{queues: map[queueKey]*queueRuntime{}}
	s.agents.onReady = s.acd.wakeTenant
	s.guard = newGuard(cfg.MaxMessageSize, cfg.SourceRate, cfg.SourceBurst, m)
	sipLog := newQuietLogger(logger.With("sip", "sipgo"))
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("ctid"),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(sipLog),
			sip.WithTransportLayerReadFilter(s.guard.filter),
		),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog),
			sip.WithTransactionLayerUnhandledResponseHandler(s.onStrayResponse)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	s.ua = ua
	if s.server, err = sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("sip server: %w", err)
	}
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("sip client: %w", err)
	}
	s.routes()
	return s, nil
}

// Events is the event log (other packages subscribe to it).
func (s *Service) Events() *EventLog { return s.events }

// Agents is the agent state keeper (the HTTP API sets states through it).
func (s *Service) Agents() *Agents { return s.agents }

// Ready is closed once the listeners are bound.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Addr is the bound address of a listener ("udp", "tcp", "tls"), "" when not listening.
func (s *Service) Addr(network string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[network]
}

// partitionCheckEvery is how often CDR partitions ahead are made sure of.
const partitionCheckEvery = 6 * time.Hour

// Run binds the listeners and serves SIP until ctx ends, then closes the listeners, the
// SIP stack and the event log (writing what is queued) before it returns.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	// The instance lock is let go last: until every event of this process is written, other
	// processes must see it alive (instance.go).
	host, _ := os.Hostname()
	if err := s.pool.QueryRow(ctx, `INSERT INTO platform.ctid_instances (host, pid) VALUES ($1, $2) RETURNING id`,
		host, os.Getpid()).Scan(&s.instanceID); err != nil {
		return fmt.Errorf("register this ctid instance: %w", err)
	}
	s.instance = strconv.Itoa(int(s.instanceID))
	instCtx, stopInst := context.WithCancel(context.WithoutCancel(ctx))
	instReady, instDone := make(chan error, 1), make(chan struct{})
	go func() { defer close(instDone); s.keepInstance(instCtx, instReady) }()
	closers = append(closers, func() {
		stopInst()
		<-instDone
		// Stopped for sure: the next process to start need not wait for PostgreSQL to see
		// the session gone (its calls, left open, are closed there as interrupted).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handlerTimeout)
		defer cancel()
		if _, err := s.pool.Exec(ctx, `UPDATE platform.ctid_instances SET stopped_at = now() WHERE id = $1`, s.instanceID); err != nil {
			s.log.Warn("mark this ctid instance stopped", "instance", s.instance, "error", err)
		}
	})
	if err := <-instReady; err != nil {
		return fmt.Errorf("instance %s: %w", s.instance, err)
	}
	logCtx, stopLog := context.WithCancel(context.WithoutCancel(ctx))
	go s.events.Run(logCtx)
	// The event log stops last: handlers finishing calls still append.
	closers = append(closers, func() { stopLog(); s.events.Wait() })
	closers = append(closers, func() {
		if err := s.ua.Close(); err != nil {
			s.log.Warn("close sip stack", "error", err)
		}
	})

	if err := s.ensureAllPartitions(ctx); err != nil {
		return err
	}
	if err := s.reg.load(ctx); err != nil {
		return err
	}
	if err := s.closeInterruptedCalls(ctx); err != nil {
		return err
	}
	errc := make(chan error, 3)
	if s.cfg.UDPAddr != "" {
		conn, err := net.ListenPacket("udp", s.cfg.UDPAddr)
		if err != nil {
			return fmt.Errorf("listen sip udp %s: %w", s.cfg.UDPAddr, err)
		}
		if uc, ok := conn.(*net.UDPConn); ok {
			if err := uc.SetReadBuffer(udpReadBuffer); err != nil {
				s.log.Warn("set udp receive buffer", "error", err)
			}
		}
		s.setAddr("udp", conn.LocalAddr().String())
		closers = append(closers, func() { conn.Close() })
		go func() { errc <- serveErr("udp", s.server.ServeUDP(conn)) }()
	}
	if s.cfg.TCPAddr != "" {
		l, err := net.Listen("tcp", s.cfg.TCPAddr)
		if err != nil {
			return fmt.Errorf("listen sip tcp %s: %w", s.cfg.TCPAddr, err)
		}
		s.setAddr("tcp", l.Addr().String())
		closers = append(closers, func() { l.Close() })
		go func() { errc <- serveErr("tcp", s.server.ServeTCP(l)) }()
	}
	if s.cfg.TLSAddr != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("sip tls certificate: %w", err)
		}
		l, err := tls.Listen("tcp", s.cfg.TLSAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			return fmt.Errorf("listen sip tls %s: %w", s.cfg.TLSAddr, err)
		}
		s.setAddr("tls", l.Addr().String())
		closers = append(closers, func() { l.Close() })
		go func() { errc <- serveErr("tls", s.server.ServeTLS(l)) }()
	}
	s.log.Info("SIP listening", "instance", s.instance, "udp", s.Addr("udp"), "tcp", s.Addr("tcp"), "tls", s.Addr("tls"))
	close(s.ready)
	tick := time.NewTicker(partitionCheckEvery)
	defer tick.Stop()
	sweep := time.NewTicker(orphanSweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-tick.C:
			if err := s.ensureAllPartitions(ctx); err != nil {
				s.log.Error("CDR partitions", "error", err)
			}
		case <-sweep.C:
			if err := s.sweepOrphanedCalls(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("close calls of stopped ctid processes", "error", err)
			}
		}
	}
}

func serveErr(network string, err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("serve sip %s: %w", network, err)
}

func (s *Service) setAddr(network, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs[network] = addr
}

// hostPort is the address ctid advertises (Record-Route, Via) for network.
func (s *Service) hostPort(network string) (string, int) {
	addr := s.Addr(network)
	if addr == "" {
		addr = s.Addr("udp")
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if s.cfg.Host != "" {
		host = s.cfg.Host
	}
	return host, p
}

// tenantCodes lists every tenant's code.
func (s *Service) tenantCodes(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT code FROM platform.tenants ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return codes, nil
}

func (s *Service) ensureAllPartitions(ctx context.Context) error {
	codes, err := s.tenantCodes(ctx)
	if err != nil {
		return err
	}
	for _, code := range codes {
		if err := EnsurePartitions(ctx, s.pool, code, time.Now()); err != nil {
			return err
		}
	}
	return nil
}
