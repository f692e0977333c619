-- cti: priority callers by customer level. A queue's rule "callers whose matched customer has
-- level <code> get priority <n>": when a call has to wait in the queue, ctid matches the
-- caller's number against the customers (as the screen pop does) and takes the highest
-- priority of the matched customers' levels (the default customer object's field 'level',
-- code table customer_level). A call's priority is the highest of its number's (DID), the
-- caller-number rules' and the level rules'.
CREATE TABLE queue_level_priorities (
    queue       text NOT NULL REFERENCES queues ON DELETE CASCADE ON UPDATE CASCADE,
    level_table text NOT NULL DEFAULT 'customer_level' CHECK (level_table = 'customer_level'),
    level       text NOT NULL,
    priority    int NOT NULL CHECK (priority BETWEEN 1 AND 9),
    PRIMARY KEY (queue, level),
    FOREIGN KEY (level_table, level) REFERENCES codes (table_key, code) ON DELETE CASCADE
);
