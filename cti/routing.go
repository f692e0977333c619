package cti

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctid/ctid/db"
	"github.com/ctid/ctid/fault"
)

// Trunk is a carrier or PBX peer of a tenant, known by the address its INVITEs come from.
type Trunk struct {
	ID          int64
	Tenant      string
	Name        string
	Source      netip.Prefix // e.g. 192.0.2.10/32
	OutboundURI string       // where agents' outbound calls go, "" for inbound only
	CallerID    string       // number presented on outbound calls
	// Username, when set, makes the trunk's INVITEs answer a digest challenge (407) with it
	// and Password, besides coming from Source. Password is only written: SaveTrunk keeps its
	// HA1s; an empty Password with the same Username keeps the stored one.
	Username string
	Password string

	tenantID int64    // filled by the lookups of the call path
	region   string   // the tenant's phone region
	auth     *sipUser // the digest credentials (HA1s and realm), nil when the trunk has none
}

var (
	nameRE          = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	trunkUsernameRE = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)
)

// SaveTrunk adds or changes (by name) a tenant's trunk.
func SaveTrunk(ctx context.Context, pool *pgxpool.Pool, t Trunk) error {
	if !nameRE.MatchString(t.Name) {
		return fault.Errorf(fault.Invalid, "trunk name %q is not valid: 1–40 of a–z, 0–9, _ and -", t.Name)
	}
	if !t.Source.IsValid() {
		return fault.Errorf(fault.Invalid, "trunk %s needs a source address or network", t.Name)
	}
	if t.OutboundURI != "" {
		var u sip.Uri
		if err := sip.ParseUri(t.OutboundURI, &u); err != nil || u.Host == "" {
			return fault.Errorf(fault.Invalid, "trunk outbound URI %q is not a SIP URI", t.OutboundURI)
		}
	}
	if t.Username != "" && !trunkUsernameRE.MatchString(t.Username) {
		return fault.Errorf(fault.Invalid, "trunk username %q is not valid: 1–64 of letters, digits and ._+-", t.Username)
	}
	if t.Username == "" && t.Password != "" {
		return fault.Errorf(fault.Invalid, "trunk %s: a password needs a username", t.Name)
	}
	var md5h, shah, realm string
	if t.Password != "" {
		if n := utf8.RuneCountInString(t.Password); n < minSIPPassword || n > maxSIPPassword {
			return fault.Errorf(fault.Invalid, "trunk password must have %d–%d characters", minSIPPassword, maxSIPPassword)
		}
		var domain *string
		err := pool.QueryRow(ctx, `SELECT sip_domain FROM platform.tenants WHERE code = $1`, t.Tenant).Scan(&domain)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.Errorf(fault.NotFound, "tenant %q does not exist", t.Tenant)
		}
		if err != nil {
			return fmt.Errorf("save trunk %q: %w", t.Name, err)
		}
		if domain == nil {
			return fault.Errorf(fault.Invalid, "trunk %s: the tenant has no SIP domain (the digest realm): set it first", t.Name)
		}
		realm = *domain
		md5h, shah = ha1(md5Alg, t.Username, realm, t.Password), ha1(sha256Alg, t.Username, realm, t.Password)
	}
	// New HA1s replace the stored ones; none given keeps them while the username stays.
	var rows int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if t.Username != "" && t.Password == "" {
			var user, m, sh, r *string
			err := tx.QueryRow(ctx, `SELECT k.auth_username, k.auth_ha1_md5, k.auth_ha1_sha256, k.auth_realm
				FROM platform.sip_trunks k JOIN platform.tenants t ON t.id = k.tenant_id
				WHERE t.code = $1 AND k.name = $2 FOR UPDATE OF k`, t.Tenant, t.Name).Scan(&user, &m, &sh, &r)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if user == nil || *user != t.Username || m == nil || sh == nil || r == nil {
				return fault.Errorf(fault.Invalid, "trunk %s: a username needs a password", t.Name)
			}
			md5h, shah, realm = *m, *sh, *r
		}
		tag, err := tx.Exec(ctx, `INSERT INTO platform.sip_trunks (tenant_id, name, source, outbound_uri, caller_id,
				auth_username, auth_ha1_md5, auth_ha1_sha256, auth_realm)
			SELECT id, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), NULLIF($9, '') FROM platform.tenants WHERE code = $1
			ON CONFLICT (tenant_id, name) DO UPDATE SET source = excluded.source, outbound_uri = excluded.outbound_uri,
				caller_id = excluded.caller_id, auth_username = excluded.auth_username, auth_ha1_md5 = excluded.auth_ha1_md5,
				auth_ha1_sha256 = excluded.auth_ha1_sha256, auth_realm = excluded.auth_realm`,
			t.Tenant, t.Name, t.Source.Masked(), t.OutboundURI, t.CallerID, t.Username, md5h, shah, realm)
		rows = tag.RowsAffected()
		return err
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return err
		}
		return fmt.Errorf("save trunk %q: %w", t.Name, err)
	}
	if rows == 0 {
		return fault.Errorf(fault.NotFound, "tenant %q does not exist", t.Tenant)
	}
	return nil
}

// trunkBySource finds the trunk whose network holds addr (the most specific one).
func trunkBySource(ctx context.Context, pool *pgxpool.Pool, addr netip.Addr) (*Trunk, error) {
	var t Trunk
	var user, md5h, shah, realm *string
	err := pool.QueryRow(ctx, `SELECT k.id, t.code, k.name, k.source, k.outbound_uri, k.caller_id, t.id, t.region,
			k.auth_username, k.auth_ha1_md5, k.auth_ha1_sha256, k.auth_realm
		FROM platform.sip_trunks k JOIN platform.tenants t ON t.id = k.tenant_id
		WHERE k.source >>= $1 AND t.status = 'active' ORDER BY masklen(k.source) DESC, k.id LIMIT 1`, addr).
		Scan(&t.ID, &t.Tenant, &t.Name, &t.Source, &t.OutboundURI, &t.CallerID, &t.tenantID, &t.region,
			&user, &md5h, &shah, &realm)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.Forbidden, "source %s is no trunk of ours", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("find trunk of %s: %w", addr, err)
	}
	if user != nil && md5h != nil && shah != nil && realm != nil {
		t.Username = *user
		t.auth = &sipUser{Extension: *user, HA1MD5: *md5h, HA1SHA256: *shah, Realm: *realm}
	}
	return &t, nil
}

// outboundTrunk is the tenant's trunk for agents' outbound calls.
func outboundTrunk(ctx context.Context, pool *pgxpool.Pool, tenant string) (*Trunk, error) {
	var t Trunk
	err := pool.QueryRow(ctx, `SELECT k.id, t.code, k.name, k.source, k.outbound_uri, k.caller_id
		FROM platform.sip_trunks k JOIN platform.tenants t ON t.id = k.tenant_id
		WHERE t.code = $1 AND k.outbound_uri <> '' ORDER BY k.name LIMIT 1`, tenant).
		Scan(&t.ID, &t.Tenant, &t.Name, &t.Source, &t.OutboundURI, &t.CallerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "tenant %s has no outbound trunk", tenant)
	}
	if err != nil {
		return nil, fmt.Errorf("find outbound trunk of %s: %w", tenant, err)
	}
	return &t, nil
}

// DID is a tenant's number and where its calls go: a queue or an extension.
type DID struct {
	Number    string
	Queue     string
	Extension string
	// Priority (0–9) of this number's callers in the queue's line: a higher one waits ahead
	// of lower ones (e.g. a number given to VIP customers). 0 is everyone's default.
	Priority int
}

var didRE = regexp.MustCompile(`^\+?[0-9]{2,20}$`)

// SaveDID adds or changes a tenant's number.
func SaveDID(ctx context.Context, pool *pgxpool.Pool, tenant string, d DID) error {
	if !didRE.MatchString(d.Number) {
		return fault.Errorf(fault.Invalid, "number %q is not valid: digits with an optional leading +", d.Number)
	}
	if (d.Queue == "") == (d.Extension == "") {
		return fault.Errorf(fault.Invalid, "number %s routes to a queue or an extension, exactly one", d.Number)
	}
	if d.Priority < 0 || d.Priority > maxPriority {
		return fault.Errorf(fault.Invalid, "number %s: priority %d, want 0–%d", d.Number, d.Priority, maxPriority)
	}
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO dids (number, queue, extension, priority) VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), $4)
			ON CONFLICT (number) DO UPDATE SET queue = excluded.queue, extension = excluded.extension, priority = excluded.priority`,
			d.Number, d.Queue, d.Extension, d.Priority)
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "dids_queue_fkey") {
			return fault.Errorf(fault.Invalid, "queue %q does not exist", d.Queue)
		}
		return fmt.Errorf("save number %s: %w", d.Number, err)
	}
	return nil
}

func didByNumber(ctx context.Context, pool *pgxpool.Pool, tenant, number string) (*DID, error) {
	d := DID{Number: number}
	var q, e *string
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT number, queue, extension, priority FROM dids WHERE number = $1 OR number = '+' || $1 OR '+' || number = $1
			ORDER BY number = $1 DESC LIMIT 1`, number).Scan(&d.Number, &q, &e, &d.Priority)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Errorf(fault.NotFound, "number %s is not in service", number)
	}
	if err != nil {
		return nil, fmt.Errorf("look up number %s: %w", number, err)
	}
	if q != nil {
		d.Queue = *q
	}
	if e != nil {
		d.Extension = *e
	}
	return &d, nil
}

// Strategy chooses which Ready agent a queue offers a call to.
type Strategy string

const (
	LongestIdle Strategy = "longest_idle" // the agent Ready the longest (default)
	RoundRobin  Strategy = "round_robin"  // the next member after the last one offered
	RingAll     Strategy = "ring_all"     // every Ready member at once; the first to answer takes it
)

// Queue is an ACD queue's configuration.
type Queue struct {
	Name         string
	Strategy     Strategy
	RingTimeout  time.Duration // per offer; default 15 s
	MaxWait      time.Duration // then overflow
	Overflow     string        // "queue:<name>", "ext:<extension>", or "" for 480
	WrapUp       time.Duration
	ServiceLevel time.Duration
	MissedLimit  int // unanswered offers in a row that make the agent Not ready "missed"; 0 off
	// CallerPriorities put some callers ahead in the line (highest priority first, FIFO
	// within one). SaveQueue replaces the queue's list with this one.
	CallerPriorities []CallerPriority
	// LevelPriorities put callers ahead by their customer's level (VIP customers): a caller
	// whose matched customer has one of these levels gets its priority. SaveQueue replaces
	// the queue's list with this one.
	LevelPriorities []LevelPriority
}

// LevelPriority is a queue's rule for callers by customer level.
type LevelPriority struct {
	Level    string // a code of the code table customer_level (the customer's field "level")
	Priority int    // 1–9; higher waits ahead
}

// levelPriority is the priority the queue's level rules give a caller whose matched
// customers have levels (0: none matches).
func (q *Queue) levelPriority(levels []string) int {
	best := 0
	for _, r := range q.LevelPriorities {
		if r.Priority > best && slices.Contains(levels, r.Level) {
			best = r.Priority
		}
	}
	return best
}

// CallerPriority is a queue's rule for priority callers.
type CallerPriority struct {
	// Caller is a number, matched against the caller's E.164 form (+8613800138000) and the
	// number as signalled, or a prefix of one ending in * (+86138*).
	Caller   string
	Priority int // 1–9; higher waits ahead
}

// maxPriority is the highest caller priority.
const maxPriority = 9

var callerRuleRE = regexp.MustCompile(`^\+?[0-9]{1,20}\*?$`)

// levelCodeRE is the rule of codes (dataobject's).
var levelCodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// callerPriority is the priority the queue's rules give a caller (0: none matches).
func (q *Queue) callerPriority(e164, raw string) int {
	best := 0
	for _, r := range q.CallerPriorities {
		if r.Priority <= best {
			continue
		}
		if prefix, ok := strings.CutSuffix(r.Caller, "*"); ok {
			if (e164 != "" && strings.HasPrefix(e164, prefix)) || (raw != "" && strings.HasPrefix(raw, prefix)) {
				best = r.Priority
			}
		} else if r.Caller == e164 || r.Caller == raw {
			best = r.Priority
		}
	}
	return best
}

// SaveQueue adds or changes a queue.
func SaveQueue(ctx context.Context, pool *pgxpool.Pool, tenant string, q Queue) error {
	if !nameRE.MatchString(q.Name) {
		return fault.Errorf(fault.Invalid, "queue name %q is not valid: 1–40 of a–z, 0–9, _ and -", q.Name)
	}
	if q.Strategy == "" {
		q.Strategy = LongestIdle
	}
	switch q.Strategy {
	case LongestIdle, RoundRobin, RingAll:
	default:
		return fault.Errorf(fault.Invalid, "queue strategy %q: want longest_idle, round_robin or ring_all", q.Strategy)
	}
	if q.RingTimeout == 0 {
		q.RingTimeout = 15 * time.Second
	}
	if q.MaxWait == 0 {
		q.MaxWait = 5 * time.Minute
	}
	if q.ServiceLevel == 0 {
		q.ServiceLevel = 20 * time.Second
	}
	seen := map[string]bool{}
	for _, r := range q.CallerPriorities {
		if !callerRuleRE.MatchString(r.Caller) {
			return fault.Errorf(fault.Invalid, "queue %s: priority caller %q is not a number or a number prefix ending in *", q.Name, r.Caller)
		}
		if r.Priority < 1 || r.Priority > maxPriority {
			return fault.Errorf(fault.Invalid, "queue %s: priority %d of caller %s, want 1–%d", q.Name, r.Priority, r.Caller, maxPriority)
		}
		if seen[r.Caller] {
			return fault.Errorf(fault.Invalid, "queue %s: priority caller %s is listed twice", q.Name, r.Caller)
		}
		seen[r.Caller] = true
	}
	seen = map[string]bool{}
	for _, r := range q.LevelPriorities {
		if !levelCodeRE.MatchString(r.Level) {
			return fault.Errorf(fault.Invalid, "queue %s: customer level %q is not a code", q.Name, r.Level)
		}
		if r.Priority < 1 || r.Priority > maxPriority {
			return fault.Errorf(fault.Invalid, "queue %s: priority %d of customer level %s, want 1–%d", q.Name, r.Priority, r.Level, maxPriority)
		}
		if seen[r.Level] {
			return fault.Errorf(fault.Invalid, "queue %s: customer level %s is listed twice", q.Name, r.Level)
		}
		seen[r.Level] = true
	}
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO queues (name, strategy, ring_timeout_s, max_wait_s, overflow, wrapup_s, service_level_s, missed_limit)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (name) DO UPDATE SET strategy = excluded.strategy, ring_timeout_s = excluded.ring_timeout_s,
				max_wait_s = excluded.max_wait_s, overflow = excluded.overflow, wrapup_s = excluded.wrapup_s,
				service_level_s = excluded.service_level_s, missed_limit = excluded.missed_limit, updated_at = now()`,
			q.Name, string(q.Strategy), seconds(q.RingTimeout), seconds(q.MaxWait), q.Overflow, seconds(q.WrapUp),
			seconds(q.ServiceLevel), q.MissedLimit)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM queue_caller_priorities WHERE queue = $1`, q.Name); err != nil {
			return err
		}
		for _, r := range q.CallerPriorities {
			if _, err := tx.Exec(ctx, `INSERT INTO queue_caller_priorities (queue, caller, priority) VALUES ($1, $2, $3)`,
				q.Name, r.Caller, r.Priority); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM queue_level_priorities WHERE queue = $1`, q.Name); err != nil {
			return err
		}
		for _, r := range q.LevelPriorities {
			if _, err := tx.Exec(ctx, `INSERT INTO queue_level_priorities (queue, level, priority) VALUES ($1, $2, $3)`,
				q.Name, r.Level, r.Priority); err != nil {
				if strings.Contains(err.Error(), "queue_level_priorities_level_table_level_fkey") {
					return fault.Errorf(fault.Invalid, "queue %s: %q is not a customer level (a code of table customer_level)", q.Name, r.Level)
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return err
		}
		if strings.Contains(err.Error(), "check constraint") {
			return fault.Errorf(fault.Invalid, "queue %s: a setting is out of range (ring timeout 1–300 s, max wait 1 s–1 day, wrap-up 0–3600 s, overflow queue:<name> or ext:<digits>)", q.Name)
		}
		return fmt.Errorf("save queue %q: %w", q.Name, err)
	}
	return nil
}

func seconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// SetQueueMember adds an agent to a queue at a level (1 is offered first), or changes it.
func SetQueueMember(ctx context.Context, pool *pgxpool.Pool, tenant, queue string, agentID int64, level int) error {
	if level == 0 {
		level = 1
	}
	if level < 1 || level > 9 {
		return fault.Errorf(fault.Invalid, "member level %d: want 1–9", level)
	}
	var rows int64
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		// Only a user of this tenant may join its queues: the insert adds nothing otherwise.
		tag, err := tx.Exec(ctx, `INSERT INTO queue_members (queue, agent_id, level)
			SELECT $1, u.id, $3 FROM platform.users u JOIN platform.tenants t ON t.id = u.tenant_id
			WHERE u.id = $2 AND t.code = $4
			ON CONFLICT (queue, agent_id) DO UPDATE SET level = excluded.level`, queue, agentID, level, tenant)
		rows = tag.RowsAffected()
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "queue_members_queue_fkey") {
			return fault.Errorf(fault.NotFound, "queue %q does not exist", queue)
		}
		return fmt.Errorf("add member %d to queue %q: %w", agentID, queue, err)
	}
	if rows == 0 {
		return fault.Errorf(fault.Invalid, "user %d is not a user of tenant %s: only its own users can join queue %q", agentID, tenant, queue)
	}
	return nil
}

// member is a queue member as the ACD sees it.
type member struct {
	AgentID   int64
	Extension string
	Level     int

	// Filled when the queue is cached: the member's agent state and registrations, so the
	// ACD's scan of every member on every call takes no map lookups and no shared locks.
	agent *agent
	reg   *extBindings
}

// loadQueue reads a queue and its members with their extensions.
func loadQueue(ctx context.Context, pool *pgxpool.Pool, tenant, name string) (*Queue, []member, error) {
	var q Queue
	var members []member
	err := db.InTenant(ctx, pool, db.Scope{Schema: db.SchemaName(tenant)}, func(tx pgx.Tx) error {
		var strategy string
		var ring, wait, wrap, sl int
		err := tx.QueryRow(ctx, `SELECT name, strategy, ring_timeout_s, max_wait_s, overflow, wrapup_s, service_level_s, missed_limit
			FROM queues WHERE name = $1`, name).Scan(&q.Name, &strategy, &ring, &wait, &q.Overflow, &wrap, &sl, &q.MissedLimit)
		if err != nil {
			return err
		}
		q.Strategy = Strategy(strategy)
		q.RingTimeout, q.MaxWait = time.Duration(ring)*time.Second, time.Duration(wait)*time.Second
		q.WrapUp, q.ServiceLevel = time.Duration(wrap)*time.Second, time.Duration(sl)*time.Second
		rows, err := tx.Query(ctx, `SELECT caller, priority FROM queue_caller_priorities WHERE queue = $1
			ORDER BY priority DESC, caller`, name)
		if err != nil {
			return err
		}
		q.CallerPriorities, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CallerPriority, error) {
			var p CallerPriority
			return p, r.Scan(&p.Caller, &p.Priority)
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT level, priority FROM queue_level_priorities WHERE queue = $1
			ORDER BY priority DESC, level`, name)
		if err != nil {
			return err
		}
		q.LevelPriorities, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (LevelPriority, error) {
			var p LevelPriority
			return p, r.Scan(&p.Level, &p.Priority)
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT m.agent_id, coalesce(u.extension, ''), m.level FROM queue_members m
			JOIN platform.users u ON u.id = m.agent_id AND NOT u.disabled
			WHERE m.queue = $1 ORDER BY m.level, m.agent_id`, name)
		if err != nil {
			return err
		}
		members, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (member, error) {
			var m member
			return m, r.Scan(&m.AgentID, &m.Extension, &m.Level)
		})
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fault.Errorf(fault.NotFound, "queue %q does not exist", name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load queue %q: %w", name, err)
	}
	return &q, members, nil
}

// queueConfig is a queue with its members, as cached.
type queueConfig struct {
	q       *Queue
	members []member
}

// The cached lookups of the call path.

func (s *Service) trunkBySource(ctx context.Context, addr netip.Addr) (*Trunk, error) {
	return s.trunks.get(addr, func() (*Trunk, error) { return trunkBySource(ctx, s.pool, addr) })
}

func (s *Service) didByNumber(ctx context.Context, tenant, number string) (*DID, error) {
	return s.dids.get([2]string{tenant, number}, func() (*DID, error) { return didByNumber(ctx, s.pool, tenant, number) })
}

func (s *Service) loadQueue(ctx context.Context, tenant, name string) (*Queue, []member, error) {
	qc, err := s.queueCfg.get([2]string{tenant, name}, func() (queueConfig, error) {
		q, m, err := loadQueue(ctx, s.pool, tenant, name)
		for i := range m {
			m[i].agent = s.agents.get(tenant, m[i].AgentID)
			if m[i].Extension != "" {
				m[i].reg = s.reg.ext(tenant, m[i].Extension)
			}
		}
		return queueConfig{q, m}, err
	})
	if err != nil {
		return nil, nil, err
	}
	q := *qc.q // callers keep their own copy
	return &q, qc.members, nil
}
