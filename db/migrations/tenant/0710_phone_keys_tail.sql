-- Runs with search_path set to the tenant's schema (t_<code>).
-- Caller lookup runs as a prepared statement, and PostgreSQL keeps one generic plan for it
-- per connection only when that plan's estimates are about as good as those of a plan made
-- for the values at hand. A range on parameters (rev_digits >= $n AND rev_digits < $m: the
-- last N digits) is estimated at 0.5% of the table, so every lookup was planned again
-- (about 0.2 ms, more than running it). Equality on the last 6 digits (the fewest N
-- allowed) is estimated from this index's statistics; the range on all the reversed digits
-- then picks the last N among them in the same index. The index is not partial (WHERE
-- active) because PostgreSQL does not estimate with the statistics of a partial index's
-- expression; the few inactive keys (fields not matched) are left out by the heap recheck.
DROP INDEX phone_keys_rev_digits;
CREATE INDEX phone_keys_tail ON phone_keys (left(rev_digits, 6), rev_digits);
