// Package web serves ctid's pages and JSON API: login and sessions, the landing page of each
// role, admin pages, /api/v1, /healthz, /readyz and /metrics. Templates and static files are
// embedded; there is no front-end build step and no CDN.
package web

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
	"github.com/ctid/ctid/screenpop"
)

//go:embed templates static
var assets embed.FS

// Options is what the web server needs; cmd/ctid builds it.
type Options struct {
	Accounts      *account.Store
	Pool          *pgxpool.Pool // for /readyz
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	Gatherer      prometheus.Gatherer
	PublicURL     string // the site browsers use; Origin checks trust it
	SecureCookies bool   // served over HTTPS: cookies carry Secure
	Version       string
	Pops          *screenpop.Hub // console WebSockets; nil: /ws answers 503
}

// Server is ctid's HTTP handler.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	pages   map[string]*template.Template
	metrics *metrics
	origin  *http.CrossOriginProtection
	handler http.Handler
	queries *queryPages // the query pages, once EnableQueries ran
	// sipPhones: MountCTI ran, so the users page sets extensions and SIP passwords.
	sipPhones bool
	moreNav   []navLink // links of pages mounted after New (MountCTI)
}

// New builds the server and its routes.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger.With("component", "web"),
		mux:     http.NewServeMux(),
		metrics: newMetrics(opts.Registerer),
		origin:  http.NewCrossOriginProtection(),
	}
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public url: %w", err)
		}
		if err := s.origin.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("public url: %w", err)
		}
	}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.routes()
	s.handler = s.metrics.instrument(securityHeaders(s.mux))
	return s, nil
}

func (s *Server) routes() {
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))

	s.mux.HandleFunc("GET /{$}", s.root)
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.page("", s.logout))
	s.mux.HandleFunc("POST /lang", s.setLang)
	s.mux.HandleFunc("GET /home", s.page("", s.home))

	s.mux.HandleFunc("GET /account/tokens", s.page("", s.tokensPage))
	s.mux.HandleFunc("POST /account/tokens", s.page("", s.createTokenForm))
	s.mux.HandleFunc("POST /account/tokens/{id}/revoke", s.page("", s.revokeTokenForm))

	s.mux.HandleFunc("GET /platform/tenants", s.page(account.PermManageTenants, s.tenantsPage))
	s.mux.HandleFunc("POST /platform/tenants", s.page(account.PermManageTenants, s.createTenantForm))
	s.mux.HandleFunc("GET /admin/users", s.page(account.PermManageUsers, s.usersPage))
	s.mux.HandleFunc("POST /admin/users", s.page(account.PermManageUsers, s.addUserForm))

	s.mux.HandleFunc("GET /api/v1/me", s.api("", s.apiMe))
	s.mux.HandleFunc("POST /api/v1/tokens", s.api("", s.apiCreateToken))
	s.mux.HandleFunc("GET /api/v1/tenants", s.api(account.PermManageTenants, s.apiListTenants))
	s.mux.HandleFunc("POST /api/v1/tenants", s.api(account.PermManageTenants, s.apiCreateTenant))
	s.mux.HandleFunc("GET /api/v1/tenants/{tenant}/users", s.api(account.PermManageUsers, s.apiListUsers))
	s.mux.HandleFunc("POST /api/v1/tenants/{tenant}/users", s.api(account.PermManageUsers, s.apiAddUser))
	s.mux.HandleFunc("GET /ws", s.ws)
	s.mux.HandleFunc("GET /api/v1/ws-token", s.api("", s.apiWSToken))
	s.mux.HandleFunc("POST /api/v1/pops/{call}/choose", s.api(account.PermTakeCalls, s.apiChoosePop))
	s.mux.HandleFunc("GET /console", s.page(account.PermTakeCalls, s.consolePage))
	s.mux.HandleFunc("GET /api/v1/not-ready-reasons", s.api(account.PermTakeCalls, s.apiNotReadyReasons))
	s.mux.HandleFunc("/api/", s.apiNotFound)
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Handle adds a route to the server (for packages wired in by cmd/ctid).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	if _, err := s.sessionOf(r); err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/home", http.StatusSeeOther)
}

// logError logs what the user does not see: internal errors only.
func (s *Server) logError(r *http.Request, err error) {
	if fault.CodeOf(err) == fault.Internal {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

func parseID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, fault.Errorf(fault.Invalid, "%s %q is not a number", name, r.PathValue(name))
	}
	return id, nil
}

// metrics of the web package.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctid_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ctid_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack hands the connection over for WebSocket upgrades (gorilla asserts http.Hijacker).
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the connection (WebSocket upgrades, flushing).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests by the pattern that matched (never by raw path: bounded labels).
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
		m.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

var errNotSignedIn = errors.New("not signed in")
