-- Per-partner request rate limit on the sales-order routes, in requests per
-- second: NULL is the default (100/s, bursts of 1000), 0 is no limit.
ALTER TABLE partners ADD COLUMN rate_limit bigint CHECK (rate_limit >= 0);
