-- Runs with search_path set to the tenant's schema (t_<code>): names are unqualified.
-- The data-object catalogue. Every data object is a real table obj_<key> in this schema,
-- created by package dataobject in the same transaction as its catalogue rows.
CREATE TABLE data_objects (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           text NOT NULL UNIQUE CHECK (key ~ '^[a-z][a-z0-9_]{1,30}$'),
    kind          text NOT NULL CHECK (kind IN ('customer', 'work_order', 'qa', 'operation_log', 'base_data')),
    name_en       text NOT NULL CHECK (name_en <> ''),
    name_zh       text NOT NULL DEFAULT '',
    table_name    text NOT NULL UNIQUE,
    is_default    boolean NOT NULL DEFAULT false,
    log_object_id bigint REFERENCES data_objects,
    edit_columns  int NOT NULL DEFAULT 2 CHECK (edit_columns BETWEEN 1 AND 3),
    save_mode     text NOT NULL DEFAULT 'once' CHECK (save_mode IN ('once', 'many')),
    audit         boolean NOT NULL DEFAULT true,
    partitioned   boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- At most one default object per kind (the seed's 企业默认).
CREATE UNIQUE INDEX data_objects_default ON data_objects (kind) WHERE is_default;

-- Code tables (编码): named lists of codes; a code may have a parent code in the same
-- table (two levels: region → city, reason → sub-reason).
CREATE TABLE code_tables (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{1,30}$'),
    name_en    text NOT NULL CHECK (name_en <> ''),
    name_zh    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE codes (
    table_key text NOT NULL REFERENCES code_tables ON DELETE CASCADE,
    code      text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    parent    text,
    label_en  text NOT NULL CHECK (label_en <> ''),
    label_zh  text NOT NULL DEFAULT '',
    position  int NOT NULL DEFAULT 0,
    enabled   boolean NOT NULL DEFAULT true,
    PRIMARY KEY (table_key, code),
    FOREIGN KEY (table_key, parent) REFERENCES codes (table_key, code)
);

CREATE TABLE data_fields (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_id     bigint NOT NULL REFERENCES data_objects ON DELETE CASCADE,
    key           text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{1,30}$'),
    type          text NOT NULL CHECK (type IN ('text', 'long_text', 'integer', 'decimal', 'date', 'datetime',
                                              'boolean', 'phone', 'email', 'code', 'reference')),
    label_en      text NOT NULL CHECK (label_en <> ''),
    label_zh      text NOT NULL DEFAULT '',
    max_length    int NOT NULL DEFAULT 0,
    code_table    text REFERENCES code_tables,
    multi         boolean NOT NULL DEFAULT false,
    ref_object_id bigint REFERENCES data_objects,
    required      boolean NOT NULL DEFAULT false,
    is_unique     boolean NOT NULL DEFAULT false,
    default_value text NOT NULL DEFAULT '',
    searchable    boolean NOT NULL DEFAULT false,
    in_list       boolean NOT NULL DEFAULT false,
    position      int NOT NULL DEFAULT 0,
    match_caller  boolean NOT NULL DEFAULT false,
    hidden        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (object_id, key),
    CHECK ((type = 'code') = (code_table IS NOT NULL)),
    CHECK ((type = 'reference') = (ref_object_id IS NOT NULL))
);

-- Match keys of every phone value of every object: the caller lookup reads only this
-- table's indexes. NULL keys never match.
CREATE TABLE phone_keys (
    object_id  bigint NOT NULL REFERENCES data_objects ON DELETE CASCADE,
    field_id   bigint NOT NULL REFERENCES data_fields ON DELETE CASCADE,
    record_id  bigint NOT NULL,
    raw        text NOT NULL,
    e164       text,             -- +8613812345678, when the number parses and is possible
    national   text,             -- national significant number (libphonenumber)
    stripped   text,             -- digits with international, country and trunk prefixes stripped
    rev_digits text COLLATE "C", -- all digits reversed: last-N-digit matching is a prefix range
    valid      boolean NOT NULL, -- false: not a valid number; kept raw, matchable by digits
    active     boolean NOT NULL, -- the field is matched against callers and not hidden
    contact_at timestamptz NOT NULL -- the record's latest contact: newer ranks first
);
CREATE INDEX phone_keys_e164 ON phone_keys (e164) WHERE active;
CREATE INDEX phone_keys_national ON phone_keys (national) WHERE active;
CREATE INDEX phone_keys_stripped ON phone_keys (stripped) WHERE active;
CREATE INDEX phone_keys_rev_digits ON phone_keys (rev_digits) WHERE active;
CREATE INDEX phone_keys_record ON phone_keys (object_id, record_id);

-- The audit trail (DB轨迹) of records of objects with audit on: who, when, field old → new.
CREATE TABLE record_history (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_id bigint NOT NULL REFERENCES data_objects ON DELETE CASCADE,
    record_id bigint NOT NULL,
    action    text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    actor_id  bigint,
    actor     text NOT NULL,
    changes   jsonb NOT NULL DEFAULT '[]',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX record_history_record ON record_history (object_id, record_id, id);
