package dataobject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
)

// Match reasons, strongest first. The rank of a match is its reason's position (1–4).
const (
	ReasonExact      = "exact_e164"      // same E.164 number
	ReasonNational   = "national_number" // same national significant number, e.g. another country code
	ReasonStripped   = "prefix_stripped" // same digits once trunk and international prefixes are stripped
	ReasonLastDigits = "last_digits"     // same last N digits (the weakest)
	ReasonAnonymous  = "anonymous"       // withheld caller: nothing is matched
	ReasonNone       = "none"            // a caller number that matched nothing
)

var reasons = [...]string{1: ReasonExact, 2: ReasonNational, 3: ReasonStripped, 4: ReasonLastDigits}

// Match is one record that matches a caller.
type Match struct {
	Object    string // object key
	RecordID  int64
	Field     string // key of the phone field that matched
	Number    string // the matching number as stored
	Reason    string
	Rank      int
	ContactAt time.Time
	Record    map[string]any // the record's columns (system columns included)
}

// LookupResult is the answer to "who is calling".
type LookupResult struct {
	Caller  Phone
	Reason  string // best match's reason, ReasonAnonymous or ReasonNone
	Matches []Match
	Total   int // matching records, of which Matches holds the first Limit
}

// lookupSQL finds the best match per record among the active phone keys and ranks the
// records. Each probe is an index read of phone_keys, and only three are needed:
//   - exact E.164 matches are among the national ones: E.164 is "+", the country code and
//     the national number, and country codes are prefix-free. The CASE tells them apart.
//   - the last N digits (a prefix of the reversed digits, in phone_keys_tail: equality on
//     the last 6, whose estimate lets PostgreSQL keep one generic plan, then a range).
//   - the stripped digits, only when the caller's are shorter than N ($4, else NULL: a btree
//     probe for NULL reads nothing): stripped digits are a suffix of all the digits, so
//     longer equal ones share their last N digits and the last-N probe finds them.
//
// $1 E.164, $2 national, $3 stripped (for the rank), $4 stripped (for the probe), $5 the
// last 6 digits reversed, $6 and $7 the range of the last N, $8 the limit.
const lookupSQL = `SELECT object_id, record_id, field_id, raw, rank, contact_at, count(*) OVER () AS total
FROM (
	SELECT DISTINCT ON (object_id, record_id) object_id, record_id, field_id, raw, contact_at,
		CASE WHEN e164 = $1 THEN 1 WHEN national = $2 THEN 2 WHEN stripped = $3 THEN 3 ELSE 4 END AS rank
	FROM %s
	WHERE active AND (national = $2 OR stripped = $4 OR (left(rev_digits, 6) = $5 AND rev_digits >= $6 AND rev_digits < $7))
	ORDER BY object_id, record_id, rank, contact_at DESC
) best
ORDER BY rank, contact_at DESC, record_id DESC
LIMIT $8`

// lookupTail is the number of last digits phone_keys_tail is keyed by (minLastDigits).
const lookupTail = 6

// lookupArgs are the parameters of lookupSQL for caller p; keys p lacks are NULL and
// never match.
func (s *Store) lookupArgs(p Phone) []any {
	var tail, from, to *string
	if len(p.Digits) >= s.opts.LastDigits {
		f := reverse(p.Digits)[:s.opts.LastDigits]
		t := f + ":" // ':' follows '9': every string starting with f sorts below it
		l := f[:lookupTail]
		tail, from, to = &l, &f, &t
	}
	var stripped, strippedProbe *string
	if len(p.Stripped) >= minLookupDigits {
		stripped = &p.Stripped
		if len(p.Stripped) < s.opts.LastDigits {
			strippedProbe = stripped
		}
	}
	return []any{nullIfEmpty(p.E164), nullIfEmpty(p.National), stripped, strippedProbe, tail, from, to, s.opts.LookupLimit}
}

// schemaRE is db's rule for tenant schemas, checked again where a name is built without
// db.InTenant.
var schemaRE = regexp.MustCompile(`^t_[a-z][a-z0-9_]{1,30}$`)

// minLookupDigits: shorter stripped numbers (112, 10086...) are service numbers, not customers.
const minLookupDigits = 5

// lookupRecordsSQL is the whole caller lookup, one statement and so one round trip: the
// matches of lookupSQL (%[1]s) with the record of each, read by primary key (%[2]s: a CASE
// on the match's object id with one scalar subquery per object whose phone fields match
// callers; only the branch of the match's object runs).
const lookupRecordsSQL = `WITH best AS (%[1]s)
SELECT b.object_id, b.record_id, b.field_id, b.raw, b.rank, b.contact_at, b.total, %[2]s AS doc
FROM best b
ORDER BY b.rank, b.contact_at DESC, b.record_id DESC`

// lookupRecordSQL is one object's branch of lookupRecordsSQL.
const lookupRecordSQL = `WHEN %d THEN (SELECT to_jsonb(x) - 'deleted_at' FROM %s x WHERE x.id = b.record_id AND x.deleted_at IS NULL)`

// Lookup matches a caller's number against every phone field marked for matching, in all
// of t's objects, and reads the matched records, in one statement: this is the hot path of
// every screen pop. Tables are named with their schema rather than through a scoped
// transaction, which saves the round trips of BEGIN/SET/COMMIT; the schema is the
// tenant's own and the tables come from its catalogue, so the statement reads nothing else.
func (s *Store) Lookup(ctx context.Context, t *account.Tenant, caller string) (*LookupResult, error) {
	start := time.Now()
	res := &LookupResult{Caller: s.phoneReader(t.Region).Normalize(caller), Reason: ReasonNone}
	defer func() {
		s.metrics.lookups.WithLabelValues(res.Reason).Inc()
		s.metrics.lookupSeconds.Observe(time.Since(start).Seconds())
	}()
	if res.Caller.Anonymous {
		res.Reason = ReasonAnonymous
		return res, nil
	}
	schema := t.Scope().Schema
	if !schemaRE.MatchString(schema) {
		return nil, fmt.Errorf("lookup: tenant %q has a bad schema name %q", t.Code, schema)
	}
	cat, err := s.lookupCatalogue(ctx, schema, false)
	if err != nil {
		return nil, fmt.Errorf("lookup %q: %w", caller, err)
	}
	matches, total, stale, err := s.lookupOnce(ctx, cat, res.Caller)
	if err == nil && stale {
		// A match of an object or field made since the catalogue was read (or by another
		// process): read the catalogue again and look up again.
		if cat, err = s.lookupCatalogue(ctx, schema, true); err == nil {
			matches, total, _, err = s.lookupOnce(ctx, cat, res.Caller)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lookup %q: %w", caller, err)
	}
	res.Matches, res.Total = matches, total
	if len(matches) > 0 {
		res.Reason = matches[0].Reason
	}
	return res, nil
}

// lookupOnce runs lookupRecordsSQL. stale: a match names an object or field that cat does
// not know of, so its record or field key is missing.
func (s *Store) lookupOnce(ctx context.Context, cat *lookupCatalogue, caller Phone) (matches []Match, total int, stale bool, err error) {
	rows, err := s.pool.Query(ctx, cat.sql, s.lookupArgs(caller)...)
	if err != nil {
		return nil, 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var m Match
		var objectID, fieldID, n int64
		var doc []byte
		if err := rows.Scan(&objectID, &m.RecordID, &fieldID, &m.Number, &m.Rank, &m.ContactAt, &n, &doc); err != nil {
			return nil, 0, false, err
		}
		m.Reason = reasons[m.Rank]
		obj, okObject := cat.objects[objectID]
		key, okField := cat.fields[fieldID]
		if !okObject || !okField || !cat.records[objectID] {
			stale = true
		}
		m.Object, m.Field = obj.key, key
		if doc != nil {
			if err := json.Unmarshal(doc, &m.Record); err != nil {
				return nil, 0, false, fmt.Errorf("record %d of %q: %w", m.RecordID, obj.key, err)
			}
		}
		total = int(n)
		matches = append(matches, m)
	}
	return matches, total, stale, rows.Err()
}

// ExplainLookup returns PostgreSQL's plan of the caller-matching statement for caller, to
// show (in tests and benchmarks) that it reads indexes only. It is the generic plan, the
// one each connection keeps for Lookup's prepared statement once it has run it a few times
// (PostgreSQL plans the first five calls for their values). analyze runs the statement too
// (EXPLAIN (ANALYZE, BUFFERS)): the plan then tells the rows and shared buffers each node read.
func (s *Store) ExplainLookup(ctx context.Context, t *account.Tenant, caller string, analyze bool) (string, error) {
	schema := t.Scope().Schema
	if !schemaRE.MatchString(schema) {
		return "", fmt.Errorf("explain lookup: bad schema name %q", schema)
	}
	cat, err := s.lookupCatalogue(ctx, schema, true)
	if err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	args := s.lookupArgs(s.phoneReader(t.Region).Normalize(caller))
	params := make([]string, len(args))
	for i := range args {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	explain := "EXPLAIN "
	if analyze {
		explain = "EXPLAIN (ANALYZE, BUFFERS) "
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "PREPARE ctid_explain_lookup AS "+cat.sql); err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	var lines []string
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			return err
		}
		// EXPLAIN EXECUTE takes no bound parameters: pgx sends the values as quoted literals.
		rows, err := tx.Query(ctx, explain+"EXECUTE ctid_explain_lookup ("+strings.Join(params, ", ")+")",
			append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
		if err != nil {
			return err
		}
		lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if _, errDrop := c.Exec(context.WithoutCancel(ctx), "DEALLOCATE ctid_explain_lookup"); errDrop != nil {
		// The statement would stay on the connection: close it rather than return it to the pool.
		c.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck
		err = errors.Join(err, errDrop)
	}
	if err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// CustomerLevels are the levels (field "level" of the default customer object, codes of
// table customer_level) of the customers a caller matches best: those of the strongest
// match reason, without duplicates. An unknown or withheld caller has none. The queues'
// VIP rules (package cti) put such callers ahead.
func (s *Store) CustomerLevels(ctx context.Context, t *account.Tenant, caller string) ([]string, error) {
	res, err := s.Lookup(ctx, t, caller)
	if err != nil {
		return nil, err
	}
	var levels []string
	for _, m := range res.Matches {
		if m.Rank != res.Matches[0].Rank || m.Object != DefaultCustomer.Key {
			continue
		}
		if l, ok := m.Record["level"].(string); ok && l != "" && !slices.Contains(levels, l) {
			levels = append(levels, l)
		}
	}
	return levels, nil
}
