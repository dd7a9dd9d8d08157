-- Sandbox partners (test mode): their orders and events say livemode false,
-- and the operator's views leave them out unless asked.
ALTER TABLE partners ADD COLUMN sandbox boolean NOT NULL DEFAULT false;
-- Set from the partner when the order is written: the operator's views
-- filter on it without a join.
ALTER TABLE sales_orders ADD COLUMN livemode boolean NOT NULL DEFAULT true;
