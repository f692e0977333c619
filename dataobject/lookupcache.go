package dataobject

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// catalogueChannel is the PostgreSQL notification channel on which every change to a
// tenant's catalogue is announced, with the tenant's schema as payload, when its
// transaction commits: each ctid process then forgets its copy (WatchCatalogue).
const catalogueChannel = "ctid_dataobject_catalogue"

// Timing of the catalogue cache.
const (
	// lookupCatalogueTTL: how long Lookup trusts a catalogue it read while no notification
	// can reach it (WatchCatalogue not running or reconnecting).
	lookupCatalogueTTL = 5 * time.Second
	// watchRetry: the wait before WatchCatalogue connects again after losing its connection.
	watchRetry = time.Second
)

// objectRef is what Lookup needs of an object.
type objectRef struct{ key, table string }

// lookupCatalogue is what Lookup needs of a tenant's catalogue, with its statement built.
// Objects are never deleted and their tables never change; a field's key can (rename), and
// fields can be added or marked for matching. Every change is announced on
// catalogueChannel; a Store forgets a tenant's catalogue when it changes it or hears of a
// change, and Lookup reads it again when a match names something it does not know.
type lookupCatalogue struct {
	sql     string
	objects map[int64]objectRef
	records map[int64]bool   // objects the statement reads records of
	fields  map[int64]string // phone field id → key
	readAt  time.Time
}

// lookupCache holds the catalogues Lookup uses, by schema.
type lookupCache struct {
	mu   sync.Mutex
	cats map[string]*lookupCatalogue
	// listening: WatchCatalogue is connected and LISTENing, so the cached catalogues are
	// current; otherwise each is trusted for lookupCatalogueTTL only.
	listening bool
	// gen counts what made cached catalogues stale; a catalogue read while it moved is
	// used once and not kept, as it may predate the change.
	gen uint64
}

// get is the catalogue of schema while it can be trusted.
func (c *lookupCache) get(schema string) *lookupCatalogue {
	c.mu.Lock()
	defer c.mu.Unlock()
	cat := c.cats[schema]
	if cat == nil || !c.listening && time.Since(cat.readAt) > lookupCatalogueTTL {
		return nil
	}
	return cat
}

// generation is the current count of invalidations, taken before reading a catalogue.
func (c *lookupCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps cat for schema unless something was invalidated since gen was taken.
func (c *lookupCache) put(schema string, cat *lookupCatalogue, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.cats == nil {
		c.cats = map[string]*lookupCatalogue{}
	}
	c.cats[schema] = cat
}

// forget drops the catalogue of schema ("": all of them).
func (c *lookupCache) forget(schema string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if schema == "" {
		clear(c.cats)
	} else {
		delete(c.cats, schema)
	}
}

// setListening records whether notifications reach the cache. Catalogues kept before
// listening began may have missed a change and are dropped.
func (c *lookupCache) setListening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on && !c.listening {
		c.gen++
		clear(c.cats)
	}
	c.listening = on
}

// forgetLookup drops the catalogue Lookup keeps for schema, after a change to it.
func (s *Store) forgetLookup(schema string) { s.lookups.forget(schema) }

// announceCatalogueChange tells every ctid process, when tx commits, that the catalogue
// of schema changed.
func announceCatalogueChange(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, catalogueChannel, schema); err != nil {
		return fmt.Errorf("announce catalogue change: %w", err)
	}
	return nil
}

// WatchCatalogue keeps Lookup's copies of tenants' catalogues current with changes made by
// any ctid process on the database, until ctx ends: it LISTENs on a connection of its own
// (not one of the pool's) and forgets a tenant's catalogue when a change to it is
// announced. While it is not connected, Lookup reads a catalogue again when its copy is
// older than a few seconds; when it connects again, it forgets every copy, since
// announcements made meanwhile were lost. Run it in a goroutine.
func (s *Store) WatchCatalogue(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.watchCatalogue(ctx)
		s.lookups.setListening(false)
		s.metrics.catalogueListening.Set(0)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("catalogue notifications lost; reconnecting", "err", err, "retry", watchRetry)
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
		}
	}
}

// watchCatalogue is one connection's life of WatchCatalogue.
func (s *Store) watchCatalogue(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{catalogueChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.lookups.setListening(true)
	s.metrics.catalogueListening.Set(1)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		s.lookups.forget(n.Payload)
	}
}

func (s *Store) lookupCatalogue(ctx context.Context, schema string, fresh bool) (*lookupCatalogue, error) {
	if !fresh {
		if cat := s.lookups.get(schema); cat != nil {
			return cat, nil
		}
	}
	gen := s.lookups.generation()
	rows, err := s.pool.Query(ctx, `SELECT o.id, o.key, o.table_name, f.id, f.key, f.match_caller
		FROM `+pgx.Identifier{schema, "data_objects"}.Sanitize()+` o
		LEFT JOIN `+pgx.Identifier{schema, "data_fields"}.Sanitize()+` f ON f.object_id = o.id AND f.type = 'phone'
		ORDER BY o.id`)
	if err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	cat := &lookupCatalogue{objects: map[int64]objectRef{}, records: map[int64]bool{}, fields: map[int64]string{}, readAt: time.Now()}
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
	s.lookups.put(schema, cat, gen)
	return cat, nil
}
