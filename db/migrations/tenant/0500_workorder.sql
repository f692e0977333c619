-- Runs with search_path set to the tenant's schema (t_<code>).
-- The default work-order object (工单数据) and its operation log (操作日志) every tenant starts
-- with, and their code tables. This is what dataobject.CreateObject makes of
-- workorder.DefaultLog and workorder.DefaultWorkOrder; a test in package workorder checks that
-- the two agree. Existing tenants get it at the next start (db.Migrate), new ones when provisioned.
-- A tenant that already made code tables or objects of these keys keeps its own: the code
-- tables are left as they are, and the objects are not created (a notice says so).
INSERT INTO code_tables (key, name_en, name_zh) VALUES
    ('wo_type', 'Work-order type', '工单类型'),
    ('wo_status', 'Work-order status', '工单状态'),
    ('wo_priority', 'Work-order priority', '优先级')
ON CONFLICT (key) DO NOTHING;
INSERT INTO codes (table_key, code, label_en, label_zh, position) VALUES
    ('wo_type', 'inquiry', 'Inquiry', '咨询', 10),
    ('wo_type', 'complaint', 'Complaint', '投诉', 20),
    ('wo_type', 'repair', 'Repair', '报修', 30),
    ('wo_type', 'suggestion', 'Suggestion', '建议', 40),
    ('wo_type', 'other', 'Other', '其他', 50),
    ('wo_status', 'open', 'Open', '待处理', 10),
    ('wo_status', 'pending', 'Pending', '处理中', 20),
    ('wo_status', 'resolved', 'Resolved', '已解决', 30),
    ('wo_status', 'closed', 'Closed', '已关闭', 40),
    ('wo_priority', 'low', 'Low', '低', 10),
    ('wo_priority', 'normal', 'Normal', '普通', 20),
    ('wo_priority', 'high', 'High', '高', 30),
    ('wo_priority', 'urgent', 'Urgent', '紧急', 40)
ON CONFLICT (table_key, code) DO NOTHING;

-- The objects, their tables, system indexes, fields (catalogue row, column, index of code
-- and reference fields) and monthly partitions, as dataobject.createObject makes them. They
-- are the tenant's default objects of their kinds unless the tenant has defaults already.
DO $$
DECLARE
    obj  record;
    f    record;
    fid  bigint;
    col  text;
    m    timestamptz;
BEGIN
    IF EXISTS (SELECT 1 FROM data_objects WHERE key IN ('workorder', 'workorder_log')
               OR table_name IN ('obj_workorder', 'obj_workorder_log')) THEN
        RAISE NOTICE 'data objects workorder or workorder_log exist already: the default work-order objects are not made';
        RETURN;
    END IF;
    INSERT INTO data_objects (key, kind, name_en, name_zh, table_name, is_default, edit_columns, save_mode, audit, partitioned)
    VALUES ('workorder_log', 'operation_log', 'Work-order log', '工单操作日志', 'obj_workorder_log',
            NOT EXISTS (SELECT 1 FROM data_objects WHERE kind = 'operation_log' AND is_default), 1, 'many', false, true);
    INSERT INTO data_objects (key, kind, name_en, name_zh, table_name, is_default, log_object_id, edit_columns, save_mode, audit, partitioned)
    SELECT 'workorder', 'work_order', 'Work orders', '工单', 'obj_workorder',
           NOT EXISTS (SELECT 1 FROM data_objects WHERE kind = 'work_order' AND is_default), id, 2, 'once', true, true
    FROM data_objects WHERE key = 'workorder_log';

    FOR obj IN SELECT id, key, table_name FROM data_objects WHERE key IN ('workorder_log', 'workorder') ORDER BY id LOOP
        EXECUTE format('CREATE TABLE %I (
            id         bigserial,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_by bigint,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by bigint,
            owner_id   bigint,
            deleted_at timestamptz,
            PRIMARY KEY (id, created_at)
        ) PARTITION BY RANGE (created_at)', obj.table_name);
        EXECUTE format('CREATE INDEX %I ON %I (created_at)', obj.table_name || '_created_at', obj.table_name);
        EXECUTE format('CREATE INDEX %I ON %I (owner_id, created_at)', obj.table_name || '_owner', obj.table_name);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', obj.table_name || '_default', obj.table_name);
        m := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        FOR i IN 0..3 LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                obj.table_name || to_char((m + make_interval(months => i)) AT TIME ZONE 'UTC', '"_p"YYYYMM'), obj.table_name,
                m + make_interval(months => i), m + make_interval(months => i + 1));
        END LOOP;

        FOR f IN SELECT * FROM (VALUES
            ('workorder_log', 1, 'record_id',     'integer',   'Work order',      '工单',     0,    NULL,          NULL,       false, '',       false, true,  10),
            ('workorder_log', 2, 'action',        'text',      'Action',          '操作',     20,   NULL,          NULL,       true,  '',       false, true,  20),
            ('workorder_log', 3, 'actor',         'text',      'User',            '操作人',   100,  NULL,          NULL,       false, '',       false, true,  30),
            ('workorder_log', 4, 'snapshot',      'long_text', 'Snapshot',        '快照',     0,    NULL,          NULL,       false, '',       false, false, 40),
            ('workorder', 1,  'subject',          'text',      'Subject',         '主题',     200,  NULL,          NULL,       true,  '',       true,  true,  10),
            ('workorder', 2,  'type',             'code',      'Type',            '工单类型', 0,    'wo_type',     NULL,       false, '',       false, true,  20),
            ('workorder', 3,  'status',           'code',      'Status',          '状态',     0,    'wo_status',   NULL,       true,  'open',   false, true,  30),
            ('workorder', 4,  'priority',         'code',      'Priority',        '优先级',   0,    'wo_priority', NULL,       false, 'normal', false, true,  40),
            ('workorder', 5,  'description',      'long_text', 'Description',     '描述',     0,    NULL,          NULL,       false, '',       true,  false, 50),
            ('workorder', 6,  'customer_id',      'reference', 'Customer',        '客户',     0,    NULL,          'customer', false, '',       false, false, 60),
            ('workorder', 7,  'customer_name',    'text',      'Customer name',   '客户名称', 100,  NULL,          NULL,       false, '',       true,  true,  70),
            ('workorder', 8,  'caller_number',    'text',      'Caller number',   '来电号码', 40,   NULL,          NULL,       false, '',       true,  true,  80),
            ('workorder', 9,  'call_id',          'text',      'Call id',         '通话编号', 128,  NULL,          NULL,       false, '',       false, false, 90),
            ('workorder', 10, 'queue',            'text',      'Queue',           '队列',     40,   NULL,          NULL,       false, '',       false, false, 100),
            ('workorder', 11, 'team_id',          'integer',   'Team',            '班组',     0,    NULL,          NULL,       false, '',       false, false, 110),
            ('workorder', 12, 'handling_result',  'text',      'Handling result', '处理结果', 500,  NULL,          NULL,       false, '',       false, false, 120),
            ('workorder', 13, 'callback_at',      'datetime',  'Callback due',    '回访时间', 0,    NULL,          NULL,       false, '',       false, true,  130)
        ) AS v (object, n, key, type, label_en, label_zh, max_length, code_table, ref_object, required, default_value, searchable, in_list, position)
        WHERE v.object = obj.key ORDER BY v.n LOOP
            INSERT INTO data_fields (object_id, key, type, label_en, label_zh, max_length, code_table, ref_object_id, required,
                                     default_value, searchable, in_list, position)
            VALUES (obj.id, f.key, f.type, f.label_en, f.label_zh, f.max_length, f.code_table,
                    (SELECT id FROM data_objects WHERE key = f.ref_object), f.required, f.default_value, f.searchable, f.in_list, f.position)
            RETURNING id INTO fid;
            col := CASE f.type
                WHEN 'text' THEN 'varchar(' || f.max_length || ')'
                WHEN 'long_text' THEN 'text'
                WHEN 'integer' THEN 'bigint'
                WHEN 'reference' THEN 'bigint REFERENCES obj_customer (id)'
                WHEN 'datetime' THEN 'timestamptz'
                WHEN 'code' THEN 'text'
            END;
            EXECUTE format('ALTER TABLE %I ADD COLUMN %I ', obj.table_name, f.key) || col;
            IF f.type IN ('code', 'reference') THEN
                EXECUTE format('CREATE INDEX %I ON %I (%I)', 'f' || fid || '_idx', obj.table_name, f.key);
            END IF;
        END LOOP;
    END LOOP;

    -- What work-order lists and the pop read beyond the catalogue's indexes: a call's work
    -- orders (save once per call, open from call history) and due callbacks.
    CREATE INDEX obj_workorder_call ON obj_workorder (call_id) WHERE call_id IS NOT NULL;
    CREATE INDEX obj_workorder_callback ON obj_workorder (callback_at) WHERE callback_at IS NOT NULL AND deleted_at IS NULL;
    CREATE INDEX obj_workorder_log_record ON obj_workorder_log (record_id);
END $$;
