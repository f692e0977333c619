-- Runs with search_path set to the tenant's schema (t_<code>).
-- The default customer object (客户数据) every tenant starts with, and its level code table.
-- This is what dataobject.CreateObject makes of dataobject.DefaultCustomer; a test in
-- package dataobject checks that the two agree. Ids are those of a fresh catalogue (0200).
INSERT INTO code_tables (key, name_en, name_zh) VALUES ('customer_level', 'Customer level', '客户级别');
INSERT INTO codes (table_key, code, label_en, label_zh, position) VALUES
    ('customer_level', 'normal', 'Normal', '普通', 10),
    ('customer_level', 'silver', 'Silver', '银卡', 20),
    ('customer_level', 'gold', 'Gold', '金卡', 30),
    ('customer_level', 'vip', 'VIP', '贵宾', 40);

INSERT INTO data_objects (key, kind, name_en, name_zh, table_name, is_default, edit_columns, save_mode, audit, partitioned)
VALUES ('customer', 'customer', 'Customers', '客户资料', 'obj_customer', true, 2, 'once', true, false);

CREATE TABLE obj_customer (
    id         bigserial,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by bigint,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by bigint,
    owner_id   bigint,
    deleted_at timestamptz,
    PRIMARY KEY (id)
);
CREATE INDEX obj_customer_created_at ON obj_customer (created_at);
CREATE INDEX obj_customer_owner ON obj_customer (owner_id, created_at);

INSERT INTO data_fields (object_id, key, type, label_en, label_zh, max_length, code_table, multi, required,
                         default_value, searchable, in_list, position, match_caller)
SELECT o.id, f.key, f.type, f.label_en, f.label_zh, f.max_length, f.code_table, f.multi, f.required,
       f.default_value, f.searchable, f.in_list, f.position, f.match_caller
FROM data_objects o, (VALUES
    (1, 'name',    'text',      'Name',    '姓名',     100, NULL,             false, true,  '',       true,  true,  10, false),
    (2, 'phones',  'phone',     'Phones',  '电话',     0,   NULL,             true,  false, '',       true,  true,  20, true),
    (3, 'company', 'text',      'Company', '公司',     200, NULL,             false, false, '',       true,  true,  30, false),
    (4, 'email',   'email',     'E-mail',  '邮箱',     320, NULL,             false, false, '',       true,  false, 40, false),
    (5, 'address', 'text',      'Address', '地址',     500, NULL,             false, false, '',       false, false, 50, false),
    (6, 'level',   'code',      'Level',   '客户级别', 0,   'customer_level', false, false, 'normal', false, true,  60, false),
    (7, 'notes',   'long_text', 'Notes',   '备注',     0,   NULL,             false, false, '',       false, false, 70, false)
) AS f (n, key, type, label_en, label_zh, max_length, code_table, multi, required, default_value, searchable, in_list, position, match_caller)
WHERE o.key = 'customer'
ORDER BY f.n;

ALTER TABLE obj_customer ADD COLUMN name varchar(100);
ALTER TABLE obj_customer ADD COLUMN phones text[];
ALTER TABLE obj_customer ADD COLUMN company varchar(200);
ALTER TABLE obj_customer ADD COLUMN email varchar(320);
ALTER TABLE obj_customer ADD COLUMN address varchar(500);
ALTER TABLE obj_customer ADD COLUMN level text;
ALTER TABLE obj_customer ADD COLUMN notes text;
-- Code fields are indexed (see dataobject.addField); index names carry the field id.
DO $$ BEGIN
    EXECUTE format('CREATE INDEX %I ON obj_customer (level)',
        'f' || (SELECT f.id FROM data_fields f JOIN data_objects o ON o.id = f.object_id
                WHERE o.key = 'customer' AND f.key = 'level') || '_idx');
END $$;
