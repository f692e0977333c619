package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/cti"
	"github.com/ctid/ctid/dataobject"
	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/query"
	"github.com/ctid/ctid/screenpop"
	"github.com/ctid/ctid/wallboard"
	"github.com/ctid/ctid/web"
	"github.com/ctid/ctid/workorder"
)

// shutdownTimeout bounds how long in-flight HTTP requests may take to finish at shutdown.
const shutdownTimeout = 15 * time.Second

// App is one running ctid: everything Start built, torn down by Close in reverse order.
type App struct {
	cfg      *Config
	log      *slog.Logger
	registry *prometheus.Registry
	cleanups []func()

	Pool       *pgxpool.Pool
	Readers    *db.Readers
	Accounts   *account.Store
	Objects    *dataobject.Store
	CTI        *cti.Service
	Pops       *screenpop.Hub
	WorkOrders *workorder.Service
	Boards     *wallboard.Service
	Web        *web.Server

	httpLn  net.Listener
	httpSrv *http.Server
	served  chan error
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (a *App) onClose(f func()) { a.cleanups = append(a.cleanups, f) }

// Close undoes Start in reverse: HTTP first (in-flight requests finish), the database last.
func (a *App) Close() {
	for i := len(a.cleanups) - 1; i >= 0; i-- {
		a.cleanups[i]()
	}
	a.cleanups = nil
}

// openDatabase starts the embedded PostgreSQL unless database.url is set, and opens the pool.
// attach lets admin commands share the server of a running `ctid serve`.
func (a *App) openDatabase(ctx context.Context, attach bool) error {
	url := a.cfg.Database.URL
	if url == "" {
		cluster, err := db.StartCluster(ctx, db.ClusterOptions{
			DataDir: a.cfg.Database.DataDir, Port: a.cfg.Database.Port, Database: a.cfg.Database.Name,
			Durable: true, Attach: attach, Logger: a.log,
		})
		if err != nil {
			return err
		}
		a.onClose(func() {
			if err := cluster.Stop(); err != nil {
				a.log.Error("stop PostgreSQL", "err", err)
			}
		})
		url = cluster.URL()
	}
	pool, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	a.onClose(pool.Close)
	a.Pool = pool
	n, err := db.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if n > 0 {
		a.log.Info("applied database migrations", "count", n)
	}
	readers, err := db.NewReaders(url)
	if err != nil {
		return err
	}
	a.onClose(readers.Close)
	a.Readers = readers
	a.Accounts = account.NewStore(pool, account.LoginLimits{
		MaxFailures: a.cfg.Security.LoginMaxFailures,
		Window:      a.cfg.Security.LoginWindow,
		Lockout:     a.cfg.Security.LoginLockout,
	}, a.cfg.HTTP.SessionTTL)
	return nil
}

// Start builds everything in order — database, stores, web — and starts serving HTTP.
// On error, what was built is already torn down.
func Start(ctx context.Context, cfg *Config, logger *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: logger, registry: prometheus.NewRegistry(), served: make(chan error, 1)}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "ctid_build_info",
			Help:        "Build of the running ctid; the value is always 1.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion()},
		}, func() float64 { return 1 }),
	)
	if err := a.openDatabase(ctx, false); err != nil {
		return nil, err
	}
	a.Objects = dataobject.New(a.Pool, logger, a.registry, dataobject.Options{FieldUsage: query.FieldUsers})
	// Lookup keeps each tenant's catalogue: changes made by other ctid processes reach it here.
	a.background(func(ctx context.Context) error { a.Objects.WatchCatalogue(ctx); return nil })
	if err := a.startCTI(ctx); err != nil {
		return nil, err
	}
	// Queues' VIP rules know a waiting caller's customer level from the customer data.
	a.CTI.SetCustomerLevels(func(ctx context.Context, tenant, caller string) ([]string, error) {
		t, err := a.Accounts.TenantByCode(ctx, tenant)
		if err != nil {
			return nil, err
		}
		return a.Objects.CustomerLevels(ctx, t, caller)
	})
	// The hub pushes assignments to consoles; the work-order service gives pops their open work
	// orders and draft mapping: each needs the other, so the notifier reaches the hub late.
	var hub *screenpop.Hub
	a.WorkOrders = workorder.New(workorder.Options{Pool: a.Pool, Objects: a.Objects, Accounts: a.Accounts,
		Logger: logger, Registerer: a.registry,
		Notify: func(ctx context.Context, tenant string, agentID int64, typ string, data any) {
			hub.Notify(ctx, tenant, agentID, typ, data)
		}})
	// Boards are a feed of the hub: a board page subscribes to it on /ws.
	a.Boards = wallboard.New(wallboard.Options{Pool: a.Pool, Events: a.CTI.Events(), Accounts: a.Accounts,
		Logger: logger, Registerer: a.registry})
	a.background(func(ctx context.Context) error { a.Boards.Run(ctx); return nil })
	a.Pops = screenpop.NewHub(screenpop.Options{Events: a.CTI.Events(), Accounts: a.Accounts, Objects: a.Objects,
		Pool: a.Pool, Logger: logger, Registerer: a.registry, WorkOrders: a.WorkOrders.PopSource, Feeds: a.Boards.Feed})
	hub = a.Pops
	a.background(func(ctx context.Context) error { a.Pops.Run(ctx); return nil })
	a.Web, err = web.New(web.Options{
		Accounts:      a.Accounts,
		Pool:          a.Pool,
		Logger:        logger,
		Registerer:    a.registry,
		Gatherer:      a.registry,
		PublicURL:     cfg.HTTP.PublicURL,
		SecureCookies: cfg.HTTP.TLSCert != "" || strings.HasPrefix(cfg.HTTP.PublicURL, "https://"),
		Version:       version,
		Pops:          a.Pops,
	})
	if err != nil {
		return nil, err
	}
	queries := query.New(a.Pool, a.Readers, logger, a.registry)
	a.background(func(ctx context.Context) error { queries.Rollups().Run(ctx, a.Accounts.ListTenants); return nil })
	a.onClose(queries.Close) // pools of external data sources
	// Export jobs: the first sweep marks jobs a stopped process left running as failed and
	// removes their files; stopping ctid marks this process's running jobs failed
	// (before the external sources close).
	a.background(queries.ExportJobs().Run)
	a.Web.EnableQueries(queries)
	a.Web.EnableQueryBatchDelete(a.Objects)
	a.Web.MountCTI(a.CTI)
	a.Web.MountWallboard(a.Boards)
	a.Web.EnableObjects(a.Objects)
	a.background(a.maintainPartitions)
	a.Web.EnableWorkOrders(a.WorkOrders, a.Objects, a.CTI.Agents())
	// The demo tenant exists before the first page is served, so its logins work at once.
	if cfg.Demo.Enabled {
		if err := a.seedDemo(ctx); err != nil {
			return nil, err
		}
	}
	if err := a.serveHTTP(); err != nil {
		return nil, err
	}
	if cfg.Demo.Enabled && cfg.Demo.Traffic {
		a.startDemoTraffic()
	}
	return a, nil
}

// partitionEvery is how often data-object partitions are created ahead (cti does its own).
const partitionEvery = 6 * time.Hour

// maintainPartitions creates the monthly partitions of every tenant's partitioned data
// objects ahead of time, at start and every few hours.
func (a *App) maintainPartitions(ctx context.Context) error {
	for {
		tenants, err := a.Accounts.ListTenants(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Error("list tenants for partitions", "err", err)
		}
		for _, t := range tenants {
			if err := a.Objects.EnsurePartitions(ctx, t, time.Now()); err != nil && ctx.Err() == nil {
				a.log.Error("data-object partitions", "tenant", t.Code, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(partitionEvery):
		}
	}
}

// startCTI starts the SIP service (and with it the event log) and waits until it listens.
func (a *App) startCTI(ctx context.Context) error {
	svc, err := cti.New(cti.Config{UDPAddr: a.cfg.SIP.Listen, TCPAddr: a.cfg.SIP.Listen, TLSAddr: a.cfg.SIP.TLSAddr,
		TLSCertFile: a.cfg.SIP.TLSCert, TLSKeyFile: a.cfg.SIP.TLSKey, Host: a.cfg.SIP.Host,
		SourceRate: float64(a.cfg.SIP.SourceRate), SourceBurst: a.cfg.SIP.SourceBurst,
		DigestAlgorithms: splitList(a.cfg.SIP.DigestAlgorithms)}, a.Pool, a.log, a.registry)
	if err != nil {
		return err
	}
	a.CTI = svc
	done := a.background(svc.Run)
	select {
	case <-svc.Ready():
		return nil
	case err := <-done:
		if err == nil {
			err = errors.New("SIP service stopped while starting")
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// background runs f until Close (in reverse order of start, like every cleanup); an error
// from f before that ends Wait. The returned channel gets f's result.
func (a *App) background(f func(context.Context) error) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	result := make(chan error, 1)
	go func() {
		err := f(ctx)
		done <- err
		result <- err
		if err != nil && ctx.Err() == nil {
			select {
			case a.served <- err:
			default:
			}
		}
	}()
	a.onClose(func() {
		cancel()
		if err := <-done; err != nil {
			a.log.Warn("stopping", "err", err)
		}
	})
	return result
}

func (a *App) serveHTTP() error {
	ln, err := net.Listen("tcp", a.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on http.addr %s: %w", a.cfg.HTTP.Addr, err)
	}
	a.httpLn = ln
	a.httpSrv = &http.Server{
		Handler:           a.Web,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() {
		var err error
		if a.cfg.HTTP.TLSCert != "" {
			err = a.httpSrv.ServeTLS(ln, a.cfg.HTTP.TLSCert, a.cfg.HTTP.TLSKey)
		} else {
			err = a.httpSrv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.served <- err
	}()
	a.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := a.httpSrv.Shutdown(ctx); err != nil {
			a.log.Warn("HTTP shutdown", "err", err)
		}
	})
	scheme := "http"
	if a.cfg.HTTP.TLSCert != "" {
		scheme = "https"
	}
	a.log.Info("ctid serving", "url", scheme+"://"+ln.Addr().String(), "version", version)
	return nil
}

// HTTPAddr is the address the web server listens on (useful with port 0).
func (a *App) HTTPAddr() string { return a.httpLn.Addr().String() }

// Wait blocks until ctx ends (a signal) or the HTTP server fails.
func (a *App) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
		return nil
	case err := <-a.served:
		return err
	}
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := newFlags("serve", "Run ctid: web console, API and (embedded) PostgreSQL. Stops cleanly on SIGINT/SIGTERM.", e)
	configPath := fs.String("config", "", "configuration file (YAML); see configs/ctid.example.yaml")
	demo := fs.Bool("demo", false, "create the demo tenant with one user per role when missing (same as demo.enabled)")
	traffic := fs.Bool("demo-traffic", false, "with --demo: run simulated agent phones and a caller on the demo number (same as demo.traffic)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*configPath, e.environ)
	if err != nil {
		return err
	}
	if *demo {
		cfg.Demo.Enabled = true
	}
	if *traffic {
		cfg.Demo.Enabled, cfg.Demo.Traffic = true, true
	}
	logger := newLogger(cfg, e.stderr)
	app, err := Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer app.Close()
	return app.Wait(ctx)
}

// adminApp opens the database for an admin command, attaching to a running ctid's server.
func adminApp(ctx context.Context, configPath string, e env) (*App, error) {
	cfg, err := LoadConfig(configPath, e.environ)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: newLogger(cfg, e.stderr)}
	if err := a.openDatabase(ctx, true); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func cmdMigrate(ctx context.Context, args []string, e env) error {
	fs := newFlags("migrate", "Apply the database migrations (platform and every tenant) and exit. Safe to repeat.", e)
	configPath := fs.String("config", "", "configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := adminApp(ctx, *configPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := db.CheckMigrated(ctx, a.Pool); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "database is up to date")
	return nil
}

func cmdTenantCreate(ctx context.Context, args []string, e env) error {
	fs := newFlags("tenant create", "Create a tenant (enterprise): its row, its schema t_<code> and its read-only role.", e)
	configPath := fs.String("config", "", "configuration file (YAML)")
	code := fs.String("code", "", "tenant code: a lower-case letter then 1–30 of a–z, 0–9, _ (required)")
	name := fs.String("name", "", "tenant name (required)")
	region := fs.String("region", "CN", "default phone region for numbers without a country code (ISO 3166: CN, GB, US...)")
	tz := fs.String("tz", "Asia/Shanghai", "time zone (IANA name) for reports and date presets")
	sipDomain := fs.String("sip-domain", "", "SIP domain of the tenant's phones (digest realm); default <code>.ctid.local")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := adminApp(ctx, *configPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	t, err := a.Accounts.CreateTenant(ctx, account.NewTenant{Code: *code, Name: *name, Region: *region, TimeZone: *tz}, cliActor())
	if err != nil {
		return err
	}
	domain := *sipDomain
	if domain == "" {
		domain = t.Code + ".ctid.local"
	}
	if err := cti.SetSIPDomain(ctx, a.Pool, t.Code, domain); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created tenant %s (%s), schema %s, SIP domain %s\n", t.Code, t.Name, t.Scope().Schema, domain)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*m = append(*m, p)
		}
	}
	return nil
}

func cmdUserAdd(ctx context.Context, args []string, e env) error {
	fs := newFlags("user add", "Add a user to a tenant (or, with --role operator and no --tenant, a platform operator).\n"+
		"Roles: operator, admin, config_admin, supervisor, team_lead (ROLE_CC_MONITOR), qa (ROLE_CC_CHECKER), agent (ROLE_CC_AGENT).\n"+
		"The password is read from --password-file, else prompted for (or read from standard input when it is not a terminal).", e)
	configPath := fs.String("config", "", "configuration file (YAML)")
	tenant := fs.String("tenant", "", "tenant code")
	username := fs.String("username", "", "login name (required)")
	display := fs.String("display-name", "", "name shown to others")
	var roles multiFlag
	fs.Var(&roles, "role", "role; repeat or separate with commas (required)")
	team := fs.String("team", "", "team name; created when missing")
	ext := fs.String("extension", "", "agent phone extension (digits)")
	pwFile := fs.String("password-file", "", "file whose first line is the password")
	sipFile := fs.String("sip-password-file", "", "with --extension: file whose first line is the phone's SIP password (stored as digest HA1)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *username == "" || len(roles) == 0 {
		return &usageError{"--username and --role are required"}
	}
	password, err := readPassword(*pwFile, e)
	if err != nil {
		return err
	}
	var sipPassword string
	if *sipFile != "" {
		if *ext == "" {
			return &usageError{"--sip-password-file needs --extension"}
		}
		if sipPassword, err = readPassword(*sipFile, e); err != nil {
			return err
		}
	}
	a, err := adminApp(ctx, *configPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.Accounts.AddUser(ctx, account.NewUser{TenantCode: *tenant, Username: *username, DisplayName: *display,
		Password: password, Roles: roles, Team: *team, Extension: *ext}, cliActor())
	if err != nil {
		return err
	}
	if sipPassword != "" {
		if err := cti.SetSIPPassword(ctx, a.Pool, u.ID, sipPassword); err != nil {
			return fmt.Errorf("user %s was added, but its SIP password was not set: %w", u.Username, err)
		}
	}
	where := "platform"
	if u.Tenant != nil {
		where = "tenant " + u.Tenant.Code
	}
	fmt.Fprintf(e.stdout, "added user %s to %s with roles %v\n", u.Username, where, u.Roles)
	return nil
}

func cliActor() account.Actor {
	name := "cli"
	if u := os.Getenv("USER"); u != "" {
		name = "cli:" + u
	}
	return account.Actor{Name: name}
}
