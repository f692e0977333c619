-- cti: priority callers. A waiting caller with a higher priority (1–9; 0 is everyone else)
-- is placed ahead of lower ones in the queue's FIFO line (FIFO within a priority). A call's
-- priority is the highest of its number's (DID) priority and the queue's caller rules.
ALTER TABLE dids ADD COLUMN priority int NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9);

-- Caller rules of a queue: a caller number (E.164 as +8613800138000 or as signalled), or a
-- prefix ending in * (+86138*), and the priority its calls get in the queue.
CREATE TABLE queue_caller_priorities (
    queue    text NOT NULL REFERENCES queues ON DELETE CASCADE ON UPDATE CASCADE,
    caller   text NOT NULL CHECK (caller ~ '^\+?[0-9]{1,20}\*?$'),
    priority int NOT NULL CHECK (priority BETWEEN 1 AND 9),
    PRIMARY KEY (queue, caller)
);
