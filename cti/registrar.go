package cti

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Registrar defaults (Config overrides them).
const (
	defaultNonceTTL      = 5 * time.Minute
	defaultMinExpires    = 60
	defaultMaxExpires    = 3600
	defaultExpires       = 600
	defaultAuthFailLimit = 5
	authFailWindow       = 15 * time.Minute // failures older than this are forgotten
	maxContactsPerExt    = 10
)

// binding is one registered contact of an extension.
type binding struct {
	Contact   sip.Uri
	Raw       string // the Contact URI as registered
	AgentID   int64
	Source    string
	CallID    string
	CSeq      uint32
	ExpiresAt time.Time
}

// registrar authenticates REGISTER with digest and keeps bindings in PostgreSQL and in memory.
type registrar struct {
	s      *Service
	dir    *directory
	nonces *nonces

	mu       sync.Mutex
	bindings map[string]map[string]*extBindings // tenant → extension → contacts
	failures map[string]*authFailures           // tenant/extension/source → failed answers
}

// extBindings are the contacts of one extension. Once made it stays (emptied, never
// replaced), so the ACD keeps a pointer to it and asks whether the extension is registered
// without the registrar's lock: it asks for every member of a queue on every call.
type extBindings struct {
	list  []*binding   // guarded by registrar.mu
	until atomic.Int64 // the latest expiry of list in Unix nanoseconds, 0 for none
}

// setList replaces the contacts; the caller holds registrar.mu.
func (e *extBindings) setList(list []*binding) {
	e.list = list
	var until int64
	for _, b := range list {
		until = max(until, b.ExpiresAt.UnixNano())
	}
	e.until.Store(until)
}

// registeredAt reports whether a contact is unexpired at now (Unix nanoseconds).
func (e *extBindings) registeredAt(now int64) bool { return e.until.Load() > now }

type authFailures struct {
	n     int
	first time.Time
}

func newRegistrar(s *Service) *registrar {
	return &registrar{s: s, dir: &directory{pool: s.pool}, nonces: newNonces(s.cfg.NonceTTL),
		bindings: map[string]map[string]*extBindings{}, failures: map[string]*authFailures{}}
}

// load reads every tenant's unexpired bindings (a restart keeps registrations).
func (r *registrar) load(ctx context.Context) error {
	rows, err := r.s.pool.Query(ctx, `SELECT code FROM platform.tenants`)
	if err != nil {
		return fmt.Errorf("load bindings: %w", err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("load bindings: %w", err)
	}
	n := 0
	for _, code := range codes {
		err := db.InTenant(ctx, r.s.pool, db.Scope{Schema: db.SchemaName(code)}, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT extension, contact, agent_id, source, call_id, cseq, expires_at
				FROM sip_bindings WHERE expires_at > now()`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var ext string
				b := &binding{}
				if err := rows.Scan(&ext, &b.Raw, &b.AgentID, &b.Source, &b.CallID, &b.CSeq, &b.ExpiresAt); err != nil {
					return err
				}
				if err := sip.ParseUri(b.Raw, &b.Contact); err != nil {
					continue // stored by an older ctid in a form we no longer read: the phone re-registers
				}
				r.put(code, ext, b)
				n++
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("load bindings of %s: %w", code, err)
		}
	}
	r.s.m.registrations.Set(float64(n))
	return nil
}

// ext is the entry of an extension, made when missing.
func (r *registrar) ext(tenant, ext string) *extBindings {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.extLocked(tenant, ext)
}

func (r *registrar) extLocked(tenant, ext string) *extBindings {
	exts := r.bindings[tenant]
	if exts == nil {
		exts = map[string]*extBindings{}
		r.bindings[tenant] = exts
	}
	e := exts[ext]
	if e == nil {
		e = &extBindings{}
		exts[ext] = e
	}
	return e
}

// put adds or replaces (by contact) a binding in memory; the caller holds no lock.
func (r *registrar) put(tenant, ext string, b *binding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.extLocked(tenant, ext)
	list := e.list[:0:0]
	for _, x := range e.list {
		if x.Raw != b.Raw {
			list = append(list, x)
		}
	}
	e.setList(append(list, b))
}

// contacts are the unexpired bindings of an extension.
func (r *registrar) contacts(tenant, ext string) []*binding {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*binding
	if e := r.bindings[tenant][ext]; e != nil {
		for _, b := range e.list {
			if b.ExpiresAt.After(now) {
				out = append(out, b)
			}
		}
	}
	return out
}

// registered reports whether an extension has an unexpired binding.
func (r *registrar) registered(tenant, ext string) bool {
	return r.ext(tenant, ext).registeredAt(time.Now().UnixNano())
}

func (r *registrar) countBindings() int {
	now := time.Now()
	n := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, exts := range r.bindings {
		for _, e := range exts {
			for _, b := range e.list {
				if b.ExpiresAt.After(now) {
					n++
				}
			}
		}
	}
	return n
}

// onRegister handles REGISTER: tenant by the To domain, digest against the agent's HA1,
// then the binding changes (add, refresh, remove one, remove all with *).
func (r *registrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	to := req.To()
	ext := to.Address.User
	tenant, err := r.dir.tenantByDomain(ctx, to.Address.Host)
	if err != nil {
		r.s.respondErr(tx, req, err)
		return
	}
	user, ok := r.authenticate(ctx, req, tx, tenant, ext, false)
	if !ok {
		return
	}
	if err := r.apply(ctx, req, tenant, user); err != nil {
		var fe *fault.Error
		if asFault(err, &fe) && fe.Code == fault.Invalid && strings.HasPrefix(fe.Message, "Interval Too Brief") {
			r.s.respond(tx, req, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(r.s.cfg.MinExpires)))
			return
		}
		r.s.respondErr(tx, req, err)
		return
	}
	r.s.acd.wakeTenant(tenant.Code) // a newly registered agent may take a waiting call
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	now := time.Now()
	for _, b := range r.contacts(tenant.Code, ext) {
		secs := int(b.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
		res.AppendHeader(sip.NewHeader("Contact", "<"+b.Raw+">;expires="+strconv.Itoa(secs)))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	r.s.send(tx, req, res)
}

// authenticate answers 401/403 itself and returns false unless req carries a good digest.
// With proxy set it uses Proxy-Authorization and 407, as for an agent's INVITE.
func (r *registrar) authenticate(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, t *sipTenant, ext string, proxy bool) (*sipUser, bool) {
	var user *sipUser
	ok := r.checkDigest(ctx, req, tx, digestCheck{realm: t.Domain, username: ext, proxy: proxy,
		failKey: t.Code + "/" + ext + "/" + hostOfSource(req.Source()),
		lookup: func(ctx context.Context) (*sipUser, error) {
			u, err := r.dir.cachedUser(ctx, t, ext)
			user = u
			return u, err
		},
		fresh: func(ctx context.Context) (*sipUser, error) {
			u, err := r.dir.freshUser(ctx, t, ext)
			user = u
			return u, err
		}})
	if !ok {
		return nil, false
	}
	return user, true
}

// digestCheck is what one digest authentication checks: the realm challenged, the username
// the answer must be for, and how to find that user's HA1s (NotFound: no such user, which
// fails like a wrong password so that nobody can probe which users exist).
type digestCheck struct {
	realm, username string
	failKey         string // failed answers are counted per key (user and source)
	proxy           bool   // Proxy-Authorization and 407 instead of Authorization and 401
	lookup          func(context.Context) (*sipUser, error)
	// fresh, when set, is asked when lookup's (cached) HA1s do not match: the password may
	// have changed since they were cached.
	fresh func(context.Context) (*sipUser, error)
}

// checkDigest answers 401/407/403 itself and reports whether req carries a good, fresh,
// not replayed digest answer for dc.
func (r *registrar) checkDigest(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, dc digestCheck) bool {
	if r.locked(dc.failKey) {
		r.s.m.authRefused.WithLabelValues("locked").Inc()
		r.s.respond(tx, req, 403, "Forbidden")
		return false
	}
	authHeader := "Authorization"
	if dc.proxy {
		authHeader = "Proxy-Authorization"
	}
	h := req.GetHeader(authHeader)
	if h == nil {
		r.challenge(tx, req, dc.realm, false, dc.proxy)
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		r.s.respond(tx, req, 400, "Bad "+authHeader+" header")
		return false
	}
	if cred.Realm != dc.realm {
		r.challenge(tx, req, dc.realm, false, dc.proxy)
		return false
	}
	valid, stale := r.nonces.check(cred.Nonce, dc.realm)
	if !valid {
		r.challenge(tx, req, dc.realm, false, dc.proxy)
		return false
	}
	check := func(user *sipUser, err error) bool {
		return err == nil && !user.Disabled && cred.Username == dc.username && user.Realm == dc.realm &&
			verifyDigest(cred, string(req.Method), user)
	}
	user, err := dc.lookup(ctx)
	good := check(user, err)
	if !good && err == nil && dc.fresh != nil {
		// The password may have changed since the entry was cached: ask the database.
		user, err = dc.fresh(ctx)
		good = check(user, err)
	}
	if err != nil && fault.CodeOf(err) != fault.NotFound {
		r.s.respondErr(tx, req, err)
		return false
	}
	if !good {
		r.s.m.authRefused.WithLabelValues("bad_credentials").Inc()
		if r.fail(dc.failKey) {
			r.s.log.Warn("SIP authentication locked", "user", dc.failKey, "source", req.Source())
			r.s.respond(tx, req, 403, "Forbidden")
			return false
		}
		r.challenge(tx, req, dc.realm, false, dc.proxy)
		return false
	}
	if stale {
		// The right password with an old nonce: the phone retries at once with the new one.
		r.challenge(tx, req, dc.realm, true, dc.proxy)
		return false
	}
	nc := cred.Nc
	if cred.QOP == "" {
		nc = 1 // no nonce count: the nonce serves once
	}
	if !r.nonces.use(cred.Nonce, nc) {
		// The same answer again (a replay, or a retransmission the transaction layer did not
		// absorb): not accepted; a phone that is genuine answers the fresh challenge.
		r.s.m.authRefused.WithLabelValues("replayed_nonce").Inc()
		r.challenge(tx, req, dc.realm, false, dc.proxy)
		return false
	}
	r.clearFailures(dc.failKey)
	return true
}

func (r *registrar) challenge(tx sip.ServerTransaction, req *sip.Request, realm string, stale, proxy bool) {
	name, code, reason := "WWW-Authenticate", 401, "Unauthorized"
	if proxy {
		name, code, reason = "Proxy-Authenticate", 407, "Proxy Authentication Required"
	}
	var hs []sip.Header
	for _, c := range r.nonces.challenges(realm, stale, r.s.cfg.DigestAlgorithms) {
		hs = append(hs, sip.NewHeader(name, c))
	}
	r.s.respond(tx, req, code, reason, hs...)
}

func (r *registrar) locked(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.failures[key]
	if f == nil {
		return false
	}
	if time.Since(f.first) > authFailWindow {
		delete(r.failures, key)
		return false
	}
	return f.n >= r.s.cfg.AuthFailLimit
}

// fail records a failed answer and reports whether the limit is now reached.
func (r *registrar) fail(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.failures[key]
	if f == nil || time.Since(f.first) > authFailWindow {
		f = &authFailures{first: time.Now()}
		r.failures[key] = f
	}
	f.n++
	return f.n >= r.s.cfg.AuthFailLimit
}

func (r *registrar) clearFailures(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.failures, key)
}

func hostOfSource(src string) string {
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		return strings.Trim(src[:i], "[]")
	}
	return src
}

// change is one contact of a REGISTER.
type change struct {
	raw     string
	uri     sip.Uri
	expires int // seconds; 0 removes the contact
}

// apply makes the REGISTER's binding changes durable, then takes them in memory.
func (r *registrar) apply(ctx context.Context, req *sip.Request, t *sipTenant, u *sipUser) error {
	cfg := r.s.cfg
	headerExpires := -1
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			return fault.Errorf(fault.Invalid, "Expires header %q is not a number of seconds", h.Value())
		}
		headerExpires = v
	}
	contacts := req.GetHeaders("Contact")
	if len(contacts) == 0 {
		return nil // a query: the 200 lists the bindings
	}
	seq := req.CSeq().SeqNo
	callID := req.CallID().Value()
	source := strings.ToLower(req.Transport()) + ":" + req.Source()
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = truncate(h.Value())
	}
	var changes []change
	removeAll := false
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return fault.Errorf(fault.Invalid, "Contact header %q cannot be read", h.Value())
		}
		if c.Address.Wildcard {
			if headerExpires != 0 || len(contacts) > 1 {
				return fault.Errorf(fault.Invalid, "Contact * needs Expires: 0 and no other contacts")
			}
			removeAll = true
			break
		}
		exp := headerExpires
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fault.Errorf(fault.Invalid, "contact expires %q is not a number of seconds", v)
			}
			exp = n
		}
		if exp < 0 {
			exp = cfg.DefaultExpires
		}
		if exp > 0 && exp < cfg.MinExpires {
			return fault.Errorf(fault.Invalid, "Interval Too Brief")
		}
		exp = min(exp, cfg.MaxExpires)
		changes = append(changes, change{raw: c.Address.String(), uri: c.Address, expires: exp})
	}
	now := time.Now()
	if !removeAll && r.tooMany(t.Code, u.Extension, changes, now) {
		return fault.Errorf(fault.Invalid, "extension %s may register at most %d contacts", u.Extension, maxContactsPerExt)
	}
	// One round trip: the statements of a batch run in one implicit transaction. The table is
	// named with the tenant's schema (pgx.Identifier), as the event log does, instead of a
	// transaction that sets the search path: that took four round trips more per REGISTER.
	table := pgx.Identifier{db.SchemaName(t.Code), "sip_bindings"}.Sanitize()
	batch := &pgx.Batch{}
	if removeAll {
		batch.Queue(`DELETE FROM `+table+` WHERE extension = $1`, u.Extension)
	}
	for _, c := range changes {
		if c.expires == 0 {
			batch.Queue(`DELETE FROM `+table+` WHERE extension = $1 AND contact = $2`, u.Extension, c.raw)
			continue
		}
		// An older CSeq of the same Call-ID is a reordered retransmission: it changes nothing.
		batch.Queue(`INSERT INTO `+table+` (extension, contact, agent_id, source, call_id, cseq, expires_at, user_agent, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
			ON CONFLICT (extension, contact) DO UPDATE SET agent_id = excluded.agent_id, source = excluded.source,
				call_id = excluded.call_id, cseq = excluded.cseq, expires_at = excluded.expires_at,
				user_agent = excluded.user_agent, updated_at = now()
			WHERE sip_bindings.call_id <> excluded.call_id OR sip_bindings.cseq < excluded.cseq`,
			u.Extension, c.raw, u.ID, source, callID, int64(seq), now.Add(time.Duration(c.expires)*time.Second), ua)
	}
	if err := r.s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("register extension %s of %s: %w", u.Extension, t.Code, err)
	}
	if removeAll {
		r.mu.Lock()
		r.extLocked(t.Code, u.Extension).setList(nil)
		r.mu.Unlock()
	}
	for _, c := range changes {
		if c.expires == 0 {
			r.remove(t.Code, u.Extension, c.raw)
			continue
		}
		r.put(t.Code, u.Extension, &binding{Contact: c.uri, Raw: c.raw, AgentID: u.ID, Source: source, CallID: callID,
			CSeq: seq, ExpiresAt: now.Add(time.Duration(c.expires) * time.Second)})
	}
	r.s.m.registrations.Set(float64(r.countBindings()))
	return nil
}

// tooMany reports whether an extension would have more than maxContactsPerExt unexpired
// contacts after changes. The bindings in memory are this process's copy of the table.
func (r *registrar) tooMany(tenant, ext string, changes []change, now time.Time) bool {
	changed := map[string]bool{}
	n := 0
	for _, c := range changes {
		changed[c.raw] = true
		if c.expires > 0 {
			n++
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.bindings[tenant][ext]; e != nil {
		for _, b := range e.list {
			if !changed[b.Raw] && b.ExpiresAt.After(now) {
				n++
			}
		}
	}
	return n > maxContactsPerExt
}

func (r *registrar) remove(tenant, ext, raw string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.bindings[tenant][ext]
	if e == nil {
		return
	}
	out := e.list[:0:0]
	for _, b := range e.list {
		if b.Raw != raw {
			out = append(out, b)
		}
	}
	e.setList(out)
}
