-- An `order.created` event no longer stores its snapshot: the order's own
-- rows hold it until the order first changes, and that change stores it
-- here (src/store/feed.rs). NULL for such an event until then.
ALTER TABLE order_events ALTER COLUMN data DROP NOT NULL;
