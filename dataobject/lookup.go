package dataobject

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
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
// records. Every condition is on an indexed column of phone_keys: equality for the three
// keys, and a range on the reversed digits for last-N (a prefix of the reversed string).
const lookupSQL = `SELECT object_id, record_id, field_id, raw, rank, contact_at, count(*) OVER () AS total
FROM (
	SELECT DISTINCT ON (object_id, record_id) object_id, record_id, field_id, raw, contact_at,
		CASE WHEN e164 = $1 THEN 1 WHEN national = $2 THEN 2 WHEN stripped = $3 THEN 3 ELSE 4 END AS rank
	FROM %s
	WHERE active AND (e164 = $1 OR national = $2 OR stripped = $3 OR (rev_digits >= $4 AND rev_digits < $5))
	ORDER BY object_id, record_id, rank, contact_at DESC
) best
ORDER BY rank, contact_at DESC, record_id DESC
LIMIT $6`

// lookupArgs are the parameters of lookupSQL for caller p; keys p lacks are NULL and
// never match.
func (s *Store) lookupArgs(p Phone) []any {
	var from, to *string
	if len(p.Digits) >= s.opts.LastDigits {
		f := reverse(p.Digits)[:s.opts.LastDigits]
		t := f + ":" // ':' follows '9': every string starting with f sorts below it
		from, to = &f, &t
	}
	var stripped *string
	if len(p.Stripped) >= minLookupDigits {
		stripped = &p.Stripped
	}
	return []any{nullIfEmpty(p.E164), nullIfEmpty(p.National), stripped, from, to, s.opts.LookupLimit}
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
	res := &LookupResult{Caller: Normalize(caller, t.Region), Reason: ReasonNone}
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

// objectRef is what Lookup needs of an object.
type objectRef struct{ key, table string }

// lookupCatalogue is what Lookup needs of a tenant's catalogue, with its statement built.
// Objects are never deleted and their tables never change; a field's key can (rename),
// so the Store forgets a tenant's catalogue whenever it changes one of its objects or
// fields, and Lookup reads it again when a match names something it does not know.
type lookupCatalogue struct {
	sql     string
	objects map[int64]objectRef
	records map[int64]bool   // objects the statement reads records of
	fields  map[int64]string // phone field id → key
}

type lookupCache struct {
	mu   sync.Mutex
	cats map[string]*lookupCatalogue // by schema
}

// forgetLookup drops the catalogue Lookup keeps for schema, after a change to it.
func (s *Store) forgetLookup(schema string) {
	s.lookups.mu.Lock()
	delete(s.lookups.cats, schema)
	s.lookups.mu.Unlock()
}

func (s *Store) lookupCatalogue(ctx context.Context, schema string, fresh bool) (*lookupCatalogue, error) {
	if !fresh {
		s.lookups.mu.Lock()
		cat := s.lookups.cats[schema]
		s.lookups.mu.Unlock()
		if cat != nil {
			return cat, nil
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT o.id, o.key, o.table_name, f.id, f.key, f.match_caller
		FROM `+pgx.Identifier{schema, "data_objects"}.Sanitize()+` o
		LEFT JOIN `+pgx.Identifier{schema, "data_fields"}.Sanitize()+` f ON f.object_id = o.id AND f.type = 'phone'
		ORDER BY o.id`)
	if err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	cat := &lookupCatalogue{objects: map[int64]objectRef{}, records: map[int64]bool{}, fields: map[int64]string{}}
	var branches []string
	for rows.Next() {
		var objectID int64
		var ref objectRef
		var fieldID *int64
		var fieldKey *string
		var match *bool
		if err := rows.Scan(&objectID, &ref.key, &ref.table, &fieldID, &fieldKey, &match); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read catalogue: %w", err)
		}
		cat.objects[objectID] = ref
		if fieldID != nil {
			cat.fields[*fieldID] = *fieldKey
		}
		if match != nil && *match && !cat.records[objectID] {
			cat.records[objectID] = true
			branches = append(branches, fmt.Sprintf(lookupRecordSQL, objectID, pgx.Identifier{schema, ref.table}.Sanitize()))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	doc := "NULL::jsonb"
	if len(branches) > 0 {
		doc = "CASE b.object_id " + strings.Join(branches, " ") + " END"
	}
	cat.sql = fmt.Sprintf(lookupRecordsSQL, fmt.Sprintf(lookupSQL, pgx.Identifier{schema, "phone_keys"}.Sanitize()), doc)
	s.lookups.mu.Lock()
	if s.lookups.cats == nil {
		s.lookups.cats = map[string]*lookupCatalogue{}
	}
	s.lookups.cats[schema] = cat
	s.lookups.mu.Unlock()
	return cat, nil
}

// ExplainLookup returns PostgreSQL's plan of the caller-matching query for caller, to show
// (in tests and benchmarks) that it reads indexes only.
func (s *Store) ExplainLookup(ctx context.Context, t *account.Tenant, caller string) (string, error) {
	schema := t.Scope().Schema
	if !schemaRE.MatchString(schema) {
		return "", fmt.Errorf("explain lookup: bad schema name %q", schema)
	}
	cat, err := s.lookupCatalogue(ctx, schema, true)
	if err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	rows, err := s.pool.Query(ctx, "EXPLAIN "+cat.sql, s.lookupArgs(Normalize(caller, t.Region))...)
	if err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
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
