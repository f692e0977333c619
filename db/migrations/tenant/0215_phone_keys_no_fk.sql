-- Runs with search_path set to the tenant's schema (t_<code>).
-- phone_keys is written once per phone value of every record (two rows per customer for
-- a typical import). Its foreign keys to data_objects and data_fields cost two referential
-- triggers per row, most of a bulk import's database time, and protected nothing: objects
-- and fields are never deleted (a field is hidden or renamed, keeping its data), so the
-- ON DELETE CASCADE never fired, and package dataobject writes these rows only with ids it
-- has just read from the catalogue in the same transaction.
ALTER TABLE phone_keys DROP CONSTRAINT phone_keys_object_id_fkey;
ALTER TABLE phone_keys DROP CONSTRAINT phone_keys_field_id_fkey;
