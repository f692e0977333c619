package dataobject

import (
	"regexp"

	"github.com/ctid/ctid/fault"
)

// Keys of objects, fields and code tables become SQL identifiers (table and column names),
// so they are held to this pattern and quoted on top of it.
var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,30}$`)

// tablePrefix names object tables, so an object key never collides with the catalogue's own
// tables (data_objects, codes, settings...).
const tablePrefix = "obj_"

// systemColumns are on every object table; fields may not use these keys.
var systemColumns = []string{"id", "created_at", "created_by", "updated_at", "updated_by", "owner_id", "deleted_at"}

func isSystemColumn(key string) bool {
	for _, c := range systemColumns {
		if c == key {
			return true
		}
	}
	return false
}

func checkKey(what, key string) error {
	if !keyRE.MatchString(key) {
		return fault.Errorf(fault.Invalid, "%s key %q is not valid: want a lower-case letter then 1–30 of a–z, 0–9, _", what, key)
	}
	return nil
}

func checkFieldKey(key string) error {
	if err := checkKey("field", key); err != nil {
		return err
	}
	if isSystemColumn(key) {
		return fault.Errorf(fault.Invalid, "field key %q is reserved for a system column", key)
	}
	return nil
}
