package dataobject

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

var codeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CodeTable is a named list of codes (编码): call reasons, regions, customer levels.
type CodeTable struct {
	Key    string
	NameEN string
	NameZH string
	Codes  []Code // by position, then code
}

// Code is one entry of a code table. A code with a Parent is the second level under it.
type Code struct {
	Code     string
	Parent   string
	LabelEN  string
	LabelZH  string
	Position int
	Enabled  bool
}

// Label is the code's label in lang ("zh..." for Chinese), falling back to English.
func (c Code) Label(lang string) string {
	if strings.HasPrefix(lang, "zh") && c.LabelZH != "" {
		return c.LabelZH
	}
	return c.LabelEN
}

// Children lists the enabled codes under parent ("" for the top level).
func (ct *CodeTable) Children(parent string) []Code {
	var out []Code
	for _, c := range ct.Codes {
		if c.Parent == parent && c.Enabled {
			out = append(out, c)
		}
	}
	return out
}

// Code finds a code by its value.
func (ct *CodeTable) Code(code string) (Code, bool) {
	for _, c := range ct.Codes {
		if c.Code == code {
			return c, true
		}
	}
	return Code{}, false
}

// CreateCodeTable adds an empty code table.
func (s *Store) CreateCodeTable(ctx context.Context, t *account.Tenant, key, nameEN, nameZH string, actor account.Actor) (*CodeTable, error) {
	if err := checkKey("code table", key); err != nil {
		return nil, err
	}
	nameEN, nameZH = strings.TrimSpace(nameEN), strings.TrimSpace(nameZH)
	if err := checkName(fmt.Sprintf("code table %q", key), nameEN, nameZH); err != nil {
		return nil, err
	}
	err := s.changeCatalogue(ctx, t, actor, func(tx pgx.Tx) (catalogueChange, error) {
		_, err := tx.Exec(ctx, `INSERT INTO code_tables (key, name_en, name_zh) VALUES ($1, $2, $3)`, key, nameEN, nameZH)
		if isUniqueViolation(err) {
			return catalogueChange{}, fault.Errorf(fault.Conflict, "code table %q already exists", key)
		}
		return catalogueChange{AuditCodeTableCreate, key, map[string]any{"name_en": nameEN, "name_zh": nameZH}}, err
	})
	if err != nil {
		return nil, wrapUnlessFault(err, "create code table %q", key)
	}
	return &CodeTable{Key: key, NameEN: nameEN, NameZH: nameZH}, nil
}

// RenameCodeTable changes a code table's names.
func (s *Store) RenameCodeTable(ctx context.Context, t *account.Tenant, key, nameEN, nameZH string, actor account.Actor) error {
	nameEN, nameZH = strings.TrimSpace(nameEN), strings.TrimSpace(nameZH)
	if err := checkName(fmt.Sprintf("code table %q", key), nameEN, nameZH); err != nil {
		return err
	}
	err := s.changeCatalogue(ctx, t, actor, func(tx pgx.Tx) (catalogueChange, error) {
		var before map[string]any
		var en, zh string
		err := tx.QueryRow(ctx, `SELECT name_en, name_zh FROM code_tables WHERE key = $1 FOR UPDATE`, key).Scan(&en, &zh)
		if errors.Is(err, pgx.ErrNoRows) {
			return catalogueChange{}, fault.Errorf(fault.NotFound, "code table %q does not exist", key)
		}
		if err != nil {
			return catalogueChange{}, err
		}
		before = map[string]any{"name_en": en, "name_zh": zh}
		if _, err := tx.Exec(ctx, `UPDATE code_tables SET name_en = $2, name_zh = $3 WHERE key = $1`, key, nameEN, nameZH); err != nil {
			return catalogueChange{}, err
		}
		return catalogueChange{AuditCodeTableRename, key, changes(before, map[string]any{"name_en": nameEN, "name_zh": nameZH})}, nil
	})
	return wrapUnlessFault(err, "rename code table %q", key)
}

// PutCode adds code to table key, or changes it when it exists. Codes are never deleted
// (records keep them): disable them instead. Lists have at most two levels.
func (s *Store) PutCode(ctx context.Context, t *account.Tenant, key string, c Code, actor account.Actor) error {
	c.LabelEN, c.LabelZH = strings.TrimSpace(c.LabelEN), strings.TrimSpace(c.LabelZH)
	if !codeRE.MatchString(c.Code) {
		return fault.Errorf(fault.Invalid, "code %q is not valid: want 1–64 of A–Z, a–z, 0–9, _ . - (starting with a letter or digit)", c.Code)
	}
	if c.LabelEN == "" {
		return fault.Errorf(fault.Invalid, "code %q needs an English label", c.Code)
	}
	if utf8.RuneCountInString(c.LabelEN) > maxNameLength || utf8.RuneCountInString(c.LabelZH) > maxNameLength {
		return fault.Errorf(fault.Invalid, "code %q: label is too long: at most %d characters", c.Code, maxNameLength)
	}
	if c.Parent == c.Code {
		return fault.Errorf(fault.Invalid, "code %q cannot be its own parent", c.Code)
	}
	err := s.changeCatalogue(ctx, t, actor, func(tx pgx.Tx) (catalogueChange, error) {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM code_tables WHERE key = $1)`, key).Scan(&exists); err != nil {
			return catalogueChange{}, err
		}
		if !exists {
			return catalogueChange{}, fault.Errorf(fault.NotFound, "code table %q does not exist", key)
		}
		if c.Parent != "" {
			var grand *string
			err := tx.QueryRow(ctx, `SELECT parent FROM codes WHERE table_key = $1 AND code = $2`, key, c.Parent).Scan(&grand)
			if errors.Is(err, pgx.ErrNoRows) {
				return catalogueChange{}, fault.Errorf(fault.Invalid, "code %q: parent %q is not a code of %q", c.Code, c.Parent, key)
			}
			if err != nil {
				return catalogueChange{}, err
			}
			if grand != nil {
				return catalogueChange{}, fault.Errorf(fault.Invalid, "code %q: parent %q is itself under %q; code tables have two levels", c.Code, c.Parent, *grand)
			}
			var hasChildren bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM codes WHERE table_key = $1 AND parent = $2)`, key, c.Code).Scan(&hasChildren); err != nil {
				return catalogueChange{}, err
			}
			if hasChildren {
				return catalogueChange{}, fault.Errorf(fault.Invalid, "code %q has codes under it, so it cannot go under %q; code tables have two levels", c.Code, c.Parent)
			}
		}
		var before map[string]any
		var parent *string
		var en, zh string
		var position int
		var enabled bool
		err := tx.QueryRow(ctx, `SELECT parent, label_en, label_zh, position, enabled FROM codes WHERE table_key = $1 AND code = $2 FOR UPDATE`,
			key, c.Code).Scan(&parent, &en, &zh, &position, &enabled)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return catalogueChange{}, err
		default:
			before = map[string]any{"parent": "", "label_en": en, "label_zh": zh, "position": position, "enabled": enabled}
			if parent != nil {
				before["parent"] = *parent
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO codes (table_key, code, parent, label_en, label_zh, position, enabled)
			VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6, $7)
			ON CONFLICT (table_key, code) DO UPDATE SET parent = EXCLUDED.parent, label_en = EXCLUDED.label_en,
				label_zh = EXCLUDED.label_zh, position = EXCLUDED.position, enabled = EXCLUDED.enabled`,
			key, c.Code, c.Parent, c.LabelEN, c.LabelZH, c.Position, c.Enabled)
		if err != nil {
			return catalogueChange{}, err
		}
		after := map[string]any{"parent": c.Parent, "label_en": c.LabelEN, "label_zh": c.LabelZH, "position": c.Position, "enabled": c.Enabled}
		if before == nil {
			return catalogueChange{AuditCodePut, key + "/" + c.Code, map[string]any{"created": after}}, nil
		}
		return catalogueChange{AuditCodePut, key + "/" + c.Code, changes(before, after)}, nil
	})
	return wrapUnlessFault(err, "put code %q in %q", c.Code, key)
}

// CodeTables lists the tenant's code tables with their codes.
func (s *Store) CodeTables(ctx context.Context, t *account.Tenant) ([]*CodeTable, error) {
	var out []*CodeTable
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		var err error
		out, err = loadCodeTables(ctx, tx, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list code tables: %w", err)
	}
	return out, nil
}

// CodeTable loads one code table; an unknown key is a NotFound error.
func (s *Store) CodeTable(ctx context.Context, t *account.Tenant, key string) (*CodeTable, error) {
	var out []*CodeTable
	err := s.inTenant(ctx, t, func(tx pgx.Tx) error {
		var err error
		out, err = loadCodeTables(ctx, tx, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load code table %q: %w", key, err)
	}
	if len(out) == 0 {
		return nil, fault.Errorf(fault.NotFound, "code table %q does not exist", key)
	}
	return out[0], nil
}

func loadCodeTables(ctx context.Context, tx pgx.Tx, key string) ([]*CodeTable, error) {
	rows, err := tx.Query(ctx, `SELECT t.key, t.name_en, t.name_zh, c.code, coalesce(c.parent, ''), c.label_en, c.label_zh, c.position, c.enabled
		FROM code_tables t LEFT JOIN codes c ON c.table_key = t.key
		WHERE $1 = '' OR t.key = $1
		ORDER BY t.key, c.position, c.code`, key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*CodeTable
	for rows.Next() {
		var ct CodeTable
		var code, parent, en, zh *string
		var pos *int
		var enabled *bool
		if err := rows.Scan(&ct.Key, &ct.NameEN, &ct.NameZH, &code, &parent, &en, &zh, &pos, &enabled); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Key != ct.Key {
			out = append(out, &ct)
		}
		if code != nil {
			last := out[len(out)-1]
			last.Codes = append(last.Codes, Code{Code: *code, Parent: *parent, LabelEN: *en, LabelZH: *zh, Position: *pos, Enabled: *enabled})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, ct := range out {
		ct.Codes = treeOrder(ct.Codes)
	}
	return out, nil
}

// treeOrder puts each top-level code (in position order) before the codes under it.
func treeOrder(codes []Code) []Code {
	out := make([]Code, 0, len(codes))
	for _, c := range codes {
		if c.Parent != "" {
			continue
		}
		out = append(out, c)
		for _, k := range codes {
			if k.Parent == c.Code {
				out = append(out, k)
			}
		}
	}
	return out
}
