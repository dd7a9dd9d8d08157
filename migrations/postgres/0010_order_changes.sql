-- Order changes: a purchase order number is unique among a partner's live
-- orders only (cancelling or rejecting an order frees it), every order has a
-- version and a currency, history rows can hold an amendment, and one
-- Idempotency-Key can stand for a whole batch.

-- ISO 4217. Orders from before currencies were recorded are IDR, the
-- default `serve --default-currency` has always implied.
ALTER TABLE sales_orders ADD COLUMN currency text NOT NULL DEFAULT 'IDR';
ALTER TABLE sales_orders ALTER COLUMN currency DROP DEFAULT;
-- 1 at creation, +1 on every change.
ALTER TABLE sales_orders ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE sales_orders ALTER COLUMN version DROP DEFAULT;

ALTER TABLE sales_orders DROP CONSTRAINT sales_orders_po_unique;
-- Unique among live orders only; the ON CONFLICT of an insert names this
-- predicate. Orders without a number take no entry.
CREATE UNIQUE INDEX sales_orders_live_po ON sales_orders (client_id, purchase_order_no)
    WHERE purchase_order_no IS NOT NULL AND status NOT IN ('cancelled', 'rejected');
-- The list's purchase_order_no filter, which finds freed numbers too.
CREATE INDEX sales_orders_client_po ON sales_orders (client_id, purchase_order_no)
    WHERE purchase_order_no IS NOT NULL;

-- The version the entry made (NULL: made before versions existed), and for
-- an amendment what it changed, as JSON (`domain::Amendment`).
ALTER TABLE sales_order_history ADD COLUMN version bigint;
ALTER TABLE sales_order_history ADD COLUMN changes text;

-- A key stands for one order (order_seq) or for a batch (outcome: each
-- item's result, as JSON).
ALTER TABLE idempotency_keys ALTER COLUMN order_seq DROP NOT NULL;
ALTER TABLE idempotency_keys ADD COLUMN outcome text;
