-- Parent orders (twap, dca; issue 14 part 2) and their slices.
--
-- `orders.parent_id`: the parent a market order is a slice of (OrderAccepted.parent_id, schema
-- v6), null for every other order. `orders.progress`: a parent's progress as its fold knows
-- it (readmodel/rows.py `progress_json`: slices done, skipped and remaining, amounts in and
-- out so far, average price, each child's id and status), null for every other order.
-- Appended to ORDER_COLUMNS in this order. The index serves a parent's list of children.
-- No schema name here: the runner sets search_path.
alter table orders
    add column if not exists parent_id text,
    add column if not exists progress  jsonb;
create index if not exists orders_parent on orders (parent_id) where parent_id is not null;
