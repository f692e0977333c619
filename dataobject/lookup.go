package dataobject

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
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
const lookupSQL = `SELECT object_id, record_id, field_id, raw, rank, contact_at, count(*) OVER ()
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

// Lookup matches a caller's number against every phone field marked for matching, in all
// of t's objects. It reads the phone_keys indexes, then the matched records by primary key.
// Tables are named with their schema rather than through a scoped transaction: this is the
// hot path of every screen pop and saves the round trips of BEGIN/SET/COMMIT.
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
	rows, err := s.pool.Query(ctx, fmt.Sprintf(lookupSQL, pgx.Identifier{schema, "phone_keys"}.Sanitize()), s.lookupArgs(res.Caller)...)
	if err != nil {
		return nil, fmt.Errorf("lookup %q: %w", caller, err)
	}
	var fieldIDs []int64
	objectIDs := map[int64][]int64{}
	for rows.Next() {
		var m Match
		var objectID, fieldID int64
		var total int64
		if err := rows.Scan(&objectID, &m.RecordID, &fieldID, &m.Number, &m.Rank, &m.ContactAt, &total); err != nil {
			rows.Close()
			return nil, fmt.Errorf("lookup %q: %w", caller, err)
		}
		m.Reason = reasons[m.Rank]
		m.Object = strconv.FormatInt(objectID, 10) // replaced by the key below
		m.Field = strconv.FormatInt(fieldID, 10)
		res.Total = int(total)
		res.Matches = append(res.Matches, m)
		fieldIDs = append(fieldIDs, fieldID)
		objectIDs[objectID] = append(objectIDs[objectID], m.RecordID)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lookup %q: %w", caller, err)
	}
	if len(res.Matches) == 0 {
		return res, nil
	}
	res.Reason = res.Matches[0].Reason
	if err := s.fillMatches(ctx, schema, res, fieldIDs, objectIDs); err != nil {
		return nil, fmt.Errorf("lookup %q: %w", caller, err)
	}
	return res, nil
}

// fillMatches loads, in one round trip, the field keys and the records of the matches.
func (s *Store) fillMatches(ctx context.Context, schema string, res *LookupResult, fieldIDs []int64, objectIDs map[int64][]int64) error {
	objs, err := s.objectRefs(ctx, schema, objectIDs)
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	fieldKeys := map[string]string{}
	batch.Queue(`SELECT id, key FROM `+pgx.Identifier{schema, "data_fields"}.Sanitize()+` WHERE id = ANY($1)`, fieldIDs).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id int64
				var key string
				if err := rows.Scan(&id, &key); err != nil {
					return err
				}
				fieldKeys[strconv.FormatInt(id, 10)] = key
			}
			return rows.Err()
		})
	records := map[string]map[string]any{}
	for objectID, ids := range objectIDs {
		ref := objs[objectID]
		batch.Queue(`SELECT id, to_jsonb(r) - 'deleted_at' FROM `+pgx.Identifier{schema, ref.table}.Sanitize()+
			` r WHERE id = ANY($1) AND deleted_at IS NULL`, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id int64
				var doc []byte
				if err := rows.Scan(&id, &doc); err != nil {
					return err
				}
				var rec map[string]any
				if err := json.Unmarshal(doc, &rec); err != nil {
					return err
				}
				records[strconv.FormatInt(objectID, 10)+"/"+strconv.FormatInt(id, 10)] = rec
			}
			return rows.Err()
		})
	}
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	for i := range res.Matches {
		m := &res.Matches[i]
		m.Record = records[m.Object+"/"+strconv.FormatInt(m.RecordID, 10)]
		objectID, _ := strconv.ParseInt(m.Object, 10, 64)
		m.Object = objs[objectID].key
		m.Field = fieldKeys[m.Field]
	}
	return nil
}

// objectRef is what Lookup needs of an object. Objects are never deleted and their key
// and table never change, so these are cached for the life of the Store.
type objectRef struct{ key, table string }

type objectCache struct {
	mu   sync.Mutex
	refs map[string]map[int64]objectRef // schema → object id → ref
}

func (s *Store) objectRefs(ctx context.Context, schema string, want map[int64][]int64) (map[int64]objectRef, error) {
	s.objects.mu.Lock()
	known := s.objects.refs[schema]
	missing := false
	for id := range want {
		if _, ok := known[id]; !ok {
			missing = true
		}
	}
	s.objects.mu.Unlock()
	if missing {
		rows, err := s.pool.Query(ctx, `SELECT id, key, table_name FROM `+pgx.Identifier{schema, "data_objects"}.Sanitize())
		if err != nil {
			return nil, err
		}
		fresh := map[int64]objectRef{}
		for rows.Next() {
			var id int64
			var ref objectRef
			if err := rows.Scan(&id, &ref.key, &ref.table); err != nil {
				rows.Close()
				return nil, err
			}
			fresh[id] = ref
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		known = fresh
		s.objects.mu.Lock()
		if s.objects.refs == nil {
			s.objects.refs = map[string]map[int64]objectRef{}
		}
		s.objects.refs[schema] = fresh
		s.objects.mu.Unlock()
	}
	return known, nil
}

// ExplainLookup returns PostgreSQL's plan of the caller-matching query for caller, to show
// (in tests and benchmarks) that it reads indexes only.
func (s *Store) ExplainLookup(ctx context.Context, t *account.Tenant, caller string) (string, error) {
	schema := t.Scope().Schema
	if !schemaRE.MatchString(schema) {
		return "", fmt.Errorf("explain lookup: bad schema name %q", schema)
	}
	rows, err := s.pool.Query(ctx, "EXPLAIN "+fmt.Sprintf(lookupSQL, pgx.Identifier{schema, "phone_keys"}.Sanitize()),
		s.lookupArgs(Normalize(caller, t.Region))...)
	if err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("explain lookup: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}
