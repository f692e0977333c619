package dataobject

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/db/dbtest"
)

// An import's duplicate check probes the phone indexes once per number, even in the
// import's own transaction where PostgreSQL has no statistics of the rows it added (it
// used to read every key of the object for every chunk: quadratic in the file).
func TestExistingPhonesPlanUsesIndexProbes(t *testing.T) {
	pool, _ := dbtest.NewDatabase(t)
	accounts := account.NewStore(pool, account.LoginLimits{}, 0)
	ten, err := accounts.CreateTenant(context.Background(), account.NewTenant{Code: "acme", Name: "Acme", Region: "CN"}, account.CLI)
	if err != nil {
		t.Fatal(err)
	}
	s := New(pool, nil, prometheus.NewRegistry(), Options{})
	ctx := context.Background()
	const n = 10_000
	err = s.inTenant(ctx, ten, func(tx pgx.Tx) error {
		o, err := loadObject(ctx, tx, "customer")
		if err != nil {
			return err
		}
		phones := o.Visible()[1]
		var rows [][]any
		cn, now := newPhoneReader("CN"), time.Now()
		for i := range n {
			rows = append(rows, phoneKeyRowOf(o, phones, int64(i+1), cn.Normalize(fmt.Sprintf("139%08d", i)), now),
				phoneKeyRowOf(o, phones, int64(i+1), cn.Normalize(fmt.Sprintf("010-6%07d", i)), now))
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"phone_keys"}, phoneKeyColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		var e164s, nationals, stripped []string
		for i := n - 1000; i < n+4000; i++ {
			e164s = append(e164s, fmt.Sprintf("+86139%08d", i), fmt.Sprintf("+86106%07d", i))
			nationals = append(nationals, fmt.Sprintf("139%08d", i), fmt.Sprintf("106%07d", i))
			stripped = append(stripped, fmt.Sprintf("12%05d", i))
		}
		plan, err := tx.Query(ctx, "EXPLAIN "+existingPhonesSQL, o.ID, e164s, nationals, stripped)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(plan, pgx.RowTo[string])
		if err != nil {
			return err
		}
		text := strings.Join(lines, "\n")
		if strings.Contains(text, "Seq Scan") || strings.Contains(text, "phone_keys_record") ||
			!strings.Contains(text, "phone_keys_national") || !strings.Contains(text, "phone_keys_stripped") {
			t.Errorf("plan of the duplicate check:\n%s", text)
		}
		found, err := tx.Query(ctx, existingPhonesSQL, o.ID, e164s, nationals, stripped)
		if err != nil {
			return err
		}
		ids := map[string]int64{}
		for found.Next() {
			var k string
			var id int64
			if err := found.Scan(&k, &id); err != nil {
				return err
			}
			ids[k] = id
		}
		if err := found.Err(); err != nil {
			return err
		}
		if len(ids) != 2000 || ids["+8613900009999"] != n || ids["+861060009000"] != 9001 {
			t.Errorf("%d numbers found, +8613900009999 on %d, +861060009000 on %d", len(ids), ids["+8613900009999"], ids["+861060009000"])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
